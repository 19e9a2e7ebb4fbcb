"""`mlwf cost` output, and the environment budget check `mlwf plan` applies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlwf.cost.estimate import HOURS_PER_MONTH, NOT_INCLUDED, ClusterPrice, StackCost
from mlwf.cost.prices import Prices
from mlwf.settings import Settings


def usd(value: float | None, signed: bool = False, places: int = 2) -> str:
    if value is None:
        return "unpriced"
    text = f"${abs(value):,.{places}f}"
    if signed:
        return ("+" if value >= 0.005 else "-" if value <= -0.005 else "") + text
    return text


@dataclass(frozen=True)
class Budget:
    env: str
    monthly: float
    budget: float | None
    level: str  # advisory | mandatory
    complete: bool  # every stack of the environment was planned
    region: str = ""
    unpriced: int = 0  # planned resources the price table has no price for

    @property
    def over(self) -> bool:
        # With unpriced resources the total is a lower bound: over it is over; under it, unknown.
        return self.complete and self.budget is not None and self.monthly > self.budget

    @property
    def blocking(self) -> bool:
        return self.over and self.level == "mandatory"

    def line(self) -> str:
        if self.budget is None:
            return f"{self.env}: fixed {usd(self.monthly)}/month, no budget set"
        if not self.complete:
            return f"{self.env}: the {usd(self.budget)} budget is not checked (only some stacks were planned)"
        if self.unpriced and not self.over:
            return (
                f"{self.env}: the {usd(self.budget)} budget is not checked: {self.unpriced} resource(s) have no price "
                f"for {self.region} in the price table (`mlwf prices refresh --region {self.region}`)"
            )
        verdict = f"OVER by {usd(self.monthly - self.budget)} ({self.level})" if self.over else "within"
        at_least = f"at least {usd(self.monthly)} ({self.unpriced} unpriced)" if self.unpriced else usd(self.monthly)
        return f"{self.env}: fixed {at_least}/month of a {usd(self.budget)} budget: {verdict}"

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "over": self.over, "blocking": self.blocking}


def budget(settings: Settings, costs: list[StackCost], complete: bool) -> Budget:
    total = sum(c.monthly for c in costs)
    unpriced = sum(len(c.unpriced) for c in costs)
    return Budget(
        settings.name,
        total,
        settings.cost.monthly_budget_usd,
        settings.budget_level,
        complete,
        settings.region,
        unpriced,
    )


def assumptions(settings: Settings) -> str:
    return (
        f"{HOURS_PER_MONTH} hours a month; {settings.cost.log_gb_per_day:g} GB/day into each log group, "
        f"stored for its retention; {settings.cost.flow_log_gb_per_day:g} GB/day of VPC flow logs where enabled"
    )


def prices_used(costs: list[StackCost], prices: Prices, region: str) -> list[str]:
    rates = sorted({i.rate for c in costs for i in c.items})
    return [
        f"{rate}: {p.usd:g} USD/{p.unit} ({p.source}, {p.read_on})"
        for rate in rates
        if (p := prices.get((rate, region))) is not None
    ]


def print_costs(settings: Settings, costs: list[StackCost], cluster: ClusterPrice, prices: Prices) -> None:
    total = sum(c.monthly for c in costs)
    print(f"== {settings.name} ({settings.region}): fixed {usd(total)}/month")
    for cost in costs:
        print(f"   {cost.stack:<14} {usd(cost.monthly):>12}")
        for item in cost.items:
            unit = "unpriced" if item.usd_unit is None else f"x ${item.usd_unit:g}"
            print(
                f"      {item.name:<22} {item.type.rsplit(':', 1)[-1]:<14} "
                f"{item.quantity:,.6g} {item.unit} {unit} = {usd(item.monthly)}"
            )
        for entry in cost.unpriced:
            print(f"      UNPRICED {entry}")
    print(f"   {budget(settings, costs, True).line()}")
    print("   one flow run's compute, per hour:")
    for what, hourly in cluster.parts:
        print(f"      {what}: {usd(hourly, places=4)}")
    print(
        f"      total: {usd(cluster.at(cluster.n_workers), places=4)}/hour at n_workers={cluster.n_workers}, "
        f"{usd(cluster.at(cluster.max_workers), places=4)}/hour at max_workers={cluster.max_workers}"
    )
    usage = sorted({u for c in costs for u in c.usage})
    print(f"   not included (charged by use): {', '.join(usage + list(NOT_INCLUDED))}")
    print(f"   assumptions: {assumptions(settings)}")
    print("   prices:")
    for line in prices_used(costs, prices, settings.region):
        print(f"      {line}")
    print()


def costs_json(settings: Settings, costs: list[StackCost], cluster: ClusterPrice, prices: Prices) -> dict[str, Any]:
    return {
        "env": settings.name,
        "region": settings.region,
        "monthly_usd": round(sum(c.monthly for c in costs), 2),
        "budget": budget(settings, costs, True).to_json(),
        "stacks": [c.to_json() for c in costs],
        "flow_run_cluster": cluster.to_json(),
        "not_included": sorted({u for c in costs for u in c.usage}) + list(NOT_INCLUDED),
        "assumptions": assumptions(settings),
        "prices": prices_used(costs, prices, settings.region),
    }

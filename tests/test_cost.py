"""`mlwf cost`: the fixed monthly cost against a hand calculation from the price table, every
planned type priced or named, the flow-run cluster's hourly price, and refreshing the table from
a copy of AWS's price list served on loopback."""

from __future__ import annotations

import dataclasses
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from test_cli import REPO, assert_one_line_error, run

from mlwf.cost.cost_report import budget
from mlwf.cost.estimate import FREE, PRICED, USAGE, cluster_price, environment_costs, stack_cost
from mlwf.cost.prices import PRICES, load_prices
from mlwf.infra.plan import plan_environment
from mlwf.planned import PlannedResource, StackPlan
from mlwf.settings import load_environment, load_environments
from mlwf.stacks.programs import ORDER

HOURS = 730


@pytest.fixture(scope="module")
def plans() -> dict[str, list[StackPlan]]:
    return {s.name: plan_environment(s, list(ORDER), REPO) for s in load_environments(REPO / "environments")}


def test_dev_costs_what_the_price_table_says_by_hand() -> None:
    price = {rate: p.usd for (rate, region), p in load_prices().items() if region == "us-east-1"}
    network = (
        HOURS * price["nat-gateway-hour"]  # one NAT gateway (dev.yaml: nat_gateways 1)
        + HOURS * price["public-ipv4-hour"]  # its Elastic IP
        + 6
        * 2
        * HOURS
        * price["interface-endpoint-az-hour"]  # ecr-api, ecr-dkr, logs, secretsmanager, ssm, sts x 2 AZs
        + price["kms-key-month"]  # the logs key
    )
    storage = price["kms-key-month"]  # the data key; the bucket and the repository are charged by use
    compute = (
        0.05 * 14 * price["log-storage-gb-month"]  # the dask log group: 0.05 GB/day kept 14 days
        + price["kms-key-month"]  # the alerts topic's key
        + 2 * price["cloudwatch-alarm-month"]  # the reaper's two alarms
        + HOURS / 24 * price["budget-day"]  # the environment's budget (dev.yaml: monthly_budget_usd)
    )
    agent = (
        price["kms-key-month"]  # the secrets key
        + price["secret-month"]  # the Prefect API key
        + 2 * 0.05 * 14 * price["log-storage-gb-month"]  # prefect-worker and flow-runs log groups
        + HOURS * (0.5 * price["fargate-vcpu-hour"] + 1 * price["fargate-gb-hour"])  # the worker: 512 CPU, 1 GiB
    )
    result = run("cost", "--env", "dev", "--json")
    assert result.returncode == 0, result.stderr
    (dev,) = json.loads(result.stdout)
    by_stack = {s["stack"]: s["monthly_usd"] for s in dev["stacks"]}
    assert by_stack == pytest.approx(
        {"network": network, "storage": storage, "compute": compute, "prefect-agent": agent}, abs=0.005
    )
    assert dev["monthly_usd"] == pytest.approx(network + storage + compute + agent, abs=0.01)
    assert all(not s["unpriced"] for s in dev["stacks"])
    assert "S3 storage and requests" in dev["not_included"]
    assert "data transfer" in dev["not_included"]
    assert dev["budget"] == {**dev["budget"], "budget": 175.0, "level": "advisory", "over": False}


def test_every_planned_type_is_priced_free_or_charged_by_use(plans: dict[str, list[StackPlan]]) -> None:
    types = {r.type for env in plans.values() for p in env for r in p.resources if r.custom}
    types -= {t for t in types if t.startswith("pulumi:providers:")}
    assert types - set(PRICED) - FREE - set(USAGE) == set(), "a type with no price and no reason"
    prices = load_prices()
    for env, env_plans in plans.items():
        settings = load_environment(env, REPO / "environments")
        for plan in env_plans:
            cost = stack_cost(plan, settings, prices)
            assert cost.unpriced == [], (env, plan.stack)
            assert all(i.usd_unit is not None for i in cost.items)


def test_an_unpriced_type_is_listed_never_zero() -> None:
    settings = load_environment("dev", REPO / "environments")
    database = PlannedResource("aws:rds/instance:Instance", "db", {"instanceClass": "db.t3.micro"}, "urn:db")
    key = PlannedResource("aws:kms/key:Key", "k", {}, "urn:k")
    cost = stack_cost(StackPlan("dev", "extra", [database, key]), settings, load_prices())
    assert cost.unpriced == ["aws:rds/instance:Instance db: not in the price table"]
    assert cost.monthly == pytest.approx(1.0)
    in_another_region = settings.model_copy(update={"region": "eu-west-1"})
    cost = stack_cost(StackPlan("dev", "extra", [key]), in_another_region, load_prices())
    assert cost.unpriced == ["aws:kms/key:Key k: no kms-key-month price for eu-west-1"]
    assert cost.items[0].monthly is None


def test_a_flow_run_cluster_per_hour_follows_the_settings() -> None:
    price = {rate: p.usd for (rate, region), p in load_prices().items() if region == "us-east-1"}
    prod = load_environment("prod", REPO / "environments")  # scheduler 2 vCPU 8 GB on demand, workers 4 vCPU 16 GB Spot
    scheduler = 2 * price["fargate-vcpu-hour"] + 8 * price["fargate-gb-hour"]
    worker = 4 * price["fargate-spot-vcpu-hour"] + 16 * price["fargate-spot-gb-hour"]
    flow_run = 1 * price["fargate-vcpu-hour"] + 4 * price["fargate-gb-hour"]
    cluster = cluster_price(prod, load_prices())
    assert cluster.at(4) == pytest.approx(flow_run + scheduler + 4 * worker)
    assert cluster.at(32) == pytest.approx(flow_run + scheduler + 32 * worker)
    on_demand = prod.model_copy(update={"dask": prod.dask.model_copy(update={"spot_workers": False})})
    assert cluster_price(on_demand, load_prices()).at(4) > cluster.at(4), "Spot workers cost less"
    text = run("cost", "--env", "prod").stdout
    assert f"at n_workers=4, ${flow_run + scheduler + 32 * worker:,.4f}/hour at max_workers=32" in text


# A copy of the price list's layout: region index -> a version's file with products and terms.
OFFERS = {
    "AmazonEC2": {"NAT": ("USE1-NatGateway-Hours", "0.048")},
    "AmazonVPC": {"IP": ("USE1-PublicIPv4:InUseAddress", "0.005"), "EP": ("USE1-VpcEndpoint-Hours", "0.011")},
    "AmazonECS": {"CPU": ("USE1-Fargate-vCPU-Hours:perCPU", "0.04"), "GB": ("USE1-Fargate-GB-Hours", "0.0044")},
    "awskms": {"KEY": ("us-east-1-KMS-Keys", "1")},
    "AWSSecretsManager": {"SEC": ("USE1-AWSSecretsManager-Secrets", "0.4")},
    "AmazonCloudWatch": {"ST": ("USE1-TimedStorage-ByteHrs", "0.03"), "VL": ("USE1-VendedLog-Bytes", "0.5")},
    "AWSSystemsManager": {"PS": ("USE1-PS-Advanced-Param-Tier1", "0.05")},
}


def offer_file(products: dict[str, tuple[str, str]]) -> dict[str, Any]:
    terms: dict[str, Any] = {}
    for sku, (_, usd) in products.items():
        tiers = {f"{sku}.T.1": {"unit": "Hrs", "beginRange": "0", "pricePerUnit": {"USD": usd}}}
        if sku == "VL":  # tiered, as vended logs are: only the first tier counts
            tiers[f"{sku}.T.2"] = {"unit": "GB", "beginRange": "10240", "pricePerUnit": {"USD": "0.25"}}
        terms[sku] = {f"{sku}.T": {"priceDimensions": tiers}}
    return {
        "products": {sku: {"sku": sku, "attributes": {"usagetype": usage}} for sku, (usage, _) in products.items()},
        "terms": {"OnDemand": terms},
    }


@pytest.fixture
def price_list(http_dir: tuple[str, Path]) -> tuple[str, Path]:
    """A copy of the price list's layout, served on loopback (conftest's `http_dir`)."""
    url, root = http_dir
    for offer, products in OFFERS.items():
        folder = root / "offers/v1.0/aws" / offer
        version = f"/offers/v1.0/aws/{offer}/20261101000000/us-east-1/index.json"
        (root / version.lstrip("/")).parent.mkdir(parents=True)
        (root / version.lstrip("/")).write_text(json.dumps(offer_file(products)))
        (folder / "current").mkdir(parents=True)
        # eu-west-1 served the same products (the usage types' region prefixes are ignored)
        index = {"regions": {r: {"regionCode": r, "currentVersionUrl": version} for r in ("us-east-1", "eu-west-1")}}
        (folder / "current/region_index.json").write_text(json.dumps(index))
    return url.rstrip("/"), root


def test_prices_refresh_from_the_price_list_served_on_loopback(price_list: tuple[str, Path], tmp_path: Path) -> None:
    endpoint, _ = price_list
    table = tmp_path / "prices.csv"
    table.write_text(PRICES.read_text())
    result = run("prices", "refresh", "--endpoint", endpoint, "--table", str(table))
    assert result.returncode == 0, result.stderr
    refreshed = load_prices(table)
    assert refreshed[("nat-gateway-hour", "us-east-1")].usd == 0.048
    assert refreshed[("interface-endpoint-az-hour", "us-east-1")].usd == 0.011
    assert refreshed[("vended-log-cwl-gb", "us-east-1")].usd == 0.5, "the first tier of a tiered price"
    nat = refreshed[("nat-gateway-hour", "us-east-1")]
    assert nat.source == f"{endpoint}/offers/v1.0/aws/AmazonEC2/20261101000000/us-east-1/index.json sku NAT"
    assert nat.read_on == date.today().isoformat()
    spot = refreshed[("fargate-spot-vcpu-hour", "us-east-1")]
    assert spot == load_prices()[("fargate-spot-vcpu-hour", "us-east-1")], "a rate the list lacks is kept"
    assert "fargate-spot-vcpu-hour (us-east-1): kept" in result.stdout


def test_prices_refresh_adds_a_region_every_rate_priced(price_list: tuple[str, Path], tmp_path: Path) -> None:
    """A platform in another region: its rows are added, read from the list where it has them,
    copied (and said so) where they were entered by hand; the budget is checked again."""
    endpoint, _ = price_list
    table = tmp_path / "prices.csv"
    table.write_text(PRICES.read_text())
    result = run("prices", "refresh", "--endpoint", endpoint, "--table", str(table), "--region", "eu-west-1")
    assert result.returncode == 0, result.stderr
    refreshed = load_prices(table)
    rates = {rate for rate, _ in load_prices()}
    assert {rate for rate, region in refreshed if region == "eu-west-1"} == rates
    assert refreshed[("nat-gateway-hour", "eu-west-1")].usd == 0.048
    alarm = refreshed[("cloudwatch-alarm-month", "eu-west-1")]
    assert alarm.usd == load_prices()[("cloudwatch-alarm-month", "us-east-1")].usd
    assert alarm.source.startswith("as entered for us-east-1, check for eu-west-1: ")
    assert (
        "cloudwatch-alarm-month (eu-west-1): copied 0.1 USD/alarm-month from us-east-1 (not in the price list)"
        in result.stdout
    )
    bad = run("prices", "refresh", "--endpoint", endpoint, "--table", str(table), "--region", "Europe")
    assert_one_line_error(bad, "'Europe' is not an AWS region name (like eu-west-1)")


def test_a_budget_with_unpriced_resources_is_not_checked() -> None:
    """A platform in a region the price table lacks: never "within" at $0."""
    settings = load_environment("dev", REPO / "environments")
    moved = settings.model_copy(update={"region": "eu-west-1"})
    plans = plan_environment(moved, list(ORDER), REPO)
    line = budget(moved, environment_costs(plans, moved, load_prices()), True)
    assert line.unpriced > 0
    assert not line.over
    assert line.line() == (
        f"dev: the $175.00 budget is not checked: {line.unpriced} resource(s) have no price for eu-west-1 in the "
        "price table (`mlwf prices refresh --region eu-west-1`)"
    )
    # Priced alone already over the budget: over (a lower bound), and blocking where it blocks.
    tight = moved.model_copy(update={"cost": moved.cost.model_copy(update={"monthly_budget_usd": 1.0})})
    table = load_prices()
    nat = table[("nat-gateway-hour", "us-east-1")]
    table[("nat-gateway-hour", "eu-west-1")] = dataclasses.replace(nat, region="eu-west-1")
    over = budget(tight, environment_costs(plans, tight, table), True)
    assert 0 < over.unpriced < line.unpriced
    assert over.over
    assert over.line() == (
        f"dev: fixed at least ${over.monthly:.2f} ({over.unpriced} unpriced)/month of a $1.00 budget: "
        f"OVER by ${over.monthly - 1:.2f} ({tight.budget_level})"
    )
    home_plans = plan_environment(settings, list(ORDER), REPO)
    at_home = budget(settings, environment_costs(home_plans, settings, load_prices()), True)
    assert at_home.unpriced == 0
    assert at_home.line().endswith("budget: within")


def test_a_price_list_without_a_usage_type_changes_nothing(price_list: tuple[str, Path], tmp_path: Path) -> None:
    endpoint, root = price_list
    version = root / "offers/v1.0/aws/AmazonVPC/20261101000000/us-east-1/index.json"
    version.write_text(json.dumps(offer_file({"IP": OFFERS["AmazonVPC"]["IP"]})))
    table = tmp_path / "prices.csv"
    table.write_text(PRICES.read_text())
    result = run("prices", "refresh", "--endpoint", endpoint, "--table", str(table))
    assert_one_line_error(result, "AmazonVPC/us-east-1 has no on-demand price for usage type VpcEndpoint-Hours")
    assert table.read_text() == PRICES.read_text()
    unreachable = run("prices", "refresh", "--endpoint", "http://127.0.0.1:9", "--table", str(table))
    assert_one_line_error(unreachable, "cannot read the AWS price list at http://127.0.0.1:9/")
    assert table.read_text() == PRICES.read_text()

"""The fixed monthly cost of planned stacks, priced from the price table: what AWS charges every
hour or month whether flows run or not (730 hours a month), and the hourly price of one flow
run's Dask cluster from the settings. Every resource type is priced, free, or charged by use
only (named, not included); a type that is none of these is listed as unpriced, never counted
as zero."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from mlwf.cost.prices import Prices
from mlwf.planned import PlannedResource, StackPlan
from mlwf.settings import Settings

HOURS_PER_MONTH = 730
DAYS_PER_MONTH = HOURS_PER_MONTH / 24

# No charge of their own (what they configure is priced where it runs, or is free).
FREE = frozenset(
    {
        "aws:cloudwatch/eventTarget:EventTarget",
        "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup",
        "aws:ec2/internetGateway:InternetGateway",
        "aws:ec2/routeTable:RouteTable",
        "aws:ec2/routeTableAssociation:RouteTableAssociation",
        "aws:ec2/securityGroup:SecurityGroup",
        "aws:ec2/subnet:Subnet",
        "aws:ec2/vpc:Vpc",
        "aws:ecr/lifecyclePolicy:LifecyclePolicy",
        "aws:ecs/cluster:Cluster",
        "aws:ecs/clusterCapacityProviders:ClusterCapacityProviders",
        "aws:ecs/taskDefinition:TaskDefinition",
        "aws:iam/role:Role",
        "aws:iam/rolePolicy:RolePolicy",
        "aws:kms/alias:Alias",
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
        "aws:s3/bucketLogging:BucketLogging",
        "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
        "aws:s3/bucketPolicy:BucketPolicy",
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "aws:s3/bucketVersioning:BucketVersioning",
        "aws:secretsmanager/secretVersion:SecretVersion",
        "aws:sqs/queuePolicy:QueuePolicy",
        "aws:sns/topicPolicy:TopicPolicy",
        "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
    }
)
# Charged only by use: named in every estimate as not included.
USAGE = {
    "aws:s3/bucket:Bucket": "S3 storage and requests",
    "aws:ecr/repository:Repository": "ECR image storage",
    "aws:sqs/queue:Queue": "SQS requests",
    "aws:scheduler/schedule:Schedule": "EventBridge Scheduler invocations",
    "aws:cloudwatch/eventRule:EventRule": "EventBridge events",
    "aws:sns/topic:Topic": "SNS notifications",
}
NOT_INCLUDED = (
    "flow runs (their Fargate tasks and Dask clusters: `mlwf cost` prices one per hour)",
    "data transfer",
    "NAT gateway and interface endpoint data processing",
    "CloudWatch Logs ingestion",
    "KMS, Secrets Manager and SSM requests",
)


@dataclass(frozen=True)
class Item:
    """One resource's monthly cost: quantity x unit price (None: no price for it)."""

    urn: str
    type: str
    name: str
    rate: str
    quantity: float
    unit: str
    usd_unit: float | None

    @property
    def monthly(self) -> float | None:
        return None if self.usd_unit is None else self.quantity * self.usd_unit

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "monthly": self.monthly}


@dataclass
class StackCost:
    env: str
    stack: str
    items: list[Item] = field(default_factory=list)
    unpriced: list[str] = field(default_factory=list)  # "type name: why"
    usage: set[str] = field(default_factory=set)  # what its resources charge by use

    @property
    def monthly(self) -> float:
        return sum(i.monthly or 0.0 for i in self.items)

    def of(self, urn: str) -> float:
        """The monthly cost of one resource (0 for a free one)."""
        return sum(i.monthly or 0.0 for i in self.items if i.urn == urn)

    def to_json(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "stack": self.stack,
            "monthly_usd": round(self.monthly, 2),
            "items": [i.to_json() for i in self.items],
            "unpriced": self.unpriced,
            "usage_not_included": sorted(self.usage),
        }


Quantity = tuple[str, float, str]  # (rate, quantity per month, unit)
Pricer = Callable[[PlannedResource, "_Context"], list[Quantity]]


@dataclass
class _Context:
    settings: Settings
    by_arn: dict[str, PlannedResource]


def _hours(rate: str) -> Pricer:
    return lambda resource, context: [(rate, HOURS_PER_MONTH, "hours")]


def _monthly(rate: str, unit: str) -> Pricer:
    return lambda resource, context: [(rate, 1, unit)]


def _endpoint(resource: PlannedResource, context: _Context) -> list[Quantity]:
    kind = resource.inputs.get("vpcEndpointType", "Gateway")
    if kind == "Gateway":
        return []  # gateway endpoints (S3, DynamoDB) have no charge
    if kind != "Interface":
        raise _UnpricedError(f"{kind} endpoints are not in the price table")
    azs = len(resource.inputs.get("subnetIds") or [])
    return [("interface-endpoint-az-hour", azs * HOURS_PER_MONTH, f"AZ-hours ({azs} AZs)")]


def _service(resource: PlannedResource, context: _Context) -> list[Quantity]:
    task = context.by_arn.get(str(resource.inputs.get("taskDefinition", "")))
    if task is None:
        raise _UnpricedError("its task definition is not in the same stack")
    count = float(resource.inputs.get("desiredCount", 1))
    strategies = resource.inputs.get("capacityProviderStrategies") or []
    spot = any(s.get("capacityProvider") == "FARGATE_SPOT" for s in strategies)
    return fargate(float(task.inputs["cpu"]), float(task.inputs["memory"]), spot, count * HOURS_PER_MONTH)


def fargate(cpu_units: float, memory_mib: float, spot: bool, hours: float) -> list[Quantity]:
    kind = "fargate-spot" if spot else "fargate"
    vcpu, gb = cpu_units / 1024, memory_mib / 1024
    return [
        (f"{kind}-vcpu-hour", vcpu * hours, f"vCPU-hours ({vcpu:g} vCPU)"),
        (f"{kind}-gb-hour", gb * hours, f"GB-hours ({gb:g} GB)"),
    ]


def _log_group(resource: PlannedResource, context: _Context) -> list[Quantity]:
    days = int(resource.inputs.get("retentionInDays") or 0)
    if not days:
        raise _UnpricedError("its logs never expire, so storage grows without bound")
    per_day = context.settings.cost.log_gb_per_day
    return [("log-storage-gb-month", per_day * days, f"GB stored ({per_day:g} GB/day x {days} days)")]


def _flow_log(resource: PlannedResource, context: _Context) -> list[Quantity]:
    if resource.inputs.get("logDestinationType", "cloud-watch-logs") != "cloud-watch-logs":
        raise _UnpricedError("only flow logs to CloudWatch Logs are in the price table")
    per_day = context.settings.cost.flow_log_gb_per_day
    return [("vended-log-cwl-gb", per_day * DAYS_PER_MONTH, f"GB delivered ({per_day:g} GB/day)")]


def _parameter(resource: PlannedResource, context: _Context) -> list[Quantity]:
    if resource.inputs.get("tier", "Standard") == "Standard":
        return []
    return [("ssm-advanced-parameter-month", 1, "parameters")]


PRICED: dict[str, Pricer] = {
    "aws:ec2/natGateway:NatGateway": _hours("nat-gateway-hour"),
    "aws:ec2/eip:Eip": _hours("public-ipv4-hour"),
    "aws:ec2/vpcEndpoint:VpcEndpoint": _endpoint,
    "aws:ecs/service:Service": _service,
    "aws:kms/key:Key": _monthly("kms-key-month", "keys"),
    "aws:cloudwatch/metricAlarm:MetricAlarm": _monthly("cloudwatch-alarm-month", "alarms"),
    "aws:budgets/budget:Budget": lambda resource, context: [("budget-day", DAYS_PER_MONTH, "budget-days")],
    "aws:secretsmanager/secret:Secret": _monthly("secret-month", "secrets"),
    "aws:cloudwatch/logGroup:LogGroup": _log_group,
    "aws:ec2/flowLog:FlowLog": _flow_log,
    "aws:ssm/parameter:Parameter": _parameter,
}


class _UnpricedError(Exception):
    pass


def stack_cost(plan: StackPlan, settings: Settings, prices: Prices) -> StackCost:
    cost = StackCost(plan.env, plan.stack)
    context = _Context(settings, {r.arn: r for r in plan.resources if r.arn})
    for resource in plan.resources:
        if not resource.custom or resource.type.startswith("pulumi:") or resource.type in FREE:
            continue
        if resource.type in USAGE:
            cost.usage.add(USAGE[resource.type])
            continue
        pricer = PRICED.get(resource.type)
        if pricer is None:
            cost.unpriced.append(f"{resource.type} {resource.name}: not in the price table")
            continue
        try:
            quantities = pricer(resource, context)
        except _UnpricedError as exc:
            cost.unpriced.append(f"{resource.type} {resource.name}: {exc}")
            continue
        for rate, quantity, unit in quantities:
            price = prices.get((rate, settings.region))
            if price is None:
                cost.unpriced.append(f"{resource.type} {resource.name}: no {rate} price for {settings.region}")
            usd = None if price is None else price.usd
            cost.items.append(Item(resource.urn, resource.type, resource.name, rate, quantity, unit, usd))
    cost.items.sort(key=lambda i: (i.type, i.name, i.rate))
    return cost


@dataclass(frozen=True)
class ClusterPrice:
    """The hourly price of one flow run's compute: its own task, the Dask scheduler and workers."""

    env: str
    parts: list[tuple[str, float | None]]  # (what, USD per hour at n_workers)
    worker_usd_hour: float | None
    n_workers: int
    max_workers: int

    def at(self, workers: int) -> float | None:
        if self.worker_usd_hour is None or any(usd is None for _, usd in self.parts):
            return None
        base = sum(usd or 0.0 for what, usd in self.parts if not what.startswith("workers"))
        return base + workers * self.worker_usd_hour

    def to_json(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "parts": [{"what": what, "usd_per_hour": usd} for what, usd in self.parts],
            "n_workers": self.n_workers,
            "usd_per_hour_at_n_workers": self.at(self.n_workers),
            "max_workers": self.max_workers,
            "usd_per_hour_at_max_workers": self.at(self.max_workers),
        }


def cluster_price(settings: Settings, prices: Prices) -> ClusterPrice:
    dask, prefect = settings.dask, settings.prefect

    def hourly(cpu: int, memory: int, spot: bool) -> float | None:
        total = 0.0
        for rate, quantity, _ in fargate(cpu, memory, spot, 1):
            price = prices.get((rate, settings.region))
            if price is None:
                return None
            total += quantity * price.usd
        return total

    def size(cpu: int, memory: int, spot: bool) -> str:
        return f"{cpu / 1024:g} vCPU, {memory / 1024:g} GB, Fargate{' Spot' if spot else ''}"

    worker = hourly(dask.worker_cpu, dask.worker_memory_mib, dask.spot_workers)
    parts = [
        (
            f"flow-run task ({size(prefect.flow_run_cpu, prefect.flow_run_memory_mib, False)})",
            hourly(prefect.flow_run_cpu, prefect.flow_run_memory_mib, False),
        ),
        (
            f"scheduler ({size(dask.scheduler_cpu, dask.scheduler_memory_mib, False)})",  # never on Spot
            hourly(dask.scheduler_cpu, dask.scheduler_memory_mib, False),
        ),
        (
            f"workers ({dask.n_workers} x {size(dask.worker_cpu, dask.worker_memory_mib, dask.spot_workers)})",
            None if worker is None else dask.n_workers * worker,
        ),
    ]
    return ClusterPrice(settings.name, parts, worker, dask.n_workers, dask.max_workers)


def environment_costs(plans: Iterable[StackPlan], settings: Settings, prices: Prices) -> list[StackCost]:
    return [stack_cost(plan, settings, prices) for plan in plans if plan.env == settings.name]

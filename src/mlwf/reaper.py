"""Find and remove what a crashed flow run left behind: its Dask tasks still running in the
environment's Dask cluster, and its TLS secret. Only resources carrying every tag the platform
gives a run's resources (`mlwf.contract.RUN_TAGS`: platform, environment, flow run, creation
time), for this environment, older than the threshold, are touched. Runs register no task
definitions and create no clusters, and the reaper looks only at the Dask cluster: the
platform's own services (the Prefect worker, the reaper) run in a cluster of their own. Its
role may tag nothing, and run code may tag only the tasks it creates (``ecs:CreateAction``), so
no one can mark another's task for reaping."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from mlwf.contract import (
    CREATED_AT_TAG,
    ENVIRONMENT_TAG,
    FLOW_RUN_TAG,
    LEFTOVER_METRIC,
    PLATFORM,
    PLATFORM_TAG,
    REAPER_METRICS_NAMESPACE,
    dask_tls_secret_name,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Leftover:
    kind: str  # "task" or "secret"
    arn: str
    created_at: datetime
    flow_run: str
    cluster: str = ""

    def describe(self, now: datetime) -> str:
        age = now - self.created_at
        return f"{self.kind:<15} {self.arn} (flow run {self.flow_run}, {age.total_seconds() / 3600:.1f} h old)"


def _tags(items: list[dict[str, str]] | None) -> dict[str, str]:
    return {t.get("key", t.get("Key", "")): t.get("value", t.get("Value", "")) for t in items or []}


def _ours(tags: dict[str, str], environment: str) -> datetime | None:
    """The creation time of a resource one of this platform's runs created in ``environment``:
    every run tag present and right, else None."""
    if tags.get(PLATFORM_TAG) != PLATFORM or tags.get(ENVIRONMENT_TAG) != environment or not tags.get(FLOW_RUN_TAG):
        return None
    try:
        return datetime.strptime(tags[CREATED_AT_TAG], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except (KeyError, ValueError):
        return None


def _pages(client: Any, operation: str, key: str, **kwargs: Any) -> Iterator[Any]:
    for page in client.get_paginator(operation).paginate(**kwargs):
        yield from page[key]


def find_leftovers(
    ecs: Any,
    secrets: Any,
    environment: str,
    cluster_arn: str,
    name_prefix: str,
    older_than: timedelta,
    now: datetime,
) -> list[Leftover]:
    found: list[Leftover] = []
    task_arns = list(_pages(ecs, "list_tasks", "taskArns", cluster=cluster_arn, desiredStatus="RUNNING"))
    for start in range(0, len(task_arns), 100):
        tasks = ecs.describe_tasks(cluster=cluster_arn, tasks=task_arns[start : start + 100], include=["TAGS"])
        for task in tasks["tasks"]:
            tags = _tags(task.get("tags"))
            created = _ours(tags, environment)
            if created is not None and now - created >= older_than:
                found.append(Leftover("task", task["taskArn"], created, tags[FLOW_RUN_TAG], cluster_arn))
    prefix = dask_tls_secret_name(name_prefix, "")
    for secret in _pages(secrets, "list_secrets", "SecretList", Filters=[{"Key": "name", "Values": [prefix]}]):
        tags = _tags(secret.get("Tags"))
        created = _ours(tags, environment)
        if secret["Name"].startswith(prefix) and created is not None and now - created >= older_than:
            found.append(Leftover("secret", secret["ARN"], created, tags[FLOW_RUN_TAG]))
    order = {"task": 0, "secret": 1}  # stop the tasks before their certificates go
    return sorted(found, key=lambda item: (order[item.kind], item.arn))


def reap(ecs: Any, secrets: Any, leftovers: list[Leftover], dry_run: bool) -> list[Leftover]:
    """Stop or delete each leftover (nothing with ``dry_run``); returns what was done."""
    if dry_run:
        return []
    done = []
    for item in leftovers:
        if item.kind == "task":
            ecs.stop_task(cluster=item.cluster, task=item.arn, reason="mlwf reap: left behind by a crashed flow run")
        else:
            secrets.delete_secret(SecretId=item.arn, ForceDeleteWithoutRecovery=True)
        log.info("reaped %s %s", item.kind, item.arn)
        done.append(item)
    return done


def overdue_tasks(leftovers: list[Leftover], max_lifetime: timedelta, now: datetime) -> int:
    """How many leftover tasks are past the environment's maximum cluster lifetime (whatever
    threshold this run was given)."""
    return sum(1 for item in leftovers if item.kind == "task" and now - item.created_at >= max_lifetime)


def publish_findings(cloudwatch: Any, environment: str, overdue: int, now: datetime) -> None:
    """The metric the compute stack's alarms watch (`mlwf.stacks.alarms`): one datapoint per
    real run, zero included (no datapoint for hours means the reaper itself stopped)."""
    cloudwatch.put_metric_data(
        Namespace=REAPER_METRICS_NAMESPACE,
        MetricData=[
            {
                "MetricName": LEFTOVER_METRIC,
                "Dimensions": [{"Name": "Environment", "Value": environment}],
                "Timestamp": now,
                "Value": float(overdue),
                "Unit": "Count",
            }
        ],
    )

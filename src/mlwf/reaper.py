"""Find and remove what a crashed flow run left behind on ECS: running Dask tasks, their task
definitions, and clusters a run created. Only resources tagged by the platform for this
environment (`mlwf.compute.RunInfo.tags`) and older than the threshold are touched, so another
run's live cluster, the stacks' own resources and anything untagged are never at risk."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from mlwf.contract import CREATED_AT_TAG, ENVIRONMENT_TAG, FLOW_RUN_TAG, PLATFORM, PLATFORM_TAG

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Leftover:
    kind: str  # "task", "task-definition" or "cluster"
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
    """The creation time of a resource this platform's runs created in ``environment``."""
    if tags.get(PLATFORM_TAG) != PLATFORM or tags.get(ENVIRONMENT_TAG) != environment:
        return None
    try:
        return datetime.strptime(tags[CREATED_AT_TAG], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except (KeyError, ValueError):
        return None


def _pages(ecs: Any, operation: str, key: str, **kwargs: Any) -> Iterator[str]:
    for page in ecs.get_paginator(operation).paginate(**kwargs):
        yield from page[key]


def find_leftovers(ecs: Any, environment: str, older_than: timedelta, now: datetime) -> list[Leftover]:
    found: list[Leftover] = []
    cluster_arns = list(_pages(ecs, "list_clusters", "clusterArns"))
    for start in range(0, len(cluster_arns), 100):
        for cluster in ecs.describe_clusters(clusters=cluster_arns[start : start + 100], include=["TAGS"])["clusters"]:
            tags = _tags(cluster.get("tags"))
            created = _ours(tags, environment)
            if created is not None and FLOW_RUN_TAG in tags and now - created >= older_than:
                found.append(Leftover("cluster", cluster["clusterArn"], created, tags[FLOW_RUN_TAG]))
    for cluster_arn in cluster_arns:
        task_arns = list(_pages(ecs, "list_tasks", "taskArns", cluster=cluster_arn, desiredStatus="RUNNING"))
        for start in range(0, len(task_arns), 100):
            tasks = ecs.describe_tasks(cluster=cluster_arn, tasks=task_arns[start : start + 100], include=["TAGS"])
            for task in tasks["tasks"]:
                tags = _tags(task.get("tags"))
                created = _ours(tags, environment)
                if created is not None and now - created >= older_than:
                    found.append(Leftover("task", task["taskArn"], created, tags.get(FLOW_RUN_TAG, ""), cluster_arn))
    for arn in _pages(ecs, "list_task_definitions", "taskDefinitionArns", status="ACTIVE"):
        tags = _tags(ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"]).get("tags"))
        created = _ours(tags, environment)
        if created is not None and now - created >= older_than:
            found.append(Leftover("task-definition", arn, created, tags.get(FLOW_RUN_TAG, "")))
    order = {"task": 0, "task-definition": 1, "cluster": 2}  # stop tasks before removing what they run on
    return sorted(found, key=lambda item: (order[item.kind], item.arn))


def reap(ecs: Any, leftovers: list[Leftover], dry_run: bool) -> list[Leftover]:
    """Stop, deregister or delete each leftover (nothing with ``dry_run``); returns what was done."""
    done = []
    for item in leftovers:
        if dry_run:
            continue
        if item.kind == "task":
            ecs.stop_task(cluster=item.cluster, task=item.arn, reason="mlwf reap: left behind by a crashed flow run")
        elif item.kind == "task-definition":
            ecs.deregister_task_definition(taskDefinition=item.arn)
        else:
            ecs.delete_cluster(cluster=item.arn)
        log.info("reaped %s %s", item.kind, item.arn)
        done.append(item)
    return done

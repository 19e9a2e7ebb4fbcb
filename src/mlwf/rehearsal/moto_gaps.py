"""What moto 5.2.5 lacks for the rehearsal, added in this one place. Each patch says what
upstream would need; none changes what a client sends or receives beyond what AWS does.
"""

from __future__ import annotations

import types
from typing import Any

_applied = False


def apply() -> None:
    """Patch moto's classes (they survive moto's resets); idempotent."""
    global _applied
    if _applied:
        return
    _count_memory_set_at_task_level()
    _tasks_stay_in_the_status_they_are_given()
    _authorize_get_queue_url_on_the_queue()
    _authorize_head_bucket_as_list_bucket()
    _authorize_by_iam_prefix_not_signing_name()
    _applied = True


def _count_memory_set_at_task_level() -> None:
    """RunTask fails with HTTP 500 when a container sets no ``memory``/``memoryReservation``
    (only the task does, which Fargate allows): moto's resource accounting adds ``None``.
    Upstream: treat a missing container memory as 0 in `_calculate_task_resource_requirements`."""
    from moto.ecs import models

    original = models.EC2ContainerServiceBackend._calculate_task_resource_requirements

    def calculate(task_definition: Any) -> Any:
        keys = ("memory", "Memory", "memoryReservation", "MemoryReservation")
        containers = [
            cd if any(k in cd for k in keys) else {**cd, "memoryReservation": 0}
            for cd in task_definition.container_definitions
        ]
        return original(types.SimpleNamespace(container_definitions=containers))  # type: ignore[arg-type]

    models.EC2ContainerServiceBackend._calculate_task_resource_requirements = staticmethod(calculate)  # type: ignore[method-assign]


def _tasks_stay_in_the_status_they_are_given() -> None:
    """moto advances a task one status per DescribeTasks (RUNNING -> ... -> STOPPED) whether or
    not anything stopped it. Here the task runner sets each status from its process, so the
    automatic progression is switched off. Upstream: nothing (the state manager is the knob)."""
    from moto.moto_api import state_manager

    state_manager.set_transition("ecs::task", {"progression": "manual", "times": 10**12})


def _authorize_get_queue_url_on_the_queue() -> None:
    """AWS authorizes ``GetQueueUrl`` against the queue it names; moto reads only ``QueueUrl``
    to find the queue, so a policy on the queue's ARN is refused for GetQueueUrl (resource
    ``"*"``). Upstream: also read ``QueueName`` in `SQSResponse._get_queue_name`."""
    from moto.sqs.responses import SQSResponse

    original = SQSResponse._get_queue_name

    def queue_name(response: Any) -> str:
        try:
            named = response._get_param("QueueName")
        except (AttributeError, TypeError):
            named = None
        return str(named) if named and not response._get_param("QueueUrl") else original(response)

    SQSResponse._get_queue_name = queue_name  # type: ignore[method-assign,assignment]


def _authorize_head_bucket_as_list_bucket() -> None:
    """AWS authorizes ``HeadBucket`` as ``s3:ListBucket`` (there is no ``s3:HeadBucket``
    action); moto asks for ``s3:HeadBucket``, which no policy can grant. Upstream: map HEAD on a
    bucket to ListBucket in `moto.s3.responses.ACTION_MAP`."""
    from moto.s3 import responses

    responses.ACTION_MAP["BUCKET"]["HEAD"]["DEFAULT"] = "ListBucket"


# SigV4 signing names that are not the service's IAM prefix (AWS's Service Authorization Reference).
IAM_PREFIX_OF_SIGNING_NAME = {"monitoring": "cloudwatch"}


def _authorize_by_iam_prefix_not_signing_name() -> None:
    """moto names the action after the request's signing name (``monitoring:PutMetricData``),
    which no policy grants: AWS authorizes CloudWatch's actions as ``cloudwatch:...``.
    Upstream: map the credential scope's service to its IAM prefix in `IAMRequestBase`."""
    from moto.iam.access_control import IAMRequestBase

    original = IAMRequestBase.__init__

    def init(request: Any, *args: Any, **kwargs: Any) -> None:
        original(request, *args, **kwargs)
        service, _, action = request._action.partition(":")
        if service in IAM_PREFIX_OF_SIGNING_NAME:
            request._action = f"{IAM_PREFIX_OF_SIGNING_NAME[service]}:{action}"

    IAMRequestBase.__init__ = init  # type: ignore[method-assign,assignment]


def put_account_settings(ecs: Any) -> None:
    """``ListAccountSettings(taskLongArnFormat)`` returns nothing until the setting is put;
    in AWS it has an (enabled) default. dask-cloudprovider unpacks exactly one entry. Upstream:
    return AWS's defaults from `list_account_settings`."""
    ecs.put_account_setting(name="taskLongArnFormat", value="enabled")

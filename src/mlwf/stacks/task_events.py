"""ECS task state changes for the Prefect worker's observer: an EventBridge rule on "ECS Task
State Change" for the platform's cluster, delivering to an SQS queue (with a dead-letter queue)
that only that rule may write to. This is what ``prefect-aws ecs-worker deploy-events``
creates; without it the worker never learns that a flow-run task died (it stays "Running")."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from mlwf.contract import task_events_queue_name
from mlwf.settings import Settings

RETENTION_S = 7 * 24 * 3600
VISIBILITY_S = 300  # the observer keeps a message invisible for 300 s while it handles it
MAX_RECEIVES = 3


@dataclass(frozen=True)
class TaskEventsArgs:
    settings: Settings
    cluster_arn: pulumi.Input[str]


class TaskEvents(pulumi.ComponentResource):
    def __init__(self, name: str, args: TaskEventsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlwf:agent:TaskEvents", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        queue_name = task_events_queue_name(args.settings.name_prefix)
        dead_letters = aws.sqs.Queue(
            "task-events-dlq",
            name=f"{queue_name}-dlq",
            message_retention_seconds=14 * 24 * 3600,
            sqs_managed_sse_enabled=True,
            opts=child,
        )
        self.queue = aws.sqs.Queue(
            "task-events",
            name=queue_name,
            message_retention_seconds=RETENTION_S,
            visibility_timeout_seconds=VISIBILITY_S,
            sqs_managed_sse_enabled=True,
            redrive_policy=dead_letters.arn.apply(
                lambda arn: json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": MAX_RECEIVES})
            ),
            opts=child,
        )
        self.rule = aws.cloudwatch.EventRule(
            "task-events",
            name=f"{args.settings.name_prefix}-ecs-task-events",
            description="ECS task state changes of the platform's cluster, for the Prefect worker's observer",
            event_pattern=pulumi.Output.from_input(args.cluster_arn).apply(
                lambda cluster: json.dumps(
                    {
                        "source": ["aws.ecs"],
                        "detail-type": ["ECS Task State Change"],
                        "detail": {"clusterArn": [cluster]},
                    }
                )
            ),
            opts=child,
        )
        aws.sqs.QueuePolicy(
            "task-events",
            queue_url=self.queue.url,
            policy=pulumi.Output.all(self.queue.arn, self.rule.arn).apply(lambda values: _only_the_rule(*values)),
            opts=child,
        )
        aws.cloudwatch.EventTarget(
            "task-events", rule=self.rule.name, arn=self.queue.arn, target_id="observer-queue", opts=child
        )
        self.register_outputs({"queue": self.queue.name, "rule": self.rule.arn})


def _only_the_rule(queue_arn: str, rule_arn: str) -> str:
    """EventBridge may send to the queue, and only for this rule (confused-deputy guard)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "EventBridgeRuleOnly",
                    "Effect": "Allow",
                    "Principal": {"Service": "events.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": queue_arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
                }
            ],
        }
    )

"""The environment's AWS-side alerts: its monthly cost budget (from ``cost.monthly_budget_usd``)
and alarms on what the reaper publishes, both delivered to one SNS topic a person subscribes to.

The topic is encrypted with a key of its own. Neither AWS Budgets nor CloudWatch alarms can
publish to a topic under the AWS-managed ``alias/aws/sns`` key, and with a customer key each
needs the key policy to let it generate data keys: those grants, and the topic policy's
``sns:Publish``, are limited to this account's budgets and this environment's alarms
(``aws:SourceAccount``, ``aws:SourceArn``), as AWS documents against the confused deputy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from mlwf.contract import LEFTOVER_METRIC, REAPER_METRICS_NAMESPACE, alerts_topic_name
from mlwf.settings import Settings
from mlwf.stacks.keys import customer_key, key_policy

BUDGETS = "budgets.amazonaws.com"
CLOUDWATCH = "cloudwatch.amazonaws.com"
PUBLISH_KEY_ACTIONS = ["kms:GenerateDataKey*", "kms:Decrypt"]
BUDGET_WARNING_PERCENT = 80  # of the budget, actual spend
REAPER_PERIOD_S = 3600  # the reaper runs hourly (the compute component's schedule)
REAPER_SILENT_PERIODS = 3  # no report for three hours: the reaper itself is not running


@dataclass(frozen=True)
class AlarmsArgs:
    settings: Settings


def alarm_arns(settings: Settings) -> str:
    return f"arn:aws:cloudwatch:{settings.region}:{settings.account_id}:alarm:{settings.name_prefix}-*"


def budget_arns(settings: Settings) -> str:
    """The form AWS documents for Budgets' ``aws:SourceArn`` (the account's budgets)."""
    return f"arn:aws:budgets::{settings.account_id}:*"


def _publishers(settings: Settings) -> list[tuple[str, str, str]]:
    """(service principal, the ARNs it acts for, a statement ID) of what publishes to the topic."""
    return [(BUDGETS, budget_arns(settings), "Budgets"), (CLOUDWATCH, alarm_arns(settings), "Alarms")]


def _source(settings: Settings, arns: str) -> dict[str, Any]:
    return {"StringEquals": {"aws:SourceAccount": settings.account_id}, "ArnLike": {"aws:SourceArn": arns}}


def topic_key_policy(settings: Settings) -> str:
    """The account administers the key; only this account's budgets and this environment's
    alarms may use it (to publish to the topic)."""
    return key_policy(
        settings,
        *(
            {
                "Sid": f"PublishBy{sid}",
                "Effect": "Allow",
                "Principal": {"Service": service},
                "Action": PUBLISH_KEY_ACTIONS,
                "Resource": "*",
                "Condition": _source(settings, arns),
            }
            for service, arns, sid in _publishers(settings)
        ),
    )


def topic_policy(settings: Settings, topic_arn: str) -> str:
    """Budgets and alarms of this environment may publish; nothing reaches it without TLS."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                *(
                    {
                        "Sid": f"PublishBy{sid}",
                        "Effect": "Allow",
                        "Principal": {"Service": service},
                        "Action": "sns:Publish",
                        "Resource": topic_arn,
                        "Condition": _source(settings, arns),
                    }
                    for service, arns, sid in _publishers(settings)
                ),
                {
                    "Sid": "TLSOnly",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "sns:Publish",
                    "Resource": topic_arn,
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                },
            ],
        }
    )


class EnvironmentAlarms(pulumi.ComponentResource):
    """The alerts topic (and its key and policy), the budget and the reaper's alarms."""

    def __init__(self, name: str, args: AlarmsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlwf:compute:EnvironmentAlarms", name, None, opts)
        settings = args.settings
        child = pulumi.ResourceOptions(parent=self)
        self.key = customer_key("alerts", settings, "alerts topic", topic_key_policy(settings), child)
        self.topic = aws.sns.Topic(
            "alerts", name=alerts_topic_name(settings.name_prefix), kms_master_key_id=self.key.arn, opts=child
        )
        policy = aws.sns.TopicPolicy(
            "alerts", arn=self.topic.arn, policy=self.topic.arn.apply(lambda a: topic_policy(settings, a)), opts=child
        )
        # what publishes is created once it may: the topic policy in place
        child = pulumi.ResourceOptions(parent=self, depends_on=[policy])
        self.budget = self._budget(settings, child)
        dimensions = {"Environment": settings.name}
        on_the_reaper_metric: dict[str, Any] = {  # what both alarms share
            "namespace": REAPER_METRICS_NAMESPACE,
            "metric_name": LEFTOVER_METRIC,
            "dimensions": dimensions,
            "evaluation_periods": 1,
            "alarm_actions": [self.topic.arn],
            "opts": child,
        }
        self.leftovers = aws.cloudwatch.MetricAlarm(
            "reaper-leftovers",
            name=f"{settings.name_prefix}-reaper-leftovers",
            alarm_description=(
                f"the reaper found tasks older than {settings.dask.max_lifetime_minutes} min "
                f"(dask.max_lifetime_minutes): flow runs crashed and left clusters behind (it stops them)"
            ),
            statistic="Maximum",
            period=REAPER_PERIOD_S,
            threshold=0,
            comparison_operator="GreaterThanThreshold",
            treat_missing_data="notBreaching",
            **on_the_reaper_metric,
        )
        self.silent = aws.cloudwatch.MetricAlarm(
            "reaper-silent",
            name=f"{settings.name_prefix}-reaper-silent",
            alarm_description=f"the reaper has not reported for {REAPER_SILENT_PERIODS} hours: is it scheduled?",
            statistic="SampleCount",
            period=REAPER_PERIOD_S * REAPER_SILENT_PERIODS,
            threshold=1,
            comparison_operator="LessThanThreshold",
            treat_missing_data="breaching",
            **on_the_reaper_metric,
        )
        self.register_outputs({"topic_arn": self.topic.arn})

    def _budget(self, settings: Settings, child: pulumi.ResourceOptions) -> aws.budgets.Budget | None:
        """The fixed-cost budget as an AWS Budget on the environment's cost tag: warn at 80% of
        actual spend and when the month's forecast exceeds it."""
        amount = settings.cost.monthly_budget_usd
        if amount is None:
            return None

        def notify(kind: str, percent: int) -> aws.budgets.BudgetNotificationArgs:
            return aws.budgets.BudgetNotificationArgs(
                comparison_operator="GREATER_THAN",
                notification_type=kind,
                threshold=percent,
                threshold_type="PERCENTAGE",
                subscriber_sns_topic_arns=[self.topic.arn],
            )

        return aws.budgets.Budget(
            "monthly",
            name=f"{settings.name_prefix}-monthly",
            budget_type="COST",
            limit_amount=f"{amount:.2f}",
            limit_unit="USD",
            time_unit="MONTHLY",
            cost_filters=[
                aws.budgets.BudgetCostFilterArgs(name="TagKeyValue", values=[f"user:Environment${settings.name}"])
            ],
            notifications=[notify("ACTUAL", BUDGET_WARNING_PERCENT), notify("FORECASTED", 100)],
            opts=child,
        )

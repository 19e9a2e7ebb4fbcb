"""Customer-managed KMS keys, one per purpose (logs, data, the API key's secret), each with an
explicit key policy that keeps administering the key apart from using it: the account's IAM
administers it (and only that), and only named services or log groups of this environment use it.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws

from mlwf.settings import Settings

ADMIN_ACTIONS = [
    "kms:Create*",
    "kms:Describe*",
    "kms:Enable*",
    "kms:List*",
    "kms:Put*",
    "kms:Update*",
    "kms:Revoke*",
    "kms:Disable*",
    "kms:Get*",
    "kms:Delete*",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion",
    "kms:RotateKeyOnDemand",
]
USE_ACTIONS = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]


def key_policy(settings: Settings, *use: dict[str, Any]) -> str:
    """Administration by the account (through IAM), use as the ``use`` statements allow."""
    account = f"arn:aws:iam::{settings.account_id}:root"
    administer = {
        "Sid": "Administration",
        "Effect": "Allow",
        "Principal": {"AWS": account},
        "Action": ADMIN_ACTIONS,
        "Resource": "*",
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [administer, *use]})


def use_through(settings: Settings, *services: str) -> dict[str, Any]:
    """This account's principals (their IAM policies decide which) may use the key, and only
    through these AWS services (``s3``, ``ecr``, ``secretsmanager``)."""
    return {
        "Sid": "UseThrough" + "And".join(s.capitalize() for s in services),
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{settings.account_id}:root"},
        "Action": [*USE_ACTIONS, "kms:CreateGrant"],
        "Resource": "*",
        "Condition": {
            "StringEquals": {
                "kms:CallerAccount": settings.account_id,
                "kms:ViaService": [f"{s}.{settings.region}.amazonaws.com" for s in services],
            }
        },
    }


def use_by_log_groups(settings: Settings) -> dict[str, Any]:
    """CloudWatch Logs may use the key for this environment's log groups only."""
    region, account = settings.region, settings.account_id
    groups = f"arn:aws:logs:{region}:{account}:log-group:/mlwf/{settings.name}/*"
    return {
        "Sid": "UseByThisEnvironmentsLogGroups",
        "Effect": "Allow",
        "Principal": {"Service": f"logs.{region}.amazonaws.com"},
        "Action": USE_ACTIONS,
        "Resource": "*",
        "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": groups}},
    }


def customer_key(
    name: str, settings: Settings, description: str, policy: str, opts: pulumi.ResourceOptions
) -> aws.kms.Key:
    """A rotating symmetric key with ``policy``, and its alias ``alias/<prefix>-<name>``."""
    key = aws.kms.Key(
        name,
        description=f"{settings.name_prefix} {description}",
        enable_key_rotation=True,
        deletion_window_in_days=30 if settings.deletion_protection else 7,
        policy=policy,
        opts=opts,
    )
    aws.kms.Alias(name, name=f"alias/{settings.name_prefix}-{name}", target_key_id=key.key_id, opts=opts)
    return key

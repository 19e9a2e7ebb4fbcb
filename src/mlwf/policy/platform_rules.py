"""Logs, KMS, ECR and cost-tag guardrails."""

from __future__ import annotations

import importlib
import inspect
from functools import lru_cache

from pulumi_policy import PolicyConfigSchema, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from mlwf.policy.helpers import config_value, effective_tags

DEFAULT_REQUIRED_TAGS = ["CostCenter", "Owner", "Project"]


def _retention(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type == "aws:cloudwatch/logGroup:LogGroup" and not args.props.get("retentionInDays"):
        report_violation(f"log group '{args.name}' keeps logs forever (no retentionInDays)")


log_group_retention = ResourceValidationPolicy(
    name="log-group-retention",
    description="CloudWatch log groups must have a retention period.",
    validate=_retention,
)


def _rotation(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != "aws:kms/key:Key":
        return
    symmetric = args.props.get("customerMasterKeySpec", "SYMMETRIC_DEFAULT") == "SYMMETRIC_DEFAULT"
    if symmetric and args.props.get("enableKeyRotation") is not True:
        report_violation(f"KMS key '{args.name}' does not rotate")


kms_key_rotation = ResourceValidationPolicy(
    name="kms-key-rotation",
    description="Symmetric KMS keys must have automatic rotation enabled.",
    validate=_rotation,
)


def _immutable(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type == "aws:ecr/repository:Repository" and args.props.get("imageTagMutability") != "IMMUTABLE":
        report_violation(f"ECR repository '{args.name}' allows tags to be overwritten")


ecr_immutable_tags = ResourceValidationPolicy(
    name="ecr-immutable-tags",
    description="ECR repositories must have immutable image tags.",
    validate=_immutable,
)


def _scan(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type == "aws:ecr/repository:Repository":
        scanning = args.props.get("imageScanningConfiguration") or {}
        if scanning.get("scanOnPush") is not True:
            report_violation(f"ECR repository '{args.name}' does not scan images on push")


ecr_scan_on_push = ResourceValidationPolicy(
    name="ecr-scan-on-push",
    description="ECR repositories must scan images on push.",
    validate=_scan,
)


@lru_cache(maxsize=512)
def is_taggable(resource_type: str) -> bool:
    """Does this pulumi-aws resource take ``tags``? Read from the SDK's own class signature."""
    parts = resource_type.split(":")
    if len(parts) != 3 or parts[0] != "aws":
        return False
    module = parts[1].split("/")[0]
    try:
        cls = getattr(importlib.import_module(f"pulumi_aws.{module}"), parts[2])
        return "tags" in inspect.signature(cls._internal_init).parameters
    except (ImportError, AttributeError, ValueError, TypeError):
        return False


def _cost_tags(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if not is_taggable(args.resource_type):
        return
    required = config_value(args.get_config(), "requiredTags", DEFAULT_REQUIRED_TAGS)
    provider_props = args.provider.props if args.provider is not None else None
    tags = effective_tags(args.props, provider_props)
    missing = [t for t in required if not tags.get(t)]
    if missing:
        report_violation(f"'{args.name}' is missing the cost tag(s) {', '.join(missing)}")


required_cost_tags = ResourceValidationPolicy(
    name="required-cost-tags",
    description="Every taggable resource must carry the cost tags (its own tags or the provider's default tags).",
    validate=_cost_tags,
    config_schema=PolicyConfigSchema(properties={"requiredTags": {"type": "array", "items": {"type": "string"}}}),
)

POLICIES = [log_group_retention, kms_key_rotation, ecr_immutable_tags, ecr_scan_on_push, required_cost_tags]

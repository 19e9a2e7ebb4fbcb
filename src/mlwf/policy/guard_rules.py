"""Ports of the AWS Guard pack (pulumi/pulumi-policy-aws, TypeScript) for resources this
platform creates or users commonly add; the rules that call AWS APIs are left out."""

from __future__ import annotations

from pulumi_policy import PolicyConfigSchema, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from mlwf.policy.helpers import as_list, config_value

LISTENER_TYPES = ("aws:lb/listener:Listener", "aws:alb/listener:Listener")
LOAD_BALANCER_TYPES = ("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer")


def _ebs(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type == "aws:ebs/volume:Volume" and args.props.get("encrypted") is not True:
        report_violation(f"EBS volume '{args.name}' is not encrypted")
    if args.resource_type == "aws:ec2/instance:Instance":
        for device in as_list(args.props.get("ebsBlockDevices")):
            if device.get("encrypted") is not True:
                report_violation(f"instance '{args.name}' has an unencrypted EBS block device")


ebs_encrypted = ResourceValidationPolicy(
    name="ebs-encrypted",
    description="EBS volumes must be encrypted (AWS Guard: ec2-volume-inuse-check / encrypted-volumes).",
    validate=_ebs,
)


def _rds_encrypted(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    database = args.resource_type in ("aws:rds/instance:Instance", "aws:rds/cluster:Cluster")
    if database and args.props.get("storageEncrypted") is not True:
        report_violation(f"database '{args.name}' storage is not encrypted")


rds_storage_encrypted = ResourceValidationPolicy(
    name="rds-storage-encrypted",
    description="RDS instances and clusters must encrypt their storage (AWS Guard: rds-storage-encrypted).",
    validate=_rds_encrypted,
)


def _rds_public(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type == "aws:rds/instance:Instance" and args.props.get("publiclyAccessible") is True:
        report_violation(f"database '{args.name}' is publicly accessible")


rds_not_public = ResourceValidationPolicy(
    name="rds-not-public",
    description="RDS instances must not be publicly accessible (AWS Guard: rds-instance-public-access-check).",
    validate=_rds_public,
)


def _https_redirect(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type not in LISTENER_TYPES or args.props.get("protocol") != "HTTP":
        return
    for action in as_list(args.props.get("defaultActions")):
        redirect = action.get("redirect") or {}
        if action.get("type") == "redirect" and redirect.get("protocol") == "HTTPS":
            return
    report_violation(f"HTTP listener '{args.name}' does not redirect to HTTPS")


alb_http_redirects_to_https = ResourceValidationPolicy(
    name="alb-http-redirects-to-https",
    description="Load balancer HTTP listeners must redirect to HTTPS (AWS Guard: alb-http-to-https-redirection).",
    validate=_https_redirect,
)


def _deletion_protection(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type not in LOAD_BALANCER_TYPES:
        return
    if config_value(args.get_config(), "required", True) and args.props.get("enableDeletionProtection") is not True:
        report_violation(f"load balancer '{args.name}' has no deletion protection")


elb_deletion_protection = ResourceValidationPolicy(
    name="elb-deletion-protection",
    description="Load balancers must have deletion protection (AWS Guard: elb-deletion-protection-enabled).",
    validate=_deletion_protection,
    config_schema=PolicyConfigSchema(properties={"required": {"type": "boolean", "default": True}}),
)


def _alb_logging(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type in LOAD_BALANCER_TYPES:
        logs = args.props.get("accessLogs") or {}
        if logs.get("enabled") is not True:
            report_violation(f"load balancer '{args.name}' does not write access logs")


elb_access_logs = ResourceValidationPolicy(
    name="elb-access-logs",
    description="Load balancers must write access logs (AWS Guard: elb-logging-enabled).",
    validate=_alb_logging,
)

POLICIES = [
    ebs_encrypted,
    rds_storage_encrypted,
    rds_not_public,
    alb_http_redirects_to_https,
    elb_deletion_protection,
    elb_access_logs,
]

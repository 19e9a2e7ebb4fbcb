"""S3 guardrails. In pulumi-aws v7 a bucket's encryption, public access block, policy and
versioning are separate resources, so most of these are stack-level checks that pair each
bucket with the resources that depend on it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pulumi_policy import (
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from mlwf.policy.helpers import BUCKET, as_list, config_value, statements

PUBLIC_ACLS = ("public-read", "public-read-write", "authenticated-read")
ACCESS_BLOCK_FIELDS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")


def _companions(resources: list[PolicyResource], type_: str) -> dict[str, list[PolicyResource]]:
    """bucket URN -> the resources of ``type_`` that depend on it."""
    out: dict[str, list[PolicyResource]] = {}
    for resource in resources:
        if resource.resource_type == type_:
            for dependency in resource.dependencies:
                if dependency.resource_type == BUCKET:
                    out.setdefault(dependency.urn, []).append(resource)
    return out


def _buckets_need(
    args: StackValidationArgs,
    report_violation: ReportViolation,
    type_: str,
    ok: Callable[[Mapping[str, Any]], bool],
    missing: str,
    inline: str | None = None,
) -> None:
    """Report each bucket that no ``type_`` resource depending on it satisfies (nor, with
    ``inline``, the bucket's own property of that name)."""
    companions = _companions(list(args.resources), type_)
    for bucket in (r for r in args.resources if r.resource_type == BUCKET):
        candidates = [c.props for c in companions.get(bucket.urn, [])]
        if inline is not None and bucket.props.get(inline):
            candidates.append(bucket.props[inline])
        if not any(ok(props) for props in candidates):
            report_violation(f"S3 bucket '{bucket.name}' {missing}", bucket.urn)


def _encrypted(props: Mapping[str, Any]) -> bool:
    for rule in as_list(props.get("rules")) + as_list(props.get("rule")):  # the bucket's own: one `rule`
        default = rule.get("applyServerSideEncryptionByDefault") or {}
        if default.get("sseAlgorithm") in ("aws:kms", "aws:kms:dsse", "AES256"):
            return True
    return False


def _blocked(props: Mapping[str, Any]) -> bool:
    return all(props.get(field) is True for field in ACCESS_BLOCK_FIELDS)


def _tls_only(props: Mapping[str, Any]) -> bool:
    for st in statements(props.get("policy")):
        condition = st.get("Condition") or {}
        secure = (condition.get("Bool") or {}).get("aws:SecureTransport")
        everyone = st.get("Principal") in ("*", {"AWS": "*"})  # a deny for some principals lets others in
        if st.get("Effect") == "Deny" and everyone and str(secure).lower() == "false":
            return True
    return False


def _versioned(props: Mapping[str, Any]) -> bool:
    return (props.get("versioningConfiguration") or {}).get("status") == "Enabled"


s3_bucket_encrypted = StackValidationPolicy(
    name="s3-bucket-encrypted",
    description="S3 buckets must be encrypted at rest (SSE-KMS or SSE-S3).",
    validate=lambda args, report: _buckets_need(
        args,
        report,
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        _encrypted,
        "has no server-side encryption configuration",
        inline="serverSideEncryptionConfiguration",
    ),
)

s3_public_access_blocked = StackValidationPolicy(
    name="s3-public-access-blocked",
    description="S3 buckets must block all public access (all four public access block settings).",
    validate=lambda args, report: _buckets_need(
        args,
        report,
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        _blocked,
        "does not block all public access",
    ),
)

s3_tls_only = StackValidationPolicy(
    name="s3-tls-only",
    description="S3 buckets must deny every principal's requests that do not use TLS (aws:SecureTransport).",
    validate=lambda args, report: _buckets_need(
        args, report, "aws:s3/bucketPolicy:BucketPolicy", _tls_only, "has no policy denying non-TLS access"
    ),
)


def _versioning_required(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    if not config_value(args.get_config(), "required", False):
        return
    _buckets_need(args, report_violation, "aws:s3/bucketVersioning:BucketVersioning", _versioned, "is not versioned")


s3_versioning = StackValidationPolicy(
    name="s3-versioning",
    description="S3 buckets must be versioned where the environment requires it.",
    validate=_versioning_required,
    config_schema=PolicyConfigSchema(properties={"required": {"type": "boolean", "default": False}}),
)


def _no_public_access(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    props = args.props
    acl_types = (BUCKET, "aws:s3/bucketAcl:BucketAcl", "aws:s3/bucketAclV2:BucketAclV2")
    if args.resource_type in acl_types and props.get("acl") in PUBLIC_ACLS:
        report_violation(f"'{args.name}' grants the public ACL '{props.get('acl')}'")
    if args.resource_type == "aws:s3/bucketPolicy:BucketPolicy":
        for st in statements(props.get("policy")):
            principal = st.get("Principal")
            everyone = principal == "*" or (isinstance(principal, Mapping) and "*" in as_list(principal.get("AWS")))
            if st.get("Effect") == "Allow" and everyone and not st.get("Condition"):
                report_violation(f"bucket policy '{args.name}' allows access to everyone ('Principal: *')")


s3_no_public_acl_or_policy = ResourceValidationPolicy(
    name="s3-no-public-acl-or-policy",
    description="S3 buckets must not be made public by an ACL or a bucket policy.",
    validate=_no_public_access,
)

POLICIES = [s3_bucket_encrypted, s3_public_access_blocked, s3_tls_only, s3_versioning, s3_no_public_acl_or_policy]

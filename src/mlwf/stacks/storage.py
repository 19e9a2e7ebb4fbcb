"""The storage stack: a KMS key with rotation, the data bucket (one bucket, a prefix per
workload's dataset: flows address them under one data root and IAM grants exactly the prefixes
the workloads declare), and the ECR repository of the flow/Dask image.

One bucket rather than one per zone: every prefix has the same encryption, public-access and TLS
rules, lifecycle rules already filter by prefix, and the task roles are scoped per prefix anyway.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from mlwf.settings import Settings
from mlwf.stacks.context import StackContext
from mlwf.stacks.keys import customer_key, key_policy, use_through

KEEP_IMAGES = 30


@dataclass(frozen=True)
class DataLakeArgs:
    settings: Settings
    bucket_name: str


class DataLake(pulumi.ComponentResource):
    def __init__(self, name: str, args: DataLakeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlwf:storage:DataLake", name, None, opts)
        self._settings = args.settings
        self._child = pulumi.ResourceOptions(parent=self)
        settings = args.settings
        # Used through S3 (the data) and ECR (the image) only; administered by the account's IAM.
        self.key = customer_key(
            "data", settings, "data at rest", key_policy(settings, use_through(settings, "s3", "ecr")), self._child
        )
        self.bucket = aws.s3.Bucket(
            "data",
            bucket=args.bucket_name,
            force_destroy=not settings.deletion_protection,
            opts=self._child.merge(pulumi.ResourceOptions(protect=settings.deletion_protection)),
        )
        self._secure_bucket("data", self.bucket, self.key.arn, [])
        self._create_lifecycle()
        if settings.storage.access_logs:
            self._log_access(args.bucket_name)
        self.repository = self._create_repository()
        self.register_outputs(
            {"bucket": self.bucket.bucket, "key_arn": self.key.arn, "repository": self.repository.repository_url}
        )

    def _secure_bucket(
        self,
        name: str,
        bucket: aws.s3.Bucket,
        kms_key_arn: pulumi.Input[str] | None,
        grants: list[pulumi.Input[dict[str, Any]]],
    ) -> None:
        """No ACLs, no public access, encrypted (SSE-KMS with the key, else SSE-S3), versioned as
        the environment says, TLS only (plus ``grants``, statements of the bucket policy)."""
        aws.s3.BucketOwnershipControls(
            name,
            bucket=bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),  # no ACLs
            opts=self._child,
        )
        aws.s3.BucketPublicAccessBlock(
            name,
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=self._child,
        )
        default = aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
            sse_algorithm="aws:kms" if kms_key_arn is not None else "AES256", kms_master_key_id=kms_key_arn
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            name,
            bucket=bucket.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=default, bucket_key_enabled=kms_key_arn is not None
                )
            ],
            opts=self._child,
        )
        aws.s3.BucketVersioning(
            name,
            bucket=bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(
                status="Enabled" if self._settings.storage.versioning else "Suspended"
            ),
            opts=self._child,
        )
        aws.s3.BucketPolicy(
            name,
            bucket=bucket.id,
            policy=pulumi.Output.all(bucket.arn, grants).apply(lambda values: tls_only_policy(*values)),
            opts=self._child,
        )

    def _log_access(self, data_bucket_name: str) -> None:
        """Server access logs of the data bucket (FSBP S3.9) in a bucket of their own: SSE-S3
        (S3 cannot deliver access logs into a KMS-encrypted bucket), written only by S3's log
        delivery for this account's data bucket, kept as long as the environment keeps logs."""
        settings = self._settings
        logs = aws.s3.Bucket(
            "access-logs",
            bucket=f"{settings.name_prefix}-access-logs-{settings.account_id}",
            force_destroy=not settings.deletion_protection,
            opts=self._child,
        )
        delivery = logs.arn.apply(
            lambda arn: {
                "Sid": "S3LogDeliveryForTheDataBucket",
                "Effect": "Allow",
                "Principal": {"Service": "logging.s3.amazonaws.com"},
                "Action": "s3:PutObject",
                "Resource": f"{arn}/*",
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": settings.account_id},
                    "ArnLike": {"aws:SourceArn": f"arn:aws:s3:::{data_bucket_name}"},
                },
            }
        )
        self._secure_bucket("access-logs", logs, None, [delivery])
        aws.s3.BucketLifecycleConfiguration(
            "access-logs",
            bucket=logs.id,
            rules=[
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="expire-access-logs",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=settings.log_retention_days),
                    noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                        noncurrent_days=1
                    ),
                    abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                        days_after_initiation=7
                    ),
                )
            ],
            opts=self._child,
        )
        aws.s3.BucketLogging(
            "data", bucket=self.bucket.id, target_bucket=logs.id, target_prefix="data/", opts=self._child
        )

    def _create_lifecycle(self) -> None:
        storage = self._settings.storage
        rules = [
            aws.s3.BucketLifecycleConfigurationRuleArgs(
                id="abort-incomplete-uploads",
                status="Enabled",
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                    days_after_initiation=7
                ),
                noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                    noncurrent_days=storage.noncurrent_version_expiry_days
                ),
            )
        ]
        if storage.raw_transition_to_ia_days is not None:
            rules.append(
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="raw-to-infrequent-access",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix="raw/"),
                    transitions=[
                        aws.s3.BucketLifecycleConfigurationRuleTransitionArgs(
                            days=storage.raw_transition_to_ia_days, storage_class="STANDARD_IA"
                        )
                    ],
                )
            )
        if storage.scores_expiry_days is not None:
            rules.append(
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="expire-scores",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix="scores/"),
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=storage.scores_expiry_days),
                )
            )
        aws.s3.BucketLifecycleConfiguration("data", bucket=self.bucket.id, rules=rules, opts=self._child)

    def _create_repository(self) -> aws.ecr.Repository:
        repository = aws.ecr.Repository(
            "flows",
            name=self._settings.image.repository,
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(scan_on_push=True),
            encryption_configurations=[
                aws.ecr.RepositoryEncryptionConfigurationArgs(encryption_type="KMS", kms_key=self.key.arn)
            ],
            force_delete=not self._settings.deletion_protection,
            opts=self._child,
        )
        aws.ecr.LifecyclePolicy(
            "flows",
            repository=repository.name,
            policy=json.dumps(
                {
                    "rules": [
                        {
                            "rulePriority": 1,
                            "description": f"keep the last {KEEP_IMAGES} images",
                            "selection": {
                                "tagStatus": "any",
                                "countType": "imageCountMoreThan",
                                "countNumber": KEEP_IMAGES,
                            },
                            "action": {"type": "expire"},
                        }
                    ]
                }
            ),
            opts=self._child,
        )
        return repository


def tls_only_policy(bucket_arn: str, grants: list[dict[str, Any]] | None = None) -> str:
    """Deny every request to the bucket that does not use TLS (plus ``grants``)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [bucket_arn, f"{bucket_arn}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                },
                *(grants or []),
            ],
        }
    )


def storage_program(ctx: StackContext) -> dict[str, Any]:
    """Stack program: the environment's data bucket, key and image repository."""
    settings = ctx.settings
    lake = DataLake("storage", DataLakeArgs(settings, f"{settings.name_prefix}-data-{settings.account_id}"), ctx.opts)
    return {
        "data_bucket": lake.bucket.bucket,
        "data_bucket_arn": lake.bucket.arn,
        "kms_key_arn": lake.key.arn,
        "repository_url": lake.repository.repository_url,
        "repository_arn": lake.repository.arn,
    }

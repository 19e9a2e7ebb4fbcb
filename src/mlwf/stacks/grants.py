"""What the compute stack's roles may do, as IAM statements built from the workloads'
declarations and the resources' ARNs. Pure functions (tests and the policy pack read them).

The stage table (docs/security.md): both task roles read every declared prefix; the Dask role
writes (never deletes) where a workload declares its cluster writes (storm: the curated Parquet
and the scores); the flow-run role writes and deletes where its workloads write, because
``publish`` removes a failed attempt's folder and prunes stale ones, and storm's ingest replaces
a year NCEI republished and moves bad files to quarantine. Both also under ``smoke/`` for what
they write (smoke runs write apart from the data).
"""

from __future__ import annotations

from typing import Any

import pulumi

from mlwf.contract import SMOKE_ROOT
from mlwf.stacks.iam import ECS_TASKS, statement
from mlwf.workloads import DataAccess


def _with_smoke(prefixes: tuple[str, ...] | list[str]) -> list[str]:
    return [*prefixes, *(f"{SMOKE_ROOT}/{p}" for p in prefixes)]


def _objects(bucket_arn: pulumi.Input[str], prefixes: list[str]) -> list[pulumi.Output[str]]:
    # the prefix itself too: s3fs asks whether "<prefix>" is an object before listing under it
    return [pulumi.Output.concat(bucket_arn, f"/{p}{tail}") for p in prefixes for tail in ("", "/*")]


def data(
    bucket_arn: pulumi.Input[str], kms_key_arn: pulumi.Input[str], access: DataAccess, role: str
) -> list[dict[str, Any]]:
    """S3 and KMS statements of ``role`` ("dask" or "flow"), per the stage table."""
    writes = _with_smoke(access.writes)
    readable = [*writes, *access.reads]
    statements = [
        statement(
            ["s3:ListBucket"], [bucket_arn], {"StringLike": {"s3:prefix": [*readable, *(f"{p}/*" for p in readable)]}}
        ),
        # s3fs (under dask's to_parquet) asks whether the bucket exists before writing into it:
        # HeadBucket (s3:ListBucket without a prefix: refused above), then GetBucketLocation;
        # if both fail it tries CreateBucket.
        statement(["s3:GetBucketLocation"], [bucket_arn]),
        statement(["s3:GetObject"], _objects(bucket_arn, readable)),
        statement(["kms:Decrypt", "kms:GenerateDataKey"], [kms_key_arn]),
    ]
    if role == "flow":
        statements.append(
            statement(["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"], _objects(bucket_arn, writes))
        )
    elif access.cluster_writes:
        puts = _with_smoke(access.cluster_writes)
        statements.append(statement(["s3:PutObject", "s3:AbortMultipartUpload"], _objects(bucket_arn, puts)))
    return statements


def run_cluster(
    region: str,
    account: str,
    cluster_arn: pulumi.Input[str],
    cluster_name: pulumi.Input[str],
    families: list[str],
    passed_roles: list[pulumi.Input[str]],
    log_group_arn: pulumi.Input[str],
    runtime_parameter: str,
    tls_secrets: str,
) -> list[dict[str, Any]]:
    """What a flow run needs to start, watch and stop its own Dask cluster on the Dask cluster:
    exactly the calls dask-cloudprovider's FargateCluster makes when everything (cluster, task
    definitions, roles, log group, network) is pre-created, and its per-run TLS secret."""
    in_cluster = {"ArnEquals": {"ecs:cluster": cluster_arn}}
    tasks = pulumi.Output.concat(f"arn:aws:ecs:{region}:{account}:task/", cluster_name, "/*")
    definitions = [f"arn:aws:ecs:{region}:{account}:task-definition/{family}:*" for family in families]
    return [
        statement(["ecs:DescribeClusters"], [cluster_arn]),
        statement(["ecs:RunTask"], definitions, in_cluster),
        statement(["ecs:DescribeTasks", "ecs:StopTask"], [tasks], in_cluster),
        # RunTask with tags needs ecs:TagResource: allowed only while RunTask creates the task,
        # so run code cannot tag (and so mark for the reaper) a task it did not start.
        statement(["ecs:TagResource"], [tasks], {"StringEquals": {"ecs:CreateAction": "RunTask"}}),
        # Neither call has a resource-level form in IAM (FargateCluster reads the account's
        # taskLongArnFormat setting before tagging, and each task's ENI for its address).
        statement(["ecs:ListAccountSettings", "ec2:DescribeNetworkInterfaces"], ["*"]),
        statement(["iam:PassRole"], passed_roles, {"StringEquals": {"iam:PassedToService": ECS_TASKS}}),
        statement(["logs:GetLogEvents"], [pulumi.Output.concat(log_group_arn, ":*")]),  # cluster.logs()
        statement(["ssm:GetParameter"], [f"arn:aws:ssm:{region}:{account}:parameter{runtime_parameter}"]),
        statement(
            ["secretsmanager:CreateSecret", "secretsmanager:TagResource", "secretsmanager:DeleteSecret"], [tls_secrets]
        ),
    ]


def reap(
    region: str,
    account: str,
    cluster_arn: pulumi.Input[str],
    cluster_name: pulumi.Input[str],
    runtime_parameter: str,
    tls_secrets: str,
) -> list[dict[str, Any]]:
    """The reaper: list, inspect and stop tasks in the Dask cluster only (never the platform's
    services, which run in a cluster of their own), delete per-run TLS secrets, read the runtime."""
    in_cluster = {"ArnEquals": {"ecs:cluster": cluster_arn}}
    tasks = pulumi.Output.concat(f"arn:aws:ecs:{region}:{account}:task/", cluster_name, "/*")
    instances = pulumi.Output.concat(f"arn:aws:ecs:{region}:{account}:container-instance/", cluster_name, "/*")
    return [
        statement(["ecs:ListTasks"], [instances], in_cluster),
        statement(["ecs:DescribeTasks", "ecs:StopTask"], [tasks], in_cluster),
        statement(["secretsmanager:ListSecrets"], ["*"]),  # no resource-level form in IAM
        statement(["secretsmanager:DeleteSecret"], [tls_secrets]),
        statement(["ssm:GetParameter"], [f"arn:aws:ssm:{region}:{account}:parameter{runtime_parameter}"]),
    ]

"""The rehearsal's judge (principalmapper's evaluation, with the calls AWS makes on a principal's
behalf) against AWS's documented policy-evaluation logic, on small documents: an explicit deny
wins; a same-account bucket policy grants what the identity policy does not; a KMS key policy must
allow even when IAM does; a boundary caps what a role's policy allows; conditions see the context
AWS sets (ecs:cluster, ecs:CreateAction, iam:PassedToService, s3:prefix, kms:ViaService)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from mlwf.rehearsal.cloud import Request
from mlwf.rehearsal.judge import Call, Documents, authorize, judge, summary

ACCOUNT, REGION = "111111111111", "us-east-1"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/runner"
KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/k1"
BUCKET = "data-bucket"
CLUSTER = f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/dask"
FAMILY = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/worker"


def allow(actions: list[str], resources: list[str], condition: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "Effect": "Allow",
        "Action": actions,
        "Resource": resources,
        **({"Condition": condition} if condition else {}),
    }


def document(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def docs(
    identity: list[dict[str, Any]],
    boundary: dict[str, Any] | None = None,
    resource_policies: dict[str, dict[str, Any]] | None = None,
) -> Documents:
    definitions = {
        f"{FAMILY}:1": {
            "taskDefinitionArn": f"{FAMILY}:1",
            "taskRoleArn": f"arn:aws:iam::{ACCOUNT}:role/dask",
            "executionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/runner",
            "containerDefinitions": [
                {
                    "image": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/mlwf/flows@sha256:{'0' * 64}",
                    "logConfiguration": {"options": {"awslogs-group": "/dask"}},
                    "secrets": [{"name": "KEY", "valueFrom": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:s-1"}],
                }
            ],
        }
    }
    return Documents(
        ACCOUNT,
        REGION,
        {"runner": ROLE},
        {"runner": identity},
        {"runner": boundary} if boundary else {},
        resource_policies or {},
        {BUCKET: KEY},
        {f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:s-1": KEY},
        definitions.__getitem__,
    )


def key_policy(*principals: str) -> dict[str, Any]:
    return document({"Effect": "Allow", "Principal": {"AWS": list(principals)}, "Action": "kms:*", "Resource": "*"})


def test_an_explicit_deny_wins_over_any_allow() -> None:
    identity = [document(allow(["s3:GetObject"], ["*"]), {**allow(["s3:GetObject"], ["*"]), "Effect": "Deny"})]
    verdict = authorize(Call("runner", "s3:GetObject", f"arn:aws:s3:::{BUCKET}/a"), docs(identity))
    assert verdict.layer == "the identity policy (explicit deny)"


def test_a_same_account_bucket_policy_grants_what_the_identity_policy_does_not() -> None:
    granting = document(
        {
            "Effect": "Allow",
            "Principal": {"AWS": ROLE},
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{BUCKET}/*",
        }
    )
    call = Call("runner", "s3:GetObject", f"arn:aws:s3:::{BUCKET}/a")
    assert authorize(call, docs([document()], resource_policies={f"arn:aws:s3:::{BUCKET}": granting})).allowed
    assert not authorize(call, docs([document()])).allowed


def test_a_tls_only_bucket_policy_denies_only_plain_requests() -> None:
    tls_only = document(
        {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    )
    identity = [document(allow(["s3:GetObject"], ["*"]))]
    policies = {f"arn:aws:s3:::{BUCKET}": tls_only}
    call = Call("runner", "s3:GetObject", f"arn:aws:s3:::{BUCKET}/a")
    assert authorize(call, docs(identity, resource_policies=policies)).allowed, "AWS's clients use TLS"
    plain = Call("runner", "s3:GetObject", f"arn:aws:s3:::{BUCKET}/a", {"aws:SecureTransport": "false"})
    assert authorize(plain, docs(identity, resource_policies=policies)).layer == "the resource policy (explicit deny)"


def test_a_key_policy_must_allow_even_when_iam_does() -> None:
    identity = [document(allow(["kms:Decrypt"], [KEY]))]
    call = Call("runner", "kms:Decrypt", KEY)
    assert authorize(call, docs(identity, resource_policies={KEY: key_policy(f"arn:aws:iam::{ACCOUNT}:root")})).allowed
    other = key_policy(f"arn:aws:iam::{ACCOUNT}:role/someone-else")
    assert authorize(call, docs(identity, resource_policies={KEY: other})).layer == "the key policy"


def test_a_boundary_caps_what_the_role_policy_allows() -> None:
    identity = [document(allow(["s3:GetObject", "s3:PutObject"], ["*"]))]
    boundary = document(allow(["s3:GetObject"], ["*"]))
    assert authorize(Call("runner", "s3:GetObject", f"arn:aws:s3:::{BUCKET}/a"), docs(identity, boundary)).allowed
    put = authorize(Call("runner", "s3:PutObject", f"arn:aws:s3:::{BUCKET}/a"), docs(identity, boundary))
    assert put.layer == "the permissions boundary"


def request(action: str, params: dict[str, Any], resource: str = "*") -> Request:
    return Request("runner", action, resource, params, False)


def test_run_task_is_judged_on_its_family_in_its_cluster_with_its_tags_and_passed_roles() -> None:
    granted = [
        allow(["ecs:RunTask"], [f"{FAMILY}:*"], {"ArnEquals": {"ecs:cluster": CLUSTER}}),
        allow(
            ["ecs:TagResource"],
            [f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/dask/*"],
            {"StringEquals": {"ecs:CreateAction": "RunTask"}},
        ),
        allow(
            ["iam:PassRole"],
            [f"arn:aws:iam::{ACCOUNT}:role/*"],
            {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
        ),
    ]
    run = request(
        "ecs:RunTask", {"cluster": CLUSTER, "taskDefinition": f"{FAMILY}:1", "tags": [{"key": "a", "value": "b"}]}
    )
    result = judge([run], [], docs([document(*granted)]))
    assert [v.call.action for v in result.verdicts] == [
        "ecs:RunTask",
        "ecs:TagResource",
        "iam:PassRole",
        "iam:PassRole",
    ]
    assert not result.refused
    elsewhere = [{**granted[0], "Condition": {"ArnEquals": {"ecs:cluster": CLUSTER + "-other"}}}, *granted[1:]]
    (refused,) = judge([run], [], docs([document(*elsewhere)])).refused
    assert refused.call.line() == f"runner may not ecs:RunTask on {FAMILY}:1"
    no_tagging = judge([run], [], docs([document(granted[0], granted[2])])).refused
    assert [v.call.by for v in no_tagging] == ["RunTask's tags"]


def test_s3_calls_kms_with_the_callers_rights_in_the_buckets_encryption_context() -> None:
    via_s3 = {
        "StringEquals": {
            "kms:ViaService": f"s3.{REGION}.amazonaws.com",
            "kms:EncryptionContext:aws:s3:arn": f"arn:aws:s3:::{BUCKET}",
        }
    }
    objects = allow(["s3:PutObject", "s3:GetObject"], [f"arn:aws:s3:::{BUCKET}/*"])
    keys = {KEY: key_policy(f"arn:aws:iam::{ACCOUNT}:root")}
    put = request("s3:PutObject", {}, f"arn:aws:s3:::{BUCKET}/a")
    allowed = judge(
        [put],
        [],
        docs([document(objects, allow(["kms:GenerateDataKey", "kms:Decrypt"], [KEY], via_s3))], resource_policies=keys),
    )
    assert not allowed.refused
    without_kms = judge([put], [], docs([document(objects)], resource_policies=keys)).refused
    assert sorted(v.call.action for v in without_kms) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert all(v.call.by == "S3 on its behalf (s3:PutObject)" for v in without_kms)


@pytest.mark.parametrize("missing", ["secretsmanager:GetSecretValue", "ecr:BatchGetImage", "logs:CreateLogStream"])
def test_a_task_its_execution_role_cannot_start_is_refused_naming_the_agent(missing: str) -> None:
    pull = ["ecr:GetAuthorizationToken", "ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer"]
    everything = [*pull, "ecr:BatchGetImage", "logs:CreateLogStream", "logs:PutLogEvents"]
    everything += ["secretsmanager:GetSecretValue", "kms:Decrypt"]
    keys = {KEY: key_policy(f"arn:aws:iam::{ACCOUNT}:root")}
    granted = document(allow([a for a in everything if a != missing], ["*"]))
    result = judge([], [f"{FAMILY}:1"], docs([granted], resource_policies=keys))
    (refused,) = result.refused
    assert refused.call.action == missing
    assert "ECS agent" in refused.call.by
    assert summary(result).startswith(f"1 of {len(result.verdicts)} calls refused: runner may not {missing}")


def test_an_action_nobody_judges_fails_naming_it() -> None:
    result = judge([request("glue:StartJobRun", {})], [], docs([document()]))
    assert result.unjudged == ["glue:StartJobRun"]
    assert summary(result) == "no judge for glue:StartJobRun: add one to mlwf.rehearsal.judge"


QUEUE = f"arn:aws:sqs:{REGION}:{ACCOUNT}:events"
RULE = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/task-events"
GROUP = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/dask"


def test_services_acting_as_themselves_need_the_resource_policy_to_allow_them() -> None:
    """EventBridge delivers to the queue only if the queue policy allows events.amazonaws.com for
    this rule (aws:SourceArn); CloudWatch Logs uses the logs key only if the key policy allows the
    logs service for this log group's encryption context."""
    from mlwf.rehearsal.judge import service_calls

    queue_policy = document(
        {
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": QUEUE,
            "Condition": {"ArnEquals": {"aws:SourceArn": RULE}},
        }
    )
    logs = f"logs.{REGION}.amazonaws.com"
    key_policy_for_logs = document(
        {
            "Effect": "Allow",
            "Principal": {"Service": logs},
            "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*"],
            "Resource": "*",
            "Condition": {
                "ArnLike": {"kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:*"}
            },
        }
    )
    base = docs([document()], resource_policies={QUEUE: queue_policy, KEY: key_policy_for_logs})
    base.log_group_keys[GROUP] = KEY
    base.event_targets[RULE] = QUEUE
    calls = service_calls(base)
    assert {(c.role, c.action) for c in calls} >= {("events.amazonaws.com", "sqs:SendMessage"), (logs, "kms:Encrypt")}
    assert all(authorize(c, base).allowed for c in calls)
    other_rule = dataclasses.replace(base, event_targets={RULE + "-other": QUEUE})
    (refused,) = [authorize(c, other_rule) for c in service_calls(other_rule) if c.action == "sqs:SendMessage"]
    assert refused.layer == "the resource policy (the service is not allowed)"
    no_logs = dataclasses.replace(
        base, resource_policies={QUEUE: queue_policy, KEY: key_policy(f"arn:aws:iam::{ACCOUNT}:root")}
    )
    assert not any(authorize(c, no_logs).allowed for c in service_calls(no_logs) if c.role == logs)


def test_grants_no_request_used_are_reported_per_role() -> None:
    from mlwf.rehearsal.judge import unused

    identity = [document(allow(["s3:GetObject", "s3:DeleteObject", "ec2:Describe*"], ["*"]))]
    result = judge([request("s3:GetObject", {}, f"arn:aws:s3:::{BUCKET}/a")], [], docs(identity))
    assert unused(result, docs(identity)) == {"runner": ["s3:DeleteObject"]}, "wildcards are not listed"


def test_only_a_head_bucket_probe_refused_without_a_deny_is_survived() -> None:
    listing = [document(allow(["s3:ListBucket"], [f"arn:aws:s3:::{BUCKET}"], {"StringLike": {"s3:prefix": ["raw/*"]}}))]
    head = request("s3:ListBucket", {"Accept": "*/*"}, f"arn:aws:s3:::{BUCKET}")
    listed = request("s3:ListBucket", {"list-type": "2", "prefix": "curated/"}, f"arn:aws:s3:::{BUCKET}")
    result = judge([head, listed], [], docs(listing))
    assert [v.call.by for v in result.tolerated] == ["HeadBucket, s3fs's bucket probe"]
    assert [v.call.context for v in result.refused] == [{"s3:prefix": "curated/"}], (
        "a listing outside the prefixes fails"
    )
    denied = [document(*listing[0]["Statement"], {**allow(["s3:ListBucket"], ["*"]), "Effect": "Deny"})]
    assert len(judge([head], [], docs(denied)).refused) == 1, "an explicit deny is never survived"


def test_a_resource_policy_naming_the_role_grants_only_within_its_boundary() -> None:
    naming = document(
        {
            "Effect": "Allow",
            "Principal": {"AWS": ROLE},
            "Action": "s3:PutObject",
            "Resource": f"arn:aws:s3:::{BUCKET}/*",
        }
    )
    boundary = document(allow(["s3:GetObject"], ["*"]))
    call = Call("runner", "s3:PutObject", f"arn:aws:s3:::{BUCKET}/a")
    verdict = authorize(call, docs([document()], boundary, {f"arn:aws:s3:::{BUCKET}": naming}))
    assert verdict.layer == "the permissions boundary"

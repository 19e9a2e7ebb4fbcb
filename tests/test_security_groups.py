"""Security groups between tasks in the rehearsal (`mlwf.rehearsal.network`): every planned rule
seeded as planned, connections between tasks recorded from the kernel's TCP table, and judged by
the rules of both sides' groups; and everything the plan creates is seeded or said not to be."""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlwf.infra.plan import plan_delivery, plan_environment
from mlwf.planned import PlannedResource, StackPlan
from mlwf.rehearsal.cloud import EmulatedAWS, emulated_aws
from mlwf.rehearsal.network import Connection, ConnectionWatch, Endpoint, GroupRule, dropped
from mlwf.rehearsal.seed import NOT_SEEDED, Seeder, World, outside
from mlwf.rehearsal.tasks import SecretUnavailableError, resolve_secrets
from mlwf.settings import load_environment
from mlwf.stacks.programs import ORDER

REPO = Path(__file__).resolve().parents[1]
VPC = "10.10.0.0/16"
TASKS = {
    "f": Endpoint("flow-run 127.0.0.2", ("sg-flow",)),
    "s": Endpoint("dask-scheduler 127.0.0.3", ("sg-sched", "sg-work")),
    "w": Endpoint("dask-worker 127.0.0.4", ("sg-sched", "sg-work")),
}
RULES = [
    GroupRule("flows-to-scheduler", "egress", "sg-flow", "tcp", 8786, 8787, peer_group="sg-sched"),
    GroupRule("scheduler-from-flows", "ingress", "sg-sched", "tcp", 8786, 8787, peer_group="sg-flow"),
    GroupRule("workers-to-workers", "egress", "sg-work", "tcp", 1024, 65535, peer_group="sg-work"),
    GroupRule("worker-from-workers", "ingress", "sg-work", "tcp", 1024, 65535, peer_group="sg-work"),
]


def test_a_connection_both_sides_admit_passes() -> None:
    connections = [Connection("f", "s", 8786), Connection("w", "s", 40123), Connection("s", "w", 8786)]
    assert dropped(connections, TASKS, RULES, VPC) == []


def test_a_missing_ingress_rule_is_one_line_naming_source_destination_and_port() -> None:
    rules = [r for r in RULES if r.name != "scheduler-from-flows"]
    assert dropped([Connection("f", "s", 8786)], TASKS, rules, VPC) == [
        "flow-run 127.0.0.2 -> dask-scheduler 127.0.0.3 port 8786: no ingress rule of sg-sched, sg-work admits it"
    ]


def test_a_missing_egress_rule_and_a_port_outside_the_range_are_dropped() -> None:
    rules = [r for r in RULES if r.name != "flows-to-scheduler"]
    assert dropped([Connection("f", "s", 8786)], TASKS, rules, VPC) == [
        "flow-run 127.0.0.2 -> dask-scheduler 127.0.0.3 port 8786: no egress rule of sg-flow admits it"
    ]
    assert len(dropped([Connection("f", "s", 8788)], TASKS, RULES, VPC)) == 1, "8788 is outside 8786-8787"


def test_cidr_rules_admit_a_task_only_when_they_cover_the_vpc_and_all_protocols_cover_every_port() -> None:
    anywhere = GroupRule("flows-to-https", "egress", "sg-flow", "tcp", 443, 443, cidr="0.0.0.0/0")
    inside = GroupRule("from-vpc", "ingress", "sg-work", "tcp", 443, 443, cidr=VPC)
    admin = GroupRule("from-admin", "ingress", "sg-work", "tcp", 443, 443, cidr="192.168.0.0/24")
    every = GroupRule("all", "ingress", "sg-work", "-1", -1, -1, peer_group="sg-flow")
    udp = GroupRule("udp", "ingress", "sg-work", "udp", 0, 65535, peer_group="sg-flow")
    assert anywhere.admits(["sg-work"], 443, VPC)
    assert inside.admits(["sg-flow"], 443, VPC)
    assert not admin.admits(["sg-flow"], 443, VPC)
    assert every.admits(["sg-flow"], 31337, VPC)
    assert not every.admits(["sg-other"], 31337, VPC)
    assert not udp.admits(["sg-flow"], 8786, VPC), "TCP connections need a TCP (or all-protocol) rule"


def test_the_watch_records_who_opened_a_connection_to_a_task_address() -> None:
    """Task "a" (a process at 127.0.0.251) connects to task "b" (this process, listening at
    127.0.0.250): recorded as a -> b on b's port, and the accepting side, whose peer is also a
    task's address, is not a connection of its own. Only these two processes are tasks here, so
    whatever else runs on the machine is not recorded."""
    listener = socket.socket()
    listener.bind(("127.0.0.250", 0))
    listener.listen()
    listener.settimeout(30)
    port = listener.getsockname()[1]
    client = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import socket, time; s = socket.socket(); s.bind(('127.0.0.251', 0)); "
            f"s.connect(('127.0.0.250', {port})); time.sleep(30)",
        ]
    )
    try:
        accepted, _ = listener.accept()
        tasks = {os.getpid(): "b", client.pid: "a"}
        watch = ConnectionWatch(lambda: {"127.0.0.250": "b", "127.0.0.251": "a"}, tasks.get)
        watch.sample()
        assert watch.recorded() == {Connection("a", "b", port)}
        accepted.close()
    finally:
        client.kill()
        client.wait()
        listener.close()


def test_the_watch_samples_until_stopped() -> None:
    class Counted(ConnectionWatch):
        def sample(self) -> None:  # the schedule only: the kernel's table is read above
            self.samples += 1

    watch = Counted(dict, lambda pid: None, interval=0.01)
    watch.start()
    deadline = time.monotonic() + 30
    while watch.samples < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    watch.stop()
    samples = watch.samples
    assert samples >= 4, "three on its schedule and one when stopped"
    time.sleep(0.1)
    assert watch.samples == samples, "a stopped watch samples no more"


@pytest.fixture(scope="module")
def seeded() -> Iterator[tuple[EmulatedAWS, World, list[str]]]:
    """prod's plan seeded on an emulated AWS after its account's bootstrap stack, without one
    planned rule."""
    settings = load_environment("prod", REPO / "environments")
    plans = [*plan_delivery(["bootstrap"], [settings], REPO), *plan_environment(settings, list(ORDER), REPO)]
    types = sorted({r.type for p in plans for r in p.resources if r.custom})
    with emulated_aws(settings.account_id, settings.region) as aws:
        yield aws, Seeder(aws, drop_rules=frozenset({"scheduler-from-flows"})).seed(plans), types


def test_every_planned_resource_is_seeded_or_named_with_why(seeded: tuple[EmulatedAWS, World, list[str]]) -> None:
    _, world, types = seeded
    assert world.seeded > 90
    assert sorted(world.not_seeded()) == [
        "not seeded: BucketLogging data: " + NOT_SEEDED["aws:s3/bucketLogging:BucketLogging"],
        "not seeded: BucketPolicy access-logs, BucketPolicy data: " + NOT_SEEDED["aws:s3/bucketPolicy:BucketPolicy"],
        "not seeded: SecurityGroupIngressRule scheduler-from-flows: left out by the scenario",
        "not seeded: provider aws x5: a Pulumi provider, nothing in AWS",
    ]
    assert "aws:ec2/vpcEndpoint:VpcEndpoint" in types
    assert "aws:ecr/repository:Repository" in types


def test_roles_are_created_under_their_boundary_and_hold_nothing_outside_it(
    seeded: tuple[EmulatedAWS, World, list[str]],
) -> None:
    """As in AWS: every environment role names the bootstrap's boundary, and its identity can
    do only what the boundary allows too (moto evaluates no boundary: the seeder cuts the rest)."""
    aws, world, _ = seeded
    iam = aws.client("iam")
    environment_roles = [name for name in world.roles if name.startswith("mlwf-prod-")]
    assert len(environment_roles) >= 8
    for name in environment_roles:
        boundary = iam.get_role(RoleName=name)["Role"]["PermissionsBoundary"]["PermissionsBoundaryArn"]
        assert boundary == "arn:aws:iam::333333333333:policy/mlwf-prod-boundary"
    assert {"mlwf-github-deploy-prod", "mlwf-github-preview-prod"} <= set(world.roles), "bootstrap's, seeded first"
    boundary = {"Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "ecs:Describe*"], "Resource": "*"}]}
    granted = [{"Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "ecs:DescribeTasks"]}]}]
    assert outside(granted, boundary) == ["s3:PutObject"]


def test_the_judges_documents_are_kept_by_real_arn(seeded: tuple[EmulatedAWS, World, list[str]]) -> None:
    """The bucket, key and queue policies of the plan (the bucket's is not seeded into moto but is
    judged), each bucket's and secret's key, each role's boundary: by the ARNs AWS gives them."""
    aws, world, _ = seeded
    kms = aws.client("kms")
    keys = {k["KeyArn"] for k in kms.list_keys()["Keys"]}
    assert set(world.bucket_keys) == {"mlwf-prod-data-333333333333"}
    assert set(world.bucket_keys.values()) <= keys
    assert set(world.secret_keys.values()) <= keys
    assert len(world.secret_keys) == 1
    policies = set(world.resource_policies)
    assert {"arn:aws:s3:::mlwf-prod-data-333333333333", "arn:aws:s3:::mlwf-prod-access-logs-333333333333"} <= policies
    assert {k for k in policies if k.startswith("arn:aws:kms:")} <= keys
    assert any(k.startswith("arn:aws:sqs:us-east-1:333333333333:") for k in policies)
    assert set(world.boundaries) >= {"mlwf-prod-flow-run-task", "mlwf-prod-dask-task"}


def test_the_budget_and_alarms_notify_the_topic_and_aws_would_let_them(
    seeded: tuple[EmulatedAWS, World, list[str]],
) -> None:
    """Created from the plan (moto stores alarms and budgets, never evaluates them); Budgets and
    CloudWatch publishing to the encrypted topic are judged against the topic and key policies,
    and a key policy without them refuses, naming the layer."""
    from mlwf.rehearsal.judge import authorize, documents_of, service_calls

    aws, world, _ = seeded
    topic = "arn:aws:sns:us-east-1:333333333333:mlwf-prod-alerts"
    attributes = aws.client("sns").get_topic_attributes(TopicArn=topic)["Attributes"]
    assert attributes["KmsMasterKeyId"]
    assert world.topic_keys[topic] in {k["KeyArn"] for k in aws.client("kms").list_keys()["Keys"]}
    (alarm,) = aws.client("cloudwatch").describe_alarms(AlarmNames=["mlwf-prod-reaper-leftovers"])["MetricAlarms"]
    assert alarm["AlarmActions"] == [topic]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("mlwf/reaper", "LeftoverTasks")
    assert alarm["Dimensions"] == [{"Name": "Environment", "Value": "prod"}]
    budget = "arn:aws:budgets::333333333333:budget/mlwf-prod-monthly"
    assert world.publishers[budget] == [topic]
    (described,) = aws.client("budgets").describe_budgets(AccountId="333333333333")["Budgets"]
    assert described["BudgetLimit"] == {"Amount": "400.00", "Unit": "USD"}, "prod.yaml: cost.monthly_budget_usd"
    docs = documents_of(aws, world)
    publishing = [c for c in service_calls(docs) if c.role in ("budgets.amazonaws.com", "cloudwatch.amazonaws.com")]
    assert {(c.role, c.action) for c in publishing} == {
        (service, action)
        for service in ("budgets.amazonaws.com", "cloudwatch.amazonaws.com")
        for action in ("sns:Publish", "kms:GenerateDataKey", "kms:Decrypt")
    }
    assert all(authorize(c, docs).allowed for c in publishing), [authorize(c, docs) for c in publishing]
    key = world.topic_keys[topic]
    policy = docs.resource_policies[key]
    administration_only = {**policy, "Statement": [s for s in policy["Statement"] if s.get("Sid") == "Administration"]}
    mistaken = dataclasses.replace(docs, resource_policies={**docs.resource_policies, key: administration_only})
    refused = [authorize(c, mistaken) for c in publishing if c.resource == key]
    assert refused
    assert {v.layer for v in refused} == {"the resource policy (the service is not allowed)"}


def test_a_role_whose_boundary_does_not_exist_fails_the_seeding(seeded: tuple[EmulatedAWS, World, list[str]]) -> None:
    aws, _, _ = seeded
    role = PlannedResource(
        "aws:iam/role:Role",
        "orphan",
        {
            "name": "mlwf-prod-orphan",
            "assumeRolePolicy": "{}",
            "permissionsBoundary": "arn:aws:iam::333333333333:policy/mlwf-prod-nothing",
        },
    )
    with pytest.raises(RuntimeError, match=r"does not exist \(AWS refuses CreateRole: NoSuchEntity\)"):
        Seeder(aws).seed([StackPlan("prod", "compute", [role])])


def test_security_groups_hold_exactly_the_planned_rules(seeded: tuple[EmulatedAWS, World, list[str]]) -> None:
    """AWS's default allow-all egress is gone (the provider removes it); each planned rule is
    authorized on its group; a rule the scenario left out is in neither place."""
    aws, world, _ = seeded
    names = {r.name for r in world.group_rules}
    assert "scheduler-from-flows" not in names
    assert "worker-from-flows" in names
    ec2 = aws.client("ec2")
    (vpc,) = ec2.describe_vpcs(Filters=[{"Name": "cidr", "Values": [world.vpc_cidr]}])["Vpcs"]
    groups = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["SecurityGroups"]
    assert len(groups) == 5, "four planned groups and the VPC's default"
    for group in groups:
        planned = [r for r in world.group_rules if r.group == group["GroupId"]]
        for direction, key in (("ingress", "IpPermissions"), ("egress", "IpPermissionsEgress")):
            held = sorted(
                (
                    p.get("FromPort", -1),
                    p.get("ToPort", -1),
                    pair.get("GroupId", "") + pair.get("CidrIp", "") + pair.get("PrefixListId", ""),
                )
                for p in group[key]
                for kind in ("UserIdGroupPairs", "IpRanges", "PrefixListIds")
                for pair in p.get(kind, [])
            )
            wanted = sorted(
                (r.from_port, r.to_port, r.peer_group + r.cidr + r.prefix_list)
                for r in planned
                if r.direction == direction
            )
            assert held == wanted, (group["GroupName"], direction)
    assert any(r.prefix_list.startswith("pl-") for r in world.group_rules), "S3 egress names the gateway's prefix list"


def test_the_bucket_the_repository_and_the_network_exist_as_planned(
    seeded: tuple[EmulatedAWS, World, list[str]],
) -> None:
    aws, world, _ = seeded
    settings = load_environment("prod", REPO / "environments")
    bucket = f"{settings.name_prefix}-data-{settings.account_id}"
    s3 = aws.client("s3")
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert rule["BucketKeyEnabled"]
    key = rule["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"]
    assert aws.client("kms").describe_key(KeyId=key)["KeyMetadata"]["Enabled"]
    assert s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]["BlockPublicPolicy"]
    assert {r["ID"] for r in s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]} >= {
        "abort-incomplete-uploads"
    }
    (repository,) = aws.client("ecr").describe_repositories()["repositories"]
    assert repository["imageTagMutability"] == "IMMUTABLE"
    ec2 = aws.client("ec2")
    endpoints = {e["ServiceName"]: e["VpcEndpointType"] for e in ec2.describe_vpc_endpoints()["VpcEndpoints"]}
    assert endpoints[f"com.amazonaws.{settings.region}.s3"] == "Gateway"
    assert endpoints[f"com.amazonaws.{settings.region}.ecr.dkr"] == "Interface"
    routes = [r for t in ec2.describe_route_tables()["RouteTables"] for r in t["Routes"]]
    assert any(r.get("NatGatewayId") for r in routes)
    assert any(r.get("GatewayId", "").startswith("igw-") for r in routes)
    assert world.vpc_cidr == str(settings.network.vpc_cidr)
    (schedule,) = aws.client("scheduler").list_schedules()["Schedules"]
    assert schedule["Name"] == f"{settings.name_prefix}-reaper"


def test_a_task_whose_secret_has_no_value_cannot_start(seeded: tuple[EmulatedAWS, World, list[str]]) -> None:
    """The stack creates the API key's secret empty: until an administrator puts the key, the ECS
    agent cannot read it and the task fails to start (then it reads the value put)."""
    aws, _, _ = seeded
    secrets = aws.client("secretsmanager")
    arn = secrets.describe_secret(SecretId="mlwf-prod/prefect-api-key")["ARN"]
    container = {"secrets": [{"name": "PREFECT_API_KEY", "valueFrom": arn}]}
    with pytest.raises(SecretUnavailableError, match="mlwf-prod/prefect-api-key"):
        resolve_secrets(aws, container)
    secrets.put_secret_value(SecretId=arn, SecretString="pnu_not_a_real_key")
    assert resolve_secrets(aws, container) == {"PREFECT_API_KEY": "pnu_not_a_real_key"}

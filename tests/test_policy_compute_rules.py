"""The ECS, EBS/RDS/load-balancer, network and platform (logs, KMS, ECR, cost tags) guardrails
rule by rule: which resource types each rule looks at, the boundary of every condition, and the
exact violation text a pull request shows (plus the resource a stack rule blames)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from policy_cases import Resource, stack_reports
from policy_cases import check_resource as violations

TASK = "aws:ecs/taskDefinition:TaskDefinition"
SERVICE = "aws:ecs/service:Service"
SG = "aws:ec2/securityGroup:SecurityGroup"
RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EC2_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
LB = "aws:lb/loadBalancer:LoadBalancer"
ALB = "aws:alb/loadBalancer:LoadBalancer"
INSTANCE = "aws:ec2/instance:Instance"
VPC = "aws:ec2/vpc:Vpc"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"
NAT = "aws:ec2/natGateway:NatGateway"


def stack_violations(
    policy: str, resources: list[Resource], config: dict[str, Any] | None = None
) -> list[tuple[str, str | None]]:
    """(message, blamed resource name) of a stack rule."""
    return [(m, u.rsplit("::", 1)[-1] if u else None) for m, u in stack_reports(policy, resources, config)]


def task(*definitions: Any) -> dict[str, Any]:
    """Task definition props whose containerDefinitions arrive as JSON, as Pulumi sends them."""
    return {"containerDefinitions": json.dumps(list(definitions))}


GOOD = {
    "name": "app",
    "image": "1.dkr.ecr.us-east-1.amazonaws.com/app:py3.11-abc",
    "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "g"}},
}


# ---------------------------------------------------------------- ECS task definitions


@pytest.mark.parametrize(
    ("image", "problem"),
    [
        ("nginx", "has no tag (it floats to latest)"),
        ("nginx:latest", "uses the mutable tag 'latest'"),
        ("registry:5000/team/app", "has no tag (it floats to latest)"),
        ("registry:5000/team/app:latest", "uses the mutable tag 'latest'"),
        ("", "has no tag (it floats to latest)"),
        ("registry:5000/team/app:1.2.3", None),
        ("app:latest-2024", None),
        ("app:LATEST", None),
        ("app@sha256:" + "0" * 64, None),
        ("app:latest@sha256:" + "f" * 64, None),
        ("app@sha256:abc", "has a malformed digest (expected @sha256: and 64 hex digits)"),
        ("app:latest@sha256:" + "F" * 64, "has a malformed digest (expected @sha256: and 64 hex digits)"),
        ("registry:5000/app@md5:" + "0" * 32, "has a malformed digest (expected @sha256: and 64 hex digits)"),
    ],
)
def test_ecs_image_pinned_by_tag_or_digest(image: str, problem: str | None) -> None:
    expected = [f"container 'app' image '{image}' {problem}"] if problem else []
    assert violations("ecs-image-pinned", TASK, task({**GOOD, "image": image})) == expected


def test_ecs_image_rule_names_each_unpinned_container_and_a_missing_image() -> None:
    definitions = task({**GOOD, "name": "web", "image": "nginx"}, GOOD, {"name": "side"})
    assert violations("ecs-image-pinned", TASK, definitions) == [
        "container 'web' image 'nginx' has no tag (it floats to latest)",
        "container 'side' image 'None' has no tag (it floats to latest)",
    ]


CONTAINER_RULES = ["ecs-image-pinned", "ecs-awslogs", "ecs-not-privileged", "ecs-secrets-not-in-environment"]


@pytest.mark.parametrize("policy", CONTAINER_RULES)
def test_container_rules_look_only_at_task_definitions(policy: str) -> None:
    bad = {"name": "x", "image": "nginx", "privileged": True, "environment": [{"name": "API_KEY", "value": "v"}]}
    assert violations(policy, "aws:ecs/service:Service", task(bad)) == []
    assert len(violations(policy, TASK, task(bad))) == 1


@pytest.mark.parametrize("policy", CONTAINER_RULES)
def test_container_rules_accept_parsed_definitions_and_skip_junk(policy: str) -> None:
    bad = {"name": "x", "image": "nginx", "privileged": True, "environment": [{"name": "API_KEY", "value": "v"}]}
    assert len(violations(policy, TASK, {"containerDefinitions": [bad]})) == 1
    assert violations(policy, TASK, {"containerDefinitions": ["not a container", 3, {**GOOD}]}) == []
    assert violations(policy, TASK, {"containerDefinitions": "{not json"}) == []
    assert violations(policy, TASK, {}) == []


@pytest.mark.parametrize(
    ("log_configuration", "ships"),
    [
        ({"logDriver": "awslogs"}, True),
        ({"logDriver": "json-file"}, False),
        ({"logDriver": "AWSLOGS"}, False),
        ({}, False),
        (None, False),
    ],
)
def test_ecs_awslogs_driver(log_configuration: dict[str, Any] | None, ships: bool) -> None:
    container = {"name": "app", "image": GOOD["image"], "logConfiguration": log_configuration}
    expected = [] if ships else ["container 'app' does not ship logs with awslogs"]
    assert violations("ecs-awslogs", TASK, task(container)) == expected


def test_ecs_awslogs_without_any_log_configuration() -> None:
    assert violations("ecs-awslogs", TASK, task({"name": "bare"})) == [
        "container 'bare' does not ship logs with awslogs"
    ]


@pytest.mark.parametrize(("privileged", "flagged"), [(True, True), (False, False), (None, False), ("true", False)])
def test_ecs_not_privileged_only_for_a_literal_true(privileged: Any, flagged: bool) -> None:
    expected = ["container 'app' runs privileged"] if flagged else []
    assert violations("ecs-not-privileged", TASK, task({**GOOD, "privileged": privileged})) == expected
    assert violations("ecs-not-privileged", TASK, task(GOOD)) == []


def test_ecs_secrets_names_every_secret_looking_variable() -> None:
    environment = [
        {"name": "AWS_REGION", "value": "us-east-1"},
        {"name": "db_password", "value": "x"},
        {"name": "Api_Key", "value": "x"},
        {"name": "PASSWD", "value": "x"},
        {"name": "GOOGLE_CREDENTIALS", "value": "x"},
        {"name": "CLIENT_SECRET", "value": "x"},
        {"name": "AUTH_TOKEN_URL", "value": "x"},
        {"value": "no name"},
    ]
    definitions = task({**GOOD, "environment": environment}, {**GOOD, "name": "side", "environment": None})
    assert violations("ecs-secrets-not-in-environment", TASK, definitions) == [
        f"container 'app' passes '{name}' as a plain environment value; use 'secrets'"
        for name in ("db_password", "Api_Key", "PASSWD", "GOOGLE_CREDENTIALS", "CLIENT_SECRET", "AUTH_TOKEN_URL")
    ]


@pytest.mark.parametrize(
    ("type_", "props", "flagged"),
    [
        (SERVICE, {"networkConfiguration": {"assignPublicIp": True}}, True),
        (SERVICE, {"networkConfiguration": {"assignPublicIp": False}}, False),
        (SERVICE, {"networkConfiguration": {"subnets": ["s"]}}, False),
        (SERVICE, {"networkConfiguration": None}, False),
        (SERVICE, {}, False),
        (TASK, {"networkConfiguration": {"assignPublicIp": True}}, False),
    ],
)
def test_ecs_service_public_ip(type_: str, props: dict[str, Any], flagged: bool) -> None:
    expected = ["ECS service 'r' assigns public IPs to its tasks"] if flagged else []
    assert violations("ecs-no-public-ip", type_, props) == expected


CAPS = {"maxCpu": 1024, "maxMemoryMib": 4096}


@pytest.mark.parametrize(
    ("props", "config", "expected"),
    [
        ({"cpu": "1024", "memory": "4096"}, CAPS, []),
        (
            {"cpu": "1025", "memory": "4096"},
            CAPS,
            ["task definition 'r' asks for cpu 1025, above this environment's cap of 1024"],
        ),
        (
            {"cpu": "1024", "memory": "8192"},
            {"maxCpu": 1024.0, "maxMemoryMib": 4096.0},
            ["task definition 'r' asks for memory 8192, above this environment's cap of 4096"],
        ),
        (
            {"cpu": 2048.0, "memory": 4096.5},
            CAPS,
            [
                "task definition 'r' asks for cpu 2048, above this environment's cap of 1024",
                "task definition 'r' asks for memory 4096.5, above this environment's cap of 4096",
            ],
        ),
        ({"cpu": "99999", "memory": "99999"}, None, []),
        ({"cpu": "99999"}, {"maxMemoryMib": 512}, []),
        ({"memory": "99999"}, {"maxCpu": 256}, []),
        ({}, CAPS, []),
    ],
)
def test_ecs_task_size_cap(props: dict[str, Any], config: dict[str, Any] | None, expected: list[str]) -> None:
    assert violations("ecs-task-size-cap", TASK, props, config) == expected


def test_ecs_task_size_cap_looks_only_at_task_definitions() -> None:
    assert violations("ecs-task-size-cap", SERVICE, {"cpu": "4096", "memory": "9999"}, CAPS) == []


# ---------------------------------------------------------------- EBS, RDS, load balancers


@pytest.mark.parametrize(
    ("type_", "props", "expected"),
    [
        ("aws:ebs/volume:Volume", {"encrypted": True}, []),
        ("aws:ebs/volume:Volume", {}, ["EBS volume 'r' is not encrypted"]),
        ("aws:ebs/volume:Volume", {"encrypted": "true"}, ["EBS volume 'r' is not encrypted"]),
        (INSTANCE, {}, []),
        (INSTANCE, {"ebsBlockDevices": [{"encrypted": True}, {"encrypted": True}]}, []),
        (
            INSTANCE,
            {"ebsBlockDevices": [{"encrypted": True}, {"encrypted": False}, {"deviceName": "/dev/xvdb"}]},
            ["instance 'r' has an unencrypted EBS block device"] * 2,
        ),
        ("aws:ec2/launchTemplate:LaunchTemplate", {"ebsBlockDevices": [{"encrypted": False}]}, []),
    ],
)
def test_ebs_encrypted(type_: str, props: dict[str, Any], expected: list[str]) -> None:
    assert violations("ebs-encrypted", type_, props) == expected


@pytest.mark.parametrize(
    ("type_", "props", "expected"),
    [
        ("aws:rds/instance:Instance", {"storageEncrypted": True}, []),
        ("aws:rds/cluster:Cluster", {"storageEncrypted": True}, []),
        ("aws:rds/cluster:Cluster", {"storageEncrypted": False}, ["database 'r' storage is not encrypted"]),
        ("aws:rds/instance:Instance", {}, ["database 'r' storage is not encrypted"]),
        ("aws:rds/clusterInstance:ClusterInstance", {}, []),
    ],
)
def test_rds_storage_encrypted(type_: str, props: dict[str, Any], expected: list[str]) -> None:
    assert violations("rds-storage-encrypted", type_, props) == expected


@pytest.mark.parametrize(
    ("type_", "props", "expected"),
    [
        ("aws:rds/instance:Instance", {"publiclyAccessible": True}, ["database 'r' is publicly accessible"]),
        ("aws:rds/instance:Instance", {}, []),
        ("aws:rds/cluster:Cluster", {"publiclyAccessible": True}, []),
    ],
)
def test_rds_not_public(type_: str, props: dict[str, Any], expected: list[str]) -> None:
    assert violations("rds-not-public", type_, props) == expected


REDIRECT = {"type": "redirect", "redirect": {"protocol": "HTTPS", "port": "443", "statusCode": "HTTP_301"}}


@pytest.mark.parametrize(
    ("type_", "props", "flagged"),
    [
        ("aws:lb/listener:Listener", {"protocol": "HTTP", "defaultActions": [REDIRECT]}, False),
        ("aws:alb/listener:Listener", {"protocol": "HTTP", "defaultActions": [{"type": "forward"}, REDIRECT]}, False),
        ("aws:alb/listener:Listener", {"protocol": "HTTP", "defaultActions": [{"type": "forward"}]}, True),
        ("aws:lb/listener:Listener", {"protocol": "HTTP"}, True),
        ("aws:lb/listener:Listener", {"protocol": "HTTP", "defaultActions": [{"type": "redirect"}]}, True),
        (
            "aws:lb/listener:Listener",
            {"protocol": "HTTP", "defaultActions": [{"type": "redirect", "redirect": {"protocol": "HTTP"}}]},
            True,
        ),
        (
            "aws:lb/listener:Listener",
            {"protocol": "HTTP", "defaultActions": [{"type": "forward", "redirect": {"protocol": "HTTPS"}}]},
            True,
        ),
        ("aws:lb/listener:Listener", {"protocol": "HTTPS", "defaultActions": [{"type": "forward"}]}, False),
        ("aws:lb/listenerRule:ListenerRule", {"protocol": "HTTP", "defaultActions": [{"type": "forward"}]}, False),
    ],
)
def test_alb_http_redirects_to_https(type_: str, props: dict[str, Any], flagged: bool) -> None:
    expected = ["HTTP listener 'r' does not redirect to HTTPS"] if flagged else []
    assert violations("alb-http-redirects-to-https", type_, props) == expected


@pytest.mark.parametrize(
    ("type_", "props", "config", "flagged"),
    [
        (LB, {}, None, True),
        (ALB, {"enableDeletionProtection": False}, {}, True),
        (LB, {"enableDeletionProtection": True}, None, False),
        (LB, {}, {"required": False}, False),
        (ALB, {}, {"required": None}, True),
        ("aws:lb/targetGroup:TargetGroup", {}, {"required": True}, False),
    ],
)
def test_elb_deletion_protection(
    type_: str, props: dict[str, Any], config: dict[str, Any] | None, flagged: bool
) -> None:
    expected = ["load balancer 'r' has no deletion protection"] if flagged else []
    assert violations("elb-deletion-protection", type_, props, config) == expected


@pytest.mark.parametrize(
    ("type_", "props", "flagged"),
    [
        (ALB, {"accessLogs": {"enabled": True, "bucket": "logs"}}, False),
        (ALB, {"accessLogs": {"enabled": False, "bucket": "logs"}}, True),
        (LB, {"accessLogs": {"bucket": "logs"}}, True),
        (LB, {"accessLogs": None}, True),
        (LB, {}, True),
        ("aws:lb/listener:Listener", {}, False),
    ],
)
def test_elb_access_logs(type_: str, props: dict[str, Any], flagged: bool) -> None:
    expected = ["load balancer 'r' does not write access logs"] if flagged else []
    assert violations("elb-access-logs", type_, props) == expected


# ---------------------------------------------------------------- network


def ingress(from_port: int, to_port: int, cidr: str, protocol: str = "tcp") -> dict[str, Any]:
    return {"protocol": protocol, "fromPort": from_port, "toPort": to_port, "cidrBlocks": [cidr]}


def internet_message(name: str, ports: str) -> tuple[str, str]:
    return (
        f"'{name}' allows ingress from the internet on ports {ports} (only HTTPS to a load balancer may be public)",
        name,
    )


def behind_load_balancer(*rules: dict[str, Any]) -> list[Resource]:
    return [(SG, "lb-sg", {"ingress": list(rules)}, []), (LB, "lb", {}, ["lb-sg"])]


@pytest.mark.parametrize(
    ("rule", "allowed"),
    [
        (ingress(443, 443, "0.0.0.0/0"), True),
        (ingress(443, 443, "::/0", protocol="6"), True),
        (ingress(443, 443, "0.0.0.0/0", protocol="udp"), False),
        (ingress(443, 443, "0.0.0.0/0", protocol="-1"), False),
        (ingress(80, 80, "0.0.0.0/0"), False),
        (ingress(442, 443, "0.0.0.0/0"), False),
        (ingress(443, 444, "0.0.0.0/0"), False),
        (ingress(0, 65535, "0.0.0.0/0"), False),
    ],
)
def test_internet_ingress_on_a_load_balancer_group_is_https_only(rule: dict[str, Any], allowed: bool) -> None:
    found = stack_violations("no-internet-ingress", behind_load_balancer(rule))
    ports = f"{rule['fromPort']}-{rule['toPort']}"
    assert found == ([] if allowed else [internet_message("lb-sg", ports)])


def test_internet_ingress_checks_every_rule_of_a_group() -> None:
    rules = [ingress(443, 443, "0.0.0.0/0"), ingress(22, 22, "10.0.0.0/8"), ingress(8080, 8080, "::/0")]
    assert stack_violations("no-internet-ingress", behind_load_balancer(*rules)) == [
        internet_message("lb-sg", "8080-8080")
    ]


def test_internet_https_is_refused_on_a_group_no_load_balancer_uses() -> None:
    resources: list[Resource] = [
        (SG, "app-sg", {"ingress": [ingress(443, 443, "0.0.0.0/0")]}, []),
        ("aws:ec2/subnet:Subnet", "subnet", {}, []),
        (SERVICE, "svc", {}, ["app-sg"]),
        (LB, "lb", {}, ["subnet"]),
    ]
    assert stack_violations("no-internet-ingress", resources) == [internet_message("app-sg", "443-443")]


def test_a_standalone_rule_counts_as_its_load_balancer_groups() -> None:
    https = {"ipProtocol": "tcp", "fromPort": 443, "toPort": 443, "cidrIpv6": "::/0"}
    http = {**https, "fromPort": 80, "toPort": 80}
    resources: list[Resource] = [
        (SG, "lb-sg", {}, []),
        (SG, "app-sg", {}, []),
        (LB, "lb", {}, ["lb-sg"]),
        (RULE, "https", https, ["lb-sg"]),
        (RULE, "http", http, ["lb-sg"]),
        (RULE, "app-https", https, ["app-sg"]),
        (RULE, "private", {**https, "cidrIpv6": None, "cidrIpv4": "10.0.0.0/8"}, ["app-sg"]),
    ]
    assert stack_violations("no-internet-ingress", resources) == [
        internet_message("http", "80-80"),
        internet_message("app-https", "443-443"),
    ]


@pytest.mark.parametrize(
    ("type_", "props", "expected"),
    [
        (SG, {"ingress": [ingress(22, 22, "0.0.0.0/0")]}, ["'r' opens SSH (port 22) to the internet"]),
        (SG, {"ingress": [ingress(21, 23, "203.0.113.0/24")]}, []),
        (SG, {"ingress": [ingress(23, 3388, "::/0")]}, []),
        (
            SG,
            {"ingress": [ingress(0, 0, "0.0.0.0/0", protocol="-1")]},
            ["'r' opens SSH (port 22) to the internet", "'r' opens RDP (port 3389) to the internet"],
        ),
        (
            EC2_RULE,
            {"type": "ingress", "protocol": "tcp", "fromPort": 3389, "toPort": 3390, "cidrBlocks": ["0.0.0.0/0"]},
            ["'r' opens RDP (port 3389) to the internet"],
        ),
    ],
)
def test_no_ssh_rdp_from_internet(type_: str, props: dict[str, Any], expected: list[str]) -> None:
    assert violations("no-ssh-rdp-from-internet", type_, props) == expected


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        (
            {"ingress": [ingress(8786, 8786, "198.51.100.7/32")]},
            ["'r' exposes Dask port 8786 to a public address range"],
        ),
        ({"ingress": [ingress(8787, 8800, "0.0.0.0/0")]}, ["'r' exposes Dask port 8787 to a public address range"]),
        (
            {"ingress": [ingress(8000, 9000, "::/0")]},
            [
                "'r' exposes Dask port 8786 to a public address range",
                "'r' exposes Dask port 8787 to a public address range",
            ],
        ),
        ({"ingress": [ingress(8786, 8787, "172.16.4.0/24")]}, []),
        ({"ingress": [ingress(8788, 8790, "0.0.0.0/0")]}, []),
    ],
)
def test_dask_ports_not_public(props: dict[str, Any], expected: list[str]) -> None:
    assert violations("dask-ports-not-public", SG, props) == expected


def test_vpc_flow_logs_only_where_required() -> None:
    resources: list[Resource] = [
        (VPC, "logged", {}, []),
        (VPC, "bare", {}, []),
        ("aws:ec2/subnet:Subnet", "subnet", {}, ["bare"]),
        (FLOW_LOG, "fl", {}, ["logged"]),
    ]
    assert stack_violations("vpc-flow-logs", resources, {"required": True}) == [("VPC 'bare' has no flow logs", "bare")]
    assert stack_violations("vpc-flow-logs", resources, {"required": False}) == []
    assert stack_violations("vpc-flow-logs", resources) == []


def test_vpc_flow_logs_looks_only_at_vpcs() -> None:
    resources: list[Resource] = [("aws:ec2/subnet:Subnet", "subnet", {}, [])]
    assert stack_violations("vpc-flow-logs", resources, {"required": True}) == []


@pytest.mark.parametrize(
    ("nats", "config", "expected"),
    [
        (2, {"maxNatGateways": 2}, []),
        (3, {"maxNatGateways": 2.0}, ["3 NAT gateways exceed this environment's cap of 2"]),
        (1, {"maxNatGateways": 0}, ["1 NAT gateways exceed this environment's cap of 0"]),
        (0, {"maxNatGateways": 0}, []),
        (5, None, []),
    ],
)
def test_nat_gateway_cap(nats: int, config: dict[str, Any] | None, expected: list[str]) -> None:
    resources: list[Resource] = [(NAT, f"nat{i}", {}, []) for i in range(nats)]
    resources += [(VPC, "vpc", {}, []), ("aws:ec2/eip:Eip", "eip", {}, [])]
    assert [message for message, _ in stack_violations("nat-gateway-cap", resources, config)] == expected


@pytest.mark.parametrize(
    ("type_", "props", "expected"),
    [
        (
            "aws:ec2/subnet:Subnet",
            {"mapPublicIpOnLaunch": True},
            ["subnet 'r' gives every instance a public IP on launch"],
        ),
        ("aws:ec2/subnet:Subnet", {"associatePublicIpAddress": True}, []),
        (INSTANCE, {"associatePublicIpAddress": True}, ["instance 'r' gets a public IP address"]),
        (INSTANCE, {"associatePublicIpAddress": False, "mapPublicIpOnLaunch": True}, []),
        ("aws:ec2/launchTemplate:LaunchTemplate", {"associatePublicIpAddress": True}, []),
    ],
)
def test_no_public_ip_on_launch(type_: str, props: dict[str, Any], expected: list[str]) -> None:
    assert violations("no-public-ip-on-launch", type_, props) == expected


# ---------------------------------------------------------------- logs, KMS, ECR, cost tags

LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
KEY = "aws:kms/key:Key"
REPOSITORY = "aws:ecr/repository:Repository"


@pytest.mark.parametrize(
    ("type_", "props", "expected"),
    [
        (LOG_GROUP, {"retentionInDays": 1}, []),
        (LOG_GROUP, {"retentionInDays": 0}, ["log group 'r' keeps logs forever (no retentionInDays)"]),
        (LOG_GROUP, {}, ["log group 'r' keeps logs forever (no retentionInDays)"]),
        ("aws:cloudwatch/logStream:LogStream", {}, []),
    ],
)
def test_log_group_retention(type_: str, props: dict[str, Any], expected: list[str]) -> None:
    assert violations("log-group-retention", type_, props) == expected


@pytest.mark.parametrize(
    ("type_", "props", "flagged"),
    [
        (KEY, {}, True),
        (KEY, {"customerMasterKeySpec": "SYMMETRIC_DEFAULT", "enableKeyRotation": False}, True),
        (KEY, {"customerMasterKeySpec": "SYMMETRIC_DEFAULT", "enableKeyRotation": True}, False),
        (KEY, {"customerMasterKeySpec": "RSA_2048"}, False),
        (KEY, {"customerMasterKeySpec": "ECC_NIST_P256", "enableKeyRotation": False}, False),
        ("aws:kms/alias:Alias", {}, False),
    ],
)
def test_kms_rotation_only_for_symmetric_keys(type_: str, props: dict[str, Any], flagged: bool) -> None:
    expected = ["KMS key 'r' does not rotate"] if flagged else []
    assert violations("kms-key-rotation", type_, props) == expected


@pytest.mark.parametrize(
    ("type_", "props", "expected"),
    [
        (REPOSITORY, {}, ["ECR repository 'r' allows tags to be overwritten"]),
        (REPOSITORY, {"imageTagMutability": "IMMUTABLE"}, []),
        ("aws:ecr/lifecyclePolicy:LifecyclePolicy", {"imageTagMutability": "MUTABLE"}, []),
    ],
)
def test_ecr_immutable_tags(type_: str, props: dict[str, Any], expected: list[str]) -> None:
    assert violations("ecr-immutable-tags", type_, props) == expected


@pytest.mark.parametrize(
    ("type_", "props", "expected"),
    [
        (REPOSITORY, {"imageScanningConfiguration": {"scanOnPush": True}}, []),
        (
            REPOSITORY,
            {"imageScanningConfiguration": {"scanOnPush": False}},
            ["ECR repository 'r' does not scan images on push"],
        ),
        (REPOSITORY, {"imageScanningConfiguration": None}, ["ECR repository 'r' does not scan images on push"]),
        (REPOSITORY, {}, ["ECR repository 'r' does not scan images on push"]),
        ("aws:ecr/registryScanningConfiguration:RegistryScanningConfiguration", {}, []),
    ],
)
def test_ecr_scan_on_push(type_: str, props: dict[str, Any], expected: list[str]) -> None:
    assert violations("ecr-scan-on-push", type_, props) == expected


BUCKET_TYPE = "aws:s3/bucket:Bucket"


@pytest.mark.parametrize(
    ("props", "config", "provider_tags", "expected"),
    [
        ({}, None, None, ["'r' is missing the cost tag(s) CostCenter, Owner, Project"]),
        (
            {"tags": {"CostCenter": "c", "Owner": "", "Project": "p"}},
            None,
            None,
            ["'r' is missing the cost tag(s) Owner"],
        ),
        ({"tags": {"Owner": "o"}}, None, {"CostCenter": "c", "Project": "p"}, []),
        ({"tags": {"Owner": "o"}}, None, {"Project": "p"}, ["'r' is missing the cost tag(s) CostCenter"]),
        ({"tags": {"Team": "t"}}, {"requiredTags": ["Team"]}, None, []),
        ({}, {"requiredTags": ["Team", "Env"]}, None, ["'r' is missing the cost tag(s) Team, Env"]),
    ],
)
def test_required_cost_tags(
    props: dict[str, Any], config: dict[str, Any] | None, provider_tags: dict[str, str] | None, expected: list[str]
) -> None:
    provider = {"region": "us-east-1", "defaultTags": json.dumps({"tags": provider_tags})} if provider_tags else None
    assert violations("required-cost-tags", BUCKET_TYPE, props, config, provider) == expected


@pytest.mark.parametrize(
    "type_",
    ["aws:s3/bucketPolicy:BucketPolicy", "kubernetes:core/v1:Pod", "aws:nosuchmodule/x:X", "aws:s3/x:Nope", "aws:s3"],
)
def test_required_cost_tags_skips_what_cannot_be_tagged(type_: str) -> None:
    assert violations("required-cost-tags", type_, {}) == []

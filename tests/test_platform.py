"""Every stack in every environment, run under Pulumi's mocks (the offline plan), checked for
the properties the platform promises."""

from __future__ import annotations

import json
import runpy
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlwf.contract import api_key_secret_name
from mlwf.dask_cluster import ClusterRuntime
from mlwf.infra import plan as plan_module
from mlwf.infra.plan import plan_environment, run_program
from mlwf.planned import REDACTED, SECRET_MARKER, StackPlan, redact
from mlwf.settings import Settings, load_environment
from mlwf.stacks.programs import ORDER, STACKS

REPO = Path(__file__).resolve().parents[1]
OWNERSHIP = "aws:s3/bucketOwnershipControls:BucketOwnershipControls"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
ENVS = ("dev", "staging", "prod")


@pytest.fixture(scope="module")
def settings() -> dict[str, Settings]:
    return {env: load_environment(env, REPO / "environments") for env in ENVS}


@pytest.fixture(scope="module")
def plans(settings: dict[str, Settings]) -> dict[tuple[str, str], StackPlan]:
    out = {}
    for env in ENVS:
        for plan in plan_environment(settings[env], list(ORDER), REPO):
            out[(env, plan.stack)] = plan
    return out


def resources(plan: StackPlan, type_: str) -> list[dict[str, Any]]:
    return [r.inputs for r in plan.resources if r.type == type_]


def policies(plan: StackPlan) -> list[dict[str, Any]]:
    return [json.loads(r["policy"]) for r in resources(plan, "aws:iam/rolePolicy:RolePolicy")]


def statements(plan: StackPlan) -> list[dict[str, Any]]:
    return [s for p in policies(plan) for s in p["Statement"]]


def test_all_twelve_plans_exist(plans: dict[tuple[str, str], StackPlan]) -> None:
    assert sorted(plans) == sorted((e, s) for e in ENVS for s in ORDER)
    assert all(p.resources for p in plans.values())


@pytest.mark.parametrize(("env", "nat"), [("dev", 1), ("staging", 2), ("prod", 3)])
def test_nat_gateways_per_environment(plans: dict[tuple[str, str], StackPlan], env: str, nat: int) -> None:
    network = plans[(env, "network")]
    assert len(resources(network, "aws:ec2/natGateway:NatGateway")) == nat
    private_tables = [
        t for t in resources(network, "aws:ec2/routeTable:RouteTable") if t.get("routes", [{}])[0].get("natGatewayId")
    ]
    assert len(private_tables) == network_settings_az(env)


def network_settings_az(env: str) -> int:
    return load_environment(env, REPO / "environments").network.az_count


@pytest.mark.parametrize("env", ENVS)
def test_no_task_or_subnet_gets_a_public_ip(plans: dict[tuple[str, str], StackPlan], env: str) -> None:
    for subnet in resources(plans[(env, "network")], "aws:ec2/subnet:Subnet"):
        assert subnet["mapPublicIpOnLaunch"] is False
    services = resources(plans[(env, "prefect-agent")], "aws:ecs/service:Service")
    assert services
    for service in services:
        assert service["networkConfiguration"]["assignPublicIp"] is False
        assert all(s.startswith("private-") for s in service["networkConfiguration"]["subnets"])


@pytest.mark.parametrize("env", ENVS)
def test_scheduler_ports_are_never_open_to_the_internet(plans: dict[tuple[str, str], StackPlan], env: str) -> None:
    network = plans[(env, "network")]
    rules = resources(network, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    for rule in rules:
        assert rule.get("cidrIpv4") not in ("0.0.0.0/0",)
        assert rule.get("cidrIpv6") != "::/0"
    for group in resources(network, "aws:ec2/securityGroup:SecurityGroup"):
        assert not group.get("ingress"), "ingress is declared as separate rules only"
    scheduler_rules = [r for r in rules if r["securityGroupId"] == "dask-scheduler-id"]
    assert {(r["fromPort"], r["toPort"]) for r in scheduler_rules} == {(8786.0, 8787.0)}
    assert {r.get("referencedSecurityGroupId") for r in scheduler_rules} == {"dask-worker-id", "flow-run-id"}


@pytest.mark.parametrize("env", ENVS)
def test_every_ingress_source_is_a_platform_group_or_the_vpc(
    plans: dict[tuple[str, str], StackPlan], settings: dict[str, Settings], env: str
) -> None:
    """The whole ingress table: a source that is any address range (IPv4 or IPv6, public or not)
    other than the VPC's own on the endpoints' HTTPS is a change to review, not a default."""
    rules = resources(plans[(env, "network")], "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    table = {
        (
            r["securityGroupId"],
            r["ipProtocol"],
            r["fromPort"],
            r["toPort"],
            r.get("referencedSecurityGroupId") or r.get("cidrIpv4") or r.get("cidrIpv6") or r.get("prefixListId"),
        )
        for r in rules
    }
    dask = ("tcp", 1024.0, 65535.0)
    scheduler = ("tcp", 8786.0, 8787.0)
    assert table == {
        ("dask-worker-id", *dask, "dask-scheduler-id"),
        ("dask-worker-id", *dask, "dask-worker-id"),
        ("dask-worker-id", *dask, "flow-run-id"),
        ("dask-scheduler-id", *scheduler, "dask-worker-id"),
        ("dask-scheduler-id", *scheduler, "flow-run-id"),
        ("endpoints-id", "tcp", 443.0, 443.0, str(settings[env].network.vpc_cidr)),
    }
    assert len(rules) == len(table)


def test_an_admin_cidr_may_reach_the_scheduler(settings: dict[str, Settings]) -> None:
    dev = settings["dev"]
    with_admin = dev.model_copy(update={"network": dev.network.model_copy(update={"admin_cidr": "192.168.10.0/24"})})
    (network,) = plan_environment(with_admin, ["network"], REPO)
    admin = [
        r for r in resources(network, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule") if r.get("cidrIpv4")
    ]
    assert {(r["securityGroupId"], r["cidrIpv4"]) for r in admin} == {
        ("dask-scheduler-id", "192.168.10.0/24"),
        ("endpoints-id", "10.10.0.0/16"),
    }


@pytest.mark.parametrize("env", ENVS)
def test_private_subnets_reach_aws_services_through_endpoints(
    plans: dict[tuple[str, str], StackPlan], env: str
) -> None:
    endpoints = resources(plans[(env, "network")], "aws:ec2/vpcEndpoint:VpcEndpoint")
    kinds = {e["serviceName"].removeprefix("com.amazonaws.us-east-1."): e["vpcEndpointType"] for e in endpoints}
    assert kinds["s3"] == "Gateway"
    for service in ("ecr.api", "ecr.dkr", "logs", "secretsmanager"):
        assert kinds[service] == "Interface"


@pytest.mark.parametrize("env", ENVS)
def test_the_vpc_resolves_endpoint_names_privately(plans: dict[tuple[str, str], StackPlan], env: str) -> None:
    """Interface endpoints answer the services' public names only with DNS hostnames on; tasks
    reach SSM (the runtime parameter) and STS (their credentials) only through them."""
    network = plans[(env, "network")]
    (vpc,) = resources(network, "aws:ec2/vpc:Vpc")
    assert vpc["enableDnsHostnames"] is True
    assert vpc["enableDnsSupport"] is True
    endpoints = {e["serviceName"].rsplit(".", 1)[-1]: e for e in resources(network, "aws:ec2/vpcEndpoint:VpcEndpoint")}
    for service in ("ssm", "sts", "api", "dkr", "logs", "secretsmanager"):
        assert endpoints[service]["vpcEndpointType"] == "Interface", service
        assert endpoints[service]["privateDnsEnabled"] is True, service
        assert endpoints[service]["securityGroupIds"] == ["endpoints-id"], service


@pytest.mark.parametrize("env", ENVS)
def test_bucket_lifecycle_acls_and_the_image_key_follow_settings(
    plans: dict[tuple[str, str], StackPlan], settings: dict[str, Settings], env: str
) -> None:
    storage, wanted = plans[(env, "storage")], settings[env].storage
    buckets = {r.id: r.name for r in storage.resources if r.type == "aws:s3/bucket:Bucket"}
    ownership = {buckets[r["bucket"]]: r["rule"]["objectOwnership"] for r in resources(storage, OWNERSHIP)}
    assert ownership == dict.fromkeys(buckets.values(), "BucketOwnerEnforced"), "ACLs disabled on every bucket"
    lifecycle = {buckets[r["bucket"]]: {rule["id"]: rule for rule in r["rules"]} for r in resources(storage, LIFECYCLE)}
    data = lifecycle["data"]
    assert data["abort-incomplete-uploads"]["noncurrentVersionExpiration"] == {
        "noncurrentDays": float(wanted.noncurrent_version_expiry_days)
    }
    assert data["abort-incomplete-uploads"]["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 7.0}
    if wanted.raw_transition_to_ia_days is None:
        assert "raw-to-infrequent-access" not in data
    else:
        raw = data["raw-to-infrequent-access"]
        assert raw["filter"] == {"prefix": "raw/"}
        assert raw["transitions"] == [{"storageClass": "STANDARD_IA", "days": float(wanted.raw_transition_to_ia_days)}]
    if "access-logs" in lifecycle:
        logs = lifecycle["access-logs"]["expire-access-logs"]
        assert logs["expiration"] == {"days": float(settings[env].log_retention_days)}
    (key,) = [r for r in storage.resources if r.type == "aws:kms/key:Key"]
    (repository,) = resources(storage, "aws:ecr/repository:Repository")
    assert repository["encryptionConfigurations"] == [{"encryptionType": "KMS", "kmsKey": key.arn}]


@pytest.mark.parametrize("env", ENVS)
def test_the_dask_role_reaches_only_its_key_and_log_group_and_flows_pass_exactly_two_roles(
    plans: dict[tuple[str, str], StackPlan], settings: dict[str, Settings], env: str
) -> None:
    compute, storage = plans[(env, "compute")], plans[(env, "storage")]
    (key,) = [r.arn for r in storage.resources if r.type == "aws:kms/key:Key"]
    (log_group,) = [r.arn for r in compute.resources if r.type == "aws:cloudwatch/logGroup:LogGroup"]
    policies = {
        r["role"]: json.loads(r["policy"])["Statement"] for r in resources(compute, "aws:iam/rolePolicy:RolePolicy")
    }

    def resources_of(role: str, service: str) -> set[str]:
        return {
            arn
            for st in policies[role]
            if any(
                a.startswith(f"{service}:")
                for a in (st["Action"] if isinstance(st["Action"], list) else [st["Action"]])
            )
            for arn in st["Resource"]
        }

    assert resources_of("dask-task-id", "kms") == {key}
    assert resources_of("dask-task-id", "logs") == {f"{log_group}:*"}
    prefix, account = settings[env].name_prefix, settings[env].account_id
    passes = [st for st in policies["flow-run-task-id"] if "iam:PassRole" in st["Action"]]
    assert len(passes) == 1
    assert sorted(passes[0]["Resource"]) == sorted(
        f"arn:aws:iam::{account}:role/{prefix}-{role}" for role in ("task-execution", "dask-task")
    )
    assert passes[0]["Condition"] == {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}
    roles = {r.inputs["name"] for r in compute.resources if r.type == "aws:iam/role:Role"}
    assert {f"{prefix}-task-execution", f"{prefix}-dask-task"} <= roles, "the two roles it passes are the stack's own"


@pytest.mark.parametrize(("env", "expected"), [("dev", False), ("staging", True), ("prod", True)])
def test_flow_logs_follow_settings(plans: dict[tuple[str, str], StackPlan], env: str, expected: bool) -> None:
    assert bool(resources(plans[(env, "network")], "aws:ec2/flowLog:FlowLog")) is expected


@pytest.mark.parametrize("env", ENVS)
def test_every_security_group_rule_says_what_it_is_for(plans: dict[tuple[str, str], StackPlan], env: str) -> None:
    rules = [
        r
        for kind in ("Ingress", "Egress")
        for r in resources(plans[(env, "network")], f"aws:vpc/securityGroup{kind}Rule:SecurityGroup{kind}Rule")
    ]
    assert len(rules) >= 18
    for rule in rules:
        assert rule["description"].endswith(f"(tcp {int(rule['fromPort'])}-{int(rule['toPort'])})"), rule


@pytest.mark.parametrize("env", ENVS)
def test_every_bucket_aborts_incomplete_multipart_uploads(plans: dict[tuple[str, str], StackPlan], env: str) -> None:
    storage = plans[(env, "storage")]
    buckets = {r.id for r in storage.resources if r.type == "aws:s3/bucket:Bucket"}
    aborted = {
        r.inputs["bucket"]
        for r in storage.resources
        if r.type == LIFECYCLE
        and any(
            rule.get("abortIncompleteMultipartUpload", {}).get("daysAfterInitiation")
            and rule["filter"].get("prefix") == ""
            for rule in r.inputs["rules"]
        )
    }
    assert buckets
    assert aborted == buckets


@pytest.mark.parametrize("env", ENVS)
def test_buckets_are_encrypted_blocked_and_tls_only(plans: dict[tuple[str, str], StackPlan], env: str) -> None:
    storage = plans[(env, "storage")]
    buckets = {r.id: r.inputs["bucket"] for r in storage.resources if r.type == "aws:s3/bucket:Bucket"}
    assert len(buckets) == (1 if env == "dev" else 2), "staging and prod log the data bucket's access"

    def per_bucket(type_: str) -> dict[str, dict[str, Any]]:
        return {buckets[r["bucket"]]: r for r in resources(storage, type_)}

    encryption = per_bucket("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
    for name, sse in encryption.items():
        rule = sse["rules"][0]["applyServerSideEncryptionByDefault"]
        if "-data-" in name:
            assert rule["sseAlgorithm"] == "aws:kms"
            assert rule["kmsMasterKeyId"].startswith("arn:aws:kms:")
        else:  # S3 delivers access logs only into SSE-S3 buckets
            assert rule["sseAlgorithm"] == "AES256"
    blocks = per_bucket("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    policies = per_bucket("aws:s3/bucketPolicy:BucketPolicy")
    assert set(encryption) == set(blocks) == set(policies) == set(buckets.values())
    for block in blocks.values():
        assert all(
            block[k] is True
            for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
        )
    for policy in policies.values():
        deny = json.loads(policy["policy"])["Statement"][0]
        assert deny["Effect"] == "Deny"
        assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    (key,) = resources(storage, "aws:kms/key:Key")
    assert key["enableKeyRotation"] is True
    (repo,) = resources(storage, "aws:ecr/repository:Repository")
    assert repo["imageTagMutability"] == "IMMUTABLE"
    assert repo["imageScanningConfiguration"]["scanOnPush"] is True


@pytest.mark.parametrize(("env", "status"), [("dev", "Suspended"), ("staging", "Enabled"), ("prod", "Enabled")])
def test_prod_buckets_are_versioned(plans: dict[tuple[str, str], StackPlan], env: str, status: str) -> None:
    versioning = resources(plans[(env, "storage")], "aws:s3/bucketVersioning:BucketVersioning")
    assert versioning
    assert {v["versioningConfiguration"]["status"] for v in versioning} == {status}


@pytest.mark.parametrize("env", ENVS)
def test_log_groups_keep_logs_for_the_environments_retention(
    plans: dict[tuple[str, str], StackPlan], settings: dict[str, Settings], env: str
) -> None:
    groups = [g for stack in ORDER for g in resources(plans[(env, stack)], "aws:cloudwatch/logGroup:LogGroup")]
    assert groups
    assert {g["retentionInDays"] for g in groups} == {float(settings[env].log_retention_days)}


@pytest.mark.parametrize("env", ENVS)
def test_iam_is_least_privilege(plans: dict[tuple[str, str], StackPlan], env: str) -> None:
    for stack in ORDER:
        for role in resources(plans[(env, stack)], "aws:iam/role:Role"):
            principals = {s["Principal"]["Service"] for s in json.loads(role["assumeRolePolicy"])["Statement"]}
            assert principals <= {"ecs-tasks.amazonaws.com", "vpc-flow-logs.amazonaws.com", "scheduler.amazonaws.com"}
        for st in statements(plans[(env, stack)]):
            actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            assert "*" not in actions
            assert not any(a.endswith(":*") for a in actions)
            if "iam:PassRole" in actions:
                assert "*" not in st["Resource"]
                assert st["Condition"] == {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}


@pytest.mark.parametrize("env", ENVS)
def test_dask_tasks_reach_only_the_data_prefixes_the_workloads_declare(
    plans: dict[tuple[str, str], StackPlan], env: str
) -> None:
    from mlwf.workloads import DataAccess, discover

    data = DataAccess.of(discover(REPO))
    assert "raw/storm_events" in data.writes
    assert "reports/damage_search" in data.writes
    compute = plans[(env, "compute")]
    (dask_policy,) = [
        json.loads(r["policy"])
        for r in resources(compute, "aws:iam/rolePolicy:RolePolicy")
        if r["role"] == "dask-task-id"
    ]
    bucket = f"arn:aws:s3:::mlwf-{env}-data-{load_environment(env, REPO / 'environments').account_id}"
    writes = [*data.writes, *(f"smoke/{p}" for p in data.writes)]

    def granted(action: str) -> list[str]:
        return sorted(r for st in dask_policy["Statement"] if action in st["Action"] for r in st["Resource"])

    def under(prefixes: list[str]) -> list[str]:
        return sorted(f"{bucket}/{p}{tail}" for p in prefixes for tail in ("", "/*"))

    cluster_writes = [*data.cluster_writes, *(f"smoke/{p}" for p in data.cluster_writes)]
    assert granted("s3:PutObject") == under(cluster_writes), "the workers write only where declared"
    assert granted("s3:DeleteObject") == [], "workers never delete (the stage table)"
    assert granted("s3:GetObject") == under([*writes, *data.reads])
    assert not any(r.endswith(("/raw/*", "/*/*")) or r == f"{bucket}/*" for r in granted("s3:GetObject"))
    assert not any(a.startswith(("ecs:", "iam:")) for s in dask_policy["Statement"] for a in s["Action"])


@pytest.mark.parametrize("env", ENVS)
def test_only_the_flow_run_role_deletes_and_only_where_workloads_write(
    plans: dict[tuple[str, str], StackPlan], env: str
) -> None:
    """The stage table (docs/security.md): publish cleans up failed attempts and ingest replaces
    and quarantines, both in the flow process; the workers never delete."""
    from mlwf.workloads import DataAccess, discover

    data = DataAccess.of(discover(REPO))
    compute = plans[(env, "compute")]
    bucket = f"arn:aws:s3:::mlwf-{env}-data-{load_environment(env, REPO / 'environments').account_id}"
    deleters = {}
    for policy in resources(compute, "aws:iam/rolePolicy:RolePolicy"):
        granted = [
            r
            for st in json.loads(policy["policy"])["Statement"]
            if "s3:DeleteObject" in st["Action"]
            for r in st["Resource"]
        ]
        if granted:
            deleters[policy["role"]] = sorted(granted)
    writes = [*data.writes, *(f"smoke/{p}" for p in data.writes)]
    assert deleters == {"flow-run-task-id": sorted(f"{bucket}/{p}{t}" for p in writes for t in ("", "/*"))}


@pytest.mark.parametrize("env", ENVS)
def test_only_flow_runs_and_the_worker_go_out_to_the_internet_and_only_over_https(
    plans: dict[tuple[str, str], StackPlan], env: str
) -> None:
    network = plans[(env, "network")]
    outward = [
        (r["securityGroupId"], r["fromPort"], r["toPort"])
        for r in resources(network, "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
        if r.get("cidrIpv4") or r.get("cidrIpv6")
    ]
    assert outward == [("flow-run-id", 443.0, 443.0)]
    assert all("egress" not in g for g in resources(network, "aws:ec2/securityGroup:SecurityGroup"))
    (default,) = resources(network, "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    assert "ingress" not in default
    assert "egress" not in default


@pytest.mark.parametrize("env", ENVS)
def test_the_api_key_is_only_reachable_as_a_secret(plans: dict[tuple[str, str], StackPlan], env: str) -> None:
    agent = plans[(env, "prefect-agent")]
    (secret,) = resources(agent, "aws:secretsmanager/secret:Secret")
    assert secret["name"] == api_key_secret_name(f"mlwf-{env}")
    assert not resources(agent, "aws:secretsmanager/secretVersion:SecretVersion"), (
        "the stack never holds the key's value (an administrator puts it: mlwf secrets set)"
    )
    document = json.dumps([p.to_json() for (e, _), p in plans.items() if e == env])
    assert SECRET_MARKER not in document
    assert REDACTED not in document, "no stack has a secret in its config or state"
    tasks = resources(agent, "aws:ecs/taskDefinition:TaskDefinition")
    assert {t["family"] for t in tasks} == {f"mlwf-{env}-prefect-worker", f"mlwf-{env}-flow-run"}
    for task in tasks:  # the worker and every flow run it starts
        (container,) = json.loads(task["containerDefinitions"])
        assert [s["name"] for s in container["secrets"]] == ["PREFECT_API_KEY"]
        assert container["secrets"][0]["valueFrom"].startswith("arn:aws:secretsmanager:")
        assert not any("KEY" in e["name"] or "TOKEN" in e["name"] for e in container["environment"])
        assert container["logConfiguration"]["logDriver"] == "awslogs"
        assert container["privileged"] is False


@pytest.mark.parametrize("env", ENVS)
def test_cost_tags_come_from_one_mechanism(
    plans: dict[tuple[str, str], StackPlan], settings: dict[str, Settings], env: str
) -> None:
    for stack in ORDER:
        plan = plans[(env, stack)]
        (provider,) = resources(plan, "pulumi:providers:aws")
        # Provider inputs reach the engine JSON-encoded.
        assert json.loads(provider["defaultTags"])["tags"] == settings[env].tags
        assert json.loads(provider["allowedAccountIds"]) == [settings[env].account_id]
        for resource in plan.resources:
            assert "CostCenter" not in (resource.inputs.get("tags") or {}), f"{resource.name} tags cost by hand"


@pytest.mark.parametrize("env", ENVS)
def test_compute_publishes_the_flow_runtime(plans: dict[tuple[str, str], StackPlan], env: str) -> None:
    compute, network = plans[(env, "compute")], plans[(env, "network")]
    (parameter,) = resources(compute, "aws:ssm/parameter:Parameter")
    assert parameter["name"] == f"/mlwf-{env}/compute"
    assert parameter["type"] == "String"
    assert "value" not in parameter
    runtime = ClusterRuntime(**json.loads(parameter["insecureValue"]))
    assert runtime.private_subnets == network.outputs["private_subnet_ids"]
    assert runtime.scheduler_security_group == network.outputs["scheduler_security_group_id"]
    assert runtime.data_root.startswith(f"s3://mlwf-{env}-data-")
    assert runtime.image.rsplit(":", 1)[-1].startswith("py3.11-")
    capacity = resources(compute, "aws:ecs/clusterCapacityProviders:ClusterCapacityProviders")[0]
    assert capacity["capacityProviders"] == ["FARGATE", "FARGATE_SPOT"]


def test_exports_are_the_small_stable_contract(plans: dict[tuple[str, str], StackPlan]) -> None:
    assert set(plans[("dev", "network")].outputs) == {
        "vpc_id",
        "private_subnet_ids",
        "public_subnet_ids",
        "scheduler_security_group_id",
        "worker_security_group_id",
        "flow_security_group_id",
        "logs_kms_key_arn",
    }
    assert set(plans[("dev", "prefect-agent")].outputs) == {
        "service_name",
        "worker_role_arn",
        "api_key_secret_arn",
        "work_pool_parameter",
    }


@pytest.mark.parametrize("stack", ORDER)
def test_pulumi_projects_are_valid_and_entry_points_thin(stack: str) -> None:
    project = yaml.safe_load((REPO / "platform" / stack / "Pulumi.yaml").read_text())
    assert project["name"] == STACKS[stack].project
    assert project["runtime"]["name"] == "python"
    assert project["runtime"]["options"]["virtualenv"] == "../../.venv"
    code = [line for line in (REPO / "platform" / stack / "__main__.py").read_text().splitlines() if line.strip()]
    assert len(code) <= 5


def test_the_real_entry_point_runs_under_mocks(settings: dict[str, Settings], monkeypatch: pytest.MonkeyPatch) -> None:
    """`platform/prefect-agent/__main__.py` as the engine runs it: stack name = environment,
    no config secret, upstream outputs through stack references."""
    monkeypatch.chdir(REPO / "platform" / "prefect-agent")
    network = plan_environment(settings["prod"], ["network", "storage", "compute"], REPO)
    upstream = {p.stack: p.outputs for p in network}
    mocks = plan_module.PlanMocks(settings["prod"], upstream)

    def program() -> dict[str, Any]:
        runpy.run_path(str(REPO / "platform" / "prefect-agent" / "__main__.py"), run_name="__main__")
        return {}

    run_program(program, mocks, "mlwf-prefect-agent", "prod")
    refs = [r for r in mocks.resources if r.type == "aws:ecs/service:Service"]
    assert refs
    assert refs[0].inputs["cluster"] == upstream["compute"]["platform_cluster_arn"], "apart from run code"
    assert [r.inputs["name"] for r in mocks.resources if r.type.startswith("aws:secretsmanager/")] == [
        "mlwf-prod/prefect-api-key"
    ]


@pytest.mark.parametrize("env", ENVS)
def test_the_compute_stack_schedules_the_reaper(plans: dict[tuple[str, str], StackPlan], env: str) -> None:
    compute = plans[(env, "compute")]
    (schedule,) = resources(compute, "aws:scheduler/schedule:Schedule")
    assert schedule["scheduleExpression"] == "rate(1 hour)"
    assert schedule["target"]["ecsParameters"]["networkConfiguration"]["assignPublicIp"] is False
    reaper = next(
        t for t in resources(compute, "aws:ecs/taskDefinition:TaskDefinition") if t["family"].endswith("-reaper")
    )
    (container,) = json.loads(reaper["containerDefinitions"])
    assert container["command"] == ["mlwf", "reap", "--env", env]
    (reaper_policy,) = [
        json.loads(r["policy"])
        for r in resources(compute, "aws:iam/rolePolicy:RolePolicy")
        if r["role"] == "reaper-task-id"
    ]
    actions = {a for s in reaper_policy["Statement"] for a in s["Action"]}
    assert "ecs:StopTask" in actions
    assert not any(a.startswith(("iam:", "s3:")) for a in actions)


def test_a_secret_output_never_leaves_the_plan_in_plain_text() -> None:
    """Pulumi's wrapped secrets (from any provider output) are redacted wherever they sit."""
    wrapped = {SECRET_MARKER: "1b47061264138c4ac30d75fd1eb44270", "value": "plain"}
    assert redact({"a": wrapped, "b": [wrapped, {"c": 1}]}) == {"a": REDACTED, "b": [REDACTED, {"c": 1}]}

"""What the stacks would create, created on the emulated AWS from their offline plan.

Only what flows need: the VPC, its subnets and security groups, the ECS cluster with its
capacity providers, the task definitions, log groups, the bucket, the key, the secret, the SSM
parameters, the task-events queue and its EventBridge rule, and the roles. Everything is read
from the plan (`mlwf plan --json`'s resources), never written here a second time: mocked IDs
and ARNs in one resource's inputs are replaced by the real ones of the resources they name.

Each role becomes an IAM user holding exactly the role's inline policies (moto cannot assume
service-trusted roles), with non-S3/SQS resources widened to ``"*"`` (moto compares them with
the literal ``"*"``). Networking (routes, NAT, endpoints, security group rules), bucket
policies (TLS is not emulated) and schedules are not created.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from mlwf.infra.plan import PlannedResource, StackPlan
from mlwf.rehearsal.cloud import Credentials, EmulatedAWS

ARN_CHECKED = ("s3", "sqs")  # services whose resource ARNs moto checks (the rest: "*" only)


@dataclass(frozen=True)
class Service:
    """An ECS service of the plan: the rehearsal runs its task as ECS's scheduler would."""

    name: str
    cluster: str
    task_definition: str
    network: dict[str, Any]
    tags: dict[str, str]


@dataclass
class World:
    """The seeded AWS: real IDs by mocked ones, the identity of each role, the services."""

    real: dict[str, str] = field(default_factory=dict)
    identities: dict[str, Credentials] = field(default_factory=dict)  # role ARN -> user keys
    roles: dict[str, str] = field(default_factory=dict)  # role name -> role ARN
    services: list[Service] = field(default_factory=list)
    task_definitions: list[str] = field(default_factory=list)
    policies: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # role name -> documents

    def identity(self, role_name: str) -> Credentials:
        return self.identities[self.roles[role_name]]


class Seeder:
    def __init__(self, aws: EmulatedAWS, api_key: str, withhold: dict[str, list[str]] | None = None) -> None:
        self.aws = aws
        self.api_key = api_key
        self.withhold = withhold or {}  # role name -> actions its user lacks (a scenario's knob)
        self.world = World()
        self._policies: dict[str, list[dict[str, Any]]] = defaultdict(list)  # role id -> documents
        self._role_ids: dict[str, tuple[str, str]] = {}  # role id -> (name, ARN)
        self._handlers: dict[str, Callable[[PlannedResource], None]] = {
            "aws:ec2/vpc:Vpc": self._vpc,
            "aws:ec2/subnet:Subnet": self._subnet,
            "aws:ec2/securityGroup:SecurityGroup": self._security_group,
            "aws:ecs/cluster:Cluster": self._cluster,
            "aws:ecs/clusterCapacityProviders:ClusterCapacityProviders": self._capacity_providers,
            "aws:cloudwatch/logGroup:LogGroup": self._log_group,
            "aws:s3/bucket:Bucket": self._bucket,
            "aws:kms/key:Key": self._key,
            "aws:iam/role:Role": self._role,
            "aws:iam/rolePolicy:RolePolicy": self._role_policy,
            "aws:secretsmanager/secret:Secret": self._secret,
            "aws:secretsmanager/secretVersion:SecretVersion": self._secret_version,
            "aws:sqs/queue:Queue": self._queue,
            "aws:sqs/queuePolicy:QueuePolicy": self._queue_policy,
            "aws:cloudwatch/eventRule:EventRule": self._rule,
            "aws:cloudwatch/eventTarget:EventTarget": self._target,
            "aws:ecs/taskDefinition:TaskDefinition": self._task_definition,
            "aws:ssm/parameter:Parameter": self._parameter,
            "aws:ecs/service:Service": self._service,
        }

    def seed(self, plans: Iterable[StackPlan]) -> World:
        for plan in plans:
            for resource in plan.resources:
                handler = self._handlers.get(resource.type)
                if handler is not None:
                    handler(resource)
        self._create_identities()
        return self.world

    # -- mocked values -> real ones -----------------------------------------------------------

    def _map(self, resource: PlannedResource, real_id: str, real_arn: str | None = None) -> None:
        self.world.real[resource.id] = real_id
        if resource.arn:
            self.world.real[resource.arn] = real_arn or real_id

    def sub(self, value: Any) -> Any:
        """Replace every mocked ID/ARN/URL inside a value (nested, or JSON text) by the real one."""
        if isinstance(value, dict):
            return {k: self.sub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.sub(v) for v in value]
        if not isinstance(value, str):
            return value
        if value in self.world.real:
            return self.world.real[value]
        if value[:1] in "[{":
            try:
                return json.dumps(self.sub(json.loads(value)))
            except ValueError:
                pass
        for mocked in sorted(self.world.real, key=len, reverse=True):
            if mocked.startswith(("arn:", "https://")) and mocked in value:
                value = value.replace(mocked, self.world.real[mocked])
        return value

    def _input(self, resource: PlannedResource, key: str, default: Any = None) -> Any:
        return self.sub(resource.inputs.get(key, default))

    # -- resources ----------------------------------------------------------------------------

    def _vpc(self, r: PlannedResource) -> None:
        ec2 = self.aws.client("ec2")
        vpc = ec2.create_vpc(CidrBlock=r.inputs["cidrBlock"])["Vpc"]["VpcId"]
        for attribute in ("enableDnsHostnames", "enableDnsSupport"):
            if r.inputs.get(attribute):
                ec2.modify_vpc_attribute(VpcId=vpc, **{attribute[0].upper() + attribute[1:]: {"Value": True}})
        self._map(r, vpc)

    def _subnet(self, r: PlannedResource) -> None:
        subnet = self.aws.client("ec2").create_subnet(
            VpcId=self._input(r, "vpcId"),
            CidrBlock=r.inputs["cidrBlock"],
            AvailabilityZone=r.inputs.get("availabilityZone", f"{self.aws.region}a"),
        )
        self._map(r, subnet["Subnet"]["SubnetId"])

    def _security_group(self, r: PlannedResource) -> None:
        group = self.aws.client("ec2").create_security_group(
            GroupName=r.name, Description=r.inputs.get("description", r.name), VpcId=self._input(r, "vpcId")
        )
        self._map(r, group["GroupId"])

    def _cluster(self, r: PlannedResource) -> None:
        arn = self.aws.client("ecs").create_cluster(clusterName=r.inputs["name"])["cluster"]["clusterArn"]
        self._map(r, arn)

    def _capacity_providers(self, r: PlannedResource) -> None:
        self.aws.client("ecs").put_cluster_capacity_providers(
            cluster=self._input(r, "clusterName"),
            capacityProviders=r.inputs["capacityProviders"],
            defaultCapacityProviderStrategy=[
                {"capacityProvider": s["capacityProvider"], "weight": int(s.get("weight", 1))}
                for s in r.inputs.get("defaultCapacityProviderStrategies", [])
            ],
        )

    def _log_group(self, r: PlannedResource) -> None:
        logs = self.aws.client("logs")
        name = r.inputs["name"]
        logs.create_log_group(logGroupName=name)
        logs.put_retention_policy(logGroupName=name, retentionInDays=int(r.inputs["retentionInDays"]))
        arn = logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"][0]["arn"].removesuffix(":*")
        self._map(r, name, arn)

    def _bucket(self, r: PlannedResource) -> None:
        bucket = r.inputs["bucket"]
        self.aws.client("s3").create_bucket(Bucket=bucket)
        self._map(r, bucket, f"arn:aws:s3:::{bucket}")

    def _key(self, r: PlannedResource) -> None:
        key = self.aws.client("kms").create_key(Description=r.inputs.get("description", r.name))["KeyMetadata"]
        self._map(r, key["KeyId"], key["Arn"])

    def _role(self, r: PlannedResource) -> None:
        name = r.inputs.get("name", r.name)
        role = self.aws.client("iam").create_role(RoleName=name, AssumeRolePolicyDocument=r.inputs["assumeRolePolicy"])[
            "Role"
        ]
        self._map(r, name, role["Arn"])
        self._role_ids[r.id] = (name, role["Arn"])
        self.world.roles[name] = role["Arn"]

    def _role_policy(self, r: PlannedResource) -> None:
        self._policies[r.inputs["role"]].append(json.loads(self._input(r, "policy")))

    def _secret(self, r: PlannedResource) -> None:
        secret = self.aws.client("secretsmanager").create_secret(
            Name=r.inputs["name"], KmsKeyId=self._input(r, "kmsKeyId"), SecretString="not yet set"
        )
        self._map(r, secret["ARN"])

    def _secret_version(self, r: PlannedResource) -> None:
        """The plan never holds the secret's value; the rehearsal's stands in for it."""
        self.aws.client("secretsmanager").put_secret_value(
            SecretId=self._input(r, "secretId"), SecretString=self.api_key
        )

    def _queue(self, r: PlannedResource) -> None:
        sqs = self.aws.client("sqs")
        attributes = {
            key: str(int(r.inputs[name]))
            for name, key in (
                ("messageRetentionSeconds", "MessageRetentionPeriod"),
                ("visibilityTimeoutSeconds", "VisibilityTimeout"),
            )
            if name in r.inputs
        }
        if "redrivePolicy" in r.inputs:
            attributes["RedrivePolicy"] = self._input(r, "redrivePolicy")
        url = sqs.create_queue(QueueName=r.inputs["name"], Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self._map(r, url, arn)

    def _queue_policy(self, r: PlannedResource) -> None:
        self.aws.client("sqs").set_queue_attributes(
            QueueUrl=self._input(r, "queueUrl"), Attributes={"Policy": self._input(r, "policy")}
        )

    def _rule(self, r: PlannedResource) -> None:
        arn = self.aws.client("events").put_rule(
            Name=r.inputs["name"], EventPattern=self._input(r, "eventPattern"), State="ENABLED"
        )["RuleArn"]
        self._map(r, r.inputs["name"], arn)

    def _target(self, r: PlannedResource) -> None:
        self.aws.client("events").put_targets(
            Rule=self._input(r, "rule"), Targets=[{"Id": r.inputs["targetId"], "Arn": self._input(r, "arn")}]
        )

    def _task_definition(self, r: PlannedResource) -> None:
        inputs = self.sub(r.inputs)
        arn = self.aws.client("ecs").register_task_definition(
            family=inputs["family"],
            containerDefinitions=json.loads(inputs["containerDefinitions"]),
            cpu=inputs["cpu"],
            memory=inputs["memory"],
            networkMode=inputs["networkMode"],
            requiresCompatibilities=inputs["requiresCompatibilities"],
            executionRoleArn=inputs["executionRoleArn"],
            taskRoleArn=inputs["taskRoleArn"],
        )["taskDefinition"]["taskDefinitionArn"]
        self._map(r, arn)
        self.world.task_definitions.append(arn)

    def _parameter(self, r: PlannedResource) -> None:
        self.aws.client("ssm").put_parameter(
            Name=r.inputs["name"], Type=r.inputs.get("type", "String"), Value=self._input(r, "insecureValue")
        )

    def _service(self, r: PlannedResource) -> None:
        inputs = self.sub(r.inputs)
        network = inputs["networkConfiguration"]
        self.world.services.append(
            Service(
                name=inputs["name"],
                cluster=inputs["cluster"],
                task_definition=inputs["taskDefinition"],
                network={
                    "subnets": network["subnets"],
                    "securityGroups": network["securityGroups"],
                    "assignPublicIp": "ENABLED" if network.get("assignPublicIp") else "DISABLED",
                },
                tags=dict(inputs.get("tags") or {}),
            )
        )

    # -- identities ---------------------------------------------------------------------------

    def _create_identities(self) -> None:
        for role_id, (name, arn) in self._role_ids.items():
            self.world.policies[name] = self._policies.get(role_id, [])
            self.world.identities[arn] = user_for_role(self.aws, name, name, self.withhold.get(name, []), self.world)


def user_for_role(aws: EmulatedAWS, user: str, role: str, withheld: list[str], world: World) -> Credentials:
    """An IAM user holding ``role``'s policies (less ``withheld`` actions), and its keys."""
    iam = aws.client("iam")
    iam.create_user(UserName=user)
    for index, document in enumerate(world.policies[role]):
        policy = as_user_policy(document, withheld)
        iam.put_user_policy(UserName=user, PolicyName=f"{role}-{index}", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    return Credentials(user, key["AccessKeyId"], key["SecretAccessKey"])


def as_user_policy(document: dict[str, Any], withheld: list[str]) -> dict[str, Any]:
    """A role's policy for moto: resources outside S3/SQS widened to "*" (moto compares them
    with the literal "*"), ``withheld`` actions taken out."""
    statements = []
    for statement in document["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        actions = [a for a in actions if a not in withheld]
        if not actions:
            continue
        checked = all(a.split(":", 1)[0] in ARN_CHECKED for a in actions)
        statements.append({**statement, "Action": actions, "Resource": statement["Resource"] if checked else "*"})
    return {"Version": document.get("Version", "2012-10-17"), "Statement": statements}

"""The network stack: VPC, public and private subnets across AZs, NAT per settings, VPC
endpoints for private Fargate tasks, flow logs, the security groups of the Dask scheduler, the
Dask workers and the Prefect flow runs (egress only where each must go), the VPC's default
security group closed, and the environment's KMS key for logs.

The logs key lives here because the network stack comes first: its own flow-log group needs a
key before any other stack exists, and the compute and prefect-agent stacks take it from here
for theirs (one key for the environment's logs, usable by CloudWatch Logs for /mlwf/<env>/* only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from mlwf.delivery import boundary_arn
from mlwf.settings import Settings
from mlwf.stacks.context import StackContext
from mlwf.stacks.iam import LOG_WRITE, document, statement, trust_policy
from mlwf.stacks.keys import customer_key, key_policy, use_by_log_groups

DASK_PORTS = (8786, 8787)
INTERFACE_ENDPOINTS = ("ecr.api", "ecr.dkr", "logs", "secretsmanager", "ssm", "sts")


@dataclass(frozen=True)
class NetworkArgs:
    settings: Settings
    name_prefix: str


class Network(pulumi.ComponentResource):
    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlwf:network:Network", name, None, opts)
        self._args = args
        net = args.settings.network
        self._child = pulumi.ResourceOptions(parent=self)
        self.vpc = aws.ec2.Vpc(
            "vpc",
            cidr_block=str(net.vpc_cidr),
            enable_dns_hostnames=True,  # Fargate awsvpc tasks and interface endpoints need both
            enable_dns_support=True,
            tags={"Name": f"{args.name_prefix}-vpc"},
            opts=self._child,
        )
        # No rules: nothing may use the default group (FSBP EC2.2).
        aws.ec2.DefaultSecurityGroup(
            "default", vpc_id=self.vpc.id, tags={"Name": f"{args.name_prefix}-default-closed"}, opts=self._child
        )
        self.logs_key = customer_key(
            "logs", args.settings, "logs", key_policy(args.settings, use_by_log_groups(args.settings)), self._child
        )
        zones = aws.get_availability_zones(state="available", opts=pulumi.InvokeOptions(parent=self))
        self.azs = zones.names[: net.az_count]
        public_cidrs, private_cidrs = net.subnets()
        self.public_subnets = [self._subnet("public", i, str(c)) for i, c in enumerate(public_cidrs)]
        self.private_subnets = [self._subnet("private", i, str(c)) for i, c in enumerate(private_cidrs)]
        self._create_routes(net.nat_gateways)
        self.scheduler_sg, self.worker_sg, self.flow_sg, self.endpoint_sg = self._create_security_groups()
        s3_prefix_list = self._create_endpoints()
        self._create_egress(s3_prefix_list)
        if net.flow_logs:
            self._create_flow_logs()
        self.register_outputs(
            {
                "vpc_id": self.vpc.id,
                "private_subnet_ids": [s.id for s in self.private_subnets],
                "public_subnet_ids": [s.id for s in self.public_subnets],
            }
        )

    def _subnet(self, tier: str, index: int, cidr: str) -> aws.ec2.Subnet:
        return aws.ec2.Subnet(
            f"{tier}-{index}",
            vpc_id=self.vpc.id,
            cidr_block=cidr,
            availability_zone=self.azs[index],
            map_public_ip_on_launch=False,  # nothing gets a public IP implicitly, even here
            tags={"Name": f"{self._args.name_prefix}-{tier}-{index}", "mlwf:tier": tier},
            opts=self._child,
        )

    def _create_routes(self, nat_count: int) -> None:
        igw = aws.ec2.InternetGateway("igw", vpc_id=self.vpc.id, opts=self._child)
        public_rt = aws.ec2.RouteTable(
            "public",
            vpc_id=self.vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=igw.id)],
            opts=self._child,
        )
        for i, subnet in enumerate(self.public_subnets):
            aws.ec2.RouteTableAssociation(
                f"public-{i}", subnet_id=subnet.id, route_table_id=public_rt.id, opts=self._child
            )
        nats = []
        for i in range(nat_count):
            eip = aws.ec2.Eip(f"nat-{i}", domain="vpc", opts=self._child)
            nats.append(
                aws.ec2.NatGateway(
                    f"nat-{i}", subnet_id=self.public_subnets[i].id, allocation_id=eip.id, opts=self._child
                )
            )
        self.private_route_tables = []
        for i, subnet in enumerate(self.private_subnets):
            routes = (
                [aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", nat_gateway_id=nats[i % nat_count].id)]
                if nats
                else []
            )
            table = aws.ec2.RouteTable(f"private-{i}", vpc_id=self.vpc.id, routes=routes, opts=self._child)
            aws.ec2.RouteTableAssociation(
                f"private-{i}", subnet_id=subnet.id, route_table_id=table.id, opts=self._child
            )
            self.private_route_tables.append(table)

    def _security_group(self, name: str, description: str) -> aws.ec2.SecurityGroup:
        """A group with no inline rules: the provider removes AWS's default allow-all egress when
        it creates a group, and each rule is a resource of its own below."""
        return aws.ec2.SecurityGroup(
            name,
            vpc_id=self.vpc.id,
            description=description,
            tags={"Name": f"{self._args.name_prefix}-{name}"},
            opts=self._child,
        )

    def _rule(self, kind: Any, name: str, group: aws.ec2.SecurityGroup, ports: tuple[int, int], **peer: Any) -> None:
        """A TCP rule of ``group`` over ``ports``: ``kind`` is `aws.vpc.SecurityGroupIngressRule` or
        `...EgressRule`, ``peer`` its other side (a group, a CIDR or a prefix list)."""
        kind(
            name,
            security_group_id=group.id,
            description=f"{name.replace('-', ' ')} (tcp {ports[0]}-{ports[1]})",  # what each rule is for
            ip_protocol="tcp",
            from_port=ports[0],
            to_port=ports[1],
            **peer,
            opts=self._child,
        )

    def _egress(self, name: str, group: aws.ec2.SecurityGroup, ports: tuple[int, int], **target: Any) -> None:
        self._rule(aws.vpc.SecurityGroupEgressRule, name, group, ports, **target)

    def _create_egress(self, s3_prefix_list: pulumi.Output[str]) -> None:
        """Egress only where each group must go: the Dask groups to each other, to the VPC
        endpoints and to S3 (its gateway's prefix list); flow runs and the Prefect worker also
        to HTTPS anywhere (the Prefect API and data sources, through the NAT). The endpoints'
        group needs none."""
        dask_ports, high = (min(DASK_PORTS), max(DASK_PORTS)), (1024, 65535)
        peers = {
            "scheduler": [("workers", self.worker_sg, high)],
            "workers": [("scheduler", self.scheduler_sg, dask_ports), ("workers", self.worker_sg, high)],
            "flows": [("scheduler", self.scheduler_sg, dask_ports), ("workers", self.worker_sg, high)],
        }
        groups = {"scheduler": self.scheduler_sg, "workers": self.worker_sg, "flows": self.flow_sg}
        for source, group in groups.items():
            for target, peer, ports in peers[source]:
                self._egress(f"{source}-to-{target}", group, ports, referenced_security_group_id=peer.id)
            self._egress(f"{source}-to-endpoints", group, (443, 443), referenced_security_group_id=self.endpoint_sg.id)
            self._egress(f"{source}-to-s3", group, (443, 443), prefix_list_id=s3_prefix_list)
        self._egress("flows-to-https", self.flow_sg, (443, 443), cidr_ipv4="0.0.0.0/0")

    def _ingress(self, name: str, group: aws.ec2.SecurityGroup, ports: tuple[int, int], **source: Any) -> None:
        self._rule(aws.vpc.SecurityGroupIngressRule, name, group, ports, **source)

    def _create_security_groups(self) -> tuple[aws.ec2.SecurityGroup, ...]:
        scheduler = self._security_group("dask-scheduler", "Dask scheduler: 8786/8787 from workers and flow runs only")
        worker = self._security_group("dask-worker", "Dask workers: from the scheduler and each other")
        flow = self._security_group("flow-run", "Prefect worker and flow-run tasks: no ingress")
        endpoint = self._security_group("endpoints", "VPC interface endpoints: HTTPS from inside the VPC")
        dask_ports = (min(DASK_PORTS), max(DASK_PORTS))
        self._ingress("scheduler-from-workers", scheduler, dask_ports, referenced_security_group_id=worker.id)
        self._ingress("scheduler-from-flows", scheduler, dask_ports, referenced_security_group_id=flow.id)
        admin = self._args.settings.network.admin_cidr
        if admin is not None:
            self._ingress("scheduler-from-admin", scheduler, dask_ports, cidr_ipv4=str(admin))
        for source_name, source in (("scheduler", scheduler), ("workers", worker), ("flows", flow)):
            self._ingress(f"worker-from-{source_name}", worker, (1024, 65535), referenced_security_group_id=source.id)
        self._ingress("endpoints-https", endpoint, (443, 443), cidr_ipv4=str(self._args.settings.network.vpc_cidr))
        return scheduler, worker, flow, endpoint

    def _create_endpoints(self) -> pulumi.Output[str]:
        """The S3 gateway and the interface endpoints; returns S3's prefix list (for egress)."""
        region = self._args.settings.region
        s3 = aws.ec2.VpcEndpoint(
            "s3",
            vpc_id=self.vpc.id,
            service_name=f"com.amazonaws.{region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[t.id for t in self.private_route_tables],
            opts=self._child,
        )
        for service in INTERFACE_ENDPOINTS:
            aws.ec2.VpcEndpoint(
                service.replace(".", "-"),
                vpc_id=self.vpc.id,
                service_name=f"com.amazonaws.{region}.{service}",
                vpc_endpoint_type="Interface",
                private_dns_enabled=True,
                subnet_ids=[s.id for s in self.private_subnets],
                security_group_ids=[self.endpoint_sg.id],
                opts=self._child,
            )
        return s3.prefix_list_id

    def _create_flow_logs(self) -> None:
        settings = self._args.settings
        group = aws.cloudwatch.LogGroup(
            "flow-logs",
            name=f"/mlwf/{settings.name}/vpc-flow-logs",
            retention_in_days=settings.log_retention_days,
            kms_key_id=self.logs_key.arn,
            opts=self._child,
        )
        role = aws.iam.Role(
            "flow-logs",
            name=f"{settings.name_prefix}-flow-logs",  # under the prefix the deploy role may manage
            permissions_boundary=boundary_arn(settings),
            assume_role_policy=trust_policy(
                "vpc-flow-logs.amazonaws.com",
                settings.account_id,
                f"arn:aws:ec2:{settings.region}:{settings.account_id}:vpc-flow-log/*",
            ),
            opts=self._child,
        )
        aws.iam.RolePolicy(
            "flow-logs",
            role=role.id,
            policy=document(statement([*LOG_WRITE, "logs:DescribeLogStreams"], [group.arn.apply(lambda a: f"{a}:*")])),
            opts=self._child,
        )
        aws.ec2.FlowLog(
            "vpc",
            vpc_id=self.vpc.id,
            traffic_type="ALL",
            log_destination=group.arn,
            iam_role_arn=role.arn,
            opts=self._child,
        )


def network_program(ctx: StackContext) -> dict[str, Any]:
    """Stack program: the network of one environment; exports what compute and flows consume."""
    network = Network("network", NetworkArgs(ctx.settings, ctx.settings.name_prefix), ctx.opts)
    return {
        "vpc_id": network.vpc.id,
        "private_subnet_ids": [s.id for s in network.private_subnets],
        "public_subnet_ids": [s.id for s in network.public_subnets],
        "scheduler_security_group_id": network.scheduler_sg.id,
        "worker_security_group_id": network.worker_sg.id,
        "flow_security_group_id": network.flow_sg.id,
        "logs_kms_key_arn": network.logs_key.arn,
    }

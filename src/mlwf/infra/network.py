"""The network stack: VPC, public and private subnets across AZs, NAT per settings, VPC
endpoints for private Fargate tasks, flow logs, and the security groups of the Dask scheduler,
the Dask workers and the Prefect flow runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from mlwf.infra.iam import LOG_WRITE, document, statement, trust_policy
from mlwf.settings import Settings

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
        zones = aws.get_availability_zones(state="available", opts=pulumi.InvokeOptions(parent=self))
        self.azs = zones.names[: net.az_count]
        public_cidrs, private_cidrs = net.subnets()
        self.public_subnets = [self._subnet("public", i, str(c)) for i, c in enumerate(public_cidrs)]
        self.private_subnets = [self._subnet("private", i, str(c)) for i, c in enumerate(private_cidrs)]
        self._create_routes(net.nat_gateways)
        self.scheduler_sg, self.worker_sg, self.flow_sg, self.endpoint_sg = self._create_security_groups()
        self._create_endpoints()
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
        return aws.ec2.SecurityGroup(
            name,
            vpc_id=self.vpc.id,
            description=description,
            egress=[aws.ec2.SecurityGroupEgressArgs(protocol="-1", from_port=0, to_port=0, cidr_blocks=["0.0.0.0/0"])],
            tags={"Name": f"{self._args.name_prefix}-{name}"},
            opts=self._child,
        )

    def _ingress(self, name: str, group: aws.ec2.SecurityGroup, ports: tuple[int, int], **source: Any) -> None:
        aws.vpc.SecurityGroupIngressRule(
            name,
            security_group_id=group.id,
            ip_protocol="tcp",
            from_port=ports[0],
            to_port=ports[1],
            **source,
            opts=self._child,
        )

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

    def _create_endpoints(self) -> None:
        region = self._args.settings.region
        aws.ec2.VpcEndpoint(
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

    def _create_flow_logs(self) -> None:
        settings = self._args.settings
        group = aws.cloudwatch.LogGroup(
            "flow-logs",
            name=f"/mlwf/{settings.name}/vpc-flow-logs",
            retention_in_days=settings.log_retention_days,
            opts=self._child,
        )
        role = aws.iam.Role(
            "flow-logs", assume_role_policy=trust_policy("vpc-flow-logs.amazonaws.com"), opts=self._child
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


def network_program(ctx: Any) -> dict[str, Any]:
    """Stack program: the network of one environment; exports what compute and flows consume."""
    network = Network("network", NetworkArgs(ctx.settings, ctx.settings.name_prefix), ctx.opts)
    return {
        "vpc_id": network.vpc.id,
        "private_subnet_ids": [s.id for s in network.private_subnets],
        "public_subnet_ids": [s.id for s in network.public_subnets],
        "scheduler_security_group_id": network.scheduler_sg.id,
        "worker_security_group_id": network.worker_sg.id,
        "flow_security_group_id": network.flow_sg.id,
    }

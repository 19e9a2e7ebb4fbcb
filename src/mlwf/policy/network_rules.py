"""Network guardrails: what may reach what from where."""

from __future__ import annotations

from pulumi_policy import (
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from mlwf.policy.helpers import config_value, ingress_rules

SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
LOAD_BALANCER = "aws:lb/loadBalancer:LoadBalancer"
ADMIN_PORTS = {22: "SSH", 3389: "RDP"}
DASK_PORTS = (8786, 8787)


def _internet_ingress(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """Ingress from 0.0.0.0/0 or ::/0 is only for HTTPS on a load balancer's security group."""
    load_balancer_groups = {
        group.urn
        for lb in args.resources
        if lb.resource_type == LOAD_BALANCER
        for group in lb.dependencies
        if group.resource_type == SECURITY_GROUP
    }
    for resource in args.resources:
        for rule in ingress_rules(resource.resource_type, resource.props):
            if not rule.from_internet:
                continue
            https_only = rule.from_port == 443 and rule.to_port == 443 and rule.protocol in ("tcp", "6")
            group_urns = {resource.urn} | {d.urn for d in resource.dependencies if d.resource_type == SECURITY_GROUP}
            if https_only and group_urns & load_balancer_groups:
                continue
            report_violation(
                f"'{resource.name}' allows ingress from the internet on ports {rule.from_port}-{rule.to_port}"
                " (only HTTPS to a load balancer may be public)",
                resource.urn,
            )


no_internet_ingress = StackValidationPolicy(
    name="no-internet-ingress",
    description="Security groups must not allow ingress from 0.0.0.0/0 or ::/0, except HTTPS to a load balancer.",
    validate=_internet_ingress,
)


def _admin_ports(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    for rule in ingress_rules(args.resource_type, args.props):
        if rule.from_internet:
            for port, name in ADMIN_PORTS.items():
                if rule.covers(port):
                    report_violation(f"'{args.name}' opens {name} (port {port}) to the internet")


no_ssh_rdp_from_internet = ResourceValidationPolicy(
    name="no-ssh-rdp-from-internet",
    description="SSH (22) and RDP (3389) must never be reachable from the internet.",
    validate=_admin_ports,
)


def _dask_ports(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    for rule in ingress_rules(args.resource_type, args.props):
        if rule.from_public_range:
            for port in DASK_PORTS:
                if rule.covers(port):
                    report_violation(f"'{args.name}' exposes Dask port {port} to a public address range")


dask_ports_not_public = ResourceValidationPolicy(
    name="dask-ports-not-public",
    description="The Dask scheduler ports 8786/8787 must never be reachable from public addresses.",
    validate=_dask_ports,
)


def _flow_logs(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    if not config_value(args.get_config(), "required", False):
        return
    logged = {
        dependency.urn
        for log in args.resources
        if log.resource_type == "aws:ec2/flowLog:FlowLog"
        for dependency in log.dependencies
    }
    for vpc in args.resources:
        if vpc.resource_type == "aws:ec2/vpc:Vpc" and vpc.urn not in logged:
            report_violation(f"VPC '{vpc.name}' has no flow logs", vpc.urn)


vpc_flow_logs = StackValidationPolicy(
    name="vpc-flow-logs",
    description="VPCs must have flow logs where the environment requires them.",
    validate=_flow_logs,
    config_schema=PolicyConfigSchema(properties={"required": {"type": "boolean", "default": False}}),
)


def _nat_cap(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    cap = config_value(args.get_config(), "maxNatGateways", None)
    if cap is None:
        return
    nats = [r for r in args.resources if r.resource_type == "aws:ec2/natGateway:NatGateway"]
    if len(nats) > int(cap):
        report_violation(f"{len(nats)} NAT gateways exceed this environment's cap of {int(cap)}")


nat_gateway_cap = StackValidationPolicy(
    name="nat-gateway-cap",
    description="The number of NAT gateways must stay within the environment's cap (cost).",
    validate=_nat_cap,
    config_schema=PolicyConfigSchema(properties={"maxNatGateways": {"type": "integer", "minimum": 0}}),
)


def _subnet_public_ip(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type == "aws:ec2/subnet:Subnet" and args.props.get("mapPublicIpOnLaunch") is True:
        report_violation(f"subnet '{args.name}' gives every instance a public IP on launch")
    if args.resource_type == "aws:ec2/instance:Instance" and args.props.get("associatePublicIpAddress") is True:
        report_violation(f"instance '{args.name}' gets a public IP address")


no_public_ip_on_launch = ResourceValidationPolicy(
    name="no-public-ip-on-launch",
    description="Subnets and EC2 instances must not assign public IP addresses.",
    validate=_subnet_public_ip,
)

POLICIES = [
    no_internet_ingress,
    no_ssh_rdp_from_internet,
    dask_ports_not_public,
    vpc_flow_logs,
    nat_gateway_cap,
    no_public_ip_on_launch,
]

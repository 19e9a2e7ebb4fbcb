"""Reading resource properties the way policies need them: JSON-or-object values, ingress
rules in all their shapes, IAM statements, effective tags (own + provider default tags)."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

INTERNET = ("0.0.0.0/0", "::/0")
BUCKET = "aws:s3/bucket:Bucket"
PRIVATE_RANGES = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
)


def loads(value: Any) -> Any:
    """Policy documents and container definitions arrive as JSON strings or as objects."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def as_list(value: Any) -> list[Any]:
    """A list of the value's items (props arrive as Sequence proxies); a scalar as one item."""
    if value is None:
        return []
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return list(value)
    return [value]


@dataclass(frozen=True)
class Ingress:
    from_port: int
    to_port: int
    protocol: str
    cidrs: tuple[str, ...]

    def covers(self, port: int) -> bool:
        if str(self.protocol) in ("-1", "all"):
            return True
        return self.from_port <= port <= self.to_port

    @property
    def from_internet(self) -> bool:
        return any(c in INTERNET for c in self.cidrs)

    @property
    def from_public_range(self) -> bool:
        """Any source outside private address space (the internet or any public block).
        Python's ``is_private`` counts 0.0.0.0/0 and documentation ranges as private: use
        the RFC 1918 / RFC 6598 / RFC 4193 ranges instead."""
        for cidr in self.cidrs:
            try:
                network = ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                continue
            if not any(network.version == p.version and network.subnet_of(p) for p in PRIVATE_RANGES):  # type: ignore[arg-type]
                return True
        return False


def _port(value: Any, default: int) -> int:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return default


def protocol_name(value: Any) -> str:
    """The protocol as AWS names it: a number the program wrote (-1, 6) arrives as a float."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(int(value))
    return str(value)


def ingress_rules(resource_type: str, props: Mapping[str, Any]) -> Iterator[Ingress]:
    """Ingress of a security group (inline), a standalone rule (v7 ``aws.vpc`` or ``ec2``)."""
    if resource_type == "aws:ec2/securityGroup:SecurityGroup":
        for rule in as_list(props.get("ingress")):
            cidrs = tuple(as_list(rule.get("cidrBlocks")) + as_list(rule.get("ipv6CidrBlocks")))
            yield Ingress(
                _port(rule.get("fromPort"), 0),
                _port(rule.get("toPort"), 65535),
                protocol_name(rule.get("protocol", "tcp")),
                cidrs,
            )
    elif resource_type == "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule":
        cidrs = tuple(c for c in (props.get("cidrIpv4"), props.get("cidrIpv6")) if c)
        yield Ingress(
            _port(props.get("fromPort"), 0),
            _port(props.get("toPort"), 65535),
            protocol_name(props.get("ipProtocol", "tcp")),
            cidrs,
        )
    elif resource_type == "aws:ec2/securityGroupRule:SecurityGroupRule" and props.get("type") == "ingress":
        cidrs = tuple(as_list(props.get("cidrBlocks")) + as_list(props.get("ipv6CidrBlocks")))
        yield Ingress(
            _port(props.get("fromPort"), 0),
            _port(props.get("toPort"), 65535),
            protocol_name(props.get("protocol", "tcp")),
            cidrs,
        )


def statements(document: Any) -> list[Mapping[str, Any]]:
    """The statements of an IAM policy document (string or object); [] if unreadable."""
    parsed = loads(document)
    if not isinstance(parsed, Mapping):
        return []
    return [s for s in as_list(parsed.get("Statement")) if isinstance(s, Mapping)]


def policy_documents(resource_type: str, props: Mapping[str, Any]) -> list[Any]:
    """Every identity-policy document a resource carries."""
    if resource_type in (
        "aws:iam/rolePolicy:RolePolicy",
        "aws:iam/policy:Policy",
        "aws:iam/userPolicy:UserPolicy",
        "aws:iam/groupPolicy:GroupPolicy",
    ):
        return [props.get("policy")]
    if resource_type == "aws:iam/role:Role":
        return [p.get("policy") for p in as_list(props.get("inlinePolicies")) if isinstance(p, Mapping)]
    return []


def action_matches(actions: list[str], wanted: str) -> bool:
    """Does an Action list grant ``wanted`` (exactly, by ``*``, or by a service wildcard)?"""
    service = wanted.split(":", 1)[0]
    return any(a in ("*", wanted, f"{service}:*") for a in actions)


def effective_tags(props: Mapping[str, Any], provider_props: Mapping[str, Any] | None) -> dict[str, str]:
    """A resource's own tags merged over its provider's default tags."""
    tags: dict[str, str] = {}
    if provider_props is not None:
        default = loads(provider_props.get("defaultTags"))
        if isinstance(default, Mapping) and isinstance(default.get("tags"), Mapping):
            tags.update(default["tags"])
    own = props.get("tags")
    if isinstance(own, Mapping):
        tags.update(own)
    return tags


def config_value(config: Mapping[str, Any] | None, key: str, default: Any) -> Any:
    if not config or key not in config or config[key] is None:
        return default
    return config[key]

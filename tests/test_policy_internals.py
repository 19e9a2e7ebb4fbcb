"""The policy pack's internals, directly: how rules read resource properties (JSON-or-object
values, ingress rules in every shape, IAM statements, effective tags, config values), how a
policy config file resolves per environment and renders as the docs table, the offline
evaluation of a plan (providers, dependencies, levels, unknown values, order), planning and
checking an environment end to end, and the pack served by ``build_pack`` in this process."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from analyzer import Analyzer
from pulumi.runtime.proto import analyzer_pb2_grpc
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, unknown_checking_proxy

from mlwf.errors import UserError
from mlwf.infra.plan import plan_and_check
from mlwf.planned import PlannedResource, StackPlan
from mlwf.policy.evaluate import evaluate
from mlwf.policy.helpers import (
    Ingress,
    action_matches,
    as_list,
    config_value,
    effective_tags,
    ingress_rules,
    loads,
    policy_documents,
    statements,
)
from mlwf.policy.pack import BY_NAME, POLICIES, build_pack, config_file, levels_table, resolved_config
from mlwf.settings import load_environment

REPO = Path(__file__).resolve().parents[1]
INSECURE = Path(__file__).parent / "insecure_program"
TAGS = {"CostCenter": "c", "Owner": "o", "Project": "p"}
SG = "aws:ec2/securityGroup:SecurityGroup"
VPC_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EC2_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
BUCKET = "aws:s3/bucket:Bucket"
NAT = "aws:ec2/natGateway:NatGateway"
SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"


# ---------------------------------------------------------------- helpers: reading properties


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('{"Statement": []}', {"Statement": []}),
        ("[1, 2]", [1, 2]),
        ("not json", None),
        ("", None),
        ({"already": "parsed"}, {"already": "parsed"}),
        (None, None),
        (3, 3),
    ],
)
def test_loads_parses_json_strings_and_passes_objects_through(value: Any, expected: Any) -> None:
    assert loads(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, []),
        ([1, 2], [1, 2]),
        ((1, 2), [1, 2]),
        ("0.0.0.0/0", ["0.0.0.0/0"]),
        (b"raw", [b"raw"]),
        (22, [22]),
        ({"Effect": "Allow"}, [{"Effect": "Allow"}]),
        ([], []),
    ],
)
def test_as_list_makes_a_list_of_items_or_of_one_scalar(value: Any, expected: list[Any]) -> None:
    result = as_list(value)
    assert type(result) is list
    assert result == expected


def test_as_list_reads_the_engines_list_proxies() -> None:
    props = unknown_checking_proxy({"cidrBlocks": ["10.0.0.0/8", "::/0"]})
    assert as_list(props["cidrBlocks"]) == ["10.0.0.0/8", "::/0"]


@pytest.mark.parametrize(
    ("protocol", "from_port", "to_port", "port", "covered"),
    [
        ("tcp", 20, 25, 19, False),
        ("tcp", 20, 25, 20, True),
        ("tcp", 20, 25, 22, True),
        ("tcp", 20, 25, 25, True),
        ("tcp", 20, 25, 26, False),
        ("-1", 0, 0, 22, True),
        ("all", 0, 0, 3389, True),
        ("udp", 0, 0, 22, False),
    ],
)
def test_an_ingress_covers_its_port_range_or_every_port_for_all_protocols(
    protocol: str, from_port: int, to_port: int, port: int, covered: bool
) -> None:
    assert Ingress(from_port, to_port, protocol, ()).covers(port) is covered


@pytest.mark.parametrize(
    ("cidrs", "internet", "public"),
    [
        ((), False, False),
        (("0.0.0.0/0",), True, True),
        (("::/0",), True, True),
        (("10.0.0.0/8",), False, False),
        (("10.20.30.40/32",), False, False),
        (("172.16.0.0/12",), False, False),
        (("172.31.255.0/24",), False, False),
        (("172.32.0.0/16",), False, True),
        (("192.168.1.0/24",), False, False),
        (("100.64.0.0/10",), False, False),
        (("100.128.0.0/16",), False, True),
        (("fd00:1::/64",), False, False),
        (("2001:db8::/32",), False, True),
        (("203.0.113.0/24",), False, True),  # a documentation range: Python calls it private
        (("203.0.113.7/24",), False, True),  # host bits set: read as its network
        (("8.8.8.8",), False, True),
        (("not-a-cidr",), False, False),
        (("not-a-cidr", "8.8.8.8/32"), False, True),
        (("10.0.0.0/8", "198.51.100.0/24"), False, True),
        (("10.0.0.0/8", "::/0"), True, True),
    ],
)
def test_sources_from_the_internet_and_from_public_ranges(cidrs: tuple[str, ...], internet: bool, public: bool) -> None:
    ingress = Ingress(0, 65535, "tcp", cidrs)
    assert ingress.from_internet is internet
    assert ingress.from_public_range is public


@pytest.mark.parametrize(
    ("type_", "props", "expected"),
    [
        (
            SG,
            {
                "ingress": [
                    {
                        "protocol": "tcp",
                        "fromPort": 22.0,
                        "toPort": "23",
                        "cidrBlocks": ["10.0.0.0/8"],
                        "ipv6CidrBlocks": ["::/0"],
                    },
                    {"cidrBlocks": "0.0.0.0/0"},
                    {"protocol": -1, "fromPort": "any", "toPort": None},
                ]
            },
            [
                Ingress(22, 23, "tcp", ("10.0.0.0/8", "::/0")),
                Ingress(0, 65535, "tcp", ("0.0.0.0/0",)),
                Ingress(0, 65535, "-1", ()),
            ],
        ),
        (SG, {}, []),
        (
            VPC_RULE,
            {"ipProtocol": "udp", "fromPort": 53.0, "toPort": 53.0, "cidrIpv4": "10.0.0.0/8", "cidrIpv6": "::/0"},
            [Ingress(53, 53, "udp", ("10.0.0.0/8", "::/0"))],
        ),
        (VPC_RULE, {"cidrIpv6": "::/0"}, [Ingress(0, 65535, "tcp", ("::/0",))]),
        (VPC_RULE, {"referencedSecurityGroupId": "sg-1"}, [Ingress(0, 65535, "tcp", ())]),
        (
            EC2_RULE,
            {
                "type": "ingress",
                "protocol": "udp",
                "fromPort": 443,
                "toPort": 443,
                "cidrBlocks": ["0.0.0.0/0"],
                "ipv6CidrBlocks": ["::/0"],
            },
            [Ingress(443, 443, "udp", ("0.0.0.0/0", "::/0"))],
        ),
        (EC2_RULE, {"type": "ingress"}, [Ingress(0, 65535, "tcp", ())]),
        (EC2_RULE, {"type": "egress", "fromPort": 443, "toPort": 443, "cidrBlocks": ["0.0.0.0/0"]}, []),
        ("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule", {"cidrIpv4": "0.0.0.0/0"}, []),
    ],
    ids=[
        "sg",
        "sg-none",
        "vpc-rule",
        "vpc-rule-defaults",
        "vpc-rule-no-cidr",
        "ec2-rule",
        "ec2-defaults",
        "egress",
        "other",
    ],
)
def test_ingress_rules_of_every_shape(type_: str, props: dict[str, Any], expected: list[Ingress]) -> None:
    assert list(ingress_rules(type_, unknown_checking_proxy(props))) == expected


ALLOW = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (json.dumps({"Statement": [ALLOW, "junk", {"Effect": "Deny"}]}), [ALLOW, {"Effect": "Deny"}]),
        ({"Statement": ALLOW}, [ALLOW]),
        ({"Version": "2012-10-17"}, []),
        (json.dumps([ALLOW]), []),
        ("{not json", []),
        (None, []),
    ],
    ids=["json", "single-object", "no-statement", "not-a-document", "unreadable", "absent"],
)
def test_statements_of_a_policy_document(document: Any, expected: list[Any]) -> None:
    assert statements(document) == expected


@pytest.mark.parametrize(
    ("type_", "props", "expected"),
    [
        ("aws:iam/rolePolicy:RolePolicy", {"policy": "P"}, ["P"]),
        ("aws:iam/policy:Policy", {"policy": "P"}, ["P"]),
        ("aws:iam/userPolicy:UserPolicy", {"policy": "P"}, ["P"]),
        ("aws:iam/groupPolicy:GroupPolicy", {"policy": "P"}, ["P"]),
        ("aws:iam/role:Role", {"inlinePolicies": [{"name": "a", "policy": "A"}, "junk", {"policy": "B"}]}, ["A", "B"]),
        ("aws:iam/role:Role", {"assumeRolePolicy": "T"}, []),
        ("aws:s3/bucketPolicy:BucketPolicy", {"policy": "P"}, []),
    ],
)
def test_identity_policy_documents_of_a_resource(type_: str, props: dict[str, Any], expected: list[Any]) -> None:
    assert policy_documents(type_, props) == expected


@pytest.mark.parametrize(
    ("actions", "wanted", "granted"),
    [
        (["*"], "iam:PassRole", True),
        (["iam:PassRole"], "iam:PassRole", True),
        (["iam:*"], "iam:PassRole", True),
        (["s3:*", "iam:GetRole"], "iam:PassRole", False),
        (["iam:Pass*"], "iam:PassRole", False),
        (["iam"], "iam:PassRole", False),
        ([], "iam:PassRole", False),
    ],
)
def test_action_matches_exactly_by_star_or_by_service_wildcard(actions: list[str], wanted: str, granted: bool) -> None:
    assert action_matches(actions, wanted) is granted


@pytest.mark.parametrize(
    ("props", "provider", "expected"),
    [
        ({"tags": {"Owner": "me"}}, None, {"Owner": "me"}),
        ({}, {"defaultTags": json.dumps({"tags": TAGS})}, TAGS),
        ({"tags": {"Owner": "me"}}, {"defaultTags": {"tags": TAGS}}, {**TAGS, "Owner": "me"}),
        ({"tags": {"Owner": "me"}}, {"defaultTags": {"tags": "Owner=x"}}, {"Owner": "me"}),
        ({}, {"defaultTags": "not json"}, {}),
        ({}, {}, {}),
        ({"tags": "Owner=me"}, {"defaultTags": {"tags": TAGS}}, TAGS),
    ],
    ids=["own", "provider-json", "own-wins", "provider-tags-not-a-map", "unreadable", "none", "own-not-a-map"],
)
def test_effective_tags_merge_own_over_provider_defaults(
    props: dict[str, Any], provider: dict[str, Any] | None, expected: dict[str, str]
) -> None:
    assert effective_tags(props, provider) == expected


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (None, "default"),
        ({}, "default"),
        ({"other": 1}, "default"),
        ({"key": None}, "default"),
        ({"key": False}, False),
        ({"key": 0}, 0),
        ({"key": ["a"]}, ["a"]),
    ],
)
def test_config_value_falls_back_only_when_unset(config: dict[str, Any] | None, expected: Any) -> None:
    assert config_value(config, "key", "default") == expected


# ---------------------------------------------------------------- pack: config files and docs table


def write_config(directory: Path, name: str, document: Any) -> Path:
    path = directory / "config" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return path


def test_a_config_without_all_leaves_every_rule_mandatory_with_its_schema_defaults(tmp_path: Path) -> None:
    config = resolved_config(write_config(tmp_path, "dev", {}))
    assert set(config) == set(BY_NAME)
    assert {level for level, _ in config.values()} == {"mandatory"}
    assert config["elb-deletion-protection"] == ("mandatory", {"required": True})
    assert config["s3-versioning"] == ("mandatory", {"required": False})
    assert config["vpc-flow-logs"] == ("mandatory", {"required": False})
    assert config["nat-gateway-cap"] == ("mandatory", {})


def test_a_rules_own_entry_wins_over_all_and_its_properties_over_schema_defaults(tmp_path: Path) -> None:
    config = resolved_config(
        write_config(
            tmp_path,
            "dev",
            {
                "all": "advisory",
                "s3-versioning": {"enforcementLevel": "mandatory", "required": True},
                "nat-gateway-cap": {"maxNatGateways": 3},
                "ecs-awslogs": "disabled",
            },
        )
    )
    assert config["s3-versioning"] == ("mandatory", {"required": True})
    assert config["nat-gateway-cap"] == ("advisory", {"maxNatGateways": 3})
    assert config["ecs-awslogs"] == ("disabled", {})
    assert config["elb-deletion-protection"] == ("advisory", {"required": True})


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("{not json", ": not a readable policy config (Expecting property name"),
        (None, ": not a readable policy config ([Errno 2] No such file or directory"),
    ],
)
def test_an_unreadable_config_is_one_line_naming_the_file(tmp_path: Path, content: str | None, words: str) -> None:
    path = write_config(tmp_path, "dev", content) if content else tmp_path / "config" / "missing.json"
    with pytest.raises(UserError) as caught:
        resolved_config(path)
    assert str(caught.value).startswith(f"{path}{words}")
    assert str(caught.value).endswith(")")


def test_a_config_naming_unknown_rules_lists_them_all_sorted(tmp_path: Path) -> None:
    path = write_config(tmp_path, "dev", {"all": "advisory", "zz-rule": "mandatory", "aa-rule": "advisory"})
    with pytest.raises(UserError) as caught:
        resolved_config(path)
    assert str(caught.value) == f"{path}: unknown policy name(s) aa-rule, zz-rule"


@pytest.mark.parametrize(
    ("document", "rule", "level"),
    [
        ({"s3-versioning": {"enforcementLevel": "blocking"}}, "s3-versioning", "'blocking'"),
        ({"ecs-awslogs": "warn"}, "ecs-awslogs", "'warn'"),
        ({"all": "MANDATORY"}, POLICIES[0].name, "'MANDATORY'"),
    ],
)
def test_an_unknown_enforcement_level_names_the_rule_and_the_levels(
    tmp_path: Path, document: dict[str, Any], rule: str, level: str
) -> None:
    path = write_config(tmp_path, "dev", document)
    with pytest.raises(UserError) as caught:
        resolved_config(path)
    assert str(caught.value) == (
        f"{path}: {rule}: enforcement level {level} is not one of ('advisory', 'mandatory', 'disabled')"
    )


def test_an_environment_uses_its_own_config_else_its_tiers(tmp_path: Path) -> None:
    own = write_config(tmp_path, "qa", {})
    tier = write_config(tmp_path, "staging", {})
    assert config_file(tmp_path, "qa", "staging") == own
    assert config_file(tmp_path, "preview", "staging") == tier


def test_the_levels_table_shows_each_environments_level_and_non_default_settings(tmp_path: Path) -> None:
    write_config(
        tmp_path,
        "dev",
        {
            "all": "mandatory",
            "s3-versioning": {"enforcementLevel": "advisory", "required": True},
            "vpc-flow-logs": {"enforcementLevel": "mandatory", "required": False},
            "ecs-task-size-cap": {"maxMemoryMib": 4096, "maxCpu": 1024},
            "required-cost-tags": {"requiredTags": ["Owner"]},
            "no-internet-ingress": {"enforcementLevel": "advisory", "internetPorts": [80, 443]},
        },
    )
    write_config(tmp_path, "qa", {"all": "advisory"})
    write_config(tmp_path, "prod", {"all": "mandatory", "s3-versioning": {"required": True}})
    table = levels_table(tmp_path, [("dev", "dev"), ("qa", "prod"), ("preview", "prod")])
    lines = table.splitlines()
    assert lines[:2] == ["| rule | family | description | dev | qa | preview |", "|---|---|---|---|---|---|"]
    assert len(lines) == 2 + len(POLICIES)
    rows = {line.split(" | ")[0].removeprefix("| `").removesuffix("`"): line for line in lines[2:]}
    assert list(rows) == [p.name for p in POLICIES]

    def cells(rule: str) -> list[str]:
        return rows[rule].removesuffix(" |").split(" | ")[3:]

    assert rows["s3-versioning"] == (
        f"| `s3-versioning` | s3 | {BY_NAME['s3-versioning'].description} "
        "| advisory (required=true) | advisory (required=false) | mandatory |"
    )
    flow_logs = ["mandatory (required=false)", "advisory (required=false)", "mandatory (required=false)"]
    assert cells("vpc-flow-logs") == flow_logs
    assert cells("elb-deletion-protection") == ["mandatory", "advisory (required=true)", "mandatory"]
    assert cells("ecs-task-size-cap") == ["mandatory (maxCpu=1024, maxMemoryMib=4096)", "advisory", "mandatory"]
    assert cells("required-cost-tags") == ["mandatory", "advisory", "mandatory"]
    assert cells("no-internet-ingress") == ["advisory (internetPorts=[80, 443])", "advisory", "mandatory"]


# ---------------------------------------------------------------- evaluate: a plan judged offline

PROVIDER_URN = "urn:pulumi:dev::p::pulumi:providers:aws::default"


def planned(
    type_: str, name: str, inputs: dict[str, Any] | None = None, provider: str = "", deps: tuple[int, ...] = ()
) -> PlannedResource:
    return PlannedResource(
        type_, name, inputs or {}, urn=f"urn:pulumi:dev::p::{type_}::{name}", provider=provider, dependencies=list(deps)
    )


def only(**levels: tuple[str, dict[str, Any]]) -> dict[str, tuple[str, dict[str, Any]]]:
    """A resolved config with every rule disabled but the named ones (underscores for dashes)."""
    named = {name.replace("_", "-"): value for name, value in levels.items()}
    return {p.name: named.get(p.name, ("disabled", {})) for p in POLICIES}


def urn(type_: str, name: str) -> str:
    return f"urn:pulumi:dev::p::{type_}::{name}"


def test_evaluate_reads_default_tags_from_the_resources_own_provider() -> None:
    provider = PlannedResource(
        "pulumi:providers:aws", "default", {"defaultTags": json.dumps({"tags": TAGS})}, urn=PROVIDER_URN, id="prov-1"
    )
    plan = StackPlan(
        "dev",
        "storage",
        [
            provider,
            planned(BUCKET, "by-provider", provider=f"{PROVIDER_URN}::prov-1"),
            planned(BUCKET, "own-tags", {"tags": TAGS}),
            planned(BUCKET, "untagged"),
            planned(BUCKET, "unknown-provider", provider=f"{PROVIDER_URN}::prov-2"),
        ],
    )
    violations = evaluate(plan, only(required_cost_tags=("mandatory", {"requiredTags": ["Owner", "Project"]})))
    assert violations == [
        {
            "policy": "required-cost-tags",
            "level": "mandatory",
            "resource": urn(BUCKET, name),
            "message": f"'{name}' is missing the cost tag(s) Owner, Project",
        }
        for name in ("unknown-provider", "untagged")
    ]


def test_evaluate_runs_enabled_rules_at_their_level_with_their_properties_in_a_stable_order() -> None:
    plan = StackPlan(
        "dev",
        "storage",
        [
            planned(BUCKET, "b-plain", {"acl": "public-read"}),
            planned(BUCKET, "a-encrypted"),
            planned(
                SSE, "sse", {"rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms"}}]}, deps=(1,)
            ),
            planned(NAT, "nat-0"),
            planned(NAT, "nat-1"),
        ],
    )
    config = only(
        s3_bucket_encrypted=("advisory", {}),
        nat_gateway_cap=("mandatory", {"maxNatGateways": 1}),
        s3_no_public_acl_or_policy=("mandatory", {}),
    )
    assert evaluate(plan, config) == [
        {
            "policy": "nat-gateway-cap",
            "level": "mandatory",
            "resource": "",
            "message": "2 NAT gateways exceed this environment's cap of 1",
        },
        {
            "policy": "s3-bucket-encrypted",
            "level": "advisory",
            "resource": urn(BUCKET, "b-plain"),
            "message": "S3 bucket 'b-plain' has no server-side encryption configuration",
        },
        {
            "policy": "s3-no-public-acl-or-policy",
            "level": "mandatory",
            "resource": urn(BUCKET, "b-plain"),
            "message": "'b-plain' grants the public ACL 'public-read'",
        },
    ]
    assert evaluate(plan, only(nat_gateway_cap=("mandatory", {"maxNatGateways": 2}))) == []
    assert evaluate(plan, only(nat_gateway_cap=("disabled", {"maxNatGateways": 1}))) == []


def test_evaluate_skips_a_rule_on_values_unknown_during_preview_and_goes_on() -> None:
    plan = StackPlan(
        "dev",
        "storage",
        [planned(BUCKET, "unknown", {"acl": UNKNOWN_STRING_VALUE}), planned(BUCKET, "public", {"acl": "public-read"})],
    )
    violations = evaluate(plan, only(s3_no_public_acl_or_policy=("advisory", {})))
    assert [(v["resource"], v["level"]) for v in violations] == [(urn(BUCKET, "public"), "advisory")]


# ---------------------------------------------------------------- planning and checking environments


@pytest.fixture(scope="module")
def repo_with_own_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This checkout, but its policy configs are the dev tier's and a 'qa' environment's own
    (no NAT gateway allowed)."""
    root = tmp_path_factory.mktemp("repo")
    for entry in REPO.iterdir():
        if entry.name not in ("policies", "mutants", ".git", ".venv"):
            (root / entry.name).symlink_to(entry)
    (root / "policies" / "config").mkdir(parents=True)
    (root / "policies" / "config" / "dev.json").write_text((REPO / "policies" / "config" / "dev.json").read_text())
    write_config(root / "policies", "qa", {"nat-gateway-cap": {"maxNatGateways": 0}})
    return root


def test_named_stacks_are_planned_and_checked_under_each_environments_config(repo_with_own_config: Path) -> None:
    dev = load_environment("dev", REPO / "environments")
    qa, sandbox = dev.model_copy(update={"name": "qa"}), dev.model_copy(update={"name": "sandbox"})
    plans = plan_and_check([qa, sandbox], ["network"], repo_with_own_config)
    assert [(p.env, p.stack) for p in plans] == [("qa", "network"), ("sandbox", "network")]
    own, tier = plans
    assert own.violations == [
        {
            "policy": "nat-gateway-cap",
            "level": "mandatory",
            "resource": "",
            "message": "1 NAT gateways exceed this environment's cap of 0",
        }
    ]
    assert tier.violations == [], "the dev tier's config allows one"
    with pytest.raises(UserError, match="unknown stack 'storag'"):
        plan_and_check([dev], ["storag"], REPO)


def test_a_program_is_planned_as_a_stack_of_each_environment_and_checked() -> None:
    dev = load_environment("dev", REPO / "environments")
    plans = plan_and_check([dev], ["network"], REPO, INSECURE)
    assert [(p.env, p.stack) for p in plans] == [("dev", "insecure-example")]
    assert plans[0].violations == evaluate(plans[0], resolved_config(REPO / "policies" / "config" / "dev.json"))
    assert {v["level"] for v in plans[0].violations} == {"advisory", "mandatory"}


# ---------------------------------------------------------------- the pack, served in this process


class _PortLine:
    """Stands in for ``sys.stdout`` while the pack starts: it prints its port as one line."""

    def __init__(self) -> None:
        self.written = b""
        self.ready = threading.Event()
        self.buffer = self

    def write(self, data: bytes | str) -> int:
        self.written += data.encode() if isinstance(data, str) else data
        if b"\n" in self.written:
            self.ready.set()
        return len(data)

    def flush(self) -> None:
        pass


@pytest.fixture(scope="module")
def served_pack() -> Iterator[Analyzer]:
    """``build_pack()`` serving gRPC from a daemon thread, as ``policies/__main__.py`` runs it."""
    out, real = _PortLine(), sys.stdout
    sys.stdout = out  # type: ignore[assignment]
    try:
        threading.Thread(target=build_pack, daemon=True).start()
        assert out.ready.wait(timeout=30), "the pack did not print its port"
    finally:
        sys.stdout = real
    channel = grpc.insecure_channel(f"127.0.0.1:{int(out.written.decode())}")
    grpc.channel_ready_future(channel).result(timeout=30)
    yield Analyzer(analyzer_pb2_grpc.AnalyzerStub(channel))
    channel.close()


def test_the_served_pack_names_itself_and_every_rule_mandatory_by_default(served_pack: Analyzer) -> None:
    info = served_pack.info()
    assert info.name == "mlwf-guardrails"
    assert [p.name for p in info.policies] == [p.name for p in POLICIES]
    violations, _ = served_pack.analyze([planned("aws:ec2/subnet:Subnet", "public", {"mapPublicIpOnLaunch": True})])
    assert [(v["policy"], v["level"]) for v in violations] == [
        ("no-public-ip-on-launch", "mandatory"),
        ("required-cost-tags", "mandatory"),
    ]


@pytest.mark.parametrize(
    ("resource_type", "props"),
    [
        (SG, {"ingress": [{"protocol": -1.0, "fromPort": 0.0, "toPort": 0.0, "cidrBlocks": ["0.0.0.0/0"]}]}),
        (VPC_RULE, {"ipProtocol": -1.0, "cidrIpv4": "0.0.0.0/0"}),
        (EC2_RULE, {"type": "ingress", "protocol": -1.0, "fromPort": 0, "toPort": 0, "cidrBlocks": ["0.0.0.0/0"]}),
    ],
)
def test_all_protocols_written_as_a_number_cover_every_port(resource_type: str, props: dict[str, Any]) -> None:
    """The engine sends numbers as floats: -1 arrives as -1.0 and still means every protocol."""
    (rule,) = ingress_rules(resource_type, props)
    assert rule.protocol == "-1"
    assert rule.covers(22)


def test_a_protocol_number_is_kept_as_aws_names_it() -> None:
    (rule,) = ingress_rules(VPC_RULE, {"ipProtocol": 6.0, "fromPort": 443, "toPort": 443})
    assert (rule.protocol, rule.covers(22), rule.covers(443)) == ("6", False, True)

"""Environment settings, rule by rule: every bound accepts its edge and rejects one step past it,
every rule's one-line message exactly, the defaults a file may leave out, the subnet layout,
the tier-derived tags and budget level, and listing and loading a folder of environments."""

from __future__ import annotations

import copy
import ipaddress
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlwf.errors import UserError
from mlwf.settings import (
    DaskSettings,
    Settings,
    environment_names,
    load_environment,
    load_environments,
    load_settings,
)

REPO = Path(__file__).resolve().parents[1]
SHIPPED = {
    env: yaml.safe_load((REPO / "environments" / f"{env}.yaml").read_text()) for env in ("dev", "staging", "prod")
}

Change = Callable[[dict[str, Any]], None]


def _set(**values: Any) -> Change:
    """Set dotted keys, e.g. _set(**{"dask.max_workers": 9})."""

    def change(document: dict[str, Any]) -> None:
        for dotted, value in values.items():
            *parents, leaf = dotted.split(".")
            node = document
            for part in parents:
                node = node[part]
            node[leaf] = value

    return change


def _write(folder: Path, document: Any, name: str | None = None) -> Path:
    path = folder / f"{name or document['name']}.yaml"
    path.write_text(document if isinstance(document, str) else yaml.safe_dump(document))
    return path


def _variant(folder: Path, env: str, change: Change) -> Path:
    document = copy.deepcopy(SHIPPED[env])
    change(document)
    return _write(folder, document, env)


def _error(path: Path) -> str:
    with pytest.raises(UserError) as caught:
        load_settings(path)
    return str(caught.value)


# --- Bounds: the edge is accepted, one step past it is not ------------------------------------


@pytest.mark.parametrize(
    ("env", "change"),
    [
        ("dev", _set(**{"network.vpc_cidr": "10.10.0.0/24"})),
        ("dev", _set(**{"network.admin_cidr": "203.0.0.0/16"})),
        ("dev", _set(**{"network.az_count": 4})),
        ("dev", _set(**{"network.nat_gateways": 0})),
        ("dev", _set(**{"network.nat_gateways": 2})),  # one per AZ
        ("dev", _set(**{"storage.noncurrent_version_expiry_days": 1})),
        ("dev", _set(**{"storage.raw_transition_to_ia_days": 30})),
        ("dev", _set(**{"storage.scores_expiry_days": 1})),
        ("dev", _set(**{"dask.n_workers": 1, "dask.max_workers": 1})),
        ("dev", _set(**{"dask.max_workers": 8})),
        ("dev", _set(**{"dask.idle_timeout_minutes": 1})),
        ("dev", _set(**{"dask.idle_timeout_minutes": 119})),  # max_lifetime_minutes is 120
        ("dev", _set(**{"dask.idle_timeout_minutes": 240, "dask.max_lifetime_minutes": 241})),
        ("dev", _set(**{"dask.idle_timeout_minutes": 9, "dask.max_lifetime_minutes": 10})),
        ("dev", _set(**{"dask.max_lifetime_minutes": 1440})),
        ("dev", _set(**{"dask.worker_idle_seconds": 5})),
        ("dev", _set(**{"dask.worker_idle_seconds": 3600})),
        ("dev", _set(**{"dask.worker_join_timeout_minutes": 1})),
        ("dev", _set(**{"dask.worker_join_timeout_minutes": 60})),
        ("dev", _set(**{"cost.monthly_budget_usd": 0.01})),
        ("dev", _set(**{"cost.log_gb_per_day": 0, "cost.flow_log_gb_per_day": 0})),
        ("dev", _set(region="us-gov-west-1")),
        ("dev", _set(**{"storage.access_logs": False, "dask.tls": False})),  # both required only above dev
        ("staging", _set(**{"dask.max_workers": 16})),
        ("staging", _set(**{"deletion_protection": False, "storage.versioning": False})),  # prod only
        ("prod", _set(**{"dask.max_workers": 64})),
    ],
)
def test_values_at_the_edge_are_accepted(tmp_path: Path, env: str, change: Change) -> None:
    load_settings(_variant(tmp_path, env, change))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_set(**{"network.az_count": 1}), "network.az_count: Input should be greater than or equal to 2"),
        (_set(**{"network.az_count": 5}), "network.az_count: Input should be less than or equal to 4"),
        (_set(**{"network.nat_gateways": -1}), "network.nat_gateways: Input should be greater than or equal to 0"),
        (
            _set(**{"storage.noncurrent_version_expiry_days": 0}),
            "storage.noncurrent_version_expiry_days: Input should be greater than or equal to 1",
        ),
        (
            _set(**{"storage.raw_transition_to_ia_days": 29}),
            "storage.raw_transition_to_ia_days: Input should be greater than or equal to 30",
        ),
        (
            _set(**{"storage.scores_expiry_days": 0}),
            "storage.scores_expiry_days: Input should be greater than or equal to 1",
        ),
        (
            _set(**{"dask.n_workers": 0, "dask.max_workers": 1}),
            "dask.n_workers: Input should be greater than or equal to 1",
        ),
        (_set(**{"dask.max_workers": 0}), "dask.max_workers: Input should be greater than or equal to 1"),
        (
            _set(**{"dask.idle_timeout_minutes": 0}),
            "dask.idle_timeout_minutes: Input should be greater than or equal to 1",
        ),
        (
            _set(**{"dask.idle_timeout_minutes": 241, "dask.max_lifetime_minutes": 300}),
            "dask.idle_timeout_minutes: Input should be less than or equal to 240",
        ),
        (
            _set(**{"dask.idle_timeout_minutes": 5, "dask.max_lifetime_minutes": 9}),
            "dask.max_lifetime_minutes: Input should be greater than or equal to 10",
        ),
        (
            _set(**{"dask.max_lifetime_minutes": 1441}),
            "dask.max_lifetime_minutes: Input should be less than or equal to 1440",
        ),
        (
            _set(**{"dask.worker_idle_seconds": 4}),
            "dask.worker_idle_seconds: Input should be greater than or equal to 5",
        ),
        (
            _set(**{"dask.worker_idle_seconds": 3601}),
            "dask.worker_idle_seconds: Input should be less than or equal to 3600",
        ),
        (
            _set(**{"dask.worker_join_timeout_minutes": 0}),
            "dask.worker_join_timeout_minutes: Input should be greater than or equal to 1",
        ),
        (
            _set(**{"dask.worker_join_timeout_minutes": 61}),
            "dask.worker_join_timeout_minutes: Input should be less than or equal to 60",
        ),
        (_set(**{"cost.monthly_budget_usd": 0}), "cost.monthly_budget_usd: Input should be greater than 0"),
        (_set(**{"cost.log_gb_per_day": -0.01}), "cost.log_gb_per_day: Input should be greater than or equal to 0"),
        (
            _set(**{"cost.flow_log_gb_per_day": -0.01}),
            "cost.flow_log_gb_per_day: Input should be greater than or equal to 0",
        ),
    ],
)
def test_one_step_past_a_bound_is_rejected_naming_the_field(tmp_path: Path, change: Change, message: str) -> None:
    path = _variant(tmp_path, "dev", change)
    assert _error(path) == f"{path}: {message}"


# --- Every rule's message, whole --------------------------------------------------------------

FARGATE_SIZES = "[256, 512, 1024, 2048, 4096, 8192, 16384]"


@pytest.mark.parametrize(
    ("env", "change", "message"),
    [
        (
            "dev",
            _set(**{"network.vpc_cidr": "10.0.0.0/15"}),
            "network.vpc_cidr: expected a VPC CIDR between /16 and /24",
        ),
        (
            "dev",
            _set(**{"network.vpc_cidr": "10.0.0.0/25"}),
            "network.vpc_cidr: expected a VPC CIDR between /16 and /24",
        ),
        ("dev", _set(**{"network.vpc_cidr": "8.8.0.0/16"}), "network.vpc_cidr: expected a private (RFC 1918) range"),
        (
            "dev",
            _set(**{"network.admin_cidr": "10.0.0.0/15"}),
            "network.admin_cidr: expected a narrow admin range (/16 or longer), never the internet",
        ),
        ("dev", _set(**{"network.nat_gateways": 3}), "network: nat_gateways (3) cannot exceed az_count (2)"),
        (
            "dev",
            _set(**{"network.public_subnets": ["10.10.0.0/20", "10.10.16.0/20"]}),
            "network: expected 2 public and 2 private subnets (one per AZ)",
        ),
        (
            "dev",
            _set(**{"network.private_subnets": ["10.10.0.0/20", "10.10.16.0/20"]}),
            "network: expected 2 public and 2 private subnets (one per AZ)",
        ),
        (
            "dev",
            _set(
                **{
                    "network.public_subnets": ["10.10.0.0/20", "10.10.16.0/20"],
                    "network.private_subnets": ["10.10.128.0/20", "10.99.0.0/20"],
                }
            ),
            "network: subnet 10.99.0.0/20 is outside the VPC 10.10.0.0/16",
        ),
        (
            "dev",
            _set(
                **{
                    "network.public_subnets": ["10.10.0.0/20", "10.10.16.0/20"],
                    "network.private_subnets": ["10.10.128.0/20", "10.10.16.0/24"],
                }
            ),
            "network: subnets 10.10.16.0/20 and 10.10.16.0/24 overlap",
        ),
        (
            "dev",
            _set(**{"network.public_subnets": ["nope", "10.10.16.0/20"]}),
            "network.public_subnets.0: Input is not a valid IPv4 network",
        ),
        (
            "dev",
            _set(**{"dask.scheduler_cpu": 300}),
            f"dask: scheduler_cpu 300 is not a Fargate size (expected one of {FARGATE_SIZES})",
        ),
        (
            "dev",
            _set(**{"dask.worker_cpu": 3000}),
            f"dask: worker_cpu 3000 is not a Fargate size (expected one of {FARGATE_SIZES})",
        ),
        (
            "dev",
            _set(**{"dask.scheduler_memory_mib": 100}),
            "dask: scheduler_memory_mib 100 is not valid with 1024 CPU units (expected 2048-8192 in steps of 1024)",
        ),
        ("dev", _set(**{"dask.n_workers": 5}), "dask: n_workers (5) exceeds max_workers (4)"),
        (
            "dev",
            _set(**{"dask.idle_timeout_minutes": 120}),
            "dask: idle_timeout_minutes must be shorter than max_lifetime_minutes",
        ),
        (
            "dev",
            _set(**{"prefect.flow_run_cpu": 100}),
            f"prefect: flow_run_cpu 100 is not a Fargate size (expected one of {FARGATE_SIZES})",
        ),
        (
            "dev",
            _set(**{"prefect.work_pool": "ab"}),
            "prefect.work_pool: String should match pattern '^[a-z0-9][a-z0-9-]{2,62}$'",
        ),
        (
            "dev",
            _set(**{"image.repository": "Flows"}),
            "image.repository: String should match pattern '^[a-z0-9][a-z0-9._/-]{1,255}$'",
        ),
        ("dev", _set(tier="qa"), "tier: Input should be 'dev', 'staging' or 'prod'"),
        (
            "dev",
            _set(cost_tags={"CostCenter": "ml", "Owner": "", "Project": "p"}),
            "cost_tags: missing required cost tag(s) Owner",
        ),
        ("dev", _set(**{"dask.max_workers": 9}), "dask.max_workers 9 is above the dev maximum of 8"),
        ("staging", _set(**{"dask.max_workers": 17}), "dask.max_workers 17 is above the staging maximum of 16"),
        (
            "prod",
            _set(**{"dask.max_workers": 65, "dask.n_workers": 4}),
            "dask.max_workers 65 is above the prod maximum of 64",
        ),
        ("staging", _set(log_retention_days=60), "log_retention_days 60 is below the staging minimum of 90"),
        ("prod", _set(**{"storage.access_logs": False}), "storage.access_logs: prod buckets must log access"),
        ("staging", _set(**{"dask.tls": False}), "dask.tls: staging clusters must encrypt their traffic"),
        ("prod", _set(**{"storage.versioning": False}), "storage.versioning: prod buckets must be versioned"),
        ("prod", _set(deletion_protection=False), "deletion_protection: must be true in prod"),
        ("prod", _set(**{"network.nat_gateways": 2}), "network.nat_gateways: prod needs one NAT gateway per AZ"),
        (
            "dev",
            _set(region="x", account_id="1"),
            "region: String should match pattern '^[a-z]{2}(-gov)?-[a-z]+-\\d$'; "
            "account_id: String should match pattern '^\\d{12}$'",
        ),
    ],
)
def test_each_rule_rejects_with_one_exact_line(tmp_path: Path, env: str, change: Change, message: str) -> None:
    path = _variant(tmp_path, env, change)
    assert _error(path) == f"{path}: {message}"


@pytest.mark.parametrize(
    ("cpu", "bad_memory", "expected"),
    [
        (512, 512, "1024-4096 in steps of 1024"),
        (1024, 9216, "2048-8192 in steps of 1024"),
        (2048, 3072, "4096-16384 in steps of 1024"),
        (4096, 31744, "8192-30720 in steps of 1024"),
        (8192, 18432, "16384-61440 in steps of 4096"),
        (16384, 36864, "32768-122880 in steps of 8192"),
    ],
)
def test_fargate_memory_is_checked_against_the_cpu_size(cpu: int, bad_memory: int, expected: str) -> None:
    low, high = (int(n) for n in expected.split(" ")[0].split("-"))
    for memory in (low, high):
        DaskSettings(worker_cpu=cpu, worker_memory_mib=memory)
    with pytest.raises(ValueError, match="is not valid") as caught:
        DaskSettings(worker_cpu=cpu, worker_memory_mib=bad_memory)
    assert f"worker_memory_mib {bad_memory} is not valid with {cpu} CPU units (expected {expected})" in str(
        caught.value
    )


@pytest.mark.parametrize("bad_memory", [256, 1536, 3072])
def test_a_quarter_vcpu_takes_only_512_1024_or_2048_mib(bad_memory: int) -> None:
    for memory in (512, 1024, 2048):
        DaskSettings(worker_cpu=256, worker_memory_mib=memory)
    with pytest.raises(ValueError, match="is not valid") as caught:
        DaskSettings(worker_cpu=256, worker_memory_mib=bad_memory)
    assert f"worker_memory_mib {bad_memory} is not valid with 256 CPU units (expected one of 512, 1024, 2048)" in str(
        caught.value
    )


# --- What a file may leave out, and what the settings derive ----------------------------------


def _minimal() -> dict[str, Any]:
    document = copy.deepcopy(SHIPPED["dev"])
    document["network"] = {"vpc_cidr": "10.10.0.0/16", "az_count": 2, "nat_gateways": 1}
    document["storage"] = {"versioning": False}
    document["dask"] = {}
    document["prefect"] = {k: document["prefect"][k] for k in ("work_pool", "api_url")}
    del document["cost"]
    return document


def test_defaults_of_everything_a_file_leaves_out(tmp_path: Path) -> None:
    settings = load_settings(_write(tmp_path, _minimal()))
    network, storage, dask, cost = settings.network, settings.storage, settings.dask, settings.cost
    assert (network.flow_logs, network.admin_cidr, network.public_subnets, network.private_subnets) == (
        False,
        None,
        None,
        None,
    )
    assert storage.model_dump() == {
        "versioning": False,
        "noncurrent_version_expiry_days": 30,
        "raw_transition_to_ia_days": None,
        "scores_expiry_days": None,
        "access_logs": False,
    }
    assert dask.model_dump() == {
        "scheduler_cpu": 1024,
        "scheduler_memory_mib": 4096,
        "worker_cpu": 1024,
        "worker_memory_mib": 4096,
        "n_workers": 2,
        "max_workers": 4,
        "spot_workers": False,
        "idle_timeout_minutes": 15,
        "max_lifetime_minutes": 240,
        "worker_idle_seconds": 60,
        "worker_join_timeout_minutes": 10,
        "tls": False,
    }
    assert (settings.prefect.flow_run_cpu, settings.prefect.flow_run_memory_mib) == (1024, 4096)
    assert cost.model_dump() == {"monthly_budget_usd": None, "log_gb_per_day": 0.05, "flow_log_gb_per_day": 0.5}


@pytest.mark.parametrize(
    ("az_count", "public", "private"),
    [
        (2, ["10.0.0.0/18", "10.0.64.0/18"], ["10.0.128.0/18", "10.0.192.0/18"]),
        (3, ["10.0.0.0/19", "10.0.32.0/19", "10.0.64.0/19"], ["10.0.96.0/19", "10.0.128.0/19", "10.0.160.0/19"]),
        (
            4,
            ["10.0.0.0/19", "10.0.32.0/19", "10.0.64.0/19", "10.0.96.0/19"],
            ["10.0.128.0/19", "10.0.160.0/19", "10.0.192.0/19", "10.0.224.0/19"],
        ),
    ],
)
def test_without_subnets_the_vpc_is_split_evenly_public_first(
    az_count: int, public: list[str], private: list[str]
) -> None:
    document = _minimal()
    document["network"] = {"vpc_cidr": "10.0.0.0/16", "az_count": az_count, "nat_gateways": 1}
    got_public, got_private = Settings.model_validate(document).network.subnets()
    assert [str(s) for s in got_public] == public
    assert [str(s) for s in got_private] == private


def test_given_subnets_are_used_as_they_are() -> None:
    document = _minimal()
    public, private = ["10.0.200.0/24", "10.0.100.0/24"], ["10.0.0.0/24", "10.0.1.0/24"]
    document["network"] = {
        "vpc_cidr": "10.0.0.0/16",
        "az_count": 2,
        "nat_gateways": 1,
        "public_subnets": public,
        "private_subnets": private,
    }
    network = Settings.model_validate(document).network
    assert network.subnets() == (
        [ipaddress.IPv4Network(s) for s in public],
        [ipaddress.IPv4Network(s) for s in private],
    )


@pytest.mark.parametrize(("env", "level"), [("dev", "advisory"), ("staging", "mandatory"), ("prod", "mandatory")])
def test_budget_level_and_tags_per_tier(env: str, level: str) -> None:
    settings = Settings.model_validate(SHIPPED[env])
    assert settings.budget_level == level
    assert settings.tags == {
        "CostCenter": "ml-platform",
        "Owner": "data-ml-team",
        "Project": "storm-damage",
        "Environment": env,
        "ManagedBy": "ml-workflows",
        "mlwf:platform": "ml-workflows",
        "mlwf:environment": env,
    }


# --- Files and folders ------------------------------------------------------------------------


def test_settings_that_cannot_be_read_or_parsed_are_one_line_errors(tmp_path: Path) -> None:
    missing = tmp_path / "qa.yaml"
    assert _error(missing) == f"{missing}: cannot read settings (No such file or directory)"
    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    assert _error(folder) == f"{folder}: cannot read settings (Is a directory)"
    broken = _write(tmp_path, "name: dev\ntier: [dev\n", "broken")
    text = _error(broken)
    assert text.startswith(f"{broken}: not valid YAML (while parsing a flow sequence in ")
    assert "\n" not in text
    assert "  " not in text, "whitespace of the parser's message is collapsed"
    scalar = _write(tmp_path, "just text", "scalar")
    assert _error(scalar) == f"{scalar}: expected a mapping of settings at the top level"


def test_the_name_must_be_the_file_name(tmp_path: Path) -> None:
    path = _write(tmp_path, SHIPPED["dev"], "qa")
    assert _error(path) == f"{path}: name: expected 'qa' (the file name), got 'dev'"


def _environment(folder: Path, name: str, tier: str) -> None:
    document = copy.deepcopy(SHIPPED[tier])
    document["name"] = name
    _write(folder, document)


def test_environments_load_in_tier_order_then_by_name(tmp_path: Path) -> None:
    for name, tier in [("prod", "prod"), ("zeta", "dev"), ("staging", "staging"), ("alpha", "dev")]:
        _environment(tmp_path, name, tier)
    assert [s.name for s in load_environments(tmp_path)] == ["alpha", "zeta", "staging", "prod"]
    assert load_environment("zeta", tmp_path).tier == "dev"


def test_an_empty_folder_has_no_environments(tmp_path: Path) -> None:
    with pytest.raises(UserError) as caught:
        load_environments(tmp_path)
    assert str(caught.value) == f"no environment settings (*.yaml) in {tmp_path}"
    with pytest.raises(UserError) as caught:
        load_environment("dev", tmp_path)
    assert str(caught.value) == f"unknown environment 'dev' (known: none in {tmp_path})"


def test_one_invalid_environment_fails_loading_them_all(tmp_path: Path) -> None:
    _environment(tmp_path, "dev", "dev")
    _write(tmp_path, "- a list", "broken")
    with pytest.raises(UserError, match=r"broken\.yaml: expected a mapping"):
        load_environments(tmp_path)


def test_names_are_listed_in_tier_order_even_when_files_are_invalid(tmp_path: Path) -> None:
    for name, tier in [("prod", "prod"), ("beta", "dev"), ("staging", "staging"), ("alpha", "dev")]:
        _environment(tmp_path, name, tier)
    _write(tmp_path, "name: odd\ntier: qa\n", "odd")  # an unknown tier
    _write(tmp_path, "tier: [dev\n", "broken")  # not YAML
    _write(tmp_path, "- tier: dev\n", "list")  # not a mapping
    _write(tmp_path, "", "empty")
    (tmp_path / "folder.yaml").mkdir()  # unreadable
    (tmp_path / "notes.txt").write_text("tier: dev")
    assert environment_names(tmp_path) == [
        "alpha",
        "beta",
        "staging",
        "prod",
        "broken",
        "empty",
        "folder",
        "list",
        "odd",
    ]

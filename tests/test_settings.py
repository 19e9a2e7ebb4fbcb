"""Environment settings: the shipped files are valid; each rule rejects with file, field, reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mlwf.errors import UserError
from mlwf.settings import load_environment, load_settings

REPO = Path(__file__).resolve().parents[1]


def _write(tmp_path: Path, name: str, document: Any) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document) if not isinstance(document, str) else document)
    return path


def _variant(tmp_path: Path, env: str, change: Any) -> Path:
    document = yaml.safe_load((REPO / "environments" / f"{env}.yaml").read_text())
    change(document)
    return _write(tmp_path, env, document)


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_shipped_environments_are_valid(env: str) -> None:
    settings = load_settings(REPO / "environments" / f"{env}.yaml")
    assert settings.name == env == settings.tier
    public, private = settings.network.subnets()
    assert len(public) == len(private) == settings.network.az_count


def test_nat_gateways_per_environment() -> None:
    dev = load_settings(REPO / "environments" / "dev.yaml")
    prod = load_settings(REPO / "environments" / "prod.yaml")
    assert dev.network.nat_gateways == 1
    assert prod.network.nat_gateways == prod.network.az_count


def _set(path: str, value: Any):  # type: ignore[no-untyped-def]
    def change(document: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        for part in parents:
            document = document[part]
        document[leaf] = value

    return change


def _subnets(public: list[str], private: list[str]):  # type: ignore[no-untyped-def]
    def change(document: dict[str, Any]) -> None:
        document["network"]["public_subnets"] = public
        document["network"]["private_subnets"] = private

    return change


@pytest.mark.reliability
@pytest.mark.parametrize(
    ("env", "change", "message"),
    [
        ("dev", _set("network.vpc_cidr", "10.10.0.0/33"), "network.vpc_cidr: "),
        ("dev", _set("network.vpc_cidr", "8.8.0.0/16"), "network.vpc_cidr: expected a private"),
        ("dev", _subnets(["10.10.0.0/20", "10.10.8.0/21"], ["10.10.128.0/20", "10.10.144.0/20"]), "overlap"),
        ("dev", _subnets(["10.10.0.0/20", "10.10.16.0/20"], ["10.10.128.0/20", "10.99.0.0/20"]), "outside the VPC"),
        ("dev", _subnets(["10.10.0.0/20"], ["10.10.128.0/20"]), "expected 2 public and 2 private subnets"),
        ("dev", _set("network.admin_cidr", "0.0.0.0/0"), "network.admin_cidr: expected a narrow admin range"),
        ("dev", _set("network.nat_gateways", 5), "cannot exceed az_count"),
        ("dev", _set("surprise", 1), "surprise: unknown key"),
        ("dev", _set("dask.colour", "blue"), "dask.colour: unknown key"),
        ("dev", _set("dask.max_workers", 9), "dask.max_workers 9 is above the dev maximum of 8"),
        ("dev", _set("dask.n_workers", "many"), "dask.n_workers: Input should be a valid integer"),
        ("dev", _set("dask.worker_memory_mib", 1000), "worker_memory_mib 1000 is not valid with 1024 CPU units"),
        ("dev", _set("log_retention_days", 10), "log_retention_days: expected a CloudWatch retention period"),
        ("dev", _set("cost_tags", {"Owner": "x"}), "missing required cost tag(s) CostCenter, Project"),
        ("dev", _set("account_id", "12345"), "account_id: String should match pattern"),
        ("dev", _set("name", "other"), "name: expected 'dev'"),
        ("prod", _set("dask.spot_scheduler", True), "dask.spot_scheduler: unknown key"),
        ("prod", _set("storage.versioning", False), "prod buckets must be versioned"),
        ("prod", _set("network.nat_gateways", 1), "prod needs one NAT gateway per AZ"),
        ("prod", _set("log_retention_days", 180), "log_retention_days 180 is below the prod minimum of 365"),
        ("staging", _set("log_retention_days", 60), "log_retention_days 60 is below the staging minimum of 90"),
        ("dev", _set("log_retention_days", 7), "log_retention_days 7 is below the dev minimum of 14"),
        ("staging", _set("storage.access_logs", False), "storage.access_logs: staging buckets must log access"),
        ("prod", _set("dask.tls", False), "dask.tls: prod clusters must encrypt their traffic"),
        ("prod", _set("prefect.flow_run_memory_mib", 100), "flow_run_memory_mib 100 is not valid with 1024 CPU"),
        ("prod", _set("cost", {}), "cost.monthly_budget_usd: prod needs a fixed-cost budget"),
        ("dev", _set("cost.monthly_budget_usd", -5), "cost.monthly_budget_usd: Input should be greater than 0"),
    ],
)
def test_invalid_settings_name_file_field_and_expectation(tmp_path: Path, env: str, change: Any, message: str) -> None:
    path = _variant(tmp_path, env, change)
    with pytest.raises(UserError) as caught:
        load_settings(path)
    text = str(caught.value)
    assert text.startswith(f"{path}: ")
    assert message in text
    assert "\n" not in text


@pytest.mark.reliability
@pytest.mark.parametrize(
    ("content", "message"),
    [("name: [unclosed", "not valid YAML"), ("- a list", "expected a mapping"), ("", "expected a mapping")],
)
def test_unreadable_settings_files(tmp_path: Path, content: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        load_settings(_write(tmp_path, "dev", content))


def test_unknown_environment_lists_the_known_ones() -> None:
    with pytest.raises(UserError, match=r"unknown environment 'qa' \(known: dev, prod, staging"):
        load_environment("qa", REPO / "environments")

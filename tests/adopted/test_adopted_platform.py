"""The adopter suite: what must hold in every platform made from the template, whatever its
answers. It ships with each generated platform (copier.yml); the platform's own suite, which
asserts this repository's example values, runs where the template is released (docs/template.md)."""

from __future__ import annotations

import ipaddress
import subprocess
import sys
from itertools import combinations
from pathlib import Path

from mlwf.settings import load_settings
from mlwf.workloads import discover

ROOT = Path(__file__).resolve().parents[2]
MLWF = Path(sys.executable).parent / "mlwf"


def mlwf(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(MLWF), *args], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)


def test_every_environment_file_is_valid() -> None:
    result = mlwf("env", "check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(result.stdout.splitlines()) == len(list((ROOT / "environments").glob("*.yaml")))


def test_environments_are_one_account_each_in_one_region_with_separate_networks() -> None:
    settings = [load_settings(path) for path in sorted((ROOT / "environments").glob("*.yaml"))]
    assert {"dev", "staging", "prod"} <= {s.name for s in settings}, "the promotion chain of main.yml"
    assert len({s.account_id for s in settings}) == len(settings), "one AWS account per environment"
    assert len({s.name_prefix for s in settings}) == len(settings)
    assert len({s.region for s in settings}) == 1
    for a, b in combinations(settings, 2):
        networks = ipaddress.ip_network(a.network.vpc_cidr), ipaddress.ip_network(b.network.vpc_cidr)
        assert not networks[0].overlaps(networks[1]), f"{a.name} and {b.name} share addresses"


def test_every_stack_plans_clean_under_the_policies() -> None:
    result = mlwf("plan")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_every_workloads_flows_load() -> None:
    workloads = discover(ROOT)
    assert workloads, "no workload under workflows/"
    for workload in workloads:
        for deployment in workload.deployments:
            flow = workload.load(deployment.flow)
            assert callable(flow.fn), f"{workload.name}: {deployment.flow} is not a Prefect flow"

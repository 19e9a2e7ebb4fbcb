"""Workloads are tenants and environments are data: both are found from their folders, and a new
one is deployed, planned and policy-checked with no other change. Facts live in one place."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mlwf.errors import UserError
from mlwf.workloads import DataAccess, Deployment, Workload, discover, in_order

MLWF = str(Path(sys.executable).parent / "mlwf")
REPO = Path(__file__).resolve().parents[1]


def test_the_shipped_workloads_are_found_by_their_folders() -> None:
    found = {w.name: w for w in discover(REPO)}
    assert set(found) == {"storm", "search", "starter"}
    assert found["storm"].folder == REPO / "workflows" / "storm"
    assert "curated/storm_events" in found["search"].reads
    order = [w.name for w in in_order(list(found.values()))]
    assert order.index("storm") < order.index("search"), "producers first"
    access = DataAccess.of(list(found.values()))
    assert "curated/storm_events" in access.writes
    assert "curated/storm_events" not in access.reads, "written by one: granted as written"


def test_entrypoints_are_file_paths_from_the_working_directory() -> None:
    storm = next(w for w in discover(REPO) if w.name == "storm")
    assert storm.entrypoint("flows.py:storm_damage_pipeline", REPO) == "workflows/storm/flows.py:storm_damage_pipeline"
    assert storm.load("flows.py:storm_damage_pipeline").name == "storm-damage-pipeline"


def declare(tmp_path: Path, body: str) -> Path:
    folder = tmp_path / "workflows" / "bad"
    folder.mkdir(parents=True)
    (folder / "flows.py").write_text("def f():\n    pass\n")
    (folder / "workload.py").write_text("from mlwf.workloads import Deployment, Workload\n" + textwrap.dedent(body))
    return tmp_path


@pytest.mark.reliability
@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("X = 1\n", "expected WORKLOAD = Workload(...)"),
        ("WORKLOAD = Workload(name='Bad Name')\n", "name 'Bad Name' must be lower case"),
        ("WORKLOAD = Workload(name='bad', writes=('/abs',))\n", "data prefix '/abs' must be a relative path"),
        ("WORKLOAD = Workload(name='bad', writes=('raw/../x',))\n", "data prefix 'raw/../x'"),
        ("WORKLOAD = Workload(name='bad', deployments=(Deployment('nope.py:f'),))\n", "'nope.py:f' is not"),
        ("WORKLOAD = Workload(name='bad', smoke=Deployment('flows.py:f'))\n", "runs but is not one of its deployments"),
    ],
)
def test_a_bad_declaration_is_one_line_naming_its_file(tmp_path: Path, body: str, words: str) -> None:
    root = declare(tmp_path, body)
    with pytest.raises(UserError, match=re.escape(words)) as failure:
        discover(root)
    assert str(failure.value).startswith(str(root / "workflows" / "bad" / "workload.py"))
    assert "\n" not in str(failure.value)


def test_workloads_reading_each_other_in_a_cycle_are_refused() -> None:
    a = Workload("a", writes=("x",), reads=("y",))
    b = Workload("b", writes=("y",), reads=("x",))
    with pytest.raises(UserError, match="in a cycle: a, b"):
        in_order([a, b])


THROWAWAY_WORKLOAD = """
from mlwf.workloads import Deployment, Workload

WORKLOAD = Workload(
    name="throwaway",
    writes=("scratch/throwaway",),
    deployments=(Deployment("flows.py:throwaway_flow"),),
)
"""
THROWAWAY_FLOWS = """
from prefect import flow

import mlwf


@flow(name="throwaway-flow")
def throwaway_flow(env: str = "local", data_root: str | None = None) -> int:
    with mlwf.cluster(env, data_root) as run:
        return int(run.client.submit(sum, [1, 2]).result())
"""


@pytest.fixture
def copy_with_a_new_tenant_and_environment(tmp_path: Path) -> Path:
    """This repository, plus a workload folder and an environment file: nothing else changed."""
    copy = tmp_path / "repo"
    shutil.copytree(
        REPO,
        copy,
        ignore=shutil.ignore_patterns(".venv", ".git", "mlwf-data", ".bench-cache", "__pycache__", ".*_cache"),
    )
    (copy / "workflows" / "throwaway").mkdir()
    (copy / "workflows" / "throwaway" / "workload.py").write_text(THROWAWAY_WORKLOAD)
    (copy / "workflows" / "throwaway" / "flows.py").write_text(THROWAWAY_FLOWS)
    sandbox = (REPO / "environments" / "dev.yaml").read_text()
    for old, new in (("name: dev", "name: sandbox"), ("mlwf-dev", "mlwf-sandbox"), ("10.10.0.0/16", "10.40.0.0/16")):
        sandbox = sandbox.replace(old, new)
    (copy / "environments" / "sandbox.yaml").write_text(sandbox)
    return copy


def mlwf(copy: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MLWF, *args], cwd=copy, capture_output=True, text=True, timeout=600, env={**os.environ, **env}
    )


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_a_new_workload_and_environment_are_deployed_planned_and_checked_with_no_other_change(
    copy_with_a_new_tenant_and_environment: Path,
) -> None:
    copy = copy_with_a_new_tenant_and_environment
    listed = mlwf(copy, "env", "list")
    assert json.loads(listed.stdout) == ["dev", "sandbox", "staging", "prod"], listed.stderr

    plan = mlwf(copy, "plan", "--env", "sandbox", "--json")
    assert plan.returncode == 0, plan.stderr[-2000:]
    plans = json.loads(plan.stdout)
    assert {p["stack"] for p in plans} == {"network", "storage", "compute", "prefect-agent", "bootstrap", "github"}
    assert {p["env"] for p in plans} == {"sandbox", "111111111111", "repository"}  # and its account's, the repo's
    assert all(p["violations"] == [] for p in plans), "checked under its tier's (dev) policy config"
    bootstrap = next(p for p in plans if p["stack"] == "bootstrap")
    roles = {r["inputs"]["name"] for r in bootstrap["resources"] if r["type"] == "aws:iam/role:Role"}
    assert {"mlwf-github-deploy-sandbox", "mlwf-github-deploy-dev"} <= roles, "its account's bootstrap deploys it"
    compute = next(p for p in plans if p["stack"] == "compute")
    granted = json.dumps([r["inputs"] for r in compute["resources"] if r["type"] == "aws:iam/rolePolicy:RolePolicy"])
    assert "arn:aws:s3:::mlwf-sandbox-data-111111111111/scratch/throwaway/*" in granted, "its declared prefix"

    from prefect.settings import PREFECT_API_URL

    deploy = mlwf(copy, "flows", "deploy", "--env", "local", PREFECT_API_URL=str(PREFECT_API_URL.value()))
    assert deploy.returncode == 0, deploy.stderr[-2000:]
    assert "deployed throwaway-flow/local" in deploy.stdout
    assert "deployed storm-damage-pipeline/local" in deploy.stdout

    async def entrypoint() -> str:
        from prefect.client.orchestration import get_client

        async with get_client() as client:
            found = await client.read_deployment_by_name("throwaway-flow/local")
            return str(found.entrypoint)

    assert asyncio.run(entrypoint()) == "workflows/throwaway/flows.py:throwaway_flow"


def test_a_deployment_declared_twice_is_a_deployment_each() -> None:
    storm = next(w for w in discover(REPO) if w.name == "storm")
    flows = [d.flow for d in storm.deployments]
    assert len(flows) == len(set(flows))
    assert Deployment(
        "flows.py:ingest_flow", parameters={"source": "workflows/storm/sample_data", "years": [1995]}
    ) == (storm.smoke)


# -- facts written once ------------------------------------------------------------------------

SOURCES = [
    p
    for root in ("src", "workflows", "platform", "policies")
    for p in (REPO / root).rglob("*")
    if p.suffix in (".py", ".yml", ".yaml", ".json") and "__pycache__" not in p.parts
]


def where(pattern: str) -> set[str]:
    """The files (relative) whose text matches ``pattern``."""
    regex = re.compile(pattern)
    return {p.relative_to(REPO).as_posix() for p in SOURCES if regex.search(p.read_text(errors="replace"))}


def test_the_list_of_environments_is_written_nowhere() -> None:
    """Environments are the files of environments/: no code lists them (the tiers are a type)."""
    assert where(r"""["']dev["'],\s*["']staging["'],\s*["']prod["']""") == {"src/mlwf/settings.py"}


def test_stack_names_runtime_parameters_and_the_workdir_live_in_one_place() -> None:
    assert where(r"""["']network["'],\s*["']storage["']""") == {"src/mlwf/stacks/programs.py"}, "the registry: STACKS"
    assert where(r"""StackSpec\(["']""") == {"src/mlwf/stacks/programs.py"}
    assert where(r"/compute[\"']") == {"src/mlwf/contract.py"}
    assert where(r"/work-pool[\"']") == {"src/mlwf/contract.py"}
    assert where(r"/opt/mlwf") == {"src/mlwf/contract.py"}


def test_the_license_pyproject_promises_is_shipped() -> None:
    """An adopter copies LICENSE: the Apache License 2.0 that pyproject.toml declares."""
    import tomllib

    assert tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["license"] == "Apache-2.0"
    text = (REPO / "LICENSE").read_text()
    assert text.lstrip().startswith("Apache License\n                           Version 2.0, January 2004")
    assert "END OF TERMS AND CONDITIONS" in text

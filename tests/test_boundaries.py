"""The platform's rooms: nothing under src/mlwf imports a workload (they are loaded by path from
their declarations), and no two packages or modules of the platform import each other in a
cycle. Read from the source (every import, lazy ones too, but not those only for the type
checker), so a new cycle fails here before it confuses a reader."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted((SRC / "mlwf").rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The modules of ``known`` that ``path`` imports (``from a import b`` names ``a.b`` when it
    is a module), leaving out ``if TYPE_CHECKING:`` blocks."""
    tree = ast.parse(path.read_text())
    skipped = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
        for inner in ast.walk(node)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in known}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            submodules = {f"{node.module}.{a.name}" for a in node.names} & set(known)
            found |= submodules or ({node.module} & set(known))
    return found


def room(module: str) -> str:
    """A package of mlwf (``mlwf.infra``) or a top-level module (``mlwf.dask_cluster``)."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 2 or (SRC / "mlwf" / parts[-1]).is_dir() else module


def cycles(edges: set[tuple[str, str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for a, b in edges:
        graph[a].add(b)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_nothing_under_src_mlwf_imports_a_workload() -> None:
    found = []
    for path in modules().values():
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            found += [f"{path.relative_to(REPO)}: {n}" for n in names if n.split(".")[0] == "workflows"]
    assert found == []


def test_no_package_or_module_of_the_platform_imports_itself_in_a_cycle() -> None:
    known = modules()
    edges = {(name, other) for name, path in known.items() for other in imports(path, known) if other != name}
    assert cycles(edges) == [], "modules"
    rooms = {(room(a), room(b)) for a, b in edges if room(a) != room(b)}
    assert cycles(rooms) == [], "packages"


def test_the_cycle_finder_finds_one() -> None:
    assert cycles({("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")}) == [["a", "b", "c"]]
    assert cycles({("a", "b"), ("b", "c")}) == []


WORKLOAD_LIBRARIES = ("sklearn", "dask_ml", "matplotlib")  # the workloads' dependency groups, not the platform's
BLOCKER = f"""
import importlib.abc
import sys


class Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {WORKLOAD_LIBRARIES!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (a workload's library)")
        return None


sys.meta_path.insert(0, Blocked())
"""


def test_the_platform_runs_without_the_workloads_libraries(tmp_path: Path) -> None:
    """Every module of the platform imports, `mlwf plan` plans and `mlwf --help` mounts each
    workload's commands with the workloads' libraries missing (as in a job that installs only
    the infra group): they are the workloads' dependency groups, not the platform's."""
    import os
    import subprocess
    import sys
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    platform = {re.split(r"[\[=<>]", d)[0] for d in project["project"]["dependencies"]}
    assert not platform & {"dask-ml", "scikit-learn", "matplotlib"}
    groups = project["dependency-groups"]
    assert groups["workloads"] == [{"include-group": "storm"}, {"include-group": "search"}]
    (tmp_path / "sitecustomize.py").write_text(BLOCKER)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    bin_dir = Path(sys.executable).parent
    every_module = (
        "import importlib, pkgutil, mlwf\n"
        "names = [m.name for m in pkgutil.walk_packages(mlwf.__path__, 'mlwf.')]\n"
        "[importlib.import_module(n) for n in names]\n"
        "import sklearn\n"
    )
    imported = subprocess.run([sys.executable, "-c", every_module], env=env, capture_output=True, text=True, cwd=REPO)
    assert imported.stderr.strip().splitlines()[-1] == (
        "ModuleNotFoundError: No module named 'sklearn' (a workload's library)"
    ), "every platform module imported; only the last line, the workload's library, failed"
    for argv in (["plan", "--env", "dev", "--stack", "compute"], ["--help"]):
        result = subprocess.run([str(bin_dir / "mlwf"), *argv], env=env, capture_output=True, text=True, cwd=REPO)
        assert result.returncode == 0, result.stderr[-2000:]

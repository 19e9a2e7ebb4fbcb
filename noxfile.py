"""Task runner: every check CI runs is a session here, run the same way on a laptop.

Sessions run tools from the locked project environment (`uv run --locked`), so a developer,
pre-commit and CI all use the versions pinned in uv.lock. Pass arguments after `--` to narrow
a session, e.g. `uv run nox -s tests -- -m "not slow"`.
"""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.default_venv_backend = "none"
nox.options.sessions = ["lint", "typecheck", "tests"]


def locked(session: nox.Session, *args: str) -> None:
    session.run("uv", "run", "--locked", *args, external=True)


def platform_suite(session: nox.Session, path: str) -> None:
    """Sessions of the platform's own suite, which a generated platform does not carry."""
    if not Path(path).exists():
        session.error(f"no {path}: the platform's own suite runs where the template is released (docs/template.md)")


@nox.session
def lint(session: nox.Session) -> None:
    """Lint and check formatting with ruff; the GitHub workflows with zizmor (offline, its
    default persona) and the image's Dockerfile with hadolint."""
    paths = session.posargs or ["."]
    locked(session, "ruff", "check", *paths)
    locked(session, "ruff", "format", "--check", *paths)
    if not session.posargs:
        locked(session, "zizmor", "--offline", "--quiet", ".github")
        locked(session, "hadolint", "image/Dockerfile")


@nox.session
def typecheck(session: nox.Session) -> None:
    """Type-check the project's code with mypy."""
    locked(session, "mypy", *session.posargs)


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite (all markers; narrow with -- -m 'not slow')."""
    locked(session, "pytest", *session.posargs)


@nox.session
def fuzz(session: nox.Session) -> None:
    """Fuzz the CLI's inputs longer than CI does, with new random cases (-- to narrow pytest)."""
    platform_suite(session, "tests/test_fuzz_cli.py")
    session.env.setdefault("MLWF_FUZZ_SCALE", "20")
    session.env["MLWF_FUZZ_RANDOM"] = "1"
    locked(session, "pytest", "-n", "0", "tests/test_fuzz_cli.py", *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    """Run `mlwf demo` locally: the demo of the workload the others build on."""
    locked(session, "mlwf", "demo", *session.posargs)


@nox.session
def export(session: nox.Session) -> None:
    """Export the image's requirements (image/requirements.txt) from uv.lock."""
    session.run(
        "uv",
        "run",
        "--locked",
        "python",
        "-c",
        "from pathlib import Path; from mlwf.image import REQUIREMENTS, export_requirements; "
        "export_requirements(Path('.'), REQUIREMENTS)",
        external=True,
    )


@nox.session
def upgrade(session: nox.Session) -> None:
    """Upgrade the lock (every package, or -- PACKAGE ...) and regenerate the image's requirements
    from it in the same change (pre-commit and the tests fail a lock without them)."""
    packages = [arg for name in session.posargs for arg in ("--upgrade-package", name)] or ["--upgrade"]
    session.run("uv", "lock", *packages, external=True)
    session.notify("export")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmark the platform against single-process pandas + scikit-learn (-- --quick)."""
    locked(session, "mlwf", "bench", *(session.posargs or ["--json", "bench.json"]))


@nox.session
def prices(session: nox.Session) -> None:
    """Reread the price table (src/mlwf/cost/prices.csv) from AWS's public price list (network
    needed; `-- --endpoint URL` for a copy of it)."""
    locked(session, "mlwf", "prices", "refresh", *session.posargs)


@nox.session
def mutate(session: nox.Session) -> None:
    """Mutation testing (mutmut, locked) of the modules behind the guarantees ([tool.mutmut] in
    pyproject.toml): each mutant against the tests that reach it; then the score per module and
    every mutant left alive that tests/mutants_explained.toml does not explain. Not in CI: about 20
    minutes on 2 cores (docs/reliability.md)."""
    platform_suite(session, "tests/mutation_scores.py")
    locked(session, "mutmut", "run", *session.posargs)
    locked(session, "python", "tests/mutation_scores.py", "mutants")

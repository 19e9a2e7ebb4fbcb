"""Per-module scores of the last `mutmut run` (`nox -s mutate` prints them): killed / all mutants,
then every mutant left alive that `tests/mutants_explained.toml` does not explain (equivalent, or
not worth a test, with the reason). Exit status 1 when a module is under the goal or a survivor
is unexplained; explanations of mutants that no longer survive are listed to be removed."""

from __future__ import annotations

import json
import sys
import tomllib
from collections import Counter, defaultdict
from pathlib import Path

from mutmut.stats import status_by_exit_code

GOAL = 0.85
KILLED = {"killed", "timeout", "caught by type check", "segfault"}
EXPLAINED = Path(__file__).with_name("mutants_explained.toml")


def scores(mutants: Path) -> dict[str, tuple[Counter[str], dict[str, str]]]:
    """module path -> (statuses, the mutants not killed: name -> status)."""
    out: dict[str, tuple[Counter[str], dict[str, str]]] = defaultdict(lambda: (Counter(), {}))
    for meta in sorted(mutants.rglob("*.py.meta")):
        module = str(meta.relative_to(mutants)).removesuffix(".meta")
        statuses, alive = out[module]
        for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            status = status_by_exit_code[code]
            statuses[status] += 1
            if status not in KILLED:
                alive[name] = status
    return dict(out)


def explanations(path: Path) -> dict[str, str]:
    """mutant name -> why it may survive."""
    reasons: dict[str, str] = {}
    for group in tomllib.loads(path.read_text())["group"]:
        for name in group["mutants"]:
            if name in reasons:
                raise SystemExit(f"{path.name}: {name} is explained twice")
            reasons[name] = group["reason"]
    return reasons


def main() -> int:
    found = scores(Path(sys.argv[1] if len(sys.argv) > 1 else "mutants"))
    if not found:
        print("no mutation results: run `mutmut run` first")
        return 1
    reasons = explanations(EXPLAINED)
    ran = {m: s for m, s in found.items() if sum(s[0].values()) and set(s[0]) != {"not checked"}}
    under, unexplained, alive_names = [], {}, set()
    print(f"{'module':<40} {'killed':>7} {'all':>5} {'score':>6} {'explained':>9} {'unexplained':>11}")
    for module, (statuses, alive) in found.items():
        if not statuses:  # no code to mutate (an empty __init__.py)
            continue
        if module not in ran:  # outside the mutants this run was asked for
            print(f"{module:<40} {'':>7} {statuses['not checked']:>5} {'':>6}  not run")
            continue
        total = sum(statuses.values())
        killed = sum(statuses[s] for s in KILLED)
        alive_names |= set(alive)
        left = {n: s for n, s in alive.items() if n not in reasons}
        score = killed / total if total else 1.0
        print(f"{module:<40} {killed:>7} {total:>5} {score:>6.0%} {len(alive) - len(left):>9} {len(left):>11}")
        if score < GOAL:
            under.append(module)
        if left:
            unexplained[module] = left
    for module, left in unexplained.items():
        print(f"\n{module}: alive, not in {EXPLAINED.name}:")
        for name, status in left.items():
            print(f"  {status:<11} {name}")
    modules_run = {m.removesuffix(".py").removeprefix("src/").replace("/", ".") for m in ran}
    stale = [n for n in reasons if n not in alive_names and n.split(".x")[0] in modules_run]
    if stale:
        print(f"\nexplained in {EXPLAINED.name} but killed or gone now (remove them):")
        for name in stale:
            print(f"  {name}")
    if under:
        print(f"\nunder the {GOAL:.0%} goal: {', '.join(under)}")
    return 1 if under or unexplained else 0


if __name__ == "__main__":
    sys.exit(main())

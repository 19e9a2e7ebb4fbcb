"""Per-module scores of the last `mutmut run` (`nox -s mutate` prints them): killed / all mutants,
and every mutant that survived or that no test reaches. Exit status 1 when a module is under
the goal."""

from __future__ import annotations

import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

from mutmut.stats import status_by_exit_code

GOAL = 0.85
KILLED = {"killed", "timeout", "caught by type check", "segfault"}


def scores(mutants: Path) -> dict[str, tuple[Counter[str], list[str]]]:
    """module path -> (statuses, the names of the mutants not killed)."""
    out: dict[str, tuple[Counter[str], list[str]]] = defaultdict(lambda: (Counter(), []))
    for meta in sorted(mutants.rglob("*.py.meta")):
        module = str(meta.relative_to(mutants)).removesuffix(".meta")
        statuses, alive = out[module]
        for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            status = status_by_exit_code[code]
            statuses[status] += 1
            if status not in KILLED:
                alive.append(f"{status:<11} {name}")
    return dict(out)


def main() -> int:
    found = scores(Path(sys.argv[1] if len(sys.argv) > 1 else "mutants"))
    if not found:
        print("no mutation results: run `mutmut run` first")
        return 1
    under = []
    print(f"{'module':<40} {'killed':>7} {'all':>5} {'score':>6}  not killed")
    for module, (statuses, _) in found.items():
        if not statuses:  # no code to mutate (an empty __init__.py)
            continue
        if set(statuses) == {"not checked"}:  # outside the mutants this run was asked for
            print(f"{module:<40} {'':>7} {statuses['not checked']:>5} {'':>6}  not run")
            continue
        total = sum(statuses.values())
        killed = sum(statuses[s] for s in KILLED)
        score = killed / total if total else 1.0
        rest = ", ".join(f"{n} {s}" for s, n in statuses.items() if s not in KILLED)
        print(f"{module:<40} {killed:>7} {total:>5} {score:>6.0%}  {rest}")
        if score < GOAL:
            under.append(module)
    for module, (statuses, alive) in found.items():
        if alive and set(statuses) != {"not checked"}:
            print(f"\n{module}:")
            for line in alive:
                print(f"  {line}")
    if under:
        print(f"\nunder the {GOAL:.0%} goal: {', '.join(under)}")
    return 1 if under else 0


if __name__ == "__main__":
    sys.exit(main())

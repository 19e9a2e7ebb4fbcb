"""The starter workload's local run (`mlwf starter demo`)."""

from __future__ import annotations

from mlwf import storage
from mlwf.workloads import Demo


def run(output: str = "mlwf-data") -> Demo:
    storage.check_writable(output)
    from workflows.starter.flows import starter_flow

    summary = starter_flow(data_root=output)
    lines = [
        f"mean {summary['mean']:.4f}, std {summary['std']:.4f} of {summary['size']:,} numbers "
        f"in {summary['chunks']} chunks",
        f"result       {summary['result']}",
    ]
    return Demo(summary, lines)

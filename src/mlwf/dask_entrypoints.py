"""`dask-scheduler` and `dask-worker` commands, as dask-cloudprovider 2025.9's ECS task
definitions call them: distributed >= 2026.6 installs only `dask scheduler` / `dask worker`
(dask-cloudprovider#485). Installed with this package, so the image, the client and the tests
agree on the fix.

They also enforce the platform's maximum cluster lifetime: with ``MLWF_MAX_LIFETIME`` set (a
Dask duration such as ``"240m"``, set by `mlwf.dask_cluster.fargate_cluster_kwargs`), the process
sends itself SIGTERM when the lifetime is over and distributed shuts down cleanly. Workers also
get ``--lifetime``; the scheduler has no such option, hence this. With ``MLWF_DASK_TLS_SECRET``
set (an AWS run with ``dask.tls``), they read the run's certificates and start with TLS
(`mlwf.dask_tls`).
"""

from __future__ import annotations

import os
import signal
import sys
import threading

from dask.utils import parse_timedelta

from mlwf.dask_tls import command_arguments

LIFETIME_VARIABLE = "MLWF_MAX_LIFETIME"


def _arm_lifetime() -> None:
    lifetime = os.environ.get(LIFETIME_VARIABLE)
    if not lifetime:
        return
    seconds = parse_timedelta(lifetime, default="s")
    timer = threading.Timer(seconds, os.kill, args=(os.getpid(), signal.SIGTERM))
    timer.daemon = True
    timer.start()


def scheduler() -> None:
    from distributed.cli.dask_scheduler import main

    _arm_lifetime()
    sys.argv += command_arguments("scheduler")
    main()


def worker() -> None:
    from distributed.cli.dask_worker import main

    _arm_lifetime()
    sys.argv += command_arguments("worker")
    main()

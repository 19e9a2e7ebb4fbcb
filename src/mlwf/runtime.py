"""Resolve where a flow run reads, writes and computes: once, at the flow's edge.

``env="local"`` is the embedded default (a folder and a LocalCluster). Any other name is an AWS
environment: its settings come from ``environments/<env>.yaml`` and the IDs the compute stack
created from the SSM parameter ``/<name_prefix>/compute`` it publishes, so nobody copies IDs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from mlwf.contract import ClusterRuntime, runtime_parameter_name
from mlwf.dask_cluster import ClusterSpec, RunInfo, cluster_spec
from mlwf.errors import UserError
from mlwf.settings import Settings, load_environment

LOCAL = "local"
DEFAULT_LOCAL_ROOT = "mlwf-data"


@dataclass(frozen=True)
class Runtime:
    env: str
    data_root: str
    settings: Settings | None
    cluster: ClusterRuntime | None

    def cluster_spec(self, flow_run_id: str, max_workers: int | None = None) -> ClusterSpec:
        return cluster_spec(self.settings, self.cluster, RunInfo(self.env, flow_run_id), max_workers)


def read_cluster_runtime(settings: Settings) -> ClusterRuntime:
    """The compute stack's published runtime for this environment (from SSM)."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    name = runtime_parameter_name(settings.name_prefix)
    try:
        response = boto3.client("ssm", region_name=settings.region).get_parameter(Name=name)
        document = json.loads(response["Parameter"]["Value"])
        return ClusterRuntime(**document)
    except (ClientError, BotoCoreError) as exc:
        raise UserError(f"cannot read the compute runtime {name}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise UserError(f"the compute runtime {name} is malformed: {exc}") from None


def resolve(env: str, data_root: str | None = None, environments_dir: str | Path = "environments") -> Runtime:
    if env == LOCAL:
        return Runtime(LOCAL, data_root or DEFAULT_LOCAL_ROOT, None, None)
    settings = load_environment(env, environments_dir)
    cluster = read_cluster_runtime(settings)
    return Runtime(env, data_root or cluster.data_root, settings, cluster)

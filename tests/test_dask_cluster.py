"""Cluster lifecycle on real LocalClusters, and the Fargate arguments built from settings."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from distributed import Client
from distributed.core import Status

from mlwf.dask_cluster import (
    Adaptivity,
    ClusterMissingError,
    ClusterRuntime,
    ClusterStartError,
    FargateSpec,
    LocalSpec,
    RunInfo,
    Terminated,
    _sigterm_raises,
    cluster_spec,
    dask_client,
    fargate_cluster_kwargs,
    start_error_line,
    worker_cap,
)
from mlwf.errors import UserError
from mlwf.settings import TIER_MAX_WORKERS, load_settings
from mlwf.versions import WorkersDidNotJoinError, guard_versions

REPO = Path(__file__).resolve().parents[1]
RUNTIME = ClusterRuntime(
    cluster_arn="arn:aws:ecs:us-east-1:111111111111:cluster/mlwf-dev",
    vpc_id="vpc-0abc",
    private_subnets=["subnet-a", "subnet-b"],
    scheduler_security_group="sg-sched",
    worker_security_group="sg-work",
    flow_security_group="sg-flow",
    execution_role_arn="arn:aws:iam::111111111111:role/mlwf-dev-exec",
    task_role_arn="arn:aws:iam::111111111111:role/mlwf-dev-dask",
    flow_task_role_arn="arn:aws:iam::111111111111:role/mlwf-dev-flow",
    log_group="/mlwf/dev/dask",
    image="111111111111.dkr.ecr.us-east-1.amazonaws.com/mlwf/flows:py3.11-abc123",
    data_root="s3://mlwf-dev-data",
    scheduler_task_definition_arn="arn:aws:ecs:us-east-1:111111111111:task-definition/mlwf-dev-dask-scheduler:3",
    worker_task_definition_arn="arn:aws:ecs:us-east-1:111111111111:task-definition/mlwf-dev-dask-worker:3",
)
RUN = RunInfo("dev", "flow-run-1", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_fargate_clusters_use_private_ips_and_pre_created_resources(env: str) -> None:
    settings = load_settings(REPO / "environments" / f"{env}.yaml")
    kwargs = fargate_cluster_kwargs(settings, RUNTIME, RUN)
    assert kwargs["fargate_use_private_ip"] is True
    assert kwargs["subnets"] == RUNTIME.private_subnets
    assert kwargs["security_groups"] == ["sg-sched", "sg-work"]
    assert kwargs["cluster_arn"] == RUNTIME.cluster_arn
    assert kwargs["vpc"] == "vpc-0abc"
    assert kwargs["task_role_arn"] == RUNTIME.task_role_arn
    assert kwargs["execution_role_arn"] == RUNTIME.execution_role_arn
    assert kwargs["cloudwatch_logs_group"] == "/mlwf/dev/dask"
    assert kwargs["image"] == RUNTIME.image
    assert kwargs["skip_cleanup"] is True, "dask-cloudprovider's cleanup deletes other runs' resources"
    assert kwargs["scheduler_timeout"] == f"{settings.dask.idle_timeout_minutes} minutes"
    assert kwargs["worker_extra_args"] == ["--lifetime", f"{settings.dask.max_lifetime_minutes}m"]
    assert kwargs["n_workers"] == settings.dask.n_workers
    assert (kwargs["worker_cpu"], kwargs["worker_mem"]) == (settings.dask.worker_cpu, settings.dask.worker_memory_mib)


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_runs_use_the_stacks_task_definitions_and_register_none(env: str) -> None:
    """dask-cloudprovider registers (and never deregisters) task definitions unless it is
    given their ARNs: with them a run registers nothing, so nothing leaks."""
    settings = load_settings(REPO / "environments" / f"{env}.yaml")
    kwargs = fargate_cluster_kwargs(settings, RUNTIME, RUN)
    assert kwargs["scheduler_task_definition_arn"] == RUNTIME.scheduler_task_definition_arn
    assert kwargs["worker_task_definition_arn"] == RUNTIME.worker_task_definition_arn
    assert kwargs["cloudwatch_logs_stream_prefix"] == "dask", "cluster.logs() reads the streams the definitions write"
    # dask-cloudprovider creates a role, log group or security group for each one missing.
    for key in ("execution_role_arn", "task_role_arn", "cloudwatch_logs_group", "security_groups", "vpc", "subnets"):
        assert kwargs[key], key


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_fargate_clusters_adapt_between_n_workers_and_max_workers(env: str) -> None:
    settings = load_settings(REPO / "environments" / f"{env}.yaml")
    spec = cluster_spec(settings, RUNTIME, RUN)
    assert isinstance(spec, FargateSpec)
    adapt = spec.adaptivity.adapt_kwargs()
    assert (adapt["minimum"], adapt["maximum"]) == (settings.dask.n_workers, settings.dask.max_workers)
    assert adapt["maximum"] > adapt["minimum"], "a cluster that cannot grow"
    # A worker is given back after it was idle for the settings' interval (checks x interval).
    assert adapt["wait_count"] * spec.adaptivity.interval_s == pytest.approx(settings.dask.worker_idle_seconds, abs=5)
    assert spec.join_timeout_s == settings.dask.worker_join_timeout_minutes * 60


def test_a_run_may_ask_for_more_workers_up_to_its_tiers_cap() -> None:
    dev = load_settings(REPO / "environments" / "dev.yaml")
    cap = TIER_MAX_WORKERS["dev"]
    assert dev.dask.max_workers < cap
    spec = cluster_spec(dev, RUNTIME, RUN, max_workers=cap)
    assert isinstance(spec, FargateSpec)
    assert spec.adaptivity.maximum == cap
    with pytest.raises(UserError, match=rf"^max_workers {cap + 1} is above the dev tier's cap of {cap}$"):
        cluster_spec(dev, RUNTIME, RUN, max_workers=cap + 1)
    with pytest.raises(UserError, match="below the environment's n_workers"):
        cluster_spec(dev, RUNTIME, RUN, max_workers=dev.dask.n_workers - 1)


def test_local_clusters_stay_fixed() -> None:
    assert cluster_spec(None, None, RUN, max_workers=64) == LocalSpec()


@pytest.mark.slow
def test_too_few_workers_is_a_one_line_error_naming_how_many_joined() -> None:
    from distributed import LocalCluster

    with (
        LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster) as client,
        pytest.raises(WorkersDidNotJoinError, match=r"^only 1 of 2 Dask worker\(s\) joined within 2 s$"),
        guard_versions(client, expected_workers=2, timeout=2),
    ):
        pass


def test_fargate_clusters_are_tagged_for_cost_and_for_the_reaper() -> None:
    settings = load_settings(REPO / "environments" / "dev.yaml")
    tags = fargate_cluster_kwargs(settings, RUNTIME, RUN)["tags"]
    assert tags["mlwf:platform"] == "ml-workflows"
    assert tags["mlwf:environment"] == "dev"
    assert tags["mlwf:flow-run"] == "flow-run-1"
    assert tags["mlwf:created-at"] == "2026-01-02T03:04:05Z"
    assert {"CostCenter", "Owner", "Project"} <= set(tags)


def test_spot_follows_settings() -> None:
    dev = load_settings(REPO / "environments" / "dev.yaml")
    assert fargate_cluster_kwargs(dev, RUNTIME, RUN)["fargate_spot"] is True
    no_spot = dev.model_copy(update={"dask": dev.dask.model_copy(update={"spot_workers": False})})
    assert fargate_cluster_kwargs(no_spot, RUNTIME, RUN)["fargate_spot"] is False


@pytest.mark.parametrize("image", ["repo/flows", "111111111111.dkr.ecr.us-east-1.amazonaws.com/mlwf/flows"])
def test_unpinned_images_are_refused(image: str) -> None:
    settings = load_settings(REPO / "environments" / "dev.yaml")
    runtime = ClusterRuntime(**{**RUNTIME.__dict__, "image": image})
    with pytest.raises(ValueError, match="not pinned"):
        fargate_cluster_kwargs(settings, runtime, RUN)


@pytest.mark.slow
def test_the_cluster_is_closed_after_success_and_after_failure() -> None:
    with dask_client(LocalSpec(n_workers=1)) as client:
        cluster = client.cluster
        assert client.submit(sum, [1, 2]).result() == 3
    assert cluster.status == Status.closed
    seen = []

    def fail_inside() -> None:
        with dask_client(LocalSpec(n_workers=1)) as client:
            seen.append(client.cluster)
            client.submit(lambda: 1 / 0).result()

    with pytest.raises(ZeroDivisionError):
        fail_inside()
    assert seen[0].status == Status.closed


@pytest.mark.slow
@pytest.mark.reliability
def test_sigterm_to_the_flow_process_runs_our_cleanup_on_a_cluster_outside_it(tmp_path: Path) -> None:
    """The cluster runs in processes of its own, as a FargateCluster's tasks do, so only the flow
    process's cleanup (SIGTERM -> `Terminated` -> `cluster.close()`) can stop it: dying is not enough."""
    from conftest import free_port
    from dask_processes import scheduler_command, start, worker_command

    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    bin_dir = Path(sys.executable).parent
    scheduler = start(bin_dir, *scheduler_command(port))
    worker = start(bin_dir, *worker_command(address))
    ready, closed = tmp_path / "ready", tmp_path / "closed"
    script = textwrap.dedent(
        f"""
        import time
        from distributed import Client
        from distributed.core import Status
        from mlwf import dask_cluster as compute

        class RemoteCluster:  # what `_start` returns for Fargate: a handle on a cluster elsewhere
            name = "remote"
            status = Status.running
            scheduler_address = {address!r}

            def close(self):
                with Client(self.scheduler_address, timeout=10) as client:
                    client.shutdown()
                open({str(closed)!r}, "w").write("closed")

        compute._start = lambda spec, cleanup: RemoteCluster()
        if __name__ == "__main__":
            with compute.dask_client(compute.LocalSpec(n_workers=1)) as client:
                assert client.submit(sum, [1, 2]).result() == 3
                open({str(ready)!r}, "w").write("ready")
                time.sleep(120)
        """
    )
    (tmp_path / "hold.py").write_text(script)
    process = subprocess.Popen([sys.executable, str(tmp_path / "hold.py")], cwd=tmp_path)
    try:
        deadline = time.monotonic() + 90
        while not ready.exists():
            assert time.monotonic() < deadline, "the flow process never got its cluster"
            assert process.poll() is None, "the flow process died"
            time.sleep(0.2)
        os.kill(process.pid, signal.SIGTERM)
        assert process.wait(timeout=60) != 0, "the run ends failed"
        assert closed.read_text() == "closed", "our cleanup ran"
        assert scheduler.wait(timeout=30) is not None, "the external scheduler was shut down"
        assert worker.wait(timeout=30) is not None
    finally:
        for child in (process, scheduler, worker):
            if child.poll() is None:
                child.kill()
                child.wait()


def test_the_platform_api_is_light_to_import() -> None:
    """`import mlwf` (what settings, stacks and the CLI start with) loads no Dask or Prefect."""
    heavy = "('dask', 'distributed', 'prefect')"
    code = f"import sys, mlwf; print(sorted(m for m in sys.modules if m.split('.')[0] in {heavy}))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.slow
def test_a_flow_gets_its_cluster_settings_and_data_root_from_one_call(tmp_path: Path) -> None:
    import mlwf

    with mlwf.cluster("local", str(tmp_path)) as run:
        assert run.client.submit(sum, [1, 2]).result() == 3
        assert (run.env, run.data_root, run.settings) == ("local", str(tmp_path), None)
        cluster = run.client.cluster
    assert cluster.status == Status.closed
    assert mlwf.data_root() == "mlwf-data", "the local default"


def moto_calls(endpoint: str, action: str) -> list[dict[str, Any]]:
    """The JSON bodies of every ``action`` request the moto server received while recording
    (its recorder: what CloudTrail would show)."""
    recording = urllib.request.urlopen(f"{endpoint}/moto-api/recorder/download-recording").read().decode()
    calls = []
    for line in recording.splitlines():
        request = json.loads(line)
        if request.get("headers", {}).get("X-Amz-Target", "").endswith(f".{action}") and request.get("body"):
            calls.append(json.loads(base64.b64decode(request["body"])))
    return calls


def recorder(endpoint: str, what: str) -> None:
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/recorder/{what}", method="POST"))


@contextmanager
def recording(endpoint: str) -> Iterator[None]:
    """moto's recorder on for the block only (read it with `moto_calls` afterwards)."""
    recorder(endpoint, "reset-recording")
    recorder(endpoint, "start-recording")
    try:
        yield
    finally:
        recorder(endpoint, "stop-recording")


def test_a_run_whose_ecs_cluster_is_gone_is_one_line_naming_it_and_creates_nothing(aws_env: str) -> None:
    """The runtime names an ECS cluster that no longer exists (moto, over real HTTP; its recorder
    shows the calls): one line naming the cluster, a user error (no retry, exit 2), and the run's
    certificates are never created."""
    staging = load_settings(REPO / "environments" / "staging.yaml").model_copy(update={"region": "us-west-2"})
    spec = cluster_spec(staging, RUNTIME, RUN)
    assert isinstance(spec, FargateSpec)
    assert spec.tls_secret is not None
    with recording(aws_env), pytest.raises(ClusterMissingError) as failure, dask_client(spec):
        pass
    assert str(failure.value) == (
        f"the Dask cluster could not start: ECS cluster {RUNTIME.cluster_arn} does not exist in us-west-2 "
        "(or is no longer ACTIVE): deploy the environment's compute stack"
    )
    assert isinstance(failure.value, UserError)
    assert moto_calls(aws_env, "DescribeClusters") == [{"clusters": [RUNTIME.cluster_arn]}]
    assert moto_calls(aws_env, "CreateSecret") == []


def test_a_cluster_that_fails_to_start_deletes_its_certificates(aws_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Staging encrypts Dask traffic: the run's certificates go into a secret of their own,
    tagged as the run's, and are deleted when the cluster cannot start. The ECS cluster exists
    (moto); dask-cloudprovider's start fails the way it does when Fargate has no capacity."""

    def no_capacity(**kwargs: Any) -> None:
        assert kwargs["environment"]["MLWF_DASK_TLS_SECRET"].startswith("arn:aws:secretsmanager:us-west-2:")
        raise RuntimeError("Cluster failed to start: no Fargate capacity\n  Traceback ...")

    monkeypatch.setattr("dask_cloudprovider.aws.FargateCluster", no_capacity)
    cluster_arn = boto3.client("ecs", region_name="us-west-2").create_cluster(clusterName="mlwf-staging")["cluster"][
        "clusterArn"
    ]
    # The run's region, not the process's default (AWS_DEFAULT_REGION is us-east-1 here).
    staging = load_settings(REPO / "environments" / "staging.yaml").model_copy(update={"region": "us-west-2"})
    spec = cluster_spec(staging, dataclasses.replace(RUNTIME, cluster_arn=cluster_arn), RUN)
    assert isinstance(spec, FargateSpec)
    assert spec.tls_secret is not None
    with recording(aws_env), pytest.raises(ClusterStartError) as failure, dask_client(spec):
        pass
    assert not isinstance(failure.value, UserError), "a cluster that exists may start on a retry"
    assert str(failure.value) == "the Dask cluster could not start: Cluster failed to start: no Fargate capacity"
    (created,) = moto_calls(aws_env, "CreateSecret")
    assert created["Name"] == spec.tls_secret
    assert {t["Key"]: t["Value"] for t in created["Tags"]} == RUN.tags(), "only the run's tags, for the reaper"
    assert set(json.loads(created["SecretString"])) >= {"ca", "cert", "key"}
    (deleted,) = moto_calls(aws_env, "DeleteSecret")
    assert deleted["SecretId"].startswith(f"arn:aws:secretsmanager:us-west-2:123456789012:secret:{spec.tls_secret}-")
    assert deleted["ForceDeleteWithoutRecovery"] is True
    assert boto3.client("secretsmanager", region_name="us-west-2").list_secrets()["SecretList"] == []


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (
            "An error occurred (AccessDeniedException) when calling the DescribeClusters operation: User: "
            "arn:aws:sts::111111111111:assumed-role/mlwf-dev-flow/4f2c is not authorized to perform: "
            "ecs:DescribeClusters on resource: arn:aws:ecs:us-east-1:111111111111:cluster/mlwf-dev\n<Response/>",
            "mlwf-dev-flow is not allowed ecs:DescribeClusters on arn:aws:ecs:us-east-1:111111111111:cluster/mlwf-dev"
            " (AccessDenied)",
        ),
        (
            "User: arn:aws:iam::111111111111:user/ci is not authorized to perform: iam:PassRole",
            "ci is not allowed iam:PassRole (AccessDenied)",
        ),
        (
            "User: arn:aws:iam::111111111111:root is not authorized to perform: ecs:RunTask on resource: *",
            "root is not allowed ecs:RunTask on * (AccessDenied)",
        ),
        ("\n  \nCluster failed to start: no capacity  \nTraceback ...", "Cluster failed to start: no capacity"),
        ("", "TimeoutError"),
        ("x" * 400, "x" * 300),
    ],
)
def test_a_cluster_that_cannot_start_is_one_line_naming_who_may_not_do_what(error: str, line: str) -> None:
    assert start_error_line(TimeoutError(error)) == f"the Dask cluster could not start: {line}"


@pytest.mark.parametrize(("idle_s", "wait_count"), [(60, 12), (62, 12), (63, 13), (1, 1), (0, 1)])
def test_a_worker_is_given_back_after_its_idle_time_in_whole_checks(idle_s: int, wait_count: int) -> None:
    assert Adaptivity(2, 8, idle_s).adapt_kwargs() == {
        "minimum": 2,
        "maximum": 8,
        "interval": "5.0s",
        "wait_count": wait_count,
    }


def test_a_run_may_ask_for_exactly_n_workers() -> None:
    dev = load_settings(REPO / "environments" / "dev.yaml")
    assert worker_cap(dev, dev.dask.n_workers) == dev.dask.n_workers
    assert worker_cap(dev, None) == dev.dask.max_workers


@pytest.mark.parametrize("image", ["flows", "localhost:5000/flows", "localhost:5000/team/flows"])
def test_images_without_a_tag_are_refused_even_behind_a_registry_port(image: str) -> None:
    settings = load_settings(REPO / "environments" / "dev.yaml")
    runtime = ClusterRuntime(**{**RUNTIME.__dict__, "image": image})
    with pytest.raises(ValueError, match=rf"^image '{image}' is not pinned \(expected a tag or a digest\)$"):
        fargate_cluster_kwargs(settings, runtime, RUN)


@pytest.mark.parametrize("image", ["flows:1", "localhost:5000/flows:1", "r/flows@sha256:" + "0" * 64])
def test_tagged_and_digest_images_are_pinned(image: str) -> None:
    settings = load_settings(REPO / "environments" / "dev.yaml")
    runtime = ClusterRuntime(**{**RUNTIME.__dict__, "image": image})
    assert fargate_cluster_kwargs(settings, runtime, RUN)["image"] == image


@pytest.mark.parametrize(("worker_cpu", "threads"), [(256, 1), (1024, 1), (2048, 2), (4096, 4)])
def test_each_worker_runs_one_thread_per_vcpu(worker_cpu: int, threads: int) -> None:
    dev = load_settings(REPO / "environments" / "dev.yaml")
    sized = dev.model_copy(update={"dask": dev.dask.model_copy(update={"worker_cpu": worker_cpu})})
    kwargs = fargate_cluster_kwargs(sized, RUNTIME, RUN)
    assert type(kwargs["worker_nthreads"]) is int
    assert kwargs["worker_nthreads"] == threads


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_the_scheduler_and_the_region_come_from_the_settings(env: str) -> None:
    settings = load_settings(REPO / "environments" / f"{env}.yaml")
    kwargs = fargate_cluster_kwargs(settings, RUNTIME, RUN)
    assert kwargs["region_name"] == settings.region
    assert (kwargs["scheduler_cpu"], kwargs["scheduler_mem"]) == (
        settings.dask.scheduler_cpu,
        settings.dask.scheduler_memory_mib,
    )
    assert kwargs["environment"] == {
        "MLWF_MAX_LIFETIME": f"{settings.dask.max_lifetime_minutes}m",
        "AWS_DEFAULT_REGION": settings.region,
    }


def test_a_run_needs_both_settings_and_a_runtime_for_fargate() -> None:
    dev = load_settings(REPO / "environments" / "dev.yaml")
    assert cluster_spec(dev, None, RUN) == LocalSpec()
    assert cluster_spec(None, RUNTIME, RUN) == LocalSpec()


def test_each_tls_run_gets_its_own_certificates_secret_and_plain_runs_none() -> None:
    staging = load_settings(REPO / "environments" / "staging.yaml")
    first, second = (cluster_spec(staging, RUNTIME, RUN) for _ in range(2))
    assert isinstance(first, FargateSpec)
    assert isinstance(second, FargateSpec)
    assert first.kwargs == fargate_cluster_kwargs(staging, RUNTIME, RUN)
    assert first.tls_secret is not None
    assert second.tls_secret is not None
    assert re.fullmatch(r"mlwf-staging/dask-tls/flow-run-1-20260102T030405-[0-9a-f]{6}", first.tls_secret)
    assert first.tls_secret != second.tls_secret, "a retried run must not reuse (or delete) another's"
    dev = cluster_spec(load_settings(REPO / "environments" / "dev.yaml"), RUNTIME, RUN)
    assert isinstance(dev, FargateSpec)
    assert dev.tls_secret is None


def test_a_local_cluster_is_one_process_per_worker_and_sigterm_closes_it() -> None:
    """In-process, so that mutation testing sees it (the subprocess test above is the guarantee
    with the cluster outside the signalled process)."""
    received: list[int] = []
    clusters: list[Any] = []

    def outer(signum: int, frame: Any) -> None:
        received.append(signum)

    def run() -> None:
        with dask_client(LocalSpec(n_workers=1)) as client:
            clusters.append(client.cluster)
            info = client.scheduler_info()["workers"]
            assert [w["nthreads"] for w in info.values()] == [1]
            assert all(w["memory_limit"] > 0 for w in info.values()), "memory_limit='auto' sizes each worker"
            assert os.getpid() not in client.run(os.getpid).values(), "workers are processes of their own"
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises in the main thread as soon as the signal arrives

    previous = signal.signal(signal.SIGTERM, outer)
    try:
        with pytest.raises(Terminated, match=r"^received signal 15$"):
            run()
        assert clusters[0].status == Status.closed
        assert received == [], "SIGTERM was ours while the cluster was open"
        assert signal.getsignal(signal.SIGTERM) is outer, "and the previous handler is back after"
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_outside_the_main_thread_no_handler_is_installed() -> None:
    """Python allows signal handlers only in the main thread: a flow run in a worker thread
    (Prefect's thread runner) still gets its cluster."""
    outcome: list[object] = []

    def run() -> None:
        try:
            with _sigterm_raises():
                outcome.append("ran")
        except Exception as exc:  # what the handler's installation would raise here
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert outcome == ["ran"]

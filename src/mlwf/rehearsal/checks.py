"""What must hold after a rehearsed run, each a named check with a one-line verdict."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from mlwf.contract import ENVIRONMENT_TAG, PLATFORM, PLATFORM_TAG
from mlwf.rehearsal.dockerfile import unwritable_volumes
from mlwf.rehearsal.judge import Documents, Judgement, documents_of, judge, summary, unused
from mlwf.rehearsal.network import Endpoint, dropped
from mlwf.rehearsal.stage import API_KEY, Stage


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'}  {self.name}: {self.detail}"


def iam_denied_nothing(stage: Stage) -> Check:
    denials = list(stage.aws.denials)
    unique = list(dict.fromkeys(str(d) for d in denials))
    detail = "no request denied" if not denials else f"{len(denials)} denied: " + "; ".join(unique[:4])
    return Check("IAM denied nothing", not denials, detail)


def documents(stage: Stage) -> Documents:
    """What the judge reads, from the stage's seeded world."""
    return documents_of(stage.aws, stage.world)


def judgement(stage: Stage) -> tuple[Judgement, Documents]:
    """The run's requests (and every task's start) judged on the seeded world's documents."""
    docs = documents(stage)
    started = [task.definition_arn for task in stage.runner.tasks.values()]
    return judge(list(stage.aws.requests), started, docs), docs


def aws_would_allow_every_request(stage: Stage) -> Check:
    """Every request of the run, and what AWS does on its behalf, judged as AWS judges it."""
    result, _ = judgement(stage)
    ok = not result.unjudged and not result.refused
    return Check("AWS's policy logic allows every request", ok, summary(result))


def unused_grants(stage: Stage) -> dict[str, list[str]]:
    """Per role, what its policies grant that no request of the run used: least privilege from
    evidence (information: a grant this run did not exercise may still be needed)."""
    result, docs = judgement(stage)
    return unused(result, docs)


SECRETS = (API_KEY, "PRIVATE KEY")  # the Prefect API key; a Dask certificate's key (PEM)


def no_secret_anywhere(stage: Stage) -> Check:
    """Neither the API key nor a Dask TLS key is in a task definition, a RunTask request or a
    task's output."""
    ecs = stage.aws.client("ecs")
    places: list[str] = []
    for status in ("ACTIVE", "INACTIVE"):
        for arn in ecs.list_task_definitions(status=status)["taskDefinitionArns"]:
            text = json.dumps(ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"])
            if any(secret in text for secret in SECRETS):
                places.append(f"task definition {arn}")
    for request in stage.runner.requests:
        text = json.dumps(request.overrides)
        if any(secret in text for secret in SECRETS) or '"PREFECT_API_KEY"' in text:
            places.append(f"RunTask request for {request.task_arn}")
    for task in stage.runner.tasks.values():
        output = task.log_path.read_text(errors="replace")
        if any(secret in output for secret in SECRETS):
            places.append(f"the output of {task.container} task {task.task_id}")
    searched = f"{len(stage.runner.requests)} RunTask requests, {len(stage.runner.tasks)} task outputs"
    return Check("no secret in task definitions, requests or logs", not places, "; ".join(places) or searched)


def every_task_stopped(stage: Stage) -> Check:
    tasks = list(stage.runner.tasks.values())
    running = stage.runner.running()
    ecs = stage.aws.client("ecs")
    clusters = {t.cluster_arn for t in tasks}
    listed = [arn for c in clusters for arn in ecs.list_tasks(cluster=c, desiredStatus="RUNNING")["taskArns"]]
    statuses = {}
    for cluster in clusters:
        arns = [t.arn for t in tasks if t.cluster_arn == cluster]
        for start in range(0, len(arns), 100):
            for task in ecs.describe_tasks(cluster=cluster, tasks=arns[start : start + 100])["tasks"]:
                statuses[task["taskArn"]] = task["lastStatus"]
    not_stopped = sorted({t.arn for t in running} | set(listed) | {a for a, s in statuses.items() if s != "STOPPED"})
    detail = f"{len(tasks)} tasks started, all STOPPED" if not not_stopped else f"still running: {not_stopped}"
    return Check("every task it started is STOPPED", bool(tasks) and not not_stopped, detail)


def no_task_definition_left(stage: Stage) -> Check:
    """Runs register nothing: the ACTIVE task definitions are the stacks' (prefect-aws's own
    ``prefect_*`` family aside)."""
    ecs = stage.aws.client("ecs")
    active = set(ecs.list_task_definitions(status="ACTIVE")["taskDefinitionArns"])
    extra = sorted(a for a in active - set(stage.world.task_definitions) if "/prefect_" not in a)
    detail = f"{len(active)} active, all the stacks'" if not extra else f"left ACTIVE: {extra}"
    return Check("no task definition of ours left ACTIVE", not extra, detail)


def tags_on_every_task(stage: Stage) -> Check:
    ecs = stage.aws.client("ecs")
    untagged = []
    for task in stage.runner.tasks.values():
        described = ecs.describe_tasks(cluster=task.cluster_arn, tasks=[task.arn], include=["TAGS"])["tasks"]
        tags = {t["key"]: t["value"] for t in (described[0].get("tags") if described else []) or []}
        if tags.get(PLATFORM_TAG) != PLATFORM or tags.get(ENVIRONMENT_TAG) != stage.settings.name:
            untagged.append(f"{task.container} {task.task_id}")
    detail = f"{PLATFORM_TAG} and {ENVIRONMENT_TAG} on all" if not untagged else f"untagged: {untagged}"
    return Check("tags on every task", not untagged, detail)


def scheduler_never_on_spot(stage: Stage) -> Check:
    """A Spot interruption of the scheduler ends the run: it is on Fargate, and workers are on
    Fargate Spot exactly where the settings allow."""
    worker_provider = "FARGATE_SPOT" if stage.settings.dask.spot_workers else ""
    placed = [r for r in stage.runner.requests if r.container in ("dask-scheduler", "dask-worker")]
    wrong = [
        f"{r.container} on {r.capacity_provider or 'FARGATE (launch type)'}"
        for r in placed
        if (r.container == "dask-scheduler" and r.capacity_provider not in ("", "FARGATE"))
        or (r.container == "dask-worker" and r.capacity_provider != worker_provider)
    ]
    schedulers = sum(r.container == "dask-scheduler" for r in placed)
    detail = "; ".join(sorted(set(wrong))) or (
        f"{schedulers} schedulers on FARGATE, {len(placed) - schedulers} workers on {worker_provider or 'FARGATE'}"
    )
    return Check("the scheduler on Fargate, workers where the settings say", bool(schedulers) and not wrong, detail)


def lifetimes_on_every_dask_task(stage: Stage) -> Check:
    """Each worker retires after `dask.max_lifetime_minutes` and each scheduler ends after
    `dask.idle_timeout_minutes` idle, whatever happens to the flow run: as their commands say."""
    dask = stage.settings.dask
    wanted = {
        "dask-worker": ("--lifetime", f"{dask.max_lifetime_minutes}m"),
        "dask-scheduler": ("--idle-timeout", f"{dask.idle_timeout_minutes} minutes"),
    }
    wrong, seen = [], 0
    for task in stage.runner.tasks.values():
        if task.container not in wanted:
            continue
        seen += 1
        flag, value = wanted[task.container]
        given = task.command[task.command.index(flag) + 1] if flag in task.command else None
        if given != value:
            wrong.append(f"{task.container} {task.task_id}: {flag} {given}")
    detail = "; ".join(wrong[:4]) or f"{seen} Dask tasks: workers --lifetime {wanted['dask-worker'][1]}, " + (
        f"schedulers --idle-timeout {wanted['dask-scheduler'][1]}"
    )
    return Check("lifetime limits on every Dask task", bool(seen) and not wrong, detail)


def scratch_volumes_writable(stage: Stage) -> Check:
    """Every writable mount of every task definition is writable by the image's user as Fargate
    gives the volume (root 0755 unless the image declares it: `mlwf.rehearsal.fargate`)."""
    sandbox = stage.runner.sandbox
    if sandbox is None:
        return Check("scratch volumes writable by the image's user", False, "tasks did not run inside the image")
    ecs = stage.aws.client("ecs")
    problems, paths = [], set()
    for arn in stage.world.task_definitions:
        for container in ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]["containerDefinitions"]:
            problems += unwritable_volumes(sandbox.image, container)
            paths |= {m["containerPath"] for m in container.get("mountPoints") or [] if not m.get("readOnly")}
    unique = list(dict.fromkeys(problems))
    detail = "; ".join(unique[:3]) or (
        f"{', '.join(sorted(paths))} writable by uid {sandbox.image.uid} in {len(stage.world.task_definitions)} "
        "task definitions"
    )
    return Check("scratch volumes writable by the image's user", bool(paths) and not unique, detail)


def task_endpoints(stage: Stage) -> dict[str, Endpoint]:
    """Each task by ID: ``<task definition family> <address>`` and the groups RunTask gave it."""
    return {t.task_id: Endpoint(f"{t.family} {t.address}", t.security_groups) for t in stage.runner.tasks.values()}


def security_groups_allow_every_connection(stage: Stage) -> Check:
    """Every TCP connection a task opened to another is admitted by an egress rule of its groups
    and an ingress rule of the other's, as planned (`mlwf.rehearsal.network`)."""
    connections = stage.connections.recorded()
    problems = dropped(connections, task_endpoints(stage), stage.world.group_rules, stage.world.vpc_cidr)
    ports = sorted({c.port for c in connections})
    if problems:
        detail = "; ".join(problems[:3])
    elif not connections:
        detail = "no connection between tasks was recorded"
    else:
        detail = (
            f"{len(connections)} connections between tasks (ports {', '.join(map(str, ports[:6]))}"
            f"{', ...' if len(ports) > 6 else ''}) admitted by {len(stage.world.group_rules)} planned rules"
        )
    return Check("security groups admit every connection between tasks", bool(connections) and not problems, detail)


IMPORT_FAILURE = re.compile(r"^(?:ModuleNotFoundError|ImportError): .*$", re.MULTILINE)


def import_failures(output: str) -> list[str]:
    """The import errors a task printed (a package its code needs that the image lacks)."""
    return list(dict.fromkeys(match.group(0).strip() for match in IMPORT_FAILURE.finditer(output)))


def imports_resolved_in_the_image(stage: Stage) -> Check:
    """Tasks run from the image's environment (its requirements only): an import that failed in
    any task names the package the image lacks."""
    failures = [
        f"{task.container} task {task.task_id}: {failure}"
        for task in stage.runner.tasks.values()
        for failure in import_failures(task.log_path.read_text(errors="replace"))
    ]
    detail = "; ".join(failures[:3]) or f"no import failed in {len(stage.runner.tasks)} tasks"
    return Check("every import resolved in the image", not failures, detail)


def reaper_finds_nothing(stage: Stage) -> Check:
    result = stage.mlwf(
        "reap",
        "--env",
        stage.settings.name,
        "--older-than",
        "0s",
        "--dry-run",
        credentials=stage.identity("reaper-task"),
    )
    found = [line for line in result.stdout.splitlines() if line.startswith("would reap: ")]
    ok = result.returncode == 0 and not found
    detail = (
        "mlwf reap --older-than 0s --dry-run finds nothing"
        if ok
        else (found[0] if found else (result.stderr.strip().splitlines() or ["failed"])[-1])
    )
    return Check("nothing left to reap", ok, detail)


def alarms_hear_the_reaper(stage: Stage) -> Check:
    """The plan's alarms exist and notify a topic of the plan (their publishing to it, and the
    budget's, is judged with what other services do), and each alarm's metric arrives: the real
    reaper runs once, as its role, before the requests are judged. moto never evaluates an alarm."""
    name = "the reaper's metric reaches its alarms"
    result = stage.mlwf("reap", "--env", stage.settings.name, credentials=stage.identity("reaper-task"))
    if result.returncode != 0:
        return Check(name, False, (result.stderr.strip().splitlines() or ["mlwf reap failed"])[-1])
    cloudwatch = stage.aws.client("cloudwatch")
    alarms = cloudwatch.describe_alarms(AlarmNames=stage.world.alarms)["MetricAlarms"] if stage.world.alarms else []
    topics = {t["TopicArn"] for t in stage.aws.client("sns").list_topics()["Topics"]}
    problems = [] if alarms else ["the plan has no alarm"]
    for alarm in alarms:
        if not alarm["AlarmActions"] or not set(alarm["AlarmActions"]) <= topics:
            problems.append(f"alarm {alarm['AlarmName']} notifies no topic of the plan")
        watched = {"Namespace": alarm["Namespace"], "MetricName": alarm["MetricName"]}
        if not cloudwatch.list_metrics(**watched, Dimensions=alarm["Dimensions"])["Metrics"]:
            problems.append(
                f"alarm {alarm['AlarmName']} watches {alarm['Namespace']}/{alarm['MetricName']} "
                f"{alarm['Dimensions']}: nothing published it"
            )
    budgets = [arn for arn in stage.world.publishers if arn.startswith("arn:aws:budgets:")]
    problems += [f"{arn} notifies no topic of the plan" for arn in budgets if not stage.world.publishers[arn]]
    detail = "; ".join(problems) or (
        f"{len(alarms)} alarms, {len(budgets)} budget(s) notify {', '.join(sorted(topics))}; "
        f"the reaper's {', '.join(sorted({a['MetricName'] for a in alarms}))} arrived"
    )
    return Check(name, not problems, detail)


AFTER_THE_RUN = (
    scratch_volumes_writable,
    imports_resolved_in_the_image,
    security_groups_allow_every_connection,
    alarms_hear_the_reaper,
    iam_denied_nothing,
    aws_would_allow_every_request,
    no_secret_anywhere,
    every_task_stopped,
    no_task_definition_left,
    tags_on_every_task,
    scheduler_never_on_spot,
    lifetimes_on_every_dask_task,
    reaper_finds_nothing,
)


def check(stage: Stage) -> list[Check]:
    return [each(stage) for each in AFTER_THE_RUN]

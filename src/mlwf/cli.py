"""`mlwf`: the one command line of the platform. A thin edge: parse arguments, read settings
once, call the library or a flow, and turn user errors into one line and a non-zero exit."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

from mlwf.errors import EXIT_REFUSED, EXIT_USER_ERROR, RefusedError, UserError, one_line
from mlwf.workload_commands import DEMO_PLATFORM_DESTS, check_each
from mlwf.workloads import checkout_root


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {one_line(message)}\n")


def _duration(text: str) -> timedelta:
    from dask.utils import parse_timedelta

    try:
        seconds = parse_timedelta(text, default="m")
    except (ValueError, KeyError, IndexError, OverflowError):  # dask's parser: '' is an IndexError
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration (e.g. 90m, 6h, 2d)") from None
    if seconds is None or not 0 <= seconds <= 30 * 86400:
        raise argparse.ArgumentTypeError(f"{text!r} is outside 0s-30d")
    return timedelta(seconds=seconds)


def build_parser() -> tuple[argparse.ArgumentParser, Any]:
    """The platform's commands: the parser, and its subparsers (where workloads' are mounted)."""
    parser = _Parser(prog="mlwf", description="ML workflows on AWS: Pulumi stacks, policies, Prefect flows on Dask.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    commands.add_parser(
        "demo",
        help="run a workload locally: `mlwf demo [--workload W] ...` is `mlwf W demo ...` (default: the first "
        "workload with a demo, producers first)",
        add_help=False,
    )

    affected = commands.add_parser("affected", help="which stacks, environments and flows a change touches")
    affected.add_argument("--base", required=True, help="git ref to compare with (e.g. origin/main)")

    flows = commands.add_parser("flows", help="Prefect deployments of the flows")
    flows_commands = flows.add_subparsers(dest="flows_command", required=True, parser_class=_Parser)
    flows_deploy = flows_commands.add_parser("deploy", help="create or update every flow's deployment (idempotent)")
    flows_deploy.add_argument("--env", required=True, help="an environment of environments/, or local")
    flows_deploy.add_argument(
        "--notify",
        action="append",
        default=[],
        metavar="BLOCK",
        help="with --env local: send alerts to this Prefect notification block (type-slug/name; repeatable); "
        "other environments read alerts.notify from their settings",
    )
    flows_smoke = flows_commands.add_parser("smoke", help="run every workload's smoke deployment and wait")
    flows_smoke.add_argument("--env", required=True, help="an environment of environments/, or local")
    flows_smoke.add_argument(
        "--data-root", help="where the smoke run writes (default: the environment's, under smoke/)"
    )

    image = commands.add_parser("image", help="the flow/Dask image")
    image_commands = image.add_subparsers(dest="image_command", required=True, parser_class=_Parser)
    image_commands.add_parser("tag", help="print the image tag derived from uv.lock and the Python version")
    for name, text in (
        ("record", "record the digest a new tag was pushed with (the build job)"),
        ("verify", "check an existing tag points at the digest this pipeline recorded for it"),
    ):
        digest_command = image_commands.add_parser(name, help=text)
        digest_command.add_argument("tag", help="the image tag")
        digest_command.add_argument("digest", help="sha256:<64 hex digits>")

    plan = commands.add_parser("plan", help="plan every stack offline, under Pulumi's mocks")
    plan.add_argument("--env", action="append", help="environment (repeatable; default: every one in environments/)")
    plan.add_argument("--stack", action="append", help="stack (repeatable; default: all)")
    plan.add_argument("--json", action="store_true", help="print one JSON document (a list of stack plans)")
    plan.add_argument(
        "--program", type=Path, metavar="DIR", help="plan this Pulumi Python program instead of the stacks"
    )
    plan.add_argument(
        "--base", metavar="REF", help="show what changes against this git revision (planned with its own code)"
    )
    plan.add_argument(
        "--format", choices=("text", "markdown"), default="text", help="with --base: text, or a pull-request comment"
    )

    cost = commands.add_parser("cost", help="the fixed monthly cost of each environment, and a flow run's per hour")
    cost.add_argument("--env", action="append", help="environment (repeatable; default: every one)")
    cost.add_argument("--json", action="store_true", help="print one JSON document")

    prices = commands.add_parser("prices", help="the price table")
    prices_commands = prices.add_subparsers(dest="prices_command", required=True, parser_class=_Parser)
    refresh = prices_commands.add_parser("refresh", help="reread the price table from AWS's public price list")
    refresh.add_argument("--endpoint", default=None, help="the price list's address (default: AWS's)")
    refresh.add_argument(
        "--table", type=Path, default=None, help="the price table to refresh (default: the shipped one)"
    )
    refresh.add_argument(
        "--region", action="append", default=[], help="add this region's rows first (repeatable; like eu-west-1)"
    )

    deploy = commands.add_parser("deploy", help="pulumi up the stacks of an environment in dependency order")
    deploy.add_argument(
        "--env", help="an environment of environments/ (for --stack bootstrap: the one whose account to bootstrap)"
    )
    deploy.add_argument(
        "--stack",
        action="append",
        help="stack (repeatable; default: the environment's); bootstrap or github alone, by an administrator",
    )
    deploy.add_argument("--image-tag", help="the image tag to deploy (default: derived from uv.lock)")
    deploy.add_argument(
        "--image-digest", help="deploy the image by this digest (sha256:...), as the build job pushed it"
    )
    deploy.add_argument(
        "--mode",
        choices=("up", "preview", "drift"),
        default="up",
        help="up (deploy), preview (changes under the policies) or drift (refresh; fail on differences)",
    )

    reap = commands.add_parser("reap", help="stop what crashed flow runs left on ECS (tagged, older than a threshold)")
    reap.add_argument("--env", required=True, help="an environment of environments/")
    reap.add_argument(
        "--older-than", type=_duration, help="minimum age, e.g. 90m, 6h, 2d (default: max cluster lifetime)"
    )
    reap.add_argument("--dry-run", action="store_true", help="list what would be reaped; change nothing")

    secrets = commands.add_parser("secrets", help="secrets an administrator puts (never in Pulumi config)")
    secrets_commands = secrets.add_subparsers(dest="secrets_command", required=True, parser_class=_Parser)
    secrets_set = secrets_commands.add_parser(
        "set", help="put the Prefect API key (read from standard input) into the environment's secret"
    )
    secrets_set.add_argument("--env", required=True, help="an environment of environments/")

    status = commands.add_parser(
        "status", help="what runs in an environment: image digests, deployments and their last runs, models, alerts"
    )
    status.add_argument("--env", required=True, help="an environment of environments/")
    status.add_argument("--json", action="store_true", help="print it as JSON")

    rollback = commands.add_parser(
        "rollback", help="task definitions and flow deployments back to the previous (or a named) image digest"
    )
    rollback.add_argument("--env", required=True, help="an environment of environments/")
    rollback.add_argument("--to", help="the image digest (sha256:...) to go back to (default: the one deployed before)")

    upgrade = commands.add_parser(
        "upgrade", help="a later release of the template into this platform (copier update), conflicts listed"
    )
    upgrade.add_argument("--to", help="the release tag (vX.Y.Z; default: the newest)")

    alerts = commands.add_parser("alerts", help="where the alerts of `mlwf flows deploy` are delivered")
    alerts_commands = alerts.add_subparsers(dest="alerts_command", required=True, parser_class=_Parser)
    webhook = alerts_commands.add_parser(
        "webhook",
        help="save a webhook (its URL read from standard input, e.g. a Slack incoming webhook) as a Prefect "
        "notification block in the workspace of PREFECT_API_URL",
    )
    webhook.add_argument("name", help="the block's name; list custom-webhook/NAME in alerts.notify")

    rehearse = commands.add_parser("rehearse", help="the whole AWS path on an emulated AWS on this machine")
    rehearse.add_argument("--env", default="dev", help="an environment of environments/ (default: dev)")
    rehearse.add_argument("--keep", action="store_true", help="keep the working folder (task outputs, database)")
    rehearse.add_argument(
        "--json", type=Path, default=None, help="also write the result (runs, checks, unused grants) to this file"
    )

    env = commands.add_parser("env", help="environment settings")
    env_commands = env.add_subparsers(dest="env_command", required=True, parser_class=_Parser)
    env_commands.add_parser("list", help="the environments (environments/*.yaml), in tier order, as JSON")
    check = env_commands.add_parser("check", help="validate environment settings files")
    check.add_argument("files", nargs="*", type=Path, help="settings files (default: environments/*.yaml)")
    return parser, commands


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """The platform's commands, and each workload's under `mlwf <workload>` (their commands are
    loaded only when the first word is not one of the platform's)."""
    parser, commands = build_parser()
    platform = set(commands.choices) - {"demo"}  # `demo` is an alias of `mlwf <workload> demo`
    if argv[:1] and argv[0] in platform:
        return parser.parse_args(argv)
    from mlwf.workload_commands import mount, route
    from mlwf.workloads import discover, installed_root

    workloads = discover(installed_root())
    mounted = mount(commands, workloads, _Parser, _demo)
    return parser.parse_args(route(argv, platform, workloads, mounted))


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parse(list(sys.argv[1:] if argv is None else argv))
    except UserError as exc:
        print(f"mlwf: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_USER_ERROR
    try:
        _check_working_folder()
        if getattr(args, "workload", None) is not None:  # a workload's own command (`mlwf <workload> ...`)
            return int(args.run(args))
        if args.command == "env" and args.env_command == "list":
            from mlwf.settings import environment_names

            print(json.dumps(environment_names(checkout_root() / "environments")))
            return 0
        if args.command == "env":
            return _env_check(args.files)
        if args.command == "plan":
            return _plan_diff(args) if args.base else _plan(args)
        if args.command == "cost":
            return _cost(args)
        if args.command == "prices":
            return _refresh_prices(args)
        if args.command == "flows":
            return _flows(args)
        if args.command == "image":
            return _image(args)
        if args.command == "affected":
            from mlwf.affected import changed_paths, classify

            print(json.dumps(classify(changed_paths(args.base, Path.cwd()), Path.cwd()).as_dict()))
            return 0
        if args.command == "deploy":
            return _deploy(args)
        if args.command == "reap":
            return _reap(args)
        if args.command == "rehearse":
            return _rehearse(args)
        if args.command == "secrets":
            return _secrets_set(args)
        if args.command == "alerts":
            return _alerts_webhook(args)
        if args.command == "status":
            return _status(args)
        if args.command == "rollback":
            return _rollback(args)
        if args.command == "upgrade":
            return _upgrade(args)
    except RefusedError as exc:
        print(f"mlwf: {one_line(exc)}", file=sys.stderr)
        return EXIT_REFUSED
    except UserError as exc:
        print(f"mlwf: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("mlwf: interrupted", file=sys.stderr)
        return 130
    raise AssertionError(f"unhandled command {args.command}")  # argparse rejects unknown ones


def _check_working_folder() -> None:
    """Every command reads paths relative to the working folder: one line if it was deleted."""
    try:
        os.getcwd()
    except FileNotFoundError:
        raise UserError("the working folder no longer exists (deleted after this shell entered it)") from None


def _env_check(files: list[Path]) -> int:
    from mlwf.settings import load_settings

    paths = files or sorted(Path("environments").glob("*.yaml"))
    if not paths:
        raise UserError("no settings files given and none in ./environments")

    def check(path: Path) -> str:
        settings = load_settings(path)
        return f"{path} ({settings.tier}, {settings.region}, {settings.network.az_count} AZs)"

    return check_each(paths, check)


def _flows(args: argparse.Namespace) -> int:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from mlwf import deployments

    repo = checkout_root()
    if args.flows_command == "smoke":
        return _smoke(args, repo)
    from pydantic import ValidationError

    from mlwf.settings import AlertSettings, load_environment

    if args.env == "local":
        try:
            alerting = AlertSettings(notify=args.notify)
        except ValidationError as exc:
            raise UserError(f"--notify: {exc.errors()[0]['msg'].removeprefix('Value error, ')}") from None
        target = deployments.local_target(repo, alerting)
    elif args.notify:
        raise UserError(f"--notify is for --env local: {args.env} sends alerts where its alerts.notify says")
    else:
        target = _aws_target(load_environment(args.env, repo / "environments"))
    _deploy_flows(target, repo)
    return 0


def _aws_target(settings: Any) -> Any:
    """An environment's work pool, with the job variables its prefect-agent stack published."""
    from mlwf import deployments

    variables = deployments.read_job_variables(settings)
    return deployments.aws_target(settings.name, settings.prefect.work_pool, variables, settings.alerts)


def _deploy_flows(target: Any, repo: Path) -> None:
    from mlwf import deployments

    deployed = deployments.deploy_flows(target, repo)
    for name, deployment_id in deployed.deployments.items():
        print(f"deployed {name} ({deployment_id}) on {target.work_pool}")
    for line in deployed.alerts or [f"no alerts: {target.env} lists no destination (alerts.notify)"]:
        print(line)


def _require_prefect_api(where: str) -> None:
    """A command about a workspace needs its API: never a temporary local server, which would
    show nothing of it and keep what it is given."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        raise UserError(f"PREFECT_API_URL is not set: point it at {where}")


def _status(args: argparse.Namespace) -> int:
    from mlwf.settings import load_environment
    from mlwf.status import collect

    settings = load_environment(args.env, checkout_root() / "environments")
    _require_prefect_api(f"{args.env}'s Prefect workspace")
    result = collect(settings, checkout_root())
    print(json.dumps(result.to_json(), indent=2) if args.json else "\n".join(result.lines()))
    return 0


def _rollback(args: argparse.Namespace) -> int:
    from mlwf.image_digests import check_digest
    from mlwf.infra.deploy import check_account, deploy
    from mlwf.rollback import Rollback, rollback
    from mlwf.settings import load_environment
    from mlwf.stacks.programs import IMAGE_STACKS

    repo = checkout_root()
    settings = load_environment(args.env, repo / "environments")
    if args.to is not None:
        check_digest(args.to)
    _require_prefect_api(f"{args.env}'s Prefect workspace (the flows are deployed again)")
    check_account(settings.account_id, args.env)  # before its history is read (the Pulumi CLI: by the deploy)

    def deploy_image(step: Rollback) -> None:
        deploy(args.env, list(IMAGE_STACKS), repo, step.tag, image_digest=step.target)

    rollback(settings, args.to, deploy_image, lambda: _deploy_flows(_aws_target(settings), repo))
    return 0


def _upgrade(args: argparse.Namespace) -> int:
    from mlwf.upgrade import upgrade

    result = upgrade(checkout_root(), args.to)
    print(f"upgraded to {result.version}")
    for name in result.conflicts:
        print(f"conflict  {name}: both sides are in the file (<<<<<<<): keep what is right, remove the markers")
    if result.conflicts:
        print("then run the tests and commit")
    return 1 if result.conflicts else 0


def _alerts_webhook(args: argparse.Namespace) -> int:
    import getpass

    from mlwf.alerts import save_webhook

    _require_prefect_api("the workspace whose alerts use this webhook")
    url = getpass.getpass("webhook URL: ") if sys.stdin.isatty() else sys.stdin.read()
    entry = save_webhook(args.name, url.strip())
    print(f"saved {entry}: list it in an environment's alerts.notify (the URL is kept as a secret of the block)")
    return 0


def _smoke(args: argparse.Namespace, repo: Path) -> int:
    from mlwf import deployments

    data_root = args.data_root
    if data_root is None:
        if args.env == "local":
            raise UserError("--data-root is required with --env local")
        from mlwf.runtime import read_cluster_runtime
        from mlwf.settings import load_environment

        settings = load_environment(args.env, repo / "environments")
        data_root = deployments.smoke_root(read_cluster_runtime(settings).data_root)
    for name in deployments.smoke(args.env, data_root, repo):
        print(f"smoke run of {name} completed")
    return 0


def _plan(args: argparse.Namespace) -> int:
    from mlwf.infra.plan import plan_and_check
    from mlwf.infra.plan_report import print_plans

    if args.format != "text":
        raise UserError("--format markdown is the --base comparison's (a pull-request comment): add --base REF")
    _ignore_leaked_pulumi_loops()
    repo = checkout_root()
    settings = _environments(repo, args.env)
    plans = plan_and_check(settings, args.stack, repo, args.program)
    if args.json:
        print(json.dumps([p.to_json() for p in plans], indent=2, default=str))
    else:
        print_plans(plans, settings)
    status = 0
    mandatory = [v for p in plans for v in p.violations if v["level"] == "mandatory"]
    if mandatory:
        print(f"mlwf: error: {len(mandatory)} mandatory policy violation(s)", file=sys.stderr)
        status = 1
    if args.program is None:
        status = max(
            status,
            _check_budgets(plans, settings, complete=not args.stack, out=sys.stderr if args.json else sys.stdout),
        )
    return status


def _check_budgets(plans: list[Any], settings: list[Any], complete: bool, out: Any) -> int:
    """Print each environment's fixed cost against its budget; 1 if one that blocks is over."""
    from mlwf.cost.cost_report import budget
    from mlwf.cost.estimate import environment_costs
    from mlwf.cost.prices import load_prices

    prices = load_prices()
    budgets = [budget(env, environment_costs(plans, env, prices), complete) for env in settings]
    for verdict in budgets:
        print(f"budget {verdict.line()}", file=out)
    blocking = [b.env for b in budgets if b.blocking]
    if blocking:
        print(f"mlwf: error: over the fixed-cost budget in {', '.join(blocking)}", file=sys.stderr)
        return 1
    return 0


def _plan_diff(args: argparse.Namespace) -> int:
    from mlwf.infra.diff import plan_against
    from mlwf.infra.diff_report import markdown, text

    _ignore_leaked_pulumi_loops()
    if args.program is not None and args.program.is_absolute():
        raise UserError("--program with --base takes a folder relative to the repository's root")
    result = plan_against(args.base, checkout_root(), args.env, args.stack, args.program)
    if args.json:
        print(json.dumps(result.to_json(), indent=2, default=str))
    else:
        print(markdown(result) if args.format == "markdown" else text(result))
    return 1 if result.blocking() else 0


def _cost(args: argparse.Namespace) -> int:
    from mlwf.cost.cost_report import costs_json, print_costs
    from mlwf.cost.estimate import cluster_price, environment_costs
    from mlwf.cost.prices import load_prices
    from mlwf.infra.plan import plan_environment
    from mlwf.stacks.programs import ORDER

    _ignore_leaked_pulumi_loops()
    repo = checkout_root()
    prices = load_prices()
    documents = []
    for settings in _environments(repo, args.env):
        costs = environment_costs(plan_environment(settings, list(ORDER), repo), settings, prices)
        cluster = cluster_price(settings, prices)
        if args.json:
            documents.append(costs_json(settings, costs, cluster, prices))
        else:
            print_costs(settings, costs, cluster, prices)
    if args.json:
        print(json.dumps(documents, indent=2))
    return 0


def _refresh_prices(args: argparse.Namespace) -> int:
    from mlwf.cost.prices import PRICE_LIST, PRICES, add_regions, load_prices, refresh, write_prices

    table = args.table or PRICES
    extended, copied = add_regions(load_prices(table), args.region)
    refreshed, log = refresh(extended, args.endpoint or PRICE_LIST)
    write_prices(refreshed, table)
    for line in [*copied, *log]:
        print(line)
    print(f"wrote {table}")
    return 0


def _environments(repo: Path, names: list[str] | None) -> list[Any]:
    """The named environments' settings, or every environment's (the files in environments/)."""
    from mlwf.settings import load_environment, load_environments

    if not names:
        return load_environments(repo / "environments")
    return [load_environment(name, repo / "environments") for name in dict.fromkeys(names)]


def _ignore_leaked_pulumi_loops() -> None:
    """Pulumi's mock runtime leaves event loops in its worker threads; at interpreter exit their
    __del__ can fail on an already-closed self-pipe and print a traceback after our output.
    Silence exactly that, nothing else."""
    default = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, ValueError) and "Invalid file descriptor" in str(unraisable.exc_value):
            return
        default(unraisable)

    sys.unraisablehook = hook


def _deploy(args: argparse.Namespace) -> int:
    from mlwf.infra.deploy import deploy

    done = deploy(args.env, args.stack, checkout_root(), args.image_tag, mode=args.mode, image_digest=args.image_digest)
    print(f"{args.mode}: {', '.join(done)}" + (f" in {args.env}" if args.env else ""))
    return 0


def _rehearse(args: argparse.Namespace) -> int:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from mlwf.rehearsal.rehearse import NOT_EMULATED, rehearse

    _ignore_leaked_pulumi_loops()
    if args.json is not None and not args.json.resolve().parent.is_dir():  # before minutes of work
        raise UserError(f"--json {args.json}: its folder does not exist")
    result = rehearse(args.env, checkout_root(), args.keep, say=lambda line: print(line, flush=True))
    print()
    for line in [*(r.line() for r in result.runs), *(c.line() for c in result.checks), *result.notes()]:
        print(line)
    if args.json is not None:
        from mlwf.storage import write_json

        write_json(str(args.json.resolve()), result.to_json())
        print(f"result: {args.json}")
    print(f"not emulated: {NOT_EMULATED}")
    if args.keep:
        print(f"kept: {result.work}")
    verdict = "passed" if result.passed else "FAILED"
    print(f"rehearsal of {args.env} {verdict} in {result.seconds:.0f} s")
    return 0 if result.passed else 1


def _reap(args: argparse.Namespace) -> int:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from mlwf.reaper import find_leftovers, overdue_tasks, publish_findings, reap
    from mlwf.runtime import read_cluster_runtime
    from mlwf.settings import load_environment

    settings = load_environment(args.env, checkout_root() / "environments")
    max_lifetime = timedelta(minutes=settings.dask.max_lifetime_minutes)
    older_than = max_lifetime if args.older_than is None else args.older_than
    now = datetime.now(UTC)
    cluster = read_cluster_runtime(settings).cluster_arn
    try:
        ecs = boto3.client("ecs", region_name=settings.region)
        secrets = boto3.client("secretsmanager", region_name=settings.region)
        leftovers = find_leftovers(ecs, secrets, settings.name, cluster, settings.name_prefix, older_than, now)
        for item in leftovers:
            print(("would reap: " if args.dry_run else "reaping: ") + item.describe(now))
        done = reap(ecs, secrets, leftovers, args.dry_run)
    except (BotoCoreError, ClientError) as exc:
        raise UserError(f"cannot reach ECS in {settings.region}: {exc}") from None
    verb = "would reap" if args.dry_run else "reaped"
    print(f"{verb} {len(leftovers) if args.dry_run else len(done)} resource(s) in {args.env} older than {older_than}")
    if not args.dry_run:
        overdue = overdue_tasks(leftovers, max_lifetime, now)
        try:
            publish_findings(boto3.client("cloudwatch", region_name=settings.region), settings.name, overdue, now)
        except (BotoCoreError, ClientError) as exc:
            raise UserError(f"reaped, but could not publish the reaper's metric: {exc}") from None
        print(f"published {overdue} task(s) past {max_lifetime} (dask.max_lifetime_minutes) for the alarms")
    return 0


def _image(args: argparse.Namespace) -> int:
    if args.image_command == "tag":
        from mlwf.image import image_tag

        print(image_tag(checkout_root()))
        return 0
    from mlwf import image_digests

    if args.image_command == "record":
        image_digests.record(args.tag, args.digest)
        print(f"recorded {args.tag} = {args.digest}")
    else:
        image_digests.verify(args.tag, args.digest)
        print(f"{args.tag} is {args.digest}, as this pipeline pushed it")
    return 0


def _secrets_set(args: argparse.Namespace) -> int:
    import getpass

    from mlwf.secrets import put_api_key
    from mlwf.settings import load_environment

    settings = load_environment(args.env, checkout_root() / "environments")
    value = getpass.getpass("Prefect API key: ") if sys.stdin.isatty() else sys.stdin.read()
    version = put_api_key(settings, value)
    print(f"put the Prefect API key of {args.env} (version {version}); tasks started from now on read it")
    return 0


def _demo(args: argparse.Namespace) -> int:
    """`mlwf <workload> demo`: the workload's demo function, given ``--output`` and the flags
    its ``demo_options`` hook added (those the user set), its summary printed."""
    import inspect

    workload = args.workload
    run = workload.load(workload.demo)
    accepted = inspect.signature(run).parameters
    own = {k: v for k, v in vars(args).items() if k not in DEMO_PLATFORM_DESTS}  # what demo_options added
    refused = sorted(k for k in own if k not in accepted)
    if refused:
        raise UserError(f"the {workload.name} workload's demo takes no {', '.join(refused)} (its demo_options add it)")
    given = {k: v for k, v in own.items() if v is not None and v is not False}
    options = {"output": args.output, **given}
    from mlwf import progress

    progress.quiet_runtime(args.verbose)

    # JSON is for programs: the document alone. The reporter is this call's, not the process's.
    previous = progress.install(progress.Console(sys.stdout)) if not args.json else None
    try:
        result = run(**options)
    finally:
        if previous is not None:
            progress.install(previous)
    if args.json:
        print(json.dumps(result.data, indent=2, default=str))
    else:
        print("\n".join(result.lines))
    if result.refused:
        print(f"mlwf: {result.refused}", file=sys.stderr)
        return EXIT_REFUSED
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""Alerts as code on a real `prefect server start` (its triggers and actions services run as in
Prefect Cloud's place): `mlwf flows deploy` creates each alert once however often it runs, and a
failed run, a refused model, a decayed champion and a late run each reach a webhook receiver on
127.0.0.1 through a Prefect notification block."""

from __future__ import annotations

import asyncio
import http.server
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlwf.errors import UserError
from mlwf.settings import AlertSettings, load_settings

MLWF = str(Path(sys.executable).parent / "mlwf")
REPO = Path(__file__).resolve().parents[1]
BLOCK = "alerts-receiver"


def test_a_destination_must_name_a_block_never_hold_a_url(tmp_path: Path) -> None:
    text = (REPO / "environments" / "staging.yaml").read_text()
    path = tmp_path / "staging.yaml"
    path.write_text(text + "alerts:\n  notify: ['https://hooks.slack.com/services/T0/B0/secret']\n")
    with pytest.raises(UserError) as failure:
        load_settings(path)
    message = str(failure.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: alerts.notify: 'https://hooks.slack.com/services/T0/B0/secret': expected ")


def test_decayed_scoring_stops_by_default_in_prod_only() -> None:
    environments = {p.stem: load_settings(p) for p in (REPO / "environments").glob("*.yaml")}
    assert {name: s.stops_decayed_scoring for name, s in environments.items()} == {
        "dev": False,
        "staging": False,
        "prod": True,
    }


@pytest.mark.parametrize(
    ("argv", "stdin", "line"),
    [
        (
            ["flows", "deploy", "--env", "staging", "--notify", "custom-webhook/x"],
            "",
            "mlwf: error: --notify is for --env local: staging sends alerts where its alerts.notify says",
        ),
        (
            ["flows", "deploy", "--env", "local", "--notify", "https://hooks.slack.com/services/T0/B0/x"],
            "",
            "mlwf: error: --notify: 'https://hooks.slack.com/services/T0/B0/x': expected "
            "'<block type slug>/<block name>', e.g. custom-webhook/alerts",
        ),
        (
            ["alerts", "webhook", "team"],
            "hooks.slack.com/services/T0/B0/x\n",
            "mlwf: error: the webhook URL must start with https:// (or http:// on a private network)",
        ),
        (
            ["alerts", "webhook", "Team_Alerts"],
            "https://hooks.slack.com/services/T0/B0/x\n",
            "mlwf: error: block name 'Team_Alerts': expected lowercase letters, digits and dashes (Prefect's rule)",
        ),
    ],
)
def test_alert_commands_refuse_bad_input_in_one_line(argv: list[str], stdin: str, line: str) -> None:
    env = {**os.environ, "PREFECT_API_URL": "http://127.0.0.1:9/api"}  # never reached: refused before
    result = subprocess.run([MLWF, *argv], cwd=REPO, input=stdin, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [line]
    if stdin:
        assert stdin.strip() not in result.stdout + result.stderr, "the URL is a secret: never echoed"


def test_a_webhook_needs_the_workspaces_prefect_api_in_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(tmp_path)  # no profile that sets it either
    result = subprocess.run(
        [MLWF, "alerts", "webhook", "team"],
        cwd=REPO,
        input="https://hooks.slack.com/services/T0/B0/x\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "mlwf: error: PREFECT_API_URL is not set: point it at the workspace whose alerts use this webhook"
    ]
    assert not list(tmp_path.rglob("*.db")), "no temporary server, no block saved anywhere"


class Receiver(http.server.ThreadingHTTPServer):
    """A webhook on 127.0.0.1 that keeps every JSON body posted to it."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.received.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"

    def texts(self, containing: str) -> list[str]:
        return [m["text"] for m in list(self.received) if containing in m.get("text", "")]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`prefect server start` with its services (the test harness's server is shared and not the point)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from mlwf.rehearsal.stage import PrefectServer

    prefect = PrefectServer.start(tmp_path_factory.mktemp("alerts") / "prefect")
    try:
        with temporary_settings({PREFECT_API_URL: prefect.url}):
            yield prefect.url
    finally:
        prefect.stop()


@pytest.fixture(scope="module")
def receiver(server: str) -> Iterator[Receiver]:
    from mlwf.alerts import save_webhook

    hook = Receiver()
    thread = threading.Thread(target=hook.serve_forever, daemon=True)
    thread.start()
    assert save_webhook(BLOCK, hook.url) == f"custom-webhook/{BLOCK}"
    yield hook
    hook.shutdown()
    hook.server_close()


@pytest.fixture(scope="module")
def alerting(server: str, receiver: Receiver) -> str:
    """The local environment's alerts deployed, delivering to the receiver."""
    result = deploy(server, f"custom-webhook/{BLOCK}")
    assert result.returncode == 0, result.stderr[-2000:]
    return server


def deploy(server: str, *notify: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PREFECT_API_URL": server, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    argv = [MLWF, "flows", "deploy", "--env", "local", *(a for n in notify for a in ("--notify", n))]
    return subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def managed(env: str) -> list[Any]:
    from prefect.client.orchestration import get_client

    from mlwf.alerts import MANAGED_TAG

    async def read() -> list[Any]:
        async with get_client() as client:
            return [a for a in await client.read_automations() if MANAGED_TAG in a.tags and f"env:{env}" in a.tags]

    return asyncio.run(read())


def wait_for_text(hook: Receiver, containing: str, timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    while not (found := hook.texts(containing)):
        assert time.monotonic() < deadline, f"no alert containing {containing!r}; received: {hook.received}"
        time.sleep(0.5)
    return found[0]


@pytest.mark.slow
def test_deploying_twice_creates_each_alert_once_and_removes_duplicates(server: str, receiver: Receiver) -> None:
    from prefect.client.orchestration import get_client

    earlier = managed("local")  # whatever another test deployed before this one

    async def clear() -> None:
        async with get_client() as client:
            for automation in earlier:
                await client.delete_automation(automation.id)

    asyncio.run(clear())
    first = deploy(server, f"custom-webhook/{BLOCK}")
    assert first.returncode == 0, first.stderr[-2000:]
    created = [line for line in first.stdout.splitlines() if line.startswith("alert ")]
    assert created == [
        "alert created: mlwf local: a flow run failed or crashed",
        "alert created: mlwf local: the promotion gate refused a model",
        "alert created: mlwf local: the serving model is worse than the baseline",
        "alert created: mlwf local: a flow run is still running after 240 min",
    ]
    ids = {a.name: a.id for a in managed("local")}

    (original,) = [a for a in managed("local") if a.name.endswith("failed or crashed")]

    async def duplicate() -> None:  # as two deploys racing, or a person copying it, would leave
        async with get_client() as client:
            from prefect.events.schemas.automations import AutomationCore

            await client.create_automation(AutomationCore.model_validate(original.model_dump(exclude={"id"})))

    asyncio.run(duplicate())
    second = deploy(server, f"custom-webhook/{BLOCK}")
    assert second.returncode == 0, second.stderr[-2000:]
    assert "alert removed: mlwf local: a flow run failed or crashed (a duplicate)" in second.stdout
    assert second.stdout.count("alert updated: ") == 4
    assert {a.name: a.id for a in managed("local")} == ids, "the same four, updated in place"
    (failed,) = [a for a in managed("local") if a.name.endswith("failed or crashed")]
    assert failed.actions[0].block_document_id is not None
    assert receiver.url not in json.dumps(failed.model_dump(mode="json")), "the URL stays in the block"


@pytest.mark.slow
def test_a_missing_destination_is_one_line_and_writes_nothing(server: str, receiver: Receiver) -> None:
    before = {a.id: a.model_dump(mode="json") for a in managed("local")}
    result = deploy(server, "custom-webhook/nobody")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "mlwf: error: alerts.notify: no Prefect block custom-webhook/nobody in this workspace "
        "(create it: mlwf alerts webhook nobody < url-file)"
    ]
    assert result.stdout == ""
    assert {a.id: a.model_dump(mode="json") for a in managed("local")} == before


def run_flows(server: str, *argv: str) -> dict[str, Any]:
    """A scenario of tests/alert_runs.py in its own process against ``server``."""
    env = {**os.environ, "PREFECT_API_URL": server, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    result = subprocess.run(
        [sys.executable, str(REPO / "tests" / "alert_runs.py"), *argv],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    return dict(json.loads(line.removeprefix("RESULT ")))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("scenario", "state", "alert", "says"),
    [
        ("failing", "Failed", "a flow run failed or crashed", ["is Failed: ", "the disk is full"]),
        # Prefect ends a flow past its timeout Failed, named TimedOut: the "failed" alert hears it
        ("timing-out", "TimedOut", "a flow run failed or crashed", ["is TimedOut: "]),
        # a run ending in `mlwf.refused` (the storm pipeline's refusals end so: test_gate_flows.py)
        (
            "refusing",
            "Refused",
            "the promotion gate refused a model",
            ["is Refused: model m2 refused by the promotion gate"],
        ),
    ],
)
def test_a_run_ending_so_reaches_the_webhook(
    alerting: str, receiver: Receiver, scenario: str, state: str, alert: str, says: list[str]
) -> None:
    run = run_flows(alerting, scenario, "local")
    assert (run["type"], run["name"]) == ("FAILED", state)
    text = wait_for_text(receiver, run["run"])
    assert text.startswith(f"[local] {alert}\n")
    for words in says:
        assert words in text


@pytest.mark.slow
def test_a_decayed_champion_reaches_the_webhook_and_scores_nothing(
    alerting: str, receiver: Receiver, tmp_path: Path
) -> None:
    """Two pipeline runs (tests/alert_runs.py): a model promoted; then the relation turns around,
    so the champion ranks the newest rows worse than the baseline (the candidate is refused too):
    the run ends Decayed, and with stopping on it scores nothing."""
    run = run_flows(alerting, "decayed", "local", str(tmp_path))
    champion = run["champion"]
    assert (run["type"], run["name"]) == ("FAILED", "Decayed")
    assert "\n" not in run["message"]
    assert run["message"].startswith(
        f"current model {champion} is worse than the baseline on the newest rows (ROC AUC 0."
    )
    assert ": scoring stopped; model " in run["message"]
    assert run["serving_model"] is None
    assert run["scores"] is None
    assert run["scores_unchanged"], "nothing scored with the decayed champion"
    assert run["report_says_decayed"]
    decay = wait_for_text(receiver, run["run"])
    assert decay.startswith("[local] the serving model is worse than the baseline\n")
    assert f"is Decayed: current model {champion} is worse than the baseline" in decay
    (failed,) = [a for a in managed("local") if a.name.endswith("failed or crashed")]
    assert "prefect.flow-run.Decayed" not in failed.trigger.expect, "a distinct alert, not 'failed' too"


@pytest.mark.slow
def test_a_run_longer_than_expected_is_late(server: str, receiver: Receiver) -> None:
    """The late alert with a 12-second limit (settings allow 5 minutes at least: built unvalidated
    here so the test does not wait that long)."""
    from mlwf import alerts

    async def apply() -> list[str]:
        from prefect.client.orchestration import get_client

        settings = AlertSettings.model_construct(notify=[f"custom-webhook/{BLOCK}"], late_after_minutes=0.2)
        async with get_client() as client:
            blocks = await alerts.resolve_destinations(client, settings)
            return await alerts.apply(client, "latecheck", settings, blocks)

    assert "alert created: mlwf latecheck: a flow run is still running after 0.2 min" in asyncio.run(apply())

    run = run_flows(server, "slow", "latecheck", "25")  # well past the limit, then Completed
    assert (run["type"], run["name"]) == ("COMPLETED", "Completed")
    text = wait_for_text(receiver, "[latecheck] a flow run is still running after 0.2 min", timeout=60)
    assert f"Flow run {run['run']} of alerts-slow is " in text

"""Alerts as code: the Prefect automations an environment gets, created or updated by
`mlwf flows deploy` with its flows, and the webhook block they deliver through.

Each alert reacts to flow-run events of the environment's deployments (they carry its tag):

- ``failed``: a flow run Failed or Crashed (its task lost, an error in the flow);
- ``refused``: a run ended Refused (the promotion gate refused its model; the champion stays);
- ``decayed``: a run ended Decayed (the serving model is worse than the constant baseline on
  the newest rows);
- ``late``: a run still running ``late_after_minutes`` after it started.

Where they go is the environment's ``alerts.notify``: Prefect notification blocks that hold the
secret parts (a webhook URL, an e-mail API key). Prefect does not keep automation names unique,
so applying reads the managed automations (tagged), updates one per name, deletes the rest and
any that are no longer declared: deploying twice creates nothing new.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

from prefect.events.actions import SendNotification
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
from prefect.exceptions import ObjectNotFound

from mlwf.errors import UserError
from mlwf.settings import AlertSettings

MANAGED_TAG = "mlwf-alerts"  # marks the automations this module owns
BLOCK_NAME = re.compile(r"[a-z0-9-]+")  # Prefect's rule for block (and block type) names
# Final states by name (Prefect's events are named after the state: a flow that times out ends
# Failed, named "TimedOut"); what the "failed" alert hears, and what ends a run for the "late" one.
FAILED = ("Failed", "Crashed", "TimedOut")
FINAL = ("Completed", *FAILED, "Cancelled", "Refused", "Decayed")
BODY = (
    "Flow run {{ flow_run.name }} of {{ flow.name }} is {{ flow_run.state.name }}"
    "{% if flow_run.state.message %}: {{ flow_run.state.message }}{% endif %}\n"
    "Flow run ID: {{ flow_run.id }}"
)


@dataclass(frozen=True)
class Alert:
    key: str
    title: str
    trigger: EventTrigger


def alerts(env: str, settings: AlertSettings) -> list[Alert]:
    """The alerts of ``env``: each a trigger on its flow runs' events."""

    def on(*states: str) -> EventTrigger:
        return EventTrigger(
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={"prefect.resource.role": "tag", "prefect.resource.id": f"prefect.tag.{env}"},
            expect={f"prefect.flow-run.{s}" for s in states},
            posture=Posture.Reactive,
            threshold=1,
        )

    late = EventTrigger(
        match={"prefect.resource.id": "prefect.flow-run.*"},
        match_related={"prefect.resource.role": "tag", "prefect.resource.id": f"prefect.tag.{env}"},
        after={"prefect.flow-run.Running"},
        expect={f"prefect.flow-run.{s}" for s in FINAL},
        for_each={"prefect.resource.id"},
        posture=Posture.Proactive,
        threshold=1,
        within=timedelta(minutes=settings.late_after_minutes),
    )
    return [
        Alert("failed", "a flow run failed or crashed", on(*FAILED)),
        Alert("refused", "the promotion gate refused a model", on("Refused")),
        Alert("decayed", "the serving model is worse than the baseline", on("Decayed")),
        Alert("late", f"a flow run is still running after {settings.late_after_minutes} min", late),
    ]


def automation_name(env: str, alert: Alert) -> str:
    return f"mlwf {env}: {alert.title}"


def automations(env: str, settings: AlertSettings, blocks: list[UUID]) -> list[AutomationCore]:
    """What Prefect stores for each alert: its trigger and one notification per destination."""
    return [
        AutomationCore(
            name=automation_name(env, alert),
            description=f"ml-workflows alert {alert.key!r} of environment {env} (mlwf flows deploy manages it)",
            enabled=True,
            tags=[MANAGED_TAG, f"env:{env}", f"alert:{alert.key}"],
            trigger=alert.trigger,
            actions=[
                SendNotification(block_document_id=block, subject=f"[{env}] {alert.title}", body=BODY)
                for block in blocks
            ],
        )
        for alert in alerts(env, settings)
    ]


async def resolve_destinations(client: Any, settings: AlertSettings) -> list[UUID]:
    """Each ``alerts.notify`` block's ID; one line naming the first that is missing or cannot notify."""
    ids = []
    for name in settings.notify:
        slug, block = name.split("/", 1)
        try:
            document = await client.read_block_document_by_name(name=block, block_type_slug=slug, include_secrets=False)
        except ObjectNotFound:
            raise UserError(
                f"alerts.notify: no Prefect block {name} in this workspace "
                f"(create it: mlwf alerts webhook {block} < url-file)"
            ) from None
        if "notify" not in (document.block_schema.capabilities if document.block_schema else []):
            raise UserError(f"alerts.notify: block {name} cannot send notifications")
        ids.append(document.id)
    return ids


async def apply(client: Any, env: str, settings: AlertSettings, blocks: list[UUID]) -> list[str]:
    """Create or update the environment's automations; delete duplicates and undeclared ones.
    Without destinations there are none. Returns one line per change."""
    wanted = automations(env, settings, blocks) if blocks else []
    mine = [a for a in await client.read_automations() if MANAGED_TAG in a.tags and f"env:{env}" in a.tags]
    lines = []
    for automation in wanted:
        same = [a for a in mine if a.name == automation.name]
        if same:
            await client.update_automation(same[0].id, automation)
            lines.append(f"alert updated: {automation.name}")
        else:
            await client.create_automation(automation)
            lines.append(f"alert created: {automation.name}")
    names = {a.name for a in wanted}
    kept: set[str] = set()
    for existing in mine:
        if existing.name in names and existing.name not in kept:
            kept.add(existing.name)
            continue
        await client.delete_automation(existing.id)
        lines.append(f"alert removed: {existing.name}" + (" (a duplicate)" if existing.name in names else ""))
    return lines


WEBHOOK_BLOCK = "custom-webhook"


def webhook_block(name: str, url: str) -> Any:
    """A notification block posting ``{"text": subject + body}`` to ``url`` (what a Slack
    incoming webhook expects); the URL is kept as a secret value of the block."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    return CustomWebhookNotificationBlock(
        name=name,
        url="{{webhook_url}}",
        json_data={"text": "{{subject}}\n{{body}}"},
        secrets={"webhook_url": url},  # type: ignore[arg-type]
        params=None,
        form_data=None,
        headers=None,
        cookies=None,
    )


def save_webhook(name: str, url: str) -> str:
    """Create or replace the webhook block ``name``; returns its ``notify`` entry."""
    if not BLOCK_NAME.fullmatch(name):
        raise UserError(f"block name {name!r}: expected lowercase letters, digits and dashes (Prefect's rule)")
    if not url.startswith(("https://", "http://")):
        raise UserError("the webhook URL must start with https:// (or http:// on a private network)")
    webhook_block(name, url).save(name, overwrite=True)
    return f"{WEBHOOK_BLOCK}/{name}"

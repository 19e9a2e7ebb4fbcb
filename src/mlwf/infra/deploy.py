"""The real deployment: `pulumi up` of each stack in dependency order through the Automation
API, with the policy pack and the environment's policy config. Checks what it needs first and says in one line what
is missing (the Pulumi CLI, a backend login, AWS credentials, the API key secret)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlwf.errors import UserError
from mlwf.image import image_tag as tag_of
from mlwf.image_digests import digest_of, image_config
from mlwf.infra.stacks import check_stacks
from mlwf.runtime import read_cluster_runtime


def preflight(env: str, repo_root: Path, environ: dict[str, str] | None = None) -> None:
    """Fail fast, in one line, on what a deployment cannot work without."""
    environ = dict(os.environ) if environ is None else environ
    if shutil.which("pulumi", path=environ.get("PATH")) is None:
        raise UserError(
            "the Pulumi CLI is not installed (see https://www.pulumi.com/docs/iac/download-install/); "
            "`mlwf deploy` drives it through the Automation API"
        )
    if not (environ.get("PULUMI_ACCESS_TOKEN") or environ.get("PULUMI_BACKEND_URL") or _logged_in()):
        raise UserError("no Pulumi backend: run `pulumi login` or set PULUMI_ACCESS_TOKEN or PULUMI_BACKEND_URL")
    import boto3

    if boto3.session.Session().get_credentials() is None:
        raise UserError(f"no AWS credentials for environment {env}: configure a profile or an OIDC role")


def _logged_in() -> bool:
    return (Path.home() / ".pulumi" / "credentials.json").exists()


MODES = ("up", "preview", "drift")


def deploy(
    env: str,
    stacks: list[str] | None,
    repo_root: Path,
    image_tag: str | None = None,
    on_output: Callable[[str], None] = print,
    mode: str = "up",
    image_digest: str | None = None,
) -> list[str]:
    """Run the stacks of one environment in dependency order: ``up`` deploys, ``preview``
    shows the changes under the policies, ``drift`` refreshes and fails if the cloud no longer
    matches the code. Returns the stacks done."""
    from pulumi import automation as auto

    from mlwf.policy.pack import config_file
    from mlwf.settings import load_environment

    settings = load_environment(env, repo_root / "environments")
    selected = check_stacks(stacks)
    preflight(env, repo_root)
    policy_pack = repo_root / "policies"
    policy_packs = [str(policy_pack)]
    policy_configs = [str(config_file(policy_pack, settings.name, settings.tier))]
    updated = []
    if image_digest is None and mode != "up":
        # A preview or drift check compares the stacks with what runs now: the image deployed
        # (by the digest the compute stack published), not a rebuild of this commit's tag.
        try:
            image_digest = digest_of(read_cluster_runtime(settings).image)
        except UserError:  # nothing deployed yet: preview by tag
            image_digest = None
    image = image_config(image_tag or tag_of(repo_root), image_digest)
    for name in selected:
        work_dir = repo_root / "platform" / name
        stack = auto.create_or_select_stack(stack_name=env, work_dir=str(work_dir))
        for key, value in image.items():
            if value is None:
                stack.remove_config(key)
            else:
                stack.set_config(key, auto.ConfigValue(value=value))
        on_output(f"== pulumi {mode} {name} ({env})")
        policies: dict[str, Any] = {
            "policy_packs": policy_packs,
            "policy_pack_configs": policy_configs,
            "color": "never",
        }
        if mode == "up":
            stack.up(on_output=on_output, **policies)
        elif mode == "preview":
            stack.preview(on_output=on_output, **policies)
        else:
            try:
                stack.preview(on_output=on_output, refresh=True, expect_no_changes=True, **policies)
            except auto.errors.CommandError as exc:
                raise UserError(f"drift in stack {name}/{env}: the cloud no longer matches the code ({exc})") from None
        updated.append(name)
    return updated

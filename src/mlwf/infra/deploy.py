"""The real deployment: `pulumi up` of each stack in dependency order through the Automation
API, with the policy pack and the environment's policy config; and of the bootstrap and github
stacks, one at a time. Checks what it needs first and says in one line what is missing (the
Pulumi CLI, a backend login, credentials of the right AWS account, a GitHub token)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlwf.errors import UserError
from mlwf.image import image_tag as tag_of
from mlwf.image_digests import digest_of, image_config, wait_for_image
from mlwf.runtime import read_cluster_runtime
from mlwf.stacks.programs import DELIVERY_STACKS, IMAGE_STACKS, check_stacks, delivery_served, delivery_stack_name


def preflight(env: str, repo_root: Path, environ: dict[str, str] | None = None, account_id: str | None = None) -> None:
    """Fail fast, in one line, on what a deployment cannot work without: the Pulumi CLI, a
    backend, and credentials (AWS ones for ``account_id`` when given; for the github stack,
    ``env`` "github", a GitHub token)."""
    environ = dict(os.environ) if environ is None else environ
    if shutil.which("pulumi", path=environ.get("PATH")) is None:
        raise UserError(
            "the Pulumi CLI is not installed (see https://www.pulumi.com/docs/iac/download-install/); "
            "`mlwf deploy` drives it through the Automation API"
        )
    if not (environ.get("PULUMI_ACCESS_TOKEN") or environ.get("PULUMI_BACKEND_URL") or _logged_in()):
        raise UserError("no Pulumi backend: run `pulumi login` or set PULUMI_ACCESS_TOKEN or PULUMI_BACKEND_URL")
    if env == "github":
        if not environ.get("GITHUB_TOKEN"):
            raise UserError(
                "no GitHub token: the github stack needs GITHUB_TOKEN of a repository administrator "
                "(e.g. `GITHUB_TOKEN=$(gh auth token)`)"
            )
        return
    import boto3

    if boto3.session.Session().get_credentials() is None:
        raise UserError(f"no AWS credentials for environment {env}: configure a profile or an OIDC role")
    if account_id is not None:
        check_account(account_id, env)


def check_account(account_id: str, env: str) -> None:
    """The credentials are the account's: a deploy with another account's credentials would
    build the stack there (the provider's allowed_account_ids stops it later, mid-update)."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        found = boto3.client("sts").get_caller_identity()["Account"]
    except (BotoCoreError, ClientError) as exc:
        raise UserError(f"cannot check the AWS account of the credentials: {exc}") from None
    if found != account_id:
        raise UserError(f"the AWS credentials are account {found}'s, but {env} is in account {account_id}")


def _logged_in() -> bool:
    return (Path.home() / ".pulumi" / "credentials.json").exists()


MODES = ("up", "preview", "drift")


def deploy(
    env: str | None,
    stacks: list[str] | None,
    repo_root: Path,
    image_tag: str | None = None,
    on_output: Callable[[str], None] = print,
    mode: str = "up",
    image_digest: str | None = None,
) -> list[str]:
    """Run the stacks of one environment in dependency order: ``up`` deploys, ``preview``
    shows the changes under the policies, ``drift`` refreshes and fails if the cloud no longer
    matches the code. Returns the stacks done. The bootstrap or github stack is run alone
    (`deploy_delivery`)."""
    from mlwf.policy.pack import config_file
    from mlwf.settings import load_environment

    selected = check_stacks(stacks, delivery=True)
    if any(name in DELIVERY_STACKS for name in selected):
        if image_tag or image_digest:
            raise UserError("--image-tag and --image-digest are the environment stacks', not bootstrap's or github's")
        return [deploy_delivery(selected, env, repo_root, on_output, mode)]
    if env is None:
        raise UserError("--env is required: the environment whose stacks to deploy")
    settings = load_environment(env, repo_root / "environments")
    preflight(env, repo_root, account_id=settings.account_id)
    policy_config = config_file(repo_root / "policies", settings.name, settings.tier)
    if image_digest is None and mode != "up":
        # A preview or drift check compares the stacks with what runs now: the image deployed
        # (by the digest the compute stack published), not a rebuild of this commit's tag.
        try:
            image_digest = digest_of(read_cluster_runtime(settings).image)
        except UserError:  # nothing deployed yet: preview by tag
            image_digest = None
    image = image_config(image_tag or tag_of(repo_root), image_digest)
    if mode == "up" and image_digest and any(name in IMAGE_STACKS for name in selected):
        import boto3

        ecr = boto3.client("ecr", region_name=settings.region)
        wait_for_image(settings.image.repository, image_digest, ecr, say=on_output)
    for name in selected:
        _apply(repo_root, name, env, mode, policy_config, on_output, image)
    return selected


def deploy_delivery(
    selected: list[str], env: str | None, repo_root: Path, on_output: Callable[[str], None], mode: str
) -> str:
    """`pulumi up` (or preview, drift) of the bootstrap stack of ``env``'s account, or of the
    github stack (no environment: it is the repository's)."""
    from mlwf.delivery import load_delivery
    from mlwf.policy.pack import config_file

    if len(selected) != 1:
        raise UserError("deploy the bootstrap or the github stack on its own (neither is an environment's)")
    (name,) = selected
    delivery = load_delivery(repo_root)
    if name == "bootstrap":
        if env is None:
            raise UserError("--stack bootstrap needs --env: the environment whose AWS account to bootstrap")
        account = delivery.account_of(env)
    elif env is not None:
        raise UserError("the github stack is the repository's, not an environment's: drop --env")
    else:
        account = ""
    stack_name = delivery_stack_name(name, account)
    preflight(env or "github", repo_root, account_id=account or None)
    strictest = delivery_served(name, stack_name, delivery.environments)[-1]
    _apply(repo_root, name, stack_name, mode, config_file(repo_root / "policies", name, strictest.tier), on_output)
    return name


def _apply(
    repo_root: Path,
    name: str,
    stack_name: str,
    mode: str,
    policy_config: Path,
    on_output: Callable[[str], None],
    config: dict[str, str | None] | None = None,
) -> None:
    """One stack's `pulumi up`, preview or drift check, under the pack and ``policy_config``."""
    from pulumi import automation as auto

    stack = auto.create_or_select_stack(stack_name=stack_name, work_dir=str(repo_root / "platform" / name))
    for key, value in (config or {}).items():
        if value is None:
            stack.remove_config(key)
        else:
            stack.set_config(key, auto.ConfigValue(value=value))
    on_output(f"== pulumi {mode} {name} ({stack_name})")
    policies: dict[str, Any] = {
        "policy_packs": [str(repo_root / "policies")],
        "policy_pack_configs": [str(policy_config)],
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
            raise UserError(
                f"drift in stack {name}/{stack_name}: the cloud no longer matches the code ({exc})"
            ) from None

"""`mlwf rollback --env E [--to DIGEST]`: an environment's image back to the one deployed before
the current one (or to a named digest), through the path every deploy takes: `pulumi up` of the
image stacks by that digest under the policy pack (new task-definition revisions, as a deploy
makes), then the flows deployed again, so their job variables name the new flow-run task
definition. Nothing changes when the digest is gone from the environment's registry (its
lifecycle policy keeps the newest images only): that is one line.

The deploy history is the one every deploy already writes: the compute stack publishes the image
it runs in its runtime parameter (``/<prefix>/compute``), and SSM keeps that parameter's versions.
A rollback is recorded the same way (a new version), so a second rollback undoes the first.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlwf.contract import runtime_parameter_name
from mlwf.errors import UserError
from mlwf.image_digests import check_digest, digest_of
from mlwf.settings import Settings


@dataclass(frozen=True)
class Rollback:
    """What a rollback of ``env`` does: from the digest running now to ``target``."""

    env: str
    current: str | None  # None when the environment runs an image by tag
    target: str
    tags: tuple[str, ...]  # the registry's tags of the target (the build's: one)

    @property
    def tag(self) -> str | None:
        return self.tags[0] if self.tags else None

    def line(self) -> str:
        named = f" ({', '.join(self.tags)})" if self.tags else ""
        return f"rolling {self.env} back from {self.current or 'an image by tag'} to {self.target}{named}"


def deployed_images(settings: Settings, ssm: Any) -> list[str]:
    """The image of every version of the compute stack's runtime parameter, oldest first (SSM
    keeps the last 100 versions). An earlier version that does not name one counts as none ("");
    the newest must."""
    from botocore.exceptions import BotoCoreError, ClientError

    name = runtime_parameter_name(settings.name_prefix)
    versions: list[tuple[int, str]] = []
    try:
        for page in ssm.get_paginator("get_parameter_history").paginate(Name=name, WithDecryption=False):
            versions += [(int(v["Version"]), _image_of(v["Value"])) for v in page["Parameters"]]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ParameterNotFound":
            raise UserError(
                f"{settings.name} has no deploy history ({name} does not exist): nothing to roll back"
            ) from None
        raise UserError(f"cannot read the deploy history {name}: {exc}") from None
    except BotoCoreError as exc:
        raise UserError(f"cannot read the deploy history {name}: {exc}") from None
    images = [image for _, image in sorted(versions)]  # by version: the API promises no order
    if images and not images[-1]:
        raise UserError(f"the newest version of {name} names no image: is it the compute stack's?")
    return images


def _image_of(value: str) -> str:
    try:
        document = json.loads(value)
    except ValueError:
        return ""
    return str(document.get("image") or "") if isinstance(document, dict) else ""


def choose(env: str, images: list[str], to: str | None) -> tuple[str | None, str]:
    """(the digest running now, the digest to go back to): ``to``, or the newest earlier deploy
    by another digest."""
    current = digest_of(images[-1]) if images else None
    if to is not None:
        target = check_digest(to)
        if target == current:
            raise UserError(f"{env} already runs {target}: nothing to roll back")
        return current, target
    for image in reversed(images[:-1]):
        earlier = digest_of(image)
        if earlier and earlier != current:
            return current, earlier
    raise UserError(f"{env} was never deployed by another image digest: nothing to roll back to (name one with --to)")


def registry_tags(settings: Settings, digest: str, ecr: Any) -> tuple[str, ...]:
    """The tags of ``digest`` in the environment's registry; one line when it is gone."""
    from botocore.exceptions import BotoCoreError, ClientError

    repository = settings.image.repository
    try:
        found = ecr.describe_images(repositoryName=repository, imageIds=[{"imageDigest": digest}])["imageDetails"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ImageNotFoundException":
            raise UserError(
                f"image {digest} is gone from {repository} (its lifecycle policy keeps the newest images): "
                "cannot roll back to it"
            ) from None
        raise UserError(f"cannot look up {digest} in {repository}: {exc}") from None
    except BotoCoreError as exc:
        raise UserError(f"cannot look up {digest} in {repository}: {exc}") from None
    return tuple(sorted(tag for image in found for tag in image.get("imageTags", [])))


def prepare(settings: Settings, to: str | None, ssm: Any, ecr: Any) -> Rollback:
    """Everything checked before anything changes: the history, the target, the registry."""
    current, target = choose(settings.name, deployed_images(settings, ssm), to)
    return Rollback(settings.name, current, target, registry_tags(settings, target, ecr))


def rollback(
    settings: Settings,
    to: str | None,
    deploy_image: Callable[[Rollback], None],
    deploy_flows: Callable[[], None],
    say: Callable[[str], None] = print,
    clients: tuple[Any, Any] | None = None,
) -> Rollback:
    """Check, then deploy the image stacks by the target digest, then the flows. The two deploy
    steps are the deploy's own (`mlwf deploy`, `mlwf flows deploy`); ``clients`` are (SSM, ECR)
    of the environment."""
    if clients is None:
        import boto3

        clients = (boto3.client("ssm", region_name=settings.region), boto3.client("ecr", region_name=settings.region))
    step = prepare(settings, to, *clients)
    say(step.line())
    deploy_image(step)
    deploy_flows()
    say(f"rolled {settings.name} back to {step.target}: task definitions and flow deployments")
    return step

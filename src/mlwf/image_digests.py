"""Images are deployed by digest, and a tag is promoted only when it points at the digest this
pipeline pushed it with.

ECR tags here are immutable, so whoever pushes a tag first owns it; tags are predictable (a
digest of the repository's content: `mlwf.image.image_tag`). The build job therefore records the
digest it pushed under the tag (an SSM parameter `/mlwf/image-digests/<tag>`, written once), and
before promoting a tag that already exists it checks that the registry's digest for it is the
recorded one. Every environment's task definitions then take the image as
``repository@sha256:...`` (`mlwf deploy --image-digest`), promoted unchanged dev -> staging -> prod.
"""

from __future__ import annotations

import re
from typing import Any

from mlwf.errors import UserError

DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
DIGEST_PARAMETER_PREFIX = "/mlwf/image-digests/"  # the image role writes here, nobody else


def check_digest(value: str) -> str:
    if not DIGEST.fullmatch(value):
        raise UserError(f"not an image digest: {value!r} (expected sha256: and 64 hex digits)")
    return value


def parameter_name(tag: str) -> str:
    if not TAG.fullmatch(tag):
        raise UserError(f"not an image tag: {tag!r}")
    return f"{DIGEST_PARAMETER_PREFIX}{tag}"


def _ssm(client: Any | None) -> Any:
    import boto3
    from botocore.exceptions import BotoCoreError

    try:
        return client or boto3.client("ssm")
    except BotoCoreError as exc:  # no region or credentials configured
        raise UserError(f"cannot reach SSM: {exc}") from None


def _refused(exc: Exception, what: str) -> UserError:
    from botocore.exceptions import ClientError

    reason = exc.response.get("Error", {}).get("Code") if isinstance(exc, ClientError) else type(exc).__name__
    return UserError(f"cannot {what}: {reason}")


def recorded(tag: str, client: Any | None = None) -> str | None:
    """The digest the pipeline recorded for ``tag`` (None when it never pushed it)."""
    from botocore.exceptions import BotoCoreError, ClientError

    name = parameter_name(tag)
    try:
        return str(_ssm(client).get_parameter(Name=name)["Parameter"]["Value"])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ParameterNotFound":
            return None
        raise _refused(exc, f"read {name}") from None
    except BotoCoreError as exc:
        raise _refused(exc, f"read {name}") from None


def record(tag: str, digest: str, client: Any | None = None) -> None:
    """Record the digest a new tag was pushed with (once: a different digest is refused)."""
    from botocore.exceptions import BotoCoreError, ClientError

    check_digest(digest)
    ssm = _ssm(client)
    known = recorded(tag, ssm)
    if known == digest:
        return
    if known is not None:
        raise UserError(f"image tag {tag} is recorded with {known}, not {digest}: tags are never reused")
    try:
        ssm.put_parameter(Name=parameter_name(tag), Value=digest, Type="String", Overwrite=False)
    except (BotoCoreError, ClientError) as exc:
        raise _refused(exc, f"record {parameter_name(tag)}") from None


def image_config(tag: str, digest: str | None) -> dict[str, str | None]:
    """What a deploy sets in each image stack's config: the tag, and the digest (None removes a
    stale one from an earlier deploy, so the stack takes the image by tag)."""
    return {"mlwf:imageTag": tag, "mlwf:imageDigest": check_digest(digest) if digest else None}


def digest_of(image: str) -> str | None:
    """The digest of an image reference (``repository@sha256:...``), None for one by tag."""
    _, at, digest = image.rpartition("@")
    return digest if at and DIGEST.fullmatch(digest) else None


def verify(tag: str, digest: str, client: Any | None = None) -> None:
    """One line unless ``tag`` was recorded by this pipeline with ``digest``."""
    check_digest(digest)
    known = recorded(tag, client)
    if known is None:
        raise UserError(f"image tag {tag} exists but this pipeline never pushed it (no digest recorded): not promoted")
    if known != digest:
        raise UserError(f"image tag {tag} points at {digest}, but this pipeline pushed {known}: not promoted")


def wait_for_image(
    repository: str,
    digest: str,
    client: Any | None = None,
    timeout_s: float = 900,
    say: Any = print,
    sleep: Any = None,
) -> None:
    """Wait until ``digest`` is in the environment's ``repository``: the build pushes to the
    image's account and ECR replicates it to the others (bootstrap's replication rule), which
    takes a while; a task started before would fail with CannotPullContainerError."""
    import time

    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    check_digest(digest)
    ecr = client or boto3.client("ecr")
    sleep = sleep or time.sleep
    deadline = time.monotonic() + timeout_s
    waited = False
    while True:
        try:
            ecr.describe_images(repositoryName=repository, imageIds=[{"imageDigest": digest}])
            if waited:
                say(f"image {digest} has reached {repository}")
            return
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code not in ("ImageNotFoundException", "RepositoryNotFoundException"):
                raise _refused(exc, f"look up {digest} in {repository}") from None
        except BotoCoreError as exc:
            raise _refused(exc, f"look up {digest} in {repository}") from None
        if time.monotonic() >= deadline:
            raise UserError(
                f"image {digest} did not reach {repository} within {timeout_s:.0f} s: check the bootstrap "
                "stack's ECR replication from the image's account (`mlwf deploy --stack bootstrap`)"
            )
        if not waited:
            say(f"waiting for image {digest} to be replicated to {repository}")
            waited = True
        sleep(10)

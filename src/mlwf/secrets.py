"""The Prefect API key's value, put by an administrator into the secret the prefect-agent stack
created (`mlwf secrets set --env E`): the stack never sees the value, so it is in no Pulumi config
or state, and no token that can preview a stack can read it. The key is issued by Prefect Cloud,
so it is rotated there and put again here (the policy pack exempts it from AWS rotation, with
that reason). Nothing here prints or logs the value."""

from __future__ import annotations

from typing import Any

from mlwf.contract import api_key_secret_name
from mlwf.errors import UserError
from mlwf.settings import Settings


def put_api_key(settings: Settings, value: str, client: Any | None = None) -> str:
    """Put ``value`` as the current version of the environment's API key secret; returns the
    new version's ID. One line when the value is empty, the secret does not exist yet (the
    prefect-agent stack is not deployed) or AWS refuses."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    value = value.strip()
    if not value:
        raise UserError("the Prefect API key is empty: pass it on standard input")
    if any(ch.isspace() for ch in value):
        raise UserError("the Prefect API key holds whitespace: pass the key alone on standard input")
    name = api_key_secret_name(settings.name_prefix)
    secrets = client or boto3.client("secretsmanager", region_name=settings.region)
    try:
        version = secrets.put_secret_value(SecretId=name, SecretString=value)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "ResourceNotFoundException":
            raise UserError(
                f"secret {name} does not exist in {settings.region}: deploy the prefect-agent stack first"
            ) from None
        raise UserError(f"cannot put secret {name} in {settings.region}: {code or 'refused'}") from None
    except BotoCoreError as exc:
        raise UserError(f"cannot reach Secrets Manager in {settings.region}: {type(exc).__name__}") from None
    return str(version["VersionId"])

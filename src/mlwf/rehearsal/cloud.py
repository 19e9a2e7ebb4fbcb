"""An emulated AWS in this process: moto's server on a free 127.0.0.1 port, in the environment's
account, with IAM enforced once the world is seeded, and every denial recorded server-side.

What moto enforces (5.2.5): S3, SQS, IAM and STS requests are checked against the real resource
ARN; every other service compares a policy's Resource with the literal ``"*"`` (so identities
are created with non-S3/SQS resources widened to ``"*"``, see `seed`). Conditions,
``iam:PassRole`` and execution roles are not checked: the plan's unit tests cover those.
"""

from __future__ import annotations

import logging
import os
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from mlwf.errors import UserError

ADMIN = "rehearsal-admin"


@dataclass(frozen=True)
class Credentials:
    """An IAM user's keys, as a process's environment carries them."""

    user: str
    access_key: str
    secret_key: str

    def env(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}


@dataclass(frozen=True)
class Denial:
    user: str
    action: str
    resource: str

    def __str__(self) -> str:
        return f"{self.user} may not {self.action} on {self.resource}"


@dataclass(frozen=True)
class Request:
    """One request moto authorized (or denied): who, what, on which resource as moto names it
    (the real ARN for S3; "*" for most other services), with the request's parameters."""

    user: str
    action: str
    resource: str
    params: dict[str, Any]
    denied: bool


def request_params(request: Any) -> dict[str, Any]:
    """The parameters of a request moto is authorizing: the JSON body (ECS, KMS, Logs, Secrets
    Manager, SSM, SQS), else the query or form parameters (EC2, IAM, STS), else the S3 path."""
    import json

    body = getattr(request, "_body", b"") or b""
    if body[:1] == b"{":
        try:
            found = json.loads(body)
            if isinstance(found, dict):
                return found
        except ValueError:
            pass
    data = dict(getattr(request, "_data", {}) or {})
    return {k: v[0] if isinstance(v, list) and len(v) == 1 else v for k, v in data.items()} or {
        "path": getattr(request, "_path", "")
    }


@dataclass
class EmulatedAWS:
    """moto in this process. `endpoint` is what clients use as ``AWS_ENDPOINT_URL``."""

    account: str
    region: str
    endpoint: str = ""
    admin: Credentials | None = None
    denials: list[Denial] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)  # every request of an identity but the admin
    _server: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def client_env(self, credentials: Credentials) -> dict[str, str]:
        """Environment variables for a process that reaches this AWS as ``credentials``."""
        return {
            **credentials.env(),
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_EC2_METADATA_DISABLED": "true",  # boto probes 169.254.169.254 otherwise
        }

    def client(self, service: str, credentials: Credentials | None = None) -> Any:
        import boto3
        from botocore.config import Config

        keys = credentials or self.admin
        assert keys is not None
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=keys.access_key,
            aws_secret_access_key=keys.secret_key,
            config=Config(retries={"max_attempts": 2, "mode": "standard"}),
        )

    def backend(self, service: str) -> Any:
        """moto's in-process backend of a service in this account and region."""
        from moto.backends import get_backend

        backends = get_backend(service)  # type: ignore[call-overload]
        region = "global" if service == "iam" else self.region
        return backends[self.account][region]

    def enforce_iam(self) -> None:
        """From now on every request must be signed by an IAM user allowed to make it."""
        from moto import settings
        from moto.core.authorization import ActionAuthenticatorMixin

        settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
        ActionAuthenticatorMixin.request_count = 0

    def _record_denials(self) -> None:
        from moto.iam.access_control import IAMRequestBase

        original = IAMRequestBase.check_action_permitted
        emulator = self

        def check(request: Any, resource: str) -> None:
            user = str(getattr(request._access_key, "arn", "unknown")).rsplit("/", 1)[-1]
            denied = False
            try:
                original(request, resource)
            except Exception:
                denied = True
                with emulator._lock:
                    emulator.denials.append(Denial(user, request._action, resource))
                raise
            finally:
                if user != ADMIN:
                    recorded = Request(user, request._action, resource, request_params(request), denied)
                    with emulator._lock:
                        emulator.requests.append(recorded)

        IAMRequestBase.check_action_permitted = check  # type: ignore[method-assign,assignment]
        self._restore_check = original

    def stop(self) -> None:
        from moto import settings
        from moto.iam.access_control import IAMRequestBase

        settings.INITIAL_NO_AUTH_ACTION_COUNT = float("inf")
        if getattr(self, "_restore_check", None) is not None:
            IAMRequestBase.check_action_permitted = self._restore_check  # type: ignore[method-assign]
        if self._server is not None:
            self._server.stop()
            self._server = None


def require_moto() -> None:
    """One line, before anything starts, when the dev dependencies are missing."""
    try:
        import moto.server  # noqa: F401
    except ImportError:
        raise UserError("the rehearsal needs the dev dependencies (moto): run `uv sync` first") from None


@contextmanager
def emulated_aws(account: str, region: str) -> Iterator[EmulatedAWS]:
    """Start moto on 127.0.0.1 in ``account``; an admin user exists; IAM is not enforced yet."""
    require_moto()
    from moto.server import ThreadedMotoServer

    from mlwf.rehearsal import moto_gaps

    previous_account = os.environ.get("MOTO_ACCOUNT_ID")
    os.environ["MOTO_ACCOUNT_ID"] = account  # moto reads it per request: the stacks' account
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    moto_gaps.apply()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    aws = EmulatedAWS(account, region, f"http://{host}:{port}", _server=server)
    try:
        # moto's state lives in this process's memory: an earlier emulated AWS must leave nothing
        urllib.request.urlopen(urllib.request.Request(f"{aws.endpoint}/moto-api/reset", method="POST"), timeout=30)
        aws._record_denials()
        aws.admin = Credentials(ADMIN, "unsigned", "unsigned")
        iam = aws.client("iam")
        iam.create_user(UserName=ADMIN)
        iam.put_user_policy(
            UserName=ADMIN,
            PolicyName="everything",
            PolicyDocument='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}',
        )
        key = iam.create_access_key(UserName=ADMIN)["AccessKey"]
        aws.admin = Credentials(ADMIN, key["AccessKeyId"], key["SecretAccessKey"])
        moto_gaps.put_account_settings(aws.client("ecs"))
        yield aws
    finally:
        aws.stop()
        if previous_account is None:
            os.environ.pop("MOTO_ACCOUNT_ID", None)
        else:
            os.environ["MOTO_ACCOUNT_ID"] = previous_account

"""Encrypted, authenticated Dask traffic for AWS runs (``dask.tls`` in the settings; required in
staging and prod): every cluster gets certificates of its own.

The flow run makes them (a self-signed certificate and key, distributed's
``Security.temporary``), keeps them in a Secrets Manager secret of its own tagged like the run's
tasks (so the reaper removes a crashed run's), and passes only the secret's name to its
scheduler and workers (``MLWF_DASK_TLS_SECRET``): their `dask-scheduler` / `dask-worker`
entry points read it with the Dask task role and start with ``--tls-*`` (the scheduler with
``--protocol tls``). A client, scheduler or worker without them cannot join. The secret is
deleted when the cluster closes. Local clusters stay plain TCP.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlwf.contract import DASK_TLS_VARIABLE


@dataclass(frozen=True)
class Certificates:
    ca: str
    cert: str
    key: str

    @classmethod
    def new(cls) -> Certificates:
        from distributed.security import Security

        made = Security.temporary()
        return cls(str(made.tls_ca_file), str(made.tls_client_cert), str(made.tls_client_key))

    def security(self) -> Any:
        """The client's side: only a client holding these certificates can connect."""
        from distributed.security import Security

        return Security(
            require_encryption=True,
            tls_ca_file=self.ca,
            tls_client_cert=self.cert,
            tls_client_key=self.key,
        )

    def to_json(self) -> str:
        return json.dumps({"ca": self.ca, "cert": self.cert, "key": self.key})


def store(secrets: Any, name: str, certificates: Certificates, tags: dict[str, str]) -> str:
    """Keep the run's certificates in a secret of their own; returns its ARN."""
    response = secrets.create_secret(
        Name=name,
        Description="Dask certificates of one flow run's cluster (deleted with it)",
        SecretString=certificates.to_json(),
        Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
    )
    return str(response["ARN"])


def delete(secrets: Any, secret_id: str) -> None:
    secrets.delete_secret(SecretId=secret_id, ForceDeleteWithoutRecovery=True)


def command_arguments(role: str, environ: dict[str, str] | None = None) -> list[str]:
    """The ``--tls-*`` arguments of a scheduler or worker whose run uses TLS ([] otherwise):
    the certificates are read from the run's secret into files only this process can read."""
    environ = dict(os.environ) if environ is None else environ
    secret_id = environ.get(DASK_TLS_VARIABLE)
    if not secret_id:
        return []
    import boto3

    document = json.loads(boto3.client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"])
    folder = Path(tempfile.mkdtemp(prefix="dask-tls-"))  # 0700
    paths = {}
    for part in ("ca", "cert", "key"):
        path = folder / f"{part}.pem"
        path.touch(mode=0o600)
        path.write_text(document[part])
        paths[part] = str(path)
    arguments = ["--tls-ca-file", paths["ca"], "--tls-cert", paths["cert"], "--tls-key", paths["key"]]
    return [*arguments, "--protocol", "tls"] if role == "scheduler" else arguments

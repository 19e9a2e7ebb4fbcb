"""Environment settings: one YAML file per environment in ``environments/``, validated on load.

The model is shared by the Pulumi stacks and the flows. Validation errors name the file, the
field and what was expected, e.g.::

    environments/prod.yaml: storage.versioning: prod buckets must be versioned
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, ValidationError, field_validator, model_validator

from mlwf.contract import ENVIRONMENT_TAG, PLATFORM, PLATFORM_TAG
from mlwf.errors import UserError

M = TypeVar("M", bound=BaseModel)

Tier = Literal["dev", "staging", "prod"]
TIERS: tuple[str, ...] = get_args(Tier)  # in promotion order

# What each tier may ask for at most: a settings file cannot raise its own ceiling.
TIER_MAX_WORKERS: dict[str, int] = {"dev": 8, "staging": 16, "prod": 64}
TIER_MIN_LOG_RETENTION_DAYS: dict[str, int] = {"dev": 14, "staging": 90, "prod": 365}
# An AWS region name, as the settings and the price table accept it (eu-west-1, us-gov-west-1).
REGION_PATTERN = r"^[a-z]{2}(-gov)?-[a-z]+-\d$"
REQUIRED_COST_TAGS = ("CostCenter", "Owner", "Project")
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)
# Fargate task sizes: CPU units -> allowed memory (MiB).
FARGATE_MEMORY: dict[int, Sequence[int]] = {
    256: (512, 1024, 2048),  # 0.25 vCPU: these three only (1536 is not a Fargate size)
    512: range(1024, 4097, 1024),
    1024: range(2048, 8193, 1024),
    2048: range(4096, 16385, 1024),
    4096: range(8192, 30721, 1024),
    8192: range(16384, 61441, 4096),
    16384: range(32768, 122881, 8192),
}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NetworkSettings(Strict):
    vpc_cidr: ipaddress.IPv4Network
    az_count: int = Field(ge=2, le=4)
    nat_gateways: int = Field(ge=0)
    flow_logs: bool = False
    admin_cidr: ipaddress.IPv4Network | None = None
    public_subnets: list[ipaddress.IPv4Network] | None = None
    private_subnets: list[ipaddress.IPv4Network] | None = None

    @field_validator("vpc_cidr")
    @classmethod
    def _vpc_size(cls, value: ipaddress.IPv4Network) -> ipaddress.IPv4Network:
        if not 16 <= value.prefixlen <= 24:
            raise ValueError("expected a VPC CIDR between /16 and /24")
        if not value.is_private:
            raise ValueError("expected a private (RFC 1918) range")
        return value

    @field_validator("admin_cidr")
    @classmethod
    def _admin_not_internet(cls, value: ipaddress.IPv4Network | None) -> ipaddress.IPv4Network | None:
        if value is not None and value.prefixlen < 16:
            raise ValueError("expected a narrow admin range (/16 or longer), never the internet")
        return value

    @model_validator(mode="after")
    def _subnets(self) -> NetworkSettings:
        if self.nat_gateways > self.az_count:
            raise ValueError(f"nat_gateways ({self.nat_gateways}) cannot exceed az_count ({self.az_count})")
        public, private = self.subnets()
        if len(public) != self.az_count or len(private) != self.az_count:
            raise ValueError(f"expected {self.az_count} public and {self.az_count} private subnets (one per AZ)")
        every = public + private
        for index, subnet in enumerate(every):
            if not subnet.subnet_of(self.vpc_cidr):
                raise ValueError(f"subnet {subnet} is outside the VPC {self.vpc_cidr}")
            for other in every[index + 1 :]:
                if subnet.overlaps(other):
                    raise ValueError(f"subnets {subnet} and {other} overlap")
        return self

    def subnets(self) -> tuple[list[ipaddress.IPv4Network], list[ipaddress.IPv4Network]]:
        """Public and private subnets: as given, or the VPC split into 2 x az_count equal ranges."""
        if self.public_subnets is not None or self.private_subnets is not None:
            return list(self.public_subnets or []), list(self.private_subnets or [])
        bits = (2 * self.az_count - 1).bit_length()
        pieces = list(self.vpc_cidr.subnets(prefixlen_diff=bits))
        return pieces[: self.az_count], pieces[self.az_count : 2 * self.az_count]


class StorageSettings(Strict):
    versioning: bool
    noncurrent_version_expiry_days: int = Field(default=30, ge=1)
    raw_transition_to_ia_days: int | None = Field(default=None, ge=30)
    scores_expiry_days: int | None = Field(default=None, ge=1)
    access_logs: bool = False  # S3 server access logs of the data bucket (required in staging and prod)


class DaskSettings(Strict):
    scheduler_cpu: int = 1024
    scheduler_memory_mib: int = 4096
    worker_cpu: int = 1024
    worker_memory_mib: int = 4096
    n_workers: int = Field(default=2, ge=1)
    max_workers: int = Field(default=4, ge=1)
    spot_workers: bool = False
    idle_timeout_minutes: int = Field(default=15, ge=1, le=240)
    max_lifetime_minutes: int = Field(default=240, ge=10, le=1440)
    # An adaptive cluster gives a worker back after it has been idle this long.
    worker_idle_seconds: int = Field(default=60, ge=5, le=3600)
    # How long a run waits for its first n_workers (Fargate starts and pulls the image).
    worker_join_timeout_minutes: int = Field(default=10, ge=1, le=60)
    # Encrypt and authenticate Dask traffic with per-cluster certificates (required in staging and prod).
    tls: bool = False

    @model_validator(mode="after")
    def _sizes(self) -> DaskSettings:
        for role in ("scheduler", "worker"):
            _check_fargate_size(role, getattr(self, f"{role}_cpu"), getattr(self, f"{role}_memory_mib"))
        if self.n_workers > self.max_workers:
            raise ValueError(f"n_workers ({self.n_workers}) exceeds max_workers ({self.max_workers})")
        if self.idle_timeout_minutes >= self.max_lifetime_minutes:
            raise ValueError("idle_timeout_minutes must be shorter than max_lifetime_minutes")
        return self


def _check_fargate_size(role: str, cpu: int, memory: int) -> None:
    if cpu not in FARGATE_MEMORY:
        raise ValueError(f"{role}_cpu {cpu} is not a Fargate size (expected one of {sorted(FARGATE_MEMORY)})")
    allowed = FARGATE_MEMORY[cpu]
    if memory not in allowed:
        if isinstance(allowed, range):
            expected = f"{allowed.start}-{allowed.stop - 1} in steps of {allowed.step}"
        else:
            expected = f"one of {', '.join(map(str, allowed))}"
        raise ValueError(f"{role}_memory_mib {memory} is not valid with {cpu} CPU units (expected {expected})")


class PrefectSettings(Strict):
    work_pool: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{2,62}$")
    api_url: HttpUrl
    # The flow-run task (the Prefect engine and the Dask client; the work runs on the cluster).
    flow_run_cpu: int = 1024
    flow_run_memory_mib: int = 4096

    @model_validator(mode="after")
    def _size(self) -> PrefectSettings:
        _check_fargate_size("flow_run", self.flow_run_cpu, self.flow_run_memory_mib)
        return self


class CostSettings(Strict):
    """The fixed monthly cost budget (`mlwf plan` checks it: advisory in dev, blocking from
    staging on) and the log volumes the estimate assumes (`mlwf cost`)."""

    monthly_budget_usd: float | None = Field(default=None, gt=0)
    log_gb_per_day: float = Field(default=0.05, ge=0)  # written to each log group
    flow_log_gb_per_day: float = Field(default=0.5, ge=0)  # VPC flow logs, where enabled


class AlertSettings(Strict):
    """Where alerts go (`mlwf.alerts`: Prefect automations deployed with the flows) and what
    a workload's model may do when it decays. Each destination is a Prefect notification block
    named "<block type slug>/<block name>" (e.g. ``custom-webhook/<prefix>-prod-alerts``, which
    posts to a Slack incoming webhook; ``sendgrid-email/...`` for e-mail): the block holds the
    secret parts (the webhook URL, the API key), never this file."""

    notify: list[str] = Field(default_factory=list)
    late_after_minutes: int = Field(default=240, ge=5, le=2880)  # a flow run still running after this is late
    # A champion worse than the constant baseline on the newest rows stops scoring (default: on in prod).
    stop_scoring_when_decayed: bool | None = None

    @field_validator("notify")
    @classmethod
    def _blocks(cls, value: list[str]) -> list[str]:
        for name in value:
            if not re.fullmatch(r"[a-z0-9-]+/[a-z0-9-]+", name):  # Prefect's names: lowercase, digits, dashes
                raise ValueError(f"{name!r}: expected '<block type slug>/<block name>', e.g. custom-webhook/alerts")
        if len(set(value)) != len(value):
            raise ValueError("a destination is listed twice")
        return value


class ImageSettings(Strict):
    repository: str = Field(pattern=r"^[a-z0-9][a-z0-9._/-]{1,255}$")


class Settings(Strict):
    """One environment of the platform."""

    name: str = Field(pattern=r"^[a-z][a-z0-9-]{1,20}$")
    tier: Tier
    region: str = Field(pattern=REGION_PATTERN)
    account_id: str = Field(pattern=r"^\d{12}$")
    name_prefix: str = Field(pattern=r"^[a-z][a-z0-9-]{2,30}$")
    pulumi_organization: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
    cost_tags: dict[str, str]
    network: NetworkSettings
    storage: StorageSettings
    dask: DaskSettings
    log_retention_days: int
    deletion_protection: bool
    prefect: PrefectSettings
    image: ImageSettings
    cost: CostSettings = CostSettings()
    alerts: AlertSettings = AlertSettings()

    @field_validator("cost_tags")
    @classmethod
    def _cost_tags(cls, value: dict[str, str]) -> dict[str, str]:
        missing = [t for t in REQUIRED_COST_TAGS if not value.get(t)]
        if missing:
            raise ValueError(f"missing required cost tag(s) {', '.join(missing)}")
        return value

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            raise ValueError(f"expected a CloudWatch retention period, one of {LOG_RETENTION_DAYS}")
        return value

    @model_validator(mode="after")
    def _tier_rules(self) -> Settings:
        cap = TIER_MAX_WORKERS[self.tier]
        if self.dask.max_workers > cap:
            raise ValueError(f"dask.max_workers {self.dask.max_workers} is above the {self.tier} maximum of {cap}")
        minimum = TIER_MIN_LOG_RETENTION_DAYS[self.tier]
        if self.log_retention_days < minimum:
            raise ValueError(
                f"log_retention_days {self.log_retention_days} is below the {self.tier} minimum of {minimum}"
            )
        if self.tier != "dev":
            if not self.storage.access_logs:
                raise ValueError(f"storage.access_logs: {self.tier} buckets must log access")
            if not self.dask.tls:
                raise ValueError(f"dask.tls: {self.tier} clusters must encrypt their traffic")
        if self.tier == "prod":
            if not self.storage.versioning:
                raise ValueError("storage.versioning: prod buckets must be versioned")
            if not self.deletion_protection:
                raise ValueError("deletion_protection: must be true in prod")
            if self.network.nat_gateways != self.network.az_count:
                raise ValueError("network.nat_gateways: prod needs one NAT gateway per AZ")
            if self.cost.monthly_budget_usd is None:
                raise ValueError("cost.monthly_budget_usd: prod needs a fixed-cost budget")
        return self

    @property
    def stops_decayed_scoring(self) -> bool:
        """Whether a decayed champion stops scoring here (default: only in prod)."""
        stop = self.alerts.stop_scoring_when_decayed
        return self.tier == "prod" if stop is None else stop

    @property
    def budget_level(self) -> str:
        """Over budget is advisory in dev and blocks `mlwf plan` from staging on."""
        return "advisory" if self.tier == "dev" else "mandatory"

    @property
    def tags(self) -> dict[str, str]:
        """The tags every resource of this environment carries (with what a flow run's
        resources add, `mlwf.dask_cluster.RunInfo.tags`, the reaper can tell its own)."""
        return {
            **self.cost_tags,
            "Environment": self.name,
            "ManagedBy": PLATFORM,
            PLATFORM_TAG: PLATFORM,
            ENVIRONMENT_TAG: self.name,
        }


def read_model(path: Path, model: type[M], what: str = "settings") -> M:
    """A YAML file validated as ``model``; UserError naming the file, field and expectation."""
    try:
        document = yaml.safe_load(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise UserError(f"{path}: cannot read {what} ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: not valid YAML ({' '.join(str(exc).split())[:300]})") from None
    except RecursionError:
        raise UserError(f"{path}: not valid YAML (nested too deeply)") from None
    if not isinstance(document, dict):
        raise UserError(f"{path}: expected a mapping of settings at the top level")
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        raise UserError(f"{path}: " + "; ".join(_describe(e) for e in exc.errors())) from None


def load_settings(path: str | Path) -> Settings:
    """Read and validate one settings file; UserError naming file, field and expectation."""
    path = Path(path)
    settings = read_model(path, Settings)
    if settings.name != path.stem:
        raise UserError(f"{path}: name: expected {path.stem!r} (the file name), got {settings.name!r}")
    return settings


def load_environments(directory: str | Path) -> list[Settings]:
    """Every environment: the folder of their files is the list, in tier order (dev first)."""
    found = [load_settings(path) for path in sorted(Path(directory).glob("*.yaml"))]
    if not found:
        raise UserError(f"no environment settings (*.yaml) in {directory}")
    return sorted(found, key=lambda s: (TIERS.index(s.tier), s.name))


def environment_names(directory: str | Path) -> list[str]:
    """The environments' names (the files in ``directory``) in tier order, without validating
    them (listing must work while one of them is being fixed)."""

    def order(path: Path) -> tuple[int, str]:
        try:
            tier = (yaml.safe_load(path.read_bytes().decode("utf-8")) or {}).get("tier")
        except (OSError, UnicodeDecodeError, yaml.YAMLError, AttributeError, RecursionError):
            tier = None
        return (TIERS.index(tier) if tier in TIERS else len(TIERS), path.stem)

    return [p.stem for p in sorted(Path(directory).glob("*.yaml"), key=order)]


def load_environment(name: str, directory: str | Path) -> Settings:
    path = Path(directory) / f"{name}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in Path(directory).glob("*.yaml"))
        raise UserError(f"unknown environment {name!r} (known: {', '.join(known) or 'none'} in {directory})")
    return load_settings(path)


def _describe(error: Any) -> str:
    location = ".".join(_key(part) for part in error.get("loc", ()) if part != "__root__")
    message = str(error.get("msg", "invalid"))
    message = message.removeprefix("Value error, ")
    if error.get("type") == "extra_forbidden":
        message = "unknown key"
    return f"{location}: {message}" if location else message


def _key(part: object) -> str:
    """A key as written in the file; quoted when it is blank, padded or holds control characters."""
    text = str(part)
    return text if text.isprintable() and text.strip() == text and text else repr(text)

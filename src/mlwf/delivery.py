"""The repository's delivery settings (``delivery.yaml``) and the names the bootstrap and github
stacks share with the workflows and the environment stacks: the roles GitHub's jobs assume,
the permissions boundary every role of an environment carries, the image's home.

Role ARNs are derived from names, not read from stacks: the github stack sets them as Actions
variables and every environment stack names its boundary without a reference to the bootstrap
stack (one per account, applied once by an administrator)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from mlwf.errors import UserError
from mlwf.settings import Settings, load_environments, read_model

GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
IMAGE_ENVIRONMENT = "image"  # the GitHub environment of the build job
IMAGE_ROLE = "mlwf-github-image"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Reviewers(_Strict):
    teams: list[int] = []
    users: list[int] = []


class GitHubSettings(_Strict):
    owner: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}$")
    repository: str = Field(pattern=r"^[A-Za-z0-9._-]{1,100}$")
    required_checks: list[str] = Field(min_length=1)
    prod_reviewers: Reviewers = Reviewers()
    dev_preview: bool = False

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.repository}"


class DeliverySettings(_Strict):
    github: GitHubSettings
    image_environment: str


@dataclass(frozen=True)
class Delivery:
    """The delivery settings with the environments they deliver to (in tier order)."""

    settings: DeliverySettings
    environments: list[Settings]

    @property
    def image_home(self) -> Settings:
        """The environment whose account builds and holds the image."""
        return next(e for e in self.environments if e.name == self.settings.image_environment)

    @property
    def repository(self) -> str:
        return self.image_home.image.repository

    def accounts(self) -> dict[str, list[Settings]]:
        """Each AWS account and the environments it holds: one bootstrap stack per account."""
        found: dict[str, list[Settings]] = {}
        for env in self.environments:
            found.setdefault(env.account_id, []).append(env)
        return found

    def registries(self) -> list[tuple[str, str]]:
        """The (account, region) registries the image is replicated to: every environment's
        but the image's own (environments sharing an account and region share a registry)."""
        home = (self.image_home.account_id, self.image_home.region)
        found = dict.fromkeys((e.account_id, e.region) for e in self.environments)
        return [place for place in found if place != home]

    def account_of(self, env: str) -> str:
        for settings in self.environments:
            if settings.name == env:
                return settings.account_id
        raise UserError(f"unknown environment {env!r} (known: {', '.join(e.name for e in self.environments)})")

    def subject(self, github_environment: str) -> str:
        """The OIDC subject of a job in this GitHub environment (whatever its trigger)."""
        return f"repo:{self.settings.github.full_name}:environment:{github_environment}"


def deploy_role_name(env: Settings) -> str:
    return f"mlwf-github-deploy-{env.name}"


def preview_role_name(env: Settings) -> str:
    return f"mlwf-github-preview-{env.name}"


def role_arn(account_id: str, name: str) -> str:
    return f"arn:aws:iam::{account_id}:role/{name}"


def boundary_name(env: Settings) -> str:
    return f"{env.name_prefix}-boundary"


def boundary_arn(env: Settings) -> str:
    """The permissions boundary every role of the environment carries: its deploy role may
    create and change roles only with it."""
    return f"arn:aws:iam::{env.account_id}:policy/{boundary_name(env)}"


def oidc_provider_arn(account_id: str) -> str:
    return f"arn:aws:iam::{account_id}:oidc-provider/{GITHUB_OIDC_HOST}"


def load_delivery(repo_root: Path) -> Delivery:
    """``delivery.yaml`` validated against the environments; one line naming what is wrong."""
    path = repo_root / "delivery.yaml"
    settings = read_model(path, DeliverySettings, "the delivery settings")
    environments = load_environments(repo_root / "environments")
    names = [e.name for e in environments]
    if settings.image_environment not in names:
        raise UserError(
            f"{path}: image_environment: {settings.image_environment!r} is not an environment ({', '.join(names)})"
        )
    delivery = Delivery(settings, environments)
    # ECR replication keeps a repository's name: every environment's repository is the image's.
    other = [e.name for e in environments if e.image.repository != delivery.repository]
    if other:
        raise UserError(
            f"{path}: image.repository of {', '.join(other)} differs from {settings.image_environment}'s "
            f"{delivery.repository!r}: the image is replicated under one name"
        )
    return delivery

"""What every stack program receives: typed settings, the tagged AWS provider, and its upstream
stacks' outputs. Built once by the entry point; components never read config themselves."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from mlwf.settings import Settings
from mlwf.workloads import DataAccess


@dataclass(frozen=True)
class StackContext:
    settings: Settings
    provider: aws.Provider
    image_tag: str
    data: DataAccess  # the data prefixes the workloads declare
    upstream: dict[str, pulumi.StackReference] = field(default_factory=dict)
    image_digest: str = ""  # when given, the image is taken by digest (as the build job pushed it)

    def name(self, suffix: str) -> str:
        """A physical name under the environment's prefix (``<prefix>-<env>-data``)."""
        return f"{self.settings.name_prefix}-{suffix}"

    def output(self, stack: str, key: str) -> pulumi.Output[Any]:
        """A required output of an upstream stack."""
        return self.upstream[stack].require_output(key)

    def image(self) -> pulumi.Output[str]:
        """The flow/Dask image in the storage stack's repository: ``repository@sha256:...`` when a
        digest is given (what is deployed from CI), ``repository:tag`` otherwise."""
        repository = self.output("storage", "repository_url")
        if self.image_digest:
            return pulumi.Output.concat(repository, "@", self.image_digest)
        return pulumi.Output.concat(repository, ":", self.image_tag)

    @property
    def opts(self) -> pulumi.ResourceOptions:
        """Options for a top-level component: every child inherits the tagged provider."""
        return pulumi.ResourceOptions(providers=[self.provider])


def tagged_provider(settings: Settings) -> aws.Provider:
    """The one tagging mechanism: provider default tags carry the environment's cost tags onto
    every taggable resource."""
    return aws.Provider(
        "aws",
        region=settings.region,
        allowed_account_ids=[settings.account_id],
        default_tags=aws.ProviderDefaultTagsArgs(tags=settings.tags),
    )


def stack_reference_name(settings: Settings, project: str) -> str:
    return f"{settings.pulumi_organization}/{project}/{settings.name}"

"""The github stack: the repository's own protections, as code (`mlwf deploy --stack github`,
one stack per repository, applied by an administrator of the repository with a token in
GITHUB_TOKEN).

- The GitHub environments the workflows run in: ``<env>`` for each deploy (main only, prod
  with required reviewers), ``<env>-read`` for drift and previews (main only, except dev-read,
  which pull requests' branches use for dev previews), ``image`` for the build (main only). A
  job in an environment gets the OIDC subject ``environment:<name>`` whatever triggered it, so
  "main only" is what keeps a branch out of a deploy role.
- Branch protection of main: the pull-request checks must pass, a review, no force pushes.
- The Actions variables the workflows read (role ARNs, region, Prefect API URL, image
  repository). Secrets (Pulumi tokens, Prefect API keys) are never in a stack: `gh secret set
  --env ENV` puts them.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_github as github

from mlwf.delivery import (
    IMAGE_ENVIRONMENT,
    IMAGE_ROLE,
    Delivery,
    deploy_role_name,
    preview_role_name,
    role_arn,
)


def environment_variables(delivery: Delivery) -> dict[str, dict[str, str]]:
    """Each GitHub environment's Actions variables (what the workflows read as ``vars.*``)."""
    home = delivery.image_home
    found: dict[str, dict[str, str]] = {
        IMAGE_ENVIRONMENT: {
            "AWS_REGION": home.region,
            "AWS_IMAGE_ROLE_ARN": role_arn(home.account_id, IMAGE_ROLE),
            "IMAGE_REPOSITORY": delivery.repository,
        }
    }
    for env in delivery.environments:
        common = {"AWS_REGION": env.region, "PREFECT_API_URL": str(env.prefect.api_url)}
        found[env.name] = {**common, "AWS_DEPLOY_ROLE_ARN": role_arn(env.account_id, deploy_role_name(env))}
        found[f"{env.name}-read"] = {
            **common,
            "AWS_PREVIEW_ROLE_ARN": role_arn(env.account_id, preview_role_name(env)),
        }
    return found


def repository_variables(delivery: Delivery) -> dict[str, str]:
    return {"DEV_PREVIEW": "true" if delivery.settings.github.dev_preview else "false"}


def main_only(environment: str) -> bool:
    """Every environment deploys from main only, but dev-read: pull requests preview dev there."""
    return environment != "dev-read"


def github_program(delivery: Delivery) -> dict[str, Any]:
    settings = delivery.settings.github
    provider = github.Provider("github", owner=settings.owner)
    opts = pulumi.ResourceOptions(provider=provider)
    repository = settings.repository
    prod = {e.name for e in delivery.environments if e.tier == "prod"}
    reviewers = settings.prod_reviewers
    for name, variables in environment_variables(delivery).items():
        environment = github.RepositoryEnvironment(
            name,
            repository=repository,
            environment=name,
            prevent_self_review=name in prod,
            can_admins_bypass=name not in prod,
            reviewers=(
                [github.RepositoryEnvironmentReviewerArgs(teams=reviewers.teams, users=reviewers.users)]
                if name in prod
                else None
            ),
            deployment_branch_policy=(
                github.RepositoryEnvironmentDeploymentBranchPolicyArgs(
                    protected_branches=False, custom_branch_policies=True
                )
                if main_only(name)
                else None
            ),
            opts=opts,
        )
        scoped = pulumi.ResourceOptions(provider=provider, depends_on=[environment])
        if main_only(name):
            github.RepositoryEnvironmentDeploymentPolicy(
                name, repository=repository, environment=name, branch_pattern="main", opts=scoped
            )
        for variable, value in variables.items():
            github.ActionsEnvironmentVariable(
                f"{name}-{variable}",
                repository=repository,
                environment=name,
                variable_name=variable,
                value=value,
                opts=scoped,
            )
    for variable, value in repository_variables(delivery).items():
        github.ActionsVariable(variable, repository=repository, variable_name=variable, value=value, opts=opts)
    github.BranchProtection(
        "main",
        repository_id=repository,
        pattern="main",
        enforce_admins=True,
        allows_deletions=False,
        allows_force_pushes=False,
        required_status_checks=[
            github.BranchProtectionRequiredStatusCheckArgs(strict=True, contexts=settings.required_checks)
        ],
        required_pull_request_reviews=[
            github.BranchProtectionRequiredPullRequestReviewArgs(
                required_approving_review_count=1, dismiss_stale_reviews=True, require_last_push_approval=True
            )
        ],
        opts=opts,
    )
    return {"repository": settings.full_name, "environments": sorted(environment_variables(delivery))}

"""`stage`: how a workload declares a Prefect task of its flows. Retries only what is worth
retrying (a transient failure, never a `UserError`: it would fail again) and caches nothing
(inputs are frames, models and datasets; outputs are published with `mlwf.storage.publish`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

from prefect import task
from prefect.cache_policies import NO_CACHE

from mlwf.errors import UserError

F = TypeVar("F", bound=Callable[..., Any])


def worth_retrying(task: Any, task_run: Any, state: Any) -> bool:
    """Retry transient failures (network, storage), never a user error."""
    try:
        state.result()
    except UserError:
        return False
    except Exception:
        return True
    return True


def stage(**options: Any) -> Callable[[F], F]:
    """``@stage(retries=3, retry_delay_seconds=[2, 10, 30])`` on a function makes it a task."""
    return cast(Callable[[F], F], task(cache_policy=NO_CACHE, retry_condition_fn=worth_retrying, **options))

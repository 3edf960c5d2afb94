"""Job metrics: runs, failures and duration per job, the same on arq and in-process.

Every job function is decorated with :func:`metered_job`; it counts when the job's ``ctx`` holds
a :class:`~emban.metrics.Metrics` (``ctx["metrics"]``: set by ``create_app`` for the in-process
runner and by the arq worker's ``on_startup``), so a test calling a job with a bare ``ctx``
counts nothing. Decorating the functions themselves (rather than wrapping them where they are
registered) keeps one name and one identity per job for arq, the in-process runner and tests.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from emban.metrics import Metrics

J = TypeVar("J", bound=Callable[..., Awaitable[Any]])


def metered_job(job: J) -> J:
    """``job`` counted in ``ctx["metrics"]`` (its first argument), when there is one."""
    name = getattr(job, "__name__", "job")

    @functools.wraps(job)
    async def run(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        metrics = ctx.get("metrics")
        if not isinstance(metrics, Metrics):
            return await job(ctx, *args, **kwargs)
        metrics.job_runs.labels(name).inc()
        failures = metrics.job_failures.labels(name)  # exported from the first run, 0 or more
        started = time.perf_counter()
        try:
            return await job(ctx, *args, **kwargs)
        except Exception:  # Retry too: that run failed and asked for another
            failures.inc()
            raise
        finally:
            metrics.job_duration.labels(name).observe(time.perf_counter() - started)

    return cast(J, run)

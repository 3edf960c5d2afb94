"""Embedded mode: the same job functions, scheduled on the serving process's loop."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
from typing import Any

from arq import Retry

from emban.background_tasks import TaskSet, every

log = logging.getLogger("emban.jobs")

ONE_OFF_TRIES = 5
RETRY_DELAY = 1.0  # seconds before the second try; doubles each time
STOP_GRACE = 30.0  # seconds stop() waits for one-off jobs still running


async def _once(job: Any, args: tuple[str, ...], ctx: dict[str, Any]) -> None:
    """Run a one-off job with retries and backoff, as arq would (``max_tries``)."""
    for attempt in range(1, ONE_OFF_TRIES + 1):
        try:
            await job(ctx, *args)
            return
        except Retry as retry:
            # The job asked to run again later (webhook backoff): arq's rule, kept here too.
            if attempt == ONE_OFF_TRIES:
                log.warning(
                    "in-process job %s%r gave up after %d tries", job.__name__, args, attempt
                )
                return
            await asyncio.sleep((retry.defer_score or 0) / 1000)
        except Exception:
            if attempt == ONE_OFF_TRIES:
                log.exception("in-process job %s%r failed %d times", job.__name__, args, attempt)
                return
            log.warning("in-process job %s%r failed; retrying", job.__name__, args, exc_info=True)
            await asyncio.sleep(RETRY_DELAY * 2 ** (attempt - 1))


class InProcessJobs:
    """Periodic jobs (embedded mode) and one-off jobs enqueued by name (``JobQueue``)."""

    def __init__(self, ctx: dict[str, Any] | None = None) -> None:
        self.ctx: dict[str, Any] = ctx if ctx is not None else {}
        self._periodic = TaskSet()
        self._one_off = TaskSet()

    def start(self, periodic: list[tuple[Any, float]], ctx: dict[str, Any] | None = None) -> None:
        if ctx is not None:
            self.ctx.update(ctx)
        for job, seconds in periodic:
            self._periodic.spawn(
                every(
                    seconds,
                    functools.partial(job, self.ctx),
                    log,
                    "in-process job %s failed; it runs again next period",
                    job.__name__,
                ),
                name=f"emban-job-{job.__name__}",
            )

    async def enqueue(self, job: str, *args: str) -> None:
        from emban.jobs.worker import JOBS  # the registry imports the queue: bind late

        function = JOBS[job]
        # A fresh context: the job must not inherit the enqueuing request's (its transaction
        # marker, its metadata connection) — it runs after that request committed.
        self._one_off.spawn(
            _once(function, args, self.ctx), name=f"emban-job-{job}", context=contextvars.Context()
        )

    async def drain(self) -> None:
        """Wait until every one-off job enqueued so far has finished (tests, shutdown)."""
        await self._one_off.drain()

    async def stop(self) -> None:
        await self._periodic.cancel()
        for task in await self._one_off.wait(grace=STOP_GRACE):
            log.warning("in-process job %s cancelled at shutdown", task.get_name())
            task.cancel()

"""Embedded mode: the same job functions, scheduled on the serving process's loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from emban.jobs.worker import PERIODIC_JOBS

log = logging.getLogger("emban.jobs")


async def _every(job: Any, seconds: float, ctx: dict[str, Any]) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            await job(ctx)
        except Exception:
            log.exception("in-process job %s failed; it runs again next period", job.__name__)


class InProcessJobs:
    def __init__(self) -> None:
        self._tasks: list[asyncio.Task[None]] = []

    def start(self, ctx: dict[str, Any]) -> None:
        for job, seconds in PERIODIC_JOBS:
            self._tasks.append(asyncio.create_task(_every(job, seconds, ctx)))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

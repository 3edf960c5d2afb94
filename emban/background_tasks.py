"""Tasks owned by a long-lived object: started with it, cancelled and awaited when it stops.

The ingest writer, the usage recorder, the Redis live bus, the live sockets' lease renewer and the
in-process jobs each run tasks on the serving loop. They share one lifecycle, written here once:

- :class:`OwnedTask` — the one task an object runs for its life (a reader or writer loop);
  ``start`` is idempotent, ``stop`` cancels it and waits until it has ended.
- :class:`TaskSet` — short tasks an object spawns and must keep a reference to (the loop holds
  only weak ones), with ``wait`` for a graceful stop and ``cancel`` for a hard one.
- :func:`every` — a periodic loop that logs a failed run and runs again next period.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

Job = Coroutine[Any, Any, None]


async def _cancel_and_wait(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


class OwnedTask:
    """One named task an object runs for its whole life."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self, run: Callable[[], Job]) -> bool:
        """Start ``run()`` unless it is running already; ``True`` when this call started it."""
        if self.running:
            return False
        self._task = asyncio.create_task(run(), name=self.name)
        return True

    async def stop(self) -> None:
        """Cancel the task and wait until it has ended (nothing when it never started)."""
        task, self._task = self._task, None
        if task is not None:
            await _cancel_and_wait(task)


class TaskSet:
    """Tasks spawned along the way, kept referenced until they end."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(
        self, job: Job, *, name: str | None = None, context: contextvars.Context | None = None
    ) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(job, name=name, context=context)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def release_current(self) -> None:
        """Stop counting the running task before it returns (its last act may wake a loop that
        reads ``len()`` to decide whether to spawn the next one)."""
        task = asyncio.current_task()
        if task is not None:
            self._tasks.discard(task)

    async def wait(self, grace: float | None = None) -> set[asyncio.Task[None]]:
        """Wait for the tasks running now; those still running after ``grace`` seconds are returned.

        A finished task's exception is taken (each task logs its own failures)."""
        if not self._tasks:
            return set()
        done, pending = await asyncio.wait(set(self._tasks), timeout=grace)
        for task in done:
            if not task.cancelled():
                task.exception()
        return pending

    async def drain(self) -> None:
        """Wait until no task is left, including tasks spawned while waiting."""
        while self._tasks:
            await self.wait()

    async def cancel(self) -> None:
        """Cancel every task and wait until they have ended."""
        for task in list(self._tasks):
            await _cancel_and_wait(task)


async def every(
    seconds: float,
    action: Callable[[], Awaitable[object]],
    log: logging.Logger,
    failure: str,
    *args: object,
) -> None:
    """Run ``action`` every ``seconds`` (first after one period) until cancelled; a failed run
    is logged with ``failure % args`` and the next period runs again."""
    while True:
        await asyncio.sleep(seconds)
        try:
            await action()
        except Exception:
            log.exception(failure, *args)

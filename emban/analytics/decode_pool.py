"""Big ingest bodies are decoded, validated and framed as a WAL record in worker processes, and
the bulk lane's drain chunks are read and prepared there (``wal_ingest.prepare_chunk``).

On threads, that work (msgspec decoding, the per-event checks, building and encoding the rows:
~10 µs an event) holds the GIL, and the event loop waits for the GIL each time it wakes: one org's
burst of 5,000-event bodies made another org's 1-event ack, its embed reads and ``/healthz``
several times slower on a 2-core machine although the loop itself was mostly idle. A process has
a GIL of its own, and its workers run at a lower CPU priority (``WORKER_NICE``, and under
SCHED_IDLE with ``EMBAN_INGEST_DECODE_POLICY=idle``, the default: a process shares no lock with
the server's requests, so none waits on it), so the loop's requests go first.

A worker answers the framed record and its row count, or None for anything it does not accept —
the caller then decodes in-process, on the path that names every bad event (index, field), so a
client sees the same answer either way. A worker that dies is replaced on the next request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime
from typing import Any, TypeVar

log = logging.getLogger("emban.ingest")

WORKER_NICE = 10
PARENT_CHECK = 1.0  # seconds between a worker's looks at whether the server is still there
R = TypeVar("R")


class PoolUnavailable(Exception):
    """The worker processes are gone: do the work in-process."""


def schedule_idle() -> bool:
    """Put the calling process's thread under Linux's SCHED_IDLE; False where the platform has no
    such policy or refuses it. A SCHED_IDLE thread gives its core up as soon as any other thread
    wants it (a nice value is only a weight). Only for work that shares no lock with requests: a
    SCHED_IDLE thread of the server holding the GIL or an engine lock would wait for a free core
    while the request waiting on it waits too — a worker process holds neither."""
    setscheduler = getattr(os, "sched_setscheduler", None)
    policy = getattr(os, "SCHED_IDLE", None)
    if setscheduler is None or policy is None:
        return False
    try:
        setscheduler(0, policy, os.sched_param(0))  # 0: the calling thread (Linux)
    except OSError:
        return False
    return True


def _start_worker(parent: int, idle: bool = False) -> None:
    """A worker's initializer: the lower priority, and an exit once the server is gone. A pool
    worker does not notice its parent's death by itself (it holds both ends of its task queue),
    so a server killed with SIGKILL would leave it running forever."""
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICE)
    if idle:
        schedule_idle()
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()


def _exit_with(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK)
    os._exit(0)


def prepare(body: bytes, received_at: datetime, org_id: str, environment_id: str) -> Prepared:
    """In a worker: ``POST /v1/events``' body → (framed WAL record, rows), or None when the body
    is not a valid batch."""
    from emban.analytics.wal_ingest import frame
    from emban.services.events import decode_events_json, event_rows

    try:
        batch = decode_events_json(body, received_at)
        rows = event_rows(batch, org_id=org_id, environment_id=environment_id)
    except Exception:  # the caller decodes again in-process and answers the precise error
        return None
    return frame(rows, [not event.event_id for event in batch.events]), len(rows)


Prepared = tuple[bytes, int] | None


class DecodePool:
    """``workers`` processes started on first use (``spawn``: a fork of a process running chDB's
    threads is not safe)."""

    def __init__(self, workers: int, *, idle: bool = False) -> None:
        self.workers = workers
        self.idle = idle  # the workers run under SCHED_IDLE (EMBAN_INGEST_DECODE_POLICY=idle)
        self._executor: ProcessPoolExecutor | None = None

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            self._executor = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
                initargs=(os.getpid(), self.idle),
            )
        return self._executor

    async def prepare(
        self, body: bytes, received_at: datetime, org_id: str, environment_id: str
    ) -> Prepared:
        """The framed record and its row count, or None: decode in-process instead."""
        try:
            return await self.run(prepare, body, received_at, org_id, environment_id)
        except PoolUnavailable:
            return None

    async def run(self, func: Callable[..., R], /, *args: Any) -> R:
        """``func(*args)`` in a worker; :class:`PoolUnavailable` if the worker died (new ones
        start on the next call)."""
        pool = self._pool()
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(pool, func, *args)
        except BrokenProcessPool:
            log.warning("an ingest worker process died; starting new ones")
            if self._executor is pool:
                self._executor = None
                pool.shutdown(wait=False, cancel_futures=True)
            raise PoolUnavailable from None

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

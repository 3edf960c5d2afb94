"""Recent discovery scans, per (org, environment), reused until the environment's events change.

``GET /v1/discover`` and ``POST /v1/discover/auto-create`` scan an environment's recent events
(four engine statements). An org that calls them in a loop would make the engine repeat the same
scan many times a second, taking cores from every other org's embeds and acks. A scan's answer
only changes when events of that environment are stored (or leave the window), so it is kept:

- it is dropped as soon as this process stores events of the environment (the ingest writer's
  flush listener), so a scan after an acknowledged ingest always sees it (read-your-writes, as
  for every other read);
- callers that ask while a scan of the same environment runs wait for that scan instead of
  starting another, unless events were stored since it started;
- events stored by another process are announced on the live bus (Redis), which drops the kept
  scan there too;
- it expires after ``EMBAN_DISCOVERY_CACHE_SECONDS`` (an announcement missed while Redis was
  down, events leaving the window, retention): 0 turns the cache off;
- at most ``max_entries`` environments are kept, the least recently used dropped first.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from emban.analytics.ingest import Touched

T = TypeVar("T")
Key = tuple[str, str]  # (org_id, environment_id)
MAX_ENTRIES = 1_000  # a scan holds up to 100 events with their property statistics


@dataclass
class _Scan(Generic[T]):
    task: asyncio.Task[T]
    params: Hashable
    stale: bool = False  # events of the environment were stored after the scan started


@dataclass
class _Entry:
    expires: float
    params: Hashable
    value: Any


@dataclass
class DiscoveryCache:
    ttl: float = 0.0  # seconds; 0: every call scans
    max_entries: int = MAX_ENTRIES
    scans: int = 0  # scans started (for tests and metrics)
    _entries: OrderedDict[Key, _Entry] = field(default_factory=OrderedDict)
    _running: dict[Key, _Scan[Any]] = field(default_factory=dict)

    async def get(self, key: Key, params: Hashable, scan: Callable[[], Awaitable[T]]) -> T:
        """The environment's scan with these ``params`` (the scan's settings): a kept one, the
        one running, or a new one (kept if no events of the environment were stored while it
        ran)."""
        if self.ttl <= 0:
            self.scans += 1
            return await scan()
        entry = self._entries.get(key)
        if entry is not None:
            if entry.expires > time.monotonic() and entry.params == params:
                self._entries.move_to_end(key)
                value: T = entry.value
                return value
            del self._entries[key]
        running = self._running.get(key)
        if running is None or running.stale or running.params != params:
            running = self._start(key, params, scan)
        # Shielded: a caller that goes away does not cancel the scan the others wait for.
        return await asyncio.shield(running.task)

    def _start(self, key: Key, params: Hashable, scan: Callable[[], Awaitable[T]]) -> _Scan[T]:
        self.scans += 1

        async def run() -> T:
            return await scan()

        started: _Scan[T] = _Scan(asyncio.ensure_future(run()), params)
        self._running[key] = started

        def done(task: asyncio.Task[T]) -> None:
            if self._running.get(key) is started:
                del self._running[key]
            if task.cancelled() or task.exception() is not None or started.stale:
                return  # a failure is not kept; each caller gets it, the next one scans again
            self._entries[key] = _Entry(time.monotonic() + self.ttl, started.params, task.result())
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

        started.task.add_done_callback(done)
        return started

    def forget(self, key: Key) -> None:
        """Events of this environment changed: drop its kept scan, and do not keep the one
        running (it may have read before the change)."""
        self._entries.pop(key, None)
        running = self._running.get(key)
        if running is not None:
            running.stale = True

    async def on_stored(self, touched: Touched) -> None:
        """The ingest writer's flush listener (this process's drains, before their readers are
        let through)."""
        for org, env in {(org, env) for org, env, _, _ in touched.keys}:
            self.forget((org, env))

    async def on_message(self, message: dict[str, Any]) -> None:
        """The live bus handler: events stored by any process sharing the bus (Redis) drop the
        kept scans of their environments here too."""
        if message.get("type") != "ingest":
            return
        for key in message.get("keys") or ():
            if isinstance(key, list | tuple) and len(key) >= 2:
                self.forget((str(key[0]), str(key[1])))

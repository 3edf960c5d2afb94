"""Cohorts of live embeds and their refreshes.

Viewers with the same (org, environment, tenant, dashboard, permissions, filters) share one
cohort: one query per widget per refresh, whatever the number of viewers. An ingest flush that
touched the cohort's tenant and one of its dashboard's events marks the widgets reading that
event dirty; after a short debounce they are recomputed once and pushed to every viewer, but only
when the result changed. A publish-state change reloads the config and pushes it (or "not
published").

Work is bounded: at most ``max_cohorts`` cohorts per (org, environment, dashboard, tenant) in a
process (a viewer that would open one more gets ``too_many_cohorts``), and every widget
computation — initial loads and refreshes alike — waits for one of ``max_concurrent_refreshes``
slots of one process-wide FIFO semaphore, so however many cohorts an ingest dirties, the hub never
holds more than that many engine connections and cohorts are served in the order they asked. A
cohort refreshes at most once per ``min_refresh_interval`` (changes in between are coalesced), so
a continuous ingest costs at most one query per widget per cohort per interval.

Fan-out. A refresh makes one :class:`Push` per change and hands the same object to every viewer
of the cohort. A viewer that gave :meth:`LiveHub.join` a :class:`LiveViewer` with a ``writer``
has its pushes written by that writer, synchronously, inside the broadcast loop, once its
snapshot is out: the live socket handler encodes the push once per cohort and query, caches the
bytes on the push and writes the same frame to every socket (see ``emban.resolvers.live_frames``).
A writer may decline a push (it returns ``False``); the push then waits in the viewer's queue and
:meth:`LiveHub.join` yields it, in order, like any other. A viewer whose queue is full (it stopped
reading) is dropped through its ``on_overflow`` (the socket closes; the runtime reconnects and
gets a fresh snapshot) rather than silently missing updates.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec

from emban.analytics.background import deferrable
from emban.error_codes import EmbedErrorCode
from emban.errors import EmbanError, TooManyCohorts
from emban.live.bus import LiveBus, alert_event_message
from emban.live.sockets import LiveSockets
from emban.metrics import Metrics
from emban.services.widget_config import TextWidget, Widget

log = logging.getLogger("emban.live")

DEBOUNCE_SECONDS = 0.1
QUEUE_LIMIT = 256
MAX_COHORTS = 50  # per (org, environment, dashboard, tenant)
MAX_CONCURRENT_REFRESHES = 2


@dataclass(frozen=True)
class CohortKey:
    org_id: str
    environment_id: str
    tenant_id: str
    dashboard_id: str
    grant: str  # canonical JSON of the session's permissions
    filters: str  # canonical JSON of the viewer's filters


@dataclass(frozen=True)
class LiveDashboard:
    """The dashboard a cohort shows: what its viewers may see of it."""

    id: str
    name: str
    widgets: Sequence[Widget]


def _event_of(widget: Widget) -> str | None:
    """The event a widget reads (none for text widgets): ingest of it makes the widget dirty."""
    return None if isinstance(widget, TextWidget) else widget.query.event_name


class CohortSource(Protocol):
    """How a cohort loads its dashboard and computes one widget (with its permissions)."""

    async def config(self) -> LiveDashboard:
        """The dashboard; raises EmbanError(dashboard_not_published)."""
        ...

    async def widget(self, widget: Widget) -> Any:
        """The widget's result (any msgspec-encodable value)."""
        ...

    async def widgets(self, widget: Widget, sources: Sequence[CohortSource]) -> list[Any]:
        """``widget``'s result for each of ``sources`` (this source among them; the cohorts of
        one dashboard and tenant), as :meth:`widget` would give each: in as few engine queries
        as the source can make of them."""
        ...


Update = dict[str, Any]


class Push:
    """One update of a cohort, shared by all its viewers: ``frames`` caches what writers encoded
    from it (keyed by the writer's own key: the query, the operation id), so a frame is built
    once per cohort and reused for every socket that asks for the same bytes."""

    __slots__ = ("frames", "update")

    def __init__(self, update: Update) -> None:
        self.update = update
        self.frames: dict[Hashable, bytes] = {}


class PushWriter(Protocol):
    def __call__(self, push: Push) -> bool:
        """Write ``push`` now (``True``), or decline it (``False``): it is then queued."""
        ...


class LiveViewer:
    """One viewer of a cohort.

    Pushes wait in a bounded queue for :meth:`LiveHub.join` to yield them. With a ``writer``, once
    the queue is empty (the snapshot and anything queued behind it have been taken) the viewer
    goes *direct*: the hub calls the writer for each push instead, in the broadcast loop.
    ``on_overflow`` is called once when the queue is full (the viewer stopped reading)."""

    __slots__ = ("direct", "on_overflow", "overflowed", "queue", "writer")

    def __init__(
        self,
        writer: PushWriter | None = None,
        on_overflow: Callable[[], None] | None = None,
        queue_limit: int = QUEUE_LIMIT,
    ) -> None:
        self.writer = writer
        self.on_overflow = on_overflow
        self.queue: asyncio.Queue[Push] = asyncio.Queue(maxsize=queue_limit)
        self.direct = False
        self.overflowed = False

    def deliver(self, push: Push) -> bool:
        """Hand the viewer one push; ``True`` when its writer took it."""
        if self.overflowed:
            return False
        if self.direct and self.writer is not None:
            if self.writer(push):
                return True
            self.direct = False  # declined: this push and those behind it go through the queue
        try:
            self.queue.put_nowait(push)
        except asyncio.QueueFull:
            # A stuck viewer: without a way to drop it (on_overflow), it misses updates.
            if self.on_overflow is not None:
                self.overflowed = True
                self.on_overflow()
        return False


@dataclass
class _Cohort:
    key: CohortKey
    source: CohortSource
    subscribers: set[LiveViewer] = field(default_factory=set)
    config: LiveDashboard | None = None
    published: bool = True
    results: dict[str, Any] = field(default_factory=dict)
    fingerprints: dict[str, bytes] = field(default_factory=dict)
    dirty: set[str] = field(default_factory=set)
    reload: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def events(self) -> set[str]:
        widgets = self.config.widgets if self.config is not None else ()
        return {event for w in widgets if (event := _event_of(w)) is not None}


GroupKey = tuple[str, str, str, str]  # (org, environment, dashboard, tenant)


def _group_of(key: CohortKey) -> GroupKey:
    return (key.org_id, key.environment_id, key.dashboard_id, key.tenant_id)


@dataclass
class _Group:
    """The cohorts of one dashboard and tenant: refreshed together, on one timer, so that each
    dirty widget is computed for all of them in one batch."""

    cohorts: dict[CohortKey, _Cohort] = field(default_factory=dict)
    task: asyncio.Task[None] | None = None
    refreshed_at: float = float("-inf")  # loop time the last refresh started


@dataclass
class _Batch:
    """Computations of one widget for cohorts of one group, waiting for an engine slot."""

    widget: Widget
    sources: list[CohortSource] = field(default_factory=list)
    waiters: list[asyncio.Future[Any]] = field(default_factory=list)
    task: asyncio.Task[None] | None = None


def _fingerprint(result: Any) -> bytes:
    """What counts as "changed": the data, not timings."""
    data = result.get("data") if isinstance(result, dict) else result
    return msgspec.json.encode(data)


class LiveHub:
    def __init__(
        self,
        bus: LiveBus,
        debounce: float = DEBOUNCE_SECONDS,
        *,
        max_cohorts: int = MAX_COHORTS,
        max_concurrent_refreshes: int = MAX_CONCURRENT_REFRESHES,
        min_refresh_interval: float = 0.0,
        sockets: LiveSockets | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._bus = bus
        self._metrics = metrics
        self._debounce = debounce
        self._min_interval = min_refresh_interval
        self._cohorts: dict[CohortKey, _Cohort] = {}
        self._groups: dict[GroupKey, _Group] = {}
        self._batches: dict[tuple[GroupKey, str], _Batch] = {}
        self.max_cohorts = max_cohorts
        self._slots = asyncio.Semaphore(max_concurrent_refreshes)
        self.sockets = sockets if sockets is not None else LiveSockets(bus)
        self.refreshes = 0  # widget computations (for tests and the benchmark)
        self.batches = 0  # batches those computations were made in (one engine slot each)
        self.written_pushes = 0  # pushes a viewer's writer took (shared frames)
        self._alert_listeners: dict[str, set[asyncio.Queue[dict[str, Any]]]] = {}
        bus.subscribe(self._on_message)

    @property
    def cohort_count(self) -> int:
        return len(self._cohorts)

    def viewer_count(self) -> int:
        return sum(len(c.subscribers) for c in self._cohorts.values())

    # --- announcements ---------------------------------------------------------------------

    async def announce_ingest(self, keys: frozenset[tuple[str, str, str, str]]) -> None:
        await self._bus.publish({"type": "ingest", "keys": sorted(list(k) for k in keys)})

    async def announce_dashboard(self, org_id: str, dashboard_id: str) -> None:
        await self._bus.publish({"type": "dashboard", "org": org_id, "dashboard": dashboard_id})

    async def publish(self, message: dict[str, Any]) -> None:
        """Any other process-wide announcement (API key invalidations) on the same bus."""
        await self._bus.publish(message)

    async def announce_alert_event(self, org_id: str, event: dict[str, Any]) -> None:
        """A new alert event, to every process's console subscribers of the org."""
        await self._bus.publish(alert_event_message(org_id, event))

    async def alert_events(self, org_id: str) -> AsyncGenerator[dict[str, Any], None]:
        """Every alert event of ``org_id`` recorded from now on (``Subscription.alertEvents``)."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=QUEUE_LIMIT)
        listeners = self._alert_listeners.setdefault(org_id, set())
        listeners.add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            listeners.discard(queue)
            if not listeners:
                self._alert_listeners.pop(org_id, None)

    async def _on_message(self, message: dict[str, Any]) -> None:
        if message.get("type") == "ingest":
            touched: dict[tuple[str, str, str], set[str]] = {}
            for org, env, tenant, event in message.get("keys", []):
                touched.setdefault((org, env, tenant), set()).add(event)
            for cohort in list(self._cohorts.values()):
                k = cohort.key
                events = touched.get((k.org_id, k.environment_id, k.tenant_id))
                if not events or cohort.config is None:
                    continue
                dirty = {w.id for w in cohort.config.widgets if _event_of(w) in events}
                if dirty:
                    cohort.dirty |= dirty
                    self._schedule(k)
        elif message.get("type") == "alert_event":
            for queue in list(self._alert_listeners.get(str(message.get("org_id")), ())):
                if queue.full():
                    continue  # a subscriber that does not read loses events, never the hub
                queue.put_nowait(message.get("event", {}))
        elif message.get("type") == "dashboard":
            for cohort in list(self._cohorts.values()):
                if (cohort.key.org_id, cohort.key.dashboard_id) == (
                    message.get("org"),
                    message.get("dashboard"),
                ):
                    cohort.reload = True
                    self._schedule(cohort.key)

    # --- viewers ---------------------------------------------------------------------------

    async def join(
        self, key: CohortKey, source: CohortSource, viewer: LiveViewer | None = None
    ) -> AsyncGenerator[Update, None]:
        """Yield the current state, then every change, until the viewer goes away.

        With a ``viewer`` that has a writer, the changes after the snapshot are written by the
        writer instead (only the pushes it declines are yielded); the generator then just holds
        the viewer's place in the cohort until it is closed.

        Raises :class:`TooManyCohorts` (before anything is yielded) when the viewer would open
        one cohort more than ``max_cohorts`` for its dashboard and tenant.
        """
        cohort = self._cohorts.get(key)
        group = self._groups.setdefault(_group_of(key), _Group())
        if cohort is None:
            if len(group.cohorts) >= self.max_cohorts:
                raise TooManyCohorts(
                    f"this dashboard already has {self.max_cohorts} live views with different "
                    "filters for this tenant; close one or reuse the same filters",
                    limit=self.max_cohorts,
                )
            cohort = self._cohorts[key] = group.cohorts[key] = _Cohort(key, source)
        if viewer is None:
            viewer = LiveViewer()
        try:
            async with cohort.lock:
                if cohort.config is None and cohort.published:
                    await self._load(cohort, push=False)
                for update in self._snapshot(cohort):
                    viewer.queue.put_nowait(Push(update))
                cohort.subscribers.add(viewer)
            while True:
                if viewer.writer is not None and viewer.queue.empty():
                    # Everything yielded so far has been taken by the consumer (it asked for
                    # the next one): from here the writer goes first, in order.
                    viewer.direct = True
                push = await viewer.queue.get()
                yield push.update
        finally:
            cohort.subscribers.discard(viewer)
            if not cohort.subscribers and self._cohorts.get(key) is cohort:
                del self._cohorts[key]
                group.cohorts.pop(key, None)
            if not group.cohorts and self._groups.get(_group_of(key)) is group:
                del self._groups[_group_of(key)]
                if group.task is not None:
                    group.task.cancel()

    def _snapshot(self, cohort: _Cohort) -> list[Update]:
        if not cohort.published or cohort.config is None:
            return [{"type": "not_published"}]
        updates: list[Update] = [{"type": "config", "dashboard": cohort.config}]
        for widget in cohort.config.widgets:
            if widget.id in cohort.results:
                updates.append(
                    {"type": "data", "widget_id": widget.id, "result": cohort.results[widget.id]}
                )
        return updates

    # --- refreshes -------------------------------------------------------------------------

    def _schedule(self, key: CohortKey) -> None:
        group = self._groups.get(_group_of(key))
        if group is not None and (group.task is None or group.task.done()):
            group.task = asyncio.create_task(self._refresh_later(group))

    async def _refresh_later(self, group: _Group) -> None:
        # After the debounce, and no sooner than min_refresh_interval after the group's last
        # refresh: under a continuous ingest every change of the interval is coalesced into one
        # refresh, so the live recompute rate is bounded by cohorts x widgets / interval. The
        # group's cohorts refresh together, so each dirty widget is one batch for all of them.
        loop = asyncio.get_running_loop()
        wait = max(self._debounce, group.refreshed_at + self._min_interval - loop.time())
        await asyncio.sleep(wait)
        group.refreshed_at = loop.time()
        due = [c for c in group.cohorts.values() if c.dirty or c.reload]
        await asyncio.gather(*(self._refresh(cohort) for cohort in due))
        if any(c.dirty or c.reload for c in group.cohorts.values()):
            # changes that arrived while refreshing (this task is still running, so _schedule
            # would see it and do nothing)
            group.task = asyncio.create_task(self._refresh_later(group))

    async def _refresh(self, cohort: _Cohort) -> None:
        async with cohort.lock:
            try:
                if cohort.reload:
                    cohort.reload = False
                    cohort.dirty.clear()
                    await self._load(cohort, push=True)
                else:
                    dirty, cohort.dirty = cohort.dirty, set()
                    await self._compute(cohort, dirty, push=True)
            except Exception:
                log.exception("live refresh failed for %s", cohort.key)
                self._broadcast(cohort, {"type": "error", "message": "Couldn't refresh"})

    async def _load(self, cohort: _Cohort, push: bool) -> None:
        try:
            config = await cohort.source.config()
        except EmbanError as error:
            if error.code != EmbedErrorCode.dashboard_not_published:
                raise
            cohort.published = False
            cohort.config = None
            cohort.results.clear()
            cohort.fingerprints.clear()
            if push:
                self._broadcast(cohort, {"type": "not_published"})
            return
        cohort.published = True
        cohort.config = config
        if push:
            self._broadcast(cohort, {"type": "config", "dashboard": config})
        ids = {w.id for w in config.widgets}
        for stale in set(cohort.results) - ids:
            cohort.results.pop(stale, None)
            cohort.fingerprints.pop(stale, None)
        if push:
            cohort.fingerprints.clear()  # a new config: send every widget's data again
        await self._compute(cohort, ids, push=push)

    async def _compute(self, cohort: _Cohort, widget_ids: set[str], push: bool) -> None:
        if cohort.config is None:
            return
        widgets = [w for w in cohort.config.widgets if w.id in widget_ids]

        async def one(widget: Widget) -> tuple[str, Any]:
            return widget.id, await self._batched(cohort, widget)

        results = await asyncio.gather(*(one(w) for w in widgets))
        for widget_id, result in results:
            fingerprint = _fingerprint(result)
            if cohort.fingerprints.get(widget_id) == fingerprint:
                continue  # unchanged: nothing to push
            cohort.fingerprints[widget_id] = fingerprint
            cohort.results[widget_id] = result
            if push:
                self._broadcast(cohort, {"type": "data", "widget_id": widget_id, "result": result})

    async def _batched(self, cohort: _Cohort, widget: Widget) -> Any:
        """``widget``'s result for ``cohort``, computed in one batch with the other cohorts of its
        group that ask for the same widget before the batch gets an engine slot."""
        key = (_group_of(cohort.key), widget.id)
        batch = self._batches.get(key)
        if batch is None or batch.widget != widget:
            if batch is not None:  # another config of the widget (a publish in between)
                key = (key[0], f"{widget.id}\0{id(widget)}")
            batch = self._batches.get(key)
            if batch is None:
                batch = self._batches[key] = _Batch(widget)
                batch.task = asyncio.create_task(self._run_batch(key, batch))
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        batch.sources.append(cohort.source)
        batch.waiters.append(waiter)
        return await waiter

    async def _run_batch(self, key: tuple[GroupKey, str], batch: _Batch) -> None:
        try:
            async with self._slots:  # bounded engine use, first come first served
                await asyncio.sleep(0)  # the group's other cohorts join in the same loop turn
                if self._batches.get(key) is batch:
                    del self._batches[key]  # from here on, askers start the next batch
                live = [  # a waiter already done was cancelled: its cohort is gone
                    (s, w)
                    for s, w in zip(batch.sources, batch.waiters, strict=True)
                    if not w.done()
                ]
                if not live:
                    return
                sources = [s for s, _ in live]
                with deferrable():  # on low-priority threads: requests go first
                    results = await sources[0].widgets(batch.widget, sources)
                self.batches += 1
                self.refreshes += len(results)
                for (_, waiter), result in zip(live, results, strict=True):
                    if not waiter.done():
                        waiter.set_result(result)
        except BaseException as error:
            if self._batches.get(key) is batch:
                del self._batches[key]
            for waiter in batch.waiters:
                if not waiter.done():
                    if isinstance(error, asyncio.CancelledError):
                        waiter.cancel()
                    else:
                        waiter.set_exception(error)
            if not isinstance(error, Exception):
                raise

    def _broadcast(self, cohort: _Cohort, update: Update) -> None:
        push = Push(update)  # one object for the whole cohort: writers share its frames
        delivered = 0
        for viewer in list(cohort.subscribers):
            try:
                if viewer.deliver(push):
                    self.written_pushes += 1
                if not viewer.overflowed:  # written or queued
                    delivered += 1
            except Exception:
                log.exception("live push failed for one viewer of %s", cohort.key)
        if self._metrics is not None:
            self._metrics.live_pushed(str(update.get("type")), delivered)

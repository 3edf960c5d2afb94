"""The live hub on its own: cohorts, debounced refreshes, change-only pushes, both buses."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from redis.asyncio import Redis

from emban.auth.principal import EmbedGrant
from emban.errors import NotFound, TooManyCohorts
from emban.live.bus import InProcessBus, RedisBus
from emban.live.hub import CohortKey, CohortSource, LiveDashboard, LiveHub, Update
from emban.live.sockets import REDIS_PREFIX, LiveSockets, RevocationRule
from emban.services.widget_config import Widget, decode_widgets


def _config(widget_id: str, event: str | None) -> dict[str, Any]:
    layout = {"x": 0, "y": 0, "w": 6, "h": 2}
    if event is None:
        return {"id": widget_id, "kind": "text", "title": "T", "text": "", "layout": layout}
    query = {"event_name": event, "metric": "count", "period": "24h"}
    return {
        "id": widget_id,
        "kind": "timeseries",
        "title": "T",
        "query": query,
        "viz": {"type": "line"},
        "layout": layout,
    }


WIDGETS = decode_widgets(
    [_config("calls", "api.call"), _config("signups", "user.signup"), _config("notes", None)]
)
DASHBOARD = LiveDashboard("dash_1", "D", WIDGETS)


class Source:
    """A cohort source over in-memory values: what the dashboard shows for one tenant."""

    def __init__(self) -> None:
        self.values = {"calls": 1, "signups": 10, "notes": 0}
        self.published = True
        self.computed: list[str] = []

    async def config(self) -> LiveDashboard:
        if not self.published:
            raise NotFound("not published", code="dashboard_not_published")
        return DASHBOARD

    async def widget(self, widget: Widget) -> Any:
        self.computed.append(widget.id)
        return {"data": [self.values[widget.id]], "meta": {"query_time_ms": len(self.computed)}}

    async def widgets(self, widget: Widget, sources: Sequence[CohortSource]) -> list[Any]:
        """One batch: each cohort's own value, one after the other (as one engine slot would)."""
        return [await source.widget(widget) for source in sources]


def key(tenant: str = "acme", filters: str = "{}") -> CohortKey:
    return CohortKey("org_1", "env_1", tenant, "dash_1", "{}", filters)


async def take(stream: AsyncIterator[Update], count: int) -> list[Update]:
    return [await asyncio.wait_for(anext(stream), 2) for _ in range(count)]


async def nothing_within(stream: AsyncIterator[Update], seconds: float) -> bool:
    try:
        await asyncio.wait_for(anext(stream), seconds)
    except TimeoutError:
        return True
    return False


async def test_initial_state_then_only_changed_widgets_are_pushed() -> None:
    hub = LiveHub(InProcessBus(), debounce=0.05)
    source = Source()
    stream = hub.join(key(), source)
    first = await take(stream, 4)
    assert [u["type"] for u in first] == ["config", "data", "data", "data"]
    assert [(u["widget_id"], u["result"]["data"]) for u in first[1:]] == [
        ("calls", [1]),
        ("signups", [10]),
        ("notes", [0]),
    ]
    source.values["calls"] = 2
    await hub.announce_ingest(frozenset({("org_1", "env_1", "acme", "api.call")}))
    pushed = await take(stream, 1)
    assert pushed == [
        {
            "type": "data",
            "widget_id": "calls",
            "result": {"data": [2], "meta": {"query_time_ms": 4}},
        }
    ]
    assert source.computed == ["calls", "signups", "notes", "calls"]  # only the affected widget
    # the same data again (a resend): recomputed, but nothing is pushed
    await hub.announce_ingest(frozenset({("org_1", "env_1", "acme", "api.call")}))
    assert await nothing_within(stream, 0.3)
    assert source.computed[-1] == "calls"
    await stream.aclose()
    assert hub.cohort_count == 0


async def test_other_tenants_and_events_do_not_refresh() -> None:
    hub = LiveHub(InProcessBus(), debounce=0.05)
    source = Source()
    stream = hub.join(key(), source)
    await take(stream, 4)
    source.values["calls"] = 5
    await hub.announce_ingest(frozenset({("org_1", "env_1", "globex", "api.call")}))
    await hub.announce_ingest(frozenset({("org_2", "env_1", "acme", "api.call")}))
    await hub.announce_ingest(frozenset({("org_1", "env_1", "acme", "page.view")}))
    assert await nothing_within(stream, 0.3)
    assert source.computed == ["calls", "signups", "notes"]
    await stream.aclose()


async def test_viewers_of_one_cohort_share_each_refresh() -> None:
    hub = LiveHub(InProcessBus(), debounce=0.05)
    source = Source()
    streams = [hub.join(key(), source) for _ in range(5)]
    for stream in streams:
        await take(stream, 4)
    assert hub.cohort_count == 1
    assert hub.viewer_count() == 5
    assert source.computed == ["calls", "signups", "notes"]  # computed once for five viewers
    source.values["signups"] = 11
    for _ in range(3):  # a burst of flushes within the debounce: one refresh
        await hub.announce_ingest(frozenset({("org_1", "env_1", "acme", "user.signup")}))
    for stream in streams:
        update = (await take(stream, 1))[0]
        assert (update["widget_id"], update["result"]["data"]) == ("signups", [11])
    assert source.computed.count("signups") == 2
    other = hub.join(key(filters='{"period":"7d"}'), Source())
    await take(other, 4)
    assert hub.cohort_count == 2  # other filters: another cohort
    for stream in [*streams, other]:
        await stream.aclose()
    assert hub.cohort_count == 0


async def test_unpublish_and_publish_push_state_and_config() -> None:
    hub = LiveHub(InProcessBus(), debounce=0.05)
    source = Source()
    stream = hub.join(key(), source)
    await take(stream, 4)
    source.published = False
    await hub.announce_dashboard("org_1", "dash_1")
    assert await take(stream, 1) == [{"type": "not_published"}]
    source.published = True
    source.values["calls"] = 3
    await hub.announce_dashboard("org_1", "dash_1")
    updates = await take(stream, 4)
    assert updates[0] == {
        "type": "config",
        "dashboard": DASHBOARD,
    }
    assert [u["result"]["data"] for u in updates[1:]] == [[3], [10], [0]]
    await hub.announce_dashboard("org_2", "dash_1")  # another org's dashboard id: ignored
    assert await nothing_within(stream, 0.3)
    await stream.aclose()


async def test_a_viewer_joining_an_unpublished_dashboard_is_told_so() -> None:
    hub = LiveHub(InProcessBus(), debounce=0.05)
    source = Source()
    source.published = False
    stream = hub.join(key(), source)
    assert await take(stream, 1) == [{"type": "not_published"}]
    await stream.aclose()


async def test_two_processes_share_changes_through_redis(redis: Redis) -> None:
    """Two hubs on two Redis buses (as two API processes): an ingest announced by one reaches
    the viewers of the other."""
    channel = f"emban:test:{secrets.token_hex(4)}"
    bus_a, bus_b = RedisBus(redis, channel), RedisBus(redis, channel)
    hub_a, hub_b = LiveHub(bus_a, debounce=0.05), LiveHub(bus_b, debounce=0.05)
    await bus_a.start()
    await bus_b.start()
    try:
        source = Source()
        stream = hub_b.join(key(), source)
        await take(stream, 4)
        source.values["calls"] = 42
        await hub_a.announce_ingest(frozenset({("org_1", "env_1", "acme", "api.call")}))
        update = (await take(stream, 1))[0]
        assert (update["widget_id"], update["result"]["data"]) == ("calls", [42])
        assert hub_a.cohort_count == 0  # process A has no viewers: it refreshes nothing
        await stream.aclose()
    finally:
        await bus_a.stop()
        await bus_b.stop()


async def test_a_change_arriving_during_a_refresh_is_not_lost() -> None:
    hub = LiveHub(InProcessBus(), debounce=0.05)
    source = Source()
    gate = asyncio.Event()
    original = source.widget

    async def slow_widget(widget: dict[str, Any]) -> Any:
        await gate.wait()
        return await original(widget)

    stream = hub.join(key(), source)
    gate.set()
    await take(stream, 4)
    gate.clear()
    source.widget = slow_widget  # type: ignore[method-assign]
    source.values["calls"] = 2
    await hub.announce_ingest(frozenset({("org_1", "env_1", "acme", "api.call")}))
    await asyncio.sleep(0.15)  # the refresh is now running, stuck on the gate
    source.published = False
    await hub.announce_dashboard("org_1", "dash_1")  # arrives during the refresh
    gate.set()
    updates = await take(stream, 2)
    assert [u["type"] for u in updates] == ["data", "not_published"]
    await stream.aclose()


# --- bounded work --------------------------------------------------------------------------


class CountingSource(Source):
    """A source that records every engine query of all cohorts, and how many run at once."""

    def __init__(self, log: list[str], running: list[int], gate: asyncio.Event | None) -> None:
        super().__init__()
        self._log = log
        self._running = running  # [now, most]
        self._gate = gate

    async def widget(self, widget: Widget) -> Any:
        self._running[0] += 1
        self._running[1] = max(self._running[1], self._running[0])
        try:
            if self._gate is not None:
                if self._running[0] >= 2:
                    self._gate.set()  # two at once: the most the hub may run
                await asyncio.wait_for(self._gate.wait(), 1)
            self._log.append(widget.id)
            return await super().widget(widget)
        finally:
            self._running[0] -= 1


async def test_one_ingest_costs_one_query_per_affected_widget_per_cohort() -> None:
    hub = LiveHub(InProcessBus(), debounce=0.05)
    log: list[str] = []
    sources = [CountingSource(log, [0, 0], None) for _ in range(10)]
    streams = [hub.join(key(filters=f'{{"n":{n}}}'), s) for n, s in enumerate(sources)]
    for stream in streams:
        await take(stream, 4)
    assert hub.cohort_count == 10
    assert len(log) == 30  # the initial state: three widgets per cohort
    log.clear()
    batches = hub.batches
    for source in sources:
        source.values["calls"] = 7
    await hub.announce_ingest(
        frozenset({("org_1", "env_1", "acme", "api.call"), ("org_1", "env_1", "acme", "x")})
    )
    for stream in streams:
        update = (await take(stream, 1))[0]
        assert (update["widget_id"], update["result"]["data"]) == ("calls", [7])
    assert log == ["calls"] * 10  # one query per cohort for the one widget reading api.call
    assert hub.batches == batches + 1  # all ten in one batch (one engine slot, one query)
    for stream in streams:
        assert await nothing_within(stream, 0.05)
    assert log == ["calls"] * 10
    for stream in streams:
        await stream.aclose()


async def test_refreshes_share_a_bounded_number_of_engine_slots() -> None:
    """However many cohorts an ingest dirties, at most max_concurrent_refreshes queries run."""
    hub = LiveHub(InProcessBus(), debounce=0.05, max_concurrent_refreshes=2)
    log: list[str] = []
    running = [0, 0]
    gate = asyncio.Event()
    gate.set()  # joins one at a time
    sources = [CountingSource(log, running, gate) for _ in range(8)]
    streams = [hub.join(key(filters=f'{{"n":{n}}}'), s) for n, s in enumerate(sources)]
    for stream in streams:
        await take(stream, 4)
    running[1] = 0
    gate.clear()  # now each query waits until two run at once
    for source in sources:
        source.values["calls"] += 1
        source.values["signups"] += 1
    await hub.announce_ingest(
        frozenset(
            {("org_1", "env_1", "acme", "api.call"), ("org_1", "env_1", "acme", "user.signup")}
        )
    )
    for stream in streams:
        updates = await take(stream, 2)
        assert sorted(u["widget_id"] for u in updates) == ["calls", "signups"]
    assert running[1] == 2
    for stream in streams:
        await stream.aclose()


async def test_cohorts_per_dashboard_and_tenant_are_capped() -> None:
    hub = LiveHub(InProcessBus(), debounce=0.05, max_cohorts=2)
    first = hub.join(key(filters="a"), Source())
    second = hub.join(key(filters="b"), Source())
    await take(first, 4)
    await take(second, 4)
    third = hub.join(key(filters="c"), Source())
    with pytest.raises(TooManyCohorts) as refused:
        await anext(third)
    assert (refused.value.code, refused.value.extra) == ("too_many_cohorts", {"limit": 2})
    assert hub.cohort_count == 2
    same = hub.join(key(filters="a"), Source())  # an existing cohort: joined
    assert [u["type"] for u in await take(same, 4)] == ["config", "data", "data", "data"]
    elsewhere = hub.join(key(tenant="globex", filters="c"), Source())  # another tenant
    await take(elsewhere, 4)
    await second.aclose()
    again = hub.join(key(filters="c"), Source())  # a place was freed
    await take(again, 4)
    for stream in (first, same, elsewhere, again):
        await stream.aclose()
    assert hub.cohort_count == 0


# --- sockets: revocation and caps across processes --------------------------------------------


def grant(jti: str, tenant: str = "acme", dashboard: str = "dash_1", iat: int = 100) -> EmbedGrant:
    return EmbedGrant(tenant, dashboard, {}, jti, expires_at=int(time.time()) + 3600, issued_at=iat)


async def test_a_revocation_closes_matching_sockets_in_every_process(redis: Redis) -> None:
    channel = f"emban:test:{secrets.token_hex(4)}"
    bus_a, bus_b = RedisBus(redis, channel), RedisBus(redis, channel)
    sockets_a, sockets_b = LiveSockets(bus_a, redis), LiveSockets(bus_b, redis)
    heard: list[RevocationRule] = []
    sockets_a.revocation_listeners.append(heard.append)
    await bus_a.start()
    await bus_b.start()
    closed: dict[str, asyncio.Future[tuple[int, str]]] = {}

    async def open_on_b(name: str, g: EmbedGrant, environment: str = "env_1") -> None:
        closed[name] = asyncio.get_running_loop().create_future()

        async def closer(code: int, reason: str) -> None:
            closed[name].set_result((code, reason))

        assert await sockets_b.open(environment, g, closer) is not None

    try:
        await open_on_b("revoked", grant("es_1"))
        await open_on_b("other_session", grant("es_2"))
        await open_on_b("other_env", grant("es_1"), environment="env_2")
        await open_on_b("tenant", grant("es_3", tenant="globex"))
        await open_on_b("later", grant("es_4", tenant="globex", iat=200))
        await sockets_a.announce_revocation(
            RevocationRule("env_1", issued_before=150, expires_at=10**10, session_id="es_1")
        )
        assert await asyncio.wait_for(closed["revoked"], 2) == (4403, "embed_token_revoked")
        rule = RevocationRule("env_1", issued_before=150, expires_at=10**10, tenant_id="globex")
        await sockets_a.announce_revocation(rule)
        assert await asyncio.wait_for(closed["tenant"], 2) == (4403, "embed_token_revoked")
        # Process A hears its own announcement through its own Redis subscription, which may
        # deliver it after B's has.
        for _ in range(200):
            if heard and heard[-1] == rule:
                break
            await asyncio.sleep(0.01)
        assert heard[-1] == rule
        await asyncio.sleep(0.1)
        assert sorted(n for n, f in closed.items() if f.done()) == ["revoked", "tenant"]
    finally:
        await sockets_a.stop()
        await sockets_b.stop()
        await bus_a.stop()
        await bus_b.stop()


async def test_sockets_per_token_are_counted_across_processes(redis: Redis) -> None:
    bus = InProcessBus()
    a = LiveSockets(bus, redis, max_per_token=3)
    b = LiveSockets(bus, redis, max_per_token=3)
    token = grant(f"es_{secrets.token_hex(6)}")

    async def closer(code: int, reason: str) -> None:
        return None

    try:
        on_a = [await a.open("env_1", token, closer) for _ in range(2)]
        assert None not in on_a
        assert await b.open("env_1", token, closer) is not None
        assert await b.open("env_1", token, closer) is None  # the fourth, on either process
        assert await a.open("env_1", token, closer) is None
        assert await b.open("env_1", grant("es_other"), closer) is not None  # another token
        released = on_a[0]
        assert released is not None
        await a.release(released)
        assert await b.open("env_1", token, closer) is not None
    finally:
        await redis.delete(REDIS_PREFIX + token.jti, REDIS_PREFIX + "es_other")
        await a.stop()
        await b.stop()


async def test_a_cohort_refreshes_at_most_once_per_interval_under_continuous_ingest() -> None:
    """A change is refreshed after the debounce; four more inside the interval that follows are
    coalesced into one refresh once it has passed."""
    hub = LiveHub(InProcessBus(), debounce=0.01, min_refresh_interval=0.6)
    source = Source()
    stream = hub.join(key(), source)
    await take(stream, 4)
    touched = frozenset({("org_1", "env_1", "acme", "api.call")})
    source.values["calls"] = 100
    await hub.announce_ingest(touched)
    assert [u["result"]["data"] for u in await take(stream, 1)] == [[100]]
    for n in range(1, 5):
        source.values["calls"] = 100 + n
        await hub.announce_ingest(touched)
        await asyncio.sleep(0.01)
    assert [u["result"]["data"] for u in await take(stream, 1)] == [[104]]  # the last value
    assert source.computed == ["calls", "signups", "notes", "calls", "calls"]
    assert await nothing_within(stream, 0.3)
    await stream.aclose()

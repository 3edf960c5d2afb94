"""The live hub on its own: cohorts, debounced refreshes, change-only pushes, both buses."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from emban.errors import NotFound
from emban.live.bus import InProcessBus, RedisBus
from emban.live.hub import CohortKey, LiveHub, Update

WIDGETS = [
    {"id": "calls", "query": {"event_name": "api.call"}},
    {"id": "signups", "query": {"event_name": "user.signup"}},
    {"id": "notes", "query": None},
]


class Source:
    """A cohort source over in-memory values: what the dashboard shows for one tenant."""

    def __init__(self) -> None:
        self.values = {"calls": 1, "signups": 10, "notes": 0}
        self.published = True
        self.computed: list[str] = []

    async def config(self) -> dict[str, Any]:
        if not self.published:
            raise NotFound("not published", code="dashboard_not_published")
        return {"id": "dash_1", "name": "D", "widgets": WIDGETS}

    async def widget(self, widget: dict[str, Any]) -> Any:
        self.computed.append(widget["id"])
        return {"data": [self.values[widget["id"]]], "meta": {"query_time_ms": len(self.computed)}}


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
        "dashboard": {"id": "dash_1", "name": "D", "widgets": WIDGETS},
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


@pytest.fixture
async def redis_client() -> AsyncIterator[Redis]:
    client = Redis.from_url("redis://127.0.0.1:6379/15")
    yield client
    await client.aclose()


async def test_two_processes_share_changes_through_redis(redis_client: Redis) -> None:
    """Two hubs on two Redis buses (as two API processes): an ingest announced by one reaches
    the viewers of the other."""
    channel = f"emban:test:{secrets.token_hex(4)}"
    bus_a, bus_b = RedisBus(redis_client, channel), RedisBus(redis_client, channel)
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

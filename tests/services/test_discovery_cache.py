"""Discovery scans are reused until the environment's events change (services/discovery_cache.py):
an org calling auto-create in a loop makes one engine scan, not one per call, and a scan after
an acknowledged ingest still sees it."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import pytest
from redis.asyncio import Redis

from emban.analytics.ingest import Touched
from emban.live.bus import RedisBus
from emban.live.hub import LiveHub
from emban.runtime import Runtime
from emban.services.discovery_cache import DiscoveryCache
from tests.conftest import ClientFactory, bearer
from tests.scenario import owner_and_key, send_events

ENV = ("org_a", "env_a")
PARAMS = (30, 100_000)
OTHER = ("org_b", "env_b")


class Scans:
    """A scan that answers its call number, optionally held until released."""

    def __init__(self) -> None:
        self.calls = 0
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self) -> int:
        self.calls += 1
        number = self.calls
        await self.release.wait()
        return number


def touched(*keys: tuple[str, str]) -> Touched:
    return Touched(frozenset((org, env, "tenant", "event") for org, env in keys))


async def test_a_scan_is_reused_until_the_environment_s_events_change() -> None:
    cache, scan = DiscoveryCache(ttl=60), Scans()
    assert [await cache.get(ENV, PARAMS, scan) for _ in range(5)] == [1, 1, 1, 1, 1]
    assert await cache.get(OTHER, PARAMS, scan) == 2  # another environment has its own scan
    await cache.on_stored(touched(OTHER))  # a change elsewhere keeps this one
    assert await cache.get(ENV, PARAMS, scan) == 1
    await cache.on_stored(touched(ENV))
    assert await cache.get(ENV, PARAMS, scan) == 3
    assert await cache.get(ENV, PARAMS, scan) == 3
    assert (scan.calls, cache.scans) == (3, 3)


async def test_concurrent_callers_share_one_running_scan() -> None:
    cache, scan = DiscoveryCache(ttl=60), Scans()
    scan.release.clear()
    waiting = [asyncio.create_task(cache.get(ENV, PARAMS, scan)) for _ in range(10)]
    await asyncio.sleep(0.01)
    scan.release.set()
    assert await asyncio.gather(*waiting) == [1] * 10
    assert scan.calls == 1


async def test_a_scan_running_while_events_are_stored_is_neither_joined_nor_kept() -> None:
    cache, scan = DiscoveryCache(ttl=60), Scans()
    scan.release.clear()
    before = asyncio.create_task(cache.get(ENV, PARAMS, scan))
    await asyncio.sleep(0.01)
    await cache.on_stored(touched(ENV))  # stored while scan 1 runs: it may not have seen them
    after = asyncio.create_task(cache.get(ENV, PARAMS, scan))  # must not take scan 1's answer
    await asyncio.sleep(0.01)
    scan.release.set()
    assert (await before, await after) == (1, 2)
    assert await cache.get(ENV, PARAMS, scan) == 2  # scan 2 started after the store: kept
    assert scan.calls == 2


async def test_failures_are_not_kept_and_reach_every_waiting_caller() -> None:
    cache = DiscoveryCache(ttl=60)
    calls = 0
    gate = asyncio.Event()

    async def failing() -> int:
        nonlocal calls
        calls += 1
        await gate.wait()
        raise RuntimeError("engine down")

    waiting = [asyncio.create_task(cache.get(ENV, PARAMS, failing)) for _ in range(3)]
    await asyncio.sleep(0.01)
    gate.set()
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert [str(r) for r in results] == ["engine down"] * 3
    assert calls == 1
    with pytest.raises(RuntimeError, match="engine down"):
        await cache.get(ENV, PARAMS, failing)  # not kept: scanned again
    assert calls == 2


async def test_a_caller_that_goes_away_does_not_cancel_the_shared_scan() -> None:
    cache, scan = DiscoveryCache(ttl=60), Scans()
    scan.release.clear()
    first = asyncio.create_task(cache.get(ENV, PARAMS, scan))
    second = asyncio.create_task(cache.get(ENV, PARAMS, scan))
    await asyncio.sleep(0.01)
    first.cancel()
    scan.release.set()
    assert await second == 1
    assert await cache.get(ENV, PARAMS, scan) == 1
    assert scan.calls == 1


async def test_kept_scans_expire_and_are_bounded() -> None:
    cache, scan = DiscoveryCache(ttl=0.05, max_entries=2), Scans()
    assert await cache.get(ENV, PARAMS, scan) == 1
    await asyncio.sleep(0.08)
    assert await cache.get(ENV, PARAMS, scan) == 2  # expired
    assert await cache.get(OTHER, PARAMS, scan) == 3
    assert await cache.get(("org_c", "env_c"), PARAMS, scan) == 4  # the least recently used goes
    assert await cache.get(OTHER, PARAMS, scan) == 3
    assert await cache.get(ENV, PARAMS, scan) == 5


async def test_a_scan_with_other_settings_is_not_reused() -> None:
    cache, scan = DiscoveryCache(ttl=60), Scans()
    assert await cache.get(ENV, PARAMS, scan) == 1
    assert await cache.get(ENV, (1, 100_000), scan) == 2
    assert await cache.get(ENV, (1, 100_000), scan) == 2
    assert await cache.get(ENV, PARAMS, scan) == 3


async def test_a_ttl_of_zero_scans_every_time() -> None:
    cache, scan = DiscoveryCache(ttl=0), Scans()
    assert [await cache.get(ENV, PARAMS, scan) for _ in range(3)] == [1, 2, 3]


async def test_ingest_announcements_on_the_bus_drop_kept_scans() -> None:
    cache, scan = DiscoveryCache(ttl=60), Scans()
    assert await cache.get(ENV, PARAMS, scan) == 1
    assert await cache.get(OTHER, PARAMS, scan) == 2
    ignored: list[dict[str, Any]] = [
        {"type": "dashboard", "org": "org_a", "dashboard": "d"},  # not an ingest
        {"type": "ingest", "keys": [["org_a"], "org_a", None, 5]},  # malformed keys
        {"type": "ingest"},
        {"type": "ingest", "keys": [["org_c", "env_c", "t", "e"]]},  # another environment
    ]
    for message in ignored:
        await cache.on_message(message)
    assert (await cache.get(ENV, PARAMS, scan), await cache.get(OTHER, PARAMS, scan)) == (1, 2)
    await cache.on_message({"type": "ingest", "keys": [["org_a", "env_a", "acme", "signup"]]})
    assert (await cache.get(ENV, PARAMS, scan), await cache.get(OTHER, PARAMS, scan)) == (3, 2)


async def test_an_ingest_in_another_process_drops_the_kept_scan_here(redis: Redis) -> None:
    """Two processes on one Redis bus: process A's drain announces the keys it stored (the live
    hub's announcement); process B's kept scan of that environment is dropped."""
    channel = f"emban:test:{secrets.token_hex(4)}"
    bus_a, bus_b = RedisBus(redis, channel), RedisBus(redis, channel)
    hub_a = LiveHub(bus_a)
    cache_b, scan = DiscoveryCache(ttl=60), Scans()
    bus_b.subscribe(cache_b.on_message)
    await bus_a.start()
    await bus_b.start()
    try:
        assert await cache_b.get(ENV, PARAMS, scan) == 1
        await hub_a.announce_ingest(frozenset({("org_a", "env_a", "acme", "signup")}))
        for _ in range(100):  # delivered through Redis within a few milliseconds
            if await cache_b.get(ENV, PARAMS, scan) == 2:
                break
            await asyncio.sleep(0.02)
        assert await cache_b.get(ENV, PARAMS, scan) == 2
        assert scan.calls == 2
    finally:
        await bus_a.stop()
        await bus_b.stop()


def event(name: str) -> dict[str, Any]:
    return {"tenant_id": "acme", "event_name": name, "string_props": {"model": "m1"}}


async def test_auto_create_in_a_loop_scans_once_and_an_ingest_is_seen_at_once(
    make_client: ClientFactory, runtime: Runtime
) -> None:
    """Through the app: the scan is reused across discover and auto-create, and an acknowledged
    ingest is in the very next answer (the writer's flush listener drops the kept scan)."""
    assert runtime.discovery.ttl == 30  # EMBAN_DISCOVERY_CACHE_SECONDS' default
    client, key = await owner_and_key(make_client)
    await send_events(client, key, [event("signup")])
    scans = runtime.discovery.scans
    for _ in range(5):
        response = await client.post("/v1/discover/auto-create", json={}, headers=bearer(key))
        assert response.status == 201, await response.text()
    response = await client.get("/v1/discover", headers=bearer(key))
    assert [e["event_name"] for e in (await response.json())["events"]] == ["signup"]
    assert runtime.discovery.scans == scans + 1
    await send_events(client, key, [event("purchase"), event("purchase")])
    response = await client.get("/v1/discover", headers=bearer(key))
    found = {e["event_name"]: e["count"] for e in (await response.json())["events"]}
    assert found == {"purchase": 2, "signup": 1}
    assert runtime.discovery.scans == scans + 2

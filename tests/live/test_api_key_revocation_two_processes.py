"""Two `emban serve` processes sharing PostgreSQL and Redis, each caching verified API keys: a
key deleted through one process is refused by the other within a second (the invalidation
travels on the Redis live bus), though the other had it cached."""

from __future__ import annotations

import asyncio
import secrets
import time

import aiohttp
import msgspec
from redis.asyncio import Redis

from emban.live.bus import CHANNEL
from emban.models import ApiKey
from emban.services.api_key_cache import revocation_message
from tests.live.test_live_two_processes import REDIS_DB, two_servers  # noqa: F401 - a fixture

BOUND_SECONDS = 1.0


async def _me(http: aiohttp.ClientSession, url: str, key: str) -> int:
    async with http.get(f"{url}/v1/auth/me", headers={"Authorization": f"Bearer {key}"}) as r:
        return r.status


async def _refused_within(http: aiohttp.ClientSession, url: str, key: str) -> float:
    """Poll ``url`` with ``key`` until it answers 401; how long that took (fails past the bound)."""
    started = time.monotonic()
    while True:
        status = await _me(http, url, key)
        elapsed = time.monotonic() - started
        if status == 401:
            return elapsed
        assert status == 200, status
        assert elapsed < BOUND_SECONDS, f"{url} still accepts the deleted key after {elapsed:.2f} s"
        await asyncio.sleep(0.02)


async def _register(http: aiohttp.ClientSession, url: str) -> tuple[dict[str, str], str]:
    registered = await http.post(
        f"{url}/v1/auth/register",
        json={
            "email": f"keys-{secrets.token_hex(3)}@acme.test",
            "password": "correct-horse-1",
            "name": "Keys",
            "org_name": "Keys",
        },
    )
    body = await registered.json()
    return {"Authorization": f"Bearer {body['api_key']['key']}"}, body["org"]["id"]


async def _new_key(
    http: aiohttp.ClientSession, url: str, headers: dict[str, str], label: str
) -> tuple[str, str]:
    created = await http.post(
        f"{url}/v1/api-keys", json={"label": label, "scope": "admin"}, headers=headers
    )
    body = await created.json()
    return body["id"], body["key"]


async def test_a_key_deleted_on_one_process_is_refused_by_the_other_within_a_second(
    two_servers: list[str],  # noqa: F811 - the imported fixture
) -> None:
    a, b = two_servers
    async with aiohttp.ClientSession() as http:
        admin, _ = await _register(http, a)
        key_id, key = await _new_key(http, a, admin, "doomed")
        for url in (a, b, a, b):  # both processes have verified and cached it
            assert await _me(http, url, key) == 200
        deleted = await http.delete(f"{a}/v1/api-keys/{key_id}", headers=admin)
        assert deleted.status == 204
        assert await _me(http, a, key) == 401  # the process that deleted it: at once
        await _refused_within(http, b, key)
        # the org's other key still works on both
        assert [await _me(http, url, admin["Authorization"][7:]) for url in (a, b)] == [200, 200]


async def test_the_redis_message_alone_makes_both_processes_forget_a_key(
    two_servers: list[str],  # noqa: F811 - the imported fixture
) -> None:
    """The row goes behind the processes' backs: both keep answering from their caches (no
    lookup) until the invalidation is published on Redis, as another process's revoke does."""
    a, b = two_servers
    async with aiohttp.ClientSession() as http:
        admin, _ = await _register(http, a)
        key_id, key = await _new_key(http, a, admin, "behind")
        for url in (a, b):
            assert await _me(http, url, key) == 200
        await ApiKey.filter(id=key_id).delete()
        assert [await _me(http, url, key) for url in (a, b)] == [200, 200]
        redis = Redis.from_url(REDIS_DB)
        try:
            await redis.publish(CHANNEL, msgspec.json.encode(revocation_message(key_ids=[key_id])))
        finally:
            await redis.aclose()
        for url in (a, b):
            await _refused_within(http, url, key)

"""The process cache of verified API keys (services/api_key_cache.py): a known key costs no
metadata lookup, and a deletion — by the service, or announced on the live bus — is refused on
the very next request, here with the in-process bus (no Redis)."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from emban.models import ApiKey
from emban.runtime import RUNTIME_KEY, Runtime
from emban.services import accounts, api_key_cache
from emban.services.api_key_cache import ApiKeyCache, VerifiedKey, revocation_message
from tests.conftest import ClientFactory, bearer, create_key, register

INVALID = {"error": "API key is invalid or revoked", "code": "invalid_api_key"}


def _runtime(app_server: TestServer) -> Runtime:
    return app_server.app[RUNTIME_KEY]


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The digest of every API-key row lookup the metadata database answers."""
    seen: list[str] = []
    real = ApiKey.get_or_none

    def counting(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs["key_hash"])
        return real(*args, **kwargs)

    monkeypatch.setattr(accounts.ApiKey, "get_or_none", counting)
    return seen


async def _status(client: aiohttp.ClientSession, key: str) -> tuple[int, Any]:
    response = await client.get("/v1/auth/me", headers=bearer(key))
    return response.status, await response.json()


async def test_a_known_key_is_looked_up_once(
    make_client: ClientFactory, lookups: list[str]
) -> None:
    owner = await make_client()
    await register(owner)
    key = await create_key(owner, "admin", label="cached")
    caller = await make_client()
    for _ in range(5):
        status, body = await _status(caller, key)
        assert (status, body["scope"], body["role"]) == (200, "admin", "admin")
    graphql = await caller.post("/graphql", json={"query": "{ me { scope } }"}, headers=bearer(key))
    assert await graphql.json() == {"data": {"me": {"scope": "admin"}}}
    assert lookups == [accounts.credentials.token_digest(key)]


async def test_a_deleted_key_is_refused_on_the_next_request(
    make_client: ClientFactory, app_server: TestServer
) -> None:
    owner = await make_client()
    registered = await register(owner)
    doomed = await create_key(owner, "admin", label="doomed")
    caller = await make_client()
    assert (await _status(caller, doomed))[0] == 200  # now cached
    listed = (await (await owner.get("/v1/api-keys")).json())["api_keys"]
    doomed_id = next(k["id"] for k in listed if k["label"] == "doomed")
    deleted = await owner.delete(f"/v1/api-keys/{doomed_id}")
    assert deleted.status == 204
    assert await _status(caller, doomed) == (401, INVALID)
    # The other key of the org is untouched.
    assert (await _status(caller, registered["api_key"]["key"]))[0] == 200
    assert len(_runtime(app_server).api_keys) >= 1


async def test_the_bus_message_alone_makes_the_process_forget_the_key(
    make_client: ClientFactory, app_server: TestServer
) -> None:
    """The row is deleted behind the process's back: the cache still answers (no lookup), until
    an invalidation arrives on the bus — the path another process's revoke takes."""
    owner = await make_client()
    await register(owner)
    key = await create_key(owner, "admin", label="behind")
    caller = await make_client()
    assert (await _status(caller, key))[0] == 200
    row = await ApiKey.get(label="behind")
    await ApiKey.filter(id=row.id).delete()
    assert (await _status(caller, key))[0] == 200  # served from the cache
    await _runtime(app_server).live.publish(revocation_message(key_ids=[row.id]))
    assert await _status(caller, key) == (401, INVALID)


async def test_an_org_wide_message_forgets_every_key_of_the_org(
    make_client: ClientFactory, app_server: TestServer
) -> None:
    owner = await make_client()
    registered = await register(owner)
    other = await make_client()
    elsewhere = await register(other, email="other@else.test", org_name="Else")
    keys = [registered["api_key"]["key"], await create_key(owner, "ingest", label="ingest")]
    outside = elsewhere["api_key"]["key"]
    caller = await make_client()
    for key in [*keys, outside]:
        assert (await _status(caller, key))[0] == 200
    await ApiKey.filter(org_id=registered["org"]["id"]).delete()
    await ApiKey.filter(org_id=elsewhere["org"]["id"]).delete()
    await _runtime(app_server).live.publish(revocation_message(org_id=registered["org"]["id"]))
    for key in keys:
        assert await _status(caller, key) == (401, INVALID)
    assert (await _status(caller, outside))[0] == 200  # the other org's entry stays


async def test_deleting_the_org_forgets_its_keys(make_client: ClientFactory) -> None:
    owner = await make_client()
    registered = await register(owner)
    key = registered["api_key"]["key"]
    caller = await make_client()
    assert (await _status(caller, key))[0] == 200
    deleted = await owner.delete("/v1/settings/org")
    assert deleted.status == 204, await deleted.text()
    assert await _status(caller, key) == (401, INVALID)


async def test_deleting_a_key_over_graphql_forgets_it(make_client: ClientFactory) -> None:
    owner = await make_client()
    await register(owner)
    doomed = await create_key(owner, "admin", label="gql-doomed")
    caller = await make_client()
    assert (await _status(caller, doomed))[0] == 200
    row = await ApiKey.get(label="gql-doomed")
    mutation = f'mutation {{ deleteApiKey(id: "{row.id}") }}'
    deleted = await owner.post("/graphql", json={"query": mutation})
    assert await deleted.json() == {"data": {"deleteApiKey": True}}
    assert await _status(caller, doomed) == (401, INVALID)


# --- the cache itself ------------------------------------------------------------------------

KEY = VerifiedKey(api_key_id="k1", org_id="o1", environment_id="e1", scope="admin", prefix="emb_")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(api_key_cache.time, "monotonic", fake)
    return fake


def test_an_entry_expires_after_the_ttl(clock: Clock) -> None:
    cache = ApiKeyCache(ttl_seconds=60)
    cache.store("d1", KEY, cache.generation, touched=True)
    clock.now += 59.9
    assert cache.get("d1") == KEY
    clock.now += 0.1
    assert cache.get("d1") is None
    assert (cache.hits, cache.misses) == (1, 1)


def test_a_load_that_raced_with_an_invalidation_is_not_stored(clock: Clock) -> None:
    cache = ApiKeyCache()
    generation = cache.generation  # a request starts reading the row ...
    cache.forget(key_ids=["k1"])  # ... the key is deleted and announced meanwhile
    cache.store("d1", KEY, generation, touched=True)
    assert cache.get("d1") is None
    assert len(cache) == 0
    cache.store("d1", KEY, cache.generation, touched=True)
    assert cache.get("d1") == KEY


def test_last_used_is_written_once_a_minute(clock: Clock) -> None:
    cache = ApiKeyCache(ttl_seconds=3600)
    cache.store("d1", KEY, cache.generation, touched=True)
    assert [cache.due_for_touch("d1") for _ in range(3)] == [False, False, False]
    clock.now += 60
    assert [cache.due_for_touch("d1") for _ in range(3)] == [True, False, False]
    assert cache.due_for_touch("unknown") is False


def test_the_cache_is_bounded_and_clears_when_full(clock: Clock) -> None:
    cache = ApiKeyCache(limit=2)
    for n in range(3):
        cache.store(f"d{n}", KEY, cache.generation, touched=True)
    assert len(cache) == 1
    assert cache.get("d2") == KEY


async def test_messages_of_other_types_change_nothing(clock: Clock) -> None:
    cache = ApiKeyCache()
    cache.store("d1", KEY, cache.generation, touched=True)
    await cache.on_message({"type": "ingest", "keys": []})
    assert cache.get("d1") == KEY
    await cache.on_message(revocation_message(org_id="o1"))
    assert cache.get("d1") is None
    cache.store("d1", KEY, cache.generation, touched=True)
    cache.clear()
    assert len(cache) == 0

"""Abuse limits (issue 8, defects 11-12 and the request budgets of deliverable 4).

- Login lockout: attempts are counted per (email, source address) and per source address, so a
  stranger guessing from elsewhere never locks the owner out.
- argon2 runs in its own thread pool, never on the event loop; registration and invite
  acceptance are limited per source address.
- Request budgets: a token bucket per embed session (jti) and per admin API key on both edges
  (REST, GraphQL over HTTP, graphql-transport-ws connection_init), in memory or in Redis; ingest
  and ingest keys are exempt. Over budget is 429 + Retry-After + ``{"error","code","retry_after"}``.

Clients are given distinct source addresses through ``X-Forwarded-For`` with the test server's
own address configured as a trusted proxy (``EMBAN_TRUSTED_PROXIES``).
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from dataclasses import replace
from ipaddress import ip_network
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from hypothesis import given
from hypothesis import strategies as st
from redis.asyncio import Redis

from emban.auth import credentials
from emban.auth.client_address import client_address
from emban.auth.rate_limit import MemoryRequestBudgets, RedisRequestBudgets, RequestBudgets
from emban.models import User
from emban.runtime import Runtime
from emban.settings import Settings
from tests.conftest import (
    PASSWORD,
    Client,
    ClientFactory,
    bearer,
    create_key,
    register,
)
from tests.embed_scenario import embed_org, mint

STRANGER = "203.0.113.66"
OWNER = "198.51.100.7"
LOCAL = [ip_network("127.0.0.1/32"), ip_network("::1/128")]
LOGIN_MUTATION = """
mutation Login($email: String!, $password: String!) { login(email: $email, password: $password) {
  role } }
"""
REGISTER_MUTATION = """
mutation Register($email: String!) {
  register(email: $email, password: "correct-horse-1", name: "N", orgName: "O") { org { id } }
}
"""
EMBED_DASHBOARD = "{ embed { dashboard { id } } }"


def configure(monkeypatch: pytest.MonkeyPatch, runtime: Runtime, **changes: Any) -> Settings:
    """Settings for this test only: the test server's address is a trusted proxy, plus changes."""
    settings = replace(runtime.settings, trusted_proxies=tuple(LOCAL), **changes)
    monkeypatch.setattr(runtime, "settings", settings)
    return settings


def source(ip: str) -> dict[str, str]:
    return {"X-Forwarded-For": ip}


async def login(client: Client, email: str, password: str, ip: str) -> aiohttp.ClientResponse:
    return await client.post(
        "/v1/auth/login", json={"email": email, "password": password}, headers=source(ip)
    )


async def rate_limited_body(response: aiohttp.ClientResponse, message: str) -> int:
    """Assert the 429 shape (header and body agree) and return Retry-After."""
    assert response.status == 429, await response.text()
    retry_after = int(response.headers["Retry-After"])
    assert await response.json() == {
        "error": message,
        "code": "rate_limited",
        "retry_after": retry_after,
    }
    return retry_after


# --- login lockout (defect 11) ------------------------------------------------------------------


async def test_a_stranger_cannot_lock_the_owner_out(
    make_client: ClientFactory, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(monkeypatch, runtime)
    await register(await make_client(), email="owner@acme.test")
    stranger = await make_client()
    # EMBAN_LOGIN_MAX_PER_EMAIL is 5 in the test settings; the stranger uses three addresses,
    # fifteen wrong passwords in all: three times what used to lock the account.
    for address in (STRANGER, "203.0.113.67", "203.0.113.68"):
        for _ in range(5):
            assert (await login(stranger, "owner@acme.test", "wrong-guess", address)).status == 401
        # The stranger himself is refused, even with the right password.
        refused = await login(stranger, "owner@acme.test", PASSWORD, address)
        retry_after = await rate_limited_body(refused, "too many login attempts; try again later")
        assert 840 < retry_after <= 901  # what is left of the 15-minute window
        assert "Set-Cookie" not in refused.headers

    owner = await make_client()
    response = await login(owner, "owner@acme.test", PASSWORD, OWNER)
    assert response.status == 200, await response.text()
    assert (await response.json())["role"] == "owner"
    assert (await owner.get("/v1/auth/me")).status == 200


async def test_a_stranger_cannot_lock_the_owner_out_over_graphql(
    make_client: ClientFactory, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(monkeypatch, runtime)
    await register(await make_client(), email="owner@acme.test")
    stranger = await make_client()

    async def gql_login(client: Client, password: str, ip: str) -> dict[str, Any]:
        response = await client.post(
            "/graphql",
            json={
                "query": LOGIN_MUTATION,
                "variables": {"email": "owner@acme.test", "password": password},
            },
            headers=source(ip),
        )
        body: dict[str, Any] = await response.json()
        return body

    for _ in range(5):
        body = await gql_login(stranger, "wrong-guess", STRANGER)
        assert body["errors"][0]["extensions"]["reason"] == "invalid_credentials"
    body = await gql_login(stranger, PASSWORD, STRANGER)
    assert body["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert body["errors"][0]["extensions"]["reason"] == "rate_limited"
    assert 840 < body["errors"][0]["extensions"]["retry_after"] <= 901
    assert await gql_login(await make_client(), PASSWORD, OWNER) == {
        "data": {"login": {"role": "owner"}}
    }


async def test_the_owners_success_resets_only_his_own_counter(
    make_client: ClientFactory, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(monkeypatch, runtime)
    await register(await make_client(), email="owner@acme.test")
    owner, stranger = await make_client(), await make_client()
    for _ in range(4):
        assert (await login(owner, "owner@acme.test", "typo-typo", OWNER)).status == 401
        assert (await login(stranger, "owner@acme.test", "wrong-guess", STRANGER)).status == 401
    assert (await login(owner, "owner@acme.test", PASSWORD, OWNER)).status == 200
    # The owner's counter starts again (five more attempts allowed) ...
    for _ in range(5):
        assert (await login(owner, "owner@acme.test", "typo-typo", OWNER)).status == 401
    assert (await login(owner, "owner@acme.test", PASSWORD, OWNER)).status == 429
    # ... the stranger's does not: his fifth is his last.
    assert (await login(stranger, "owner@acme.test", "wrong-guess", STRANGER)).status == 401
    assert (await login(stranger, "owner@acme.test", PASSWORD, STRANGER)).status == 429


# --- the source address ---------------------------------------------------------------------------


def test_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy() -> None:
    assert client_address("192.0.2.1", "203.0.113.5", []) == "192.0.2.1"
    assert client_address("192.0.2.1", "203.0.113.5", LOCAL) == "192.0.2.1"
    assert client_address(None, "203.0.113.5", LOCAL) is None
    assert client_address("127.0.0.1", None, LOCAL) == "127.0.0.1"
    assert client_address("127.0.0.1", "", LOCAL) == "127.0.0.1"


def test_the_right_most_untrusted_hop_is_the_client() -> None:
    proxies = [*LOCAL, ip_network("10.0.0.0/8")]
    assert client_address("127.0.0.1", "203.0.113.5", proxies) == "203.0.113.5"
    # The left part is written by the client: a spoofed address there is not believed.
    assert client_address("127.0.0.1", "1.1.1.1, 203.0.113.5", proxies) == "203.0.113.5"
    # Chained trusted proxies are skipped.
    assert client_address("127.0.0.1", "203.0.113.5, 10.1.2.3", proxies) == "203.0.113.5"
    assert client_address("127.0.0.1", "10.9.9.9, 10.1.2.3", proxies) == "10.9.9.9"
    # Addresses are normalised (one key per address), junk falls back to the proxy.
    assert client_address("127.0.0.1", "2001:DB8::1", proxies) == "2001:db8::1"
    assert client_address("127.0.0.1", "not-an-ip", proxies) == "127.0.0.1"


@given(spoofed=st.text(), real=st.ip_addresses(v=4).filter(lambda ip: not ip.is_loopback))
def test_a_client_cannot_choose_its_address(spoofed: str, real: Any) -> None:
    assert client_address("192.0.2.1", spoofed, LOCAL) == "192.0.2.1"
    assert client_address("127.0.0.1", f"{spoofed},{real}", LOCAL) == str(real)


# --- registration and invites (defect 12) ---------------------------------------------------------


async def test_registration_is_limited_per_source_address(
    make_client: ClientFactory, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(monkeypatch, runtime, register_max_per_ip=3)
    client = await make_client()

    async def sign_up(n: int, ip: str) -> aiohttp.ClientResponse:
        return await client.post(
            "/v1/auth/register",
            json={
                "email": f"u{n}@acme.test",
                "password": PASSWORD,
                "name": "U",
                "org_name": f"Org {n}",
            },
            headers=source(ip),
        )

    for n in range(3):
        assert (await sign_up(n, STRANGER)).status == 201
    refused = await sign_up(3, STRANGER)
    retry_after = await rate_limited_body(
        refused, "too many attempts from this address; try again later"
    )
    assert 3540 < retry_after <= 3601  # EMBAN_REGISTER_MAX_PER_IP counts per hour
    assert await User.filter(email="u3@acme.test").count() == 0
    # The same limit over GraphQL, and another address is unaffected.
    response = await client.post(
        "/graphql",
        json={"query": REGISTER_MUTATION, "variables": {"email": "u4@acme.test"}},
        headers=source(STRANGER),
    )
    body = await response.json()
    assert body["data"] is None
    assert body["errors"][0]["extensions"] == {
        "code": "RATE_LIMITED",
        "reason": "rate_limited",
        "retry_after": retry_after,
    }
    assert (await sign_up(5, OWNER)).status == 201
    assert await User.all().count() == 4


async def test_accept_invite_is_limited_per_source_address(
    make_client: ClientFactory, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(monkeypatch, runtime, accept_invite_max_per_ip=2)
    owner = await make_client()
    await register(owner)
    invited = await owner.post(
        "/v1/members/invite", json={"email": "eddie@acme.test", "role": "editor"}
    )
    token = (await invited.json())["token"]
    guesser = await make_client()

    async def accept(invite_token: str, ip: str) -> aiohttp.ClientResponse:
        return await guesser.post(
            "/v1/auth/accept-invite",
            json={"token": invite_token, "password": PASSWORD, "name": "Eddie"},
            headers=source(ip),
        )

    for _ in range(2):
        assert (await accept("guessed-token", STRANGER)).status == 404
    # Over the limit even a valid token is refused from this address ...
    await rate_limited_body(
        await accept(token, STRANGER), "too many attempts from this address; try again later"
    )
    # ... and stays usable from another.
    assert (await accept(token, OWNER)).status == 201


# --- argon2 off the event loop (defect 12) --------------------------------------------------------


class RecordingHasher:
    """Wraps the real hasher and records which thread ran each hash and verify."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[tuple[str, str]] = []

    def hash(self, password: str) -> str:
        self.calls.append(("hash", threading.current_thread().name))
        result: str = self.inner.hash(password)
        return result

    def verify(self, password_hash: str, password: str) -> bool:
        self.calls.append(("verify", threading.current_thread().name))
        result: bool = self.inner.verify(password_hash, password)
        return result


async def test_every_hash_and_verify_runs_in_the_password_pool(
    make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = RecordingHasher(credentials._hasher)
    monkeypatch.setattr(credentials, "_hasher", recorder)
    owner = await make_client()
    await register(owner)  # hash
    anyone = await make_client()
    wrong = await anyone.post(
        "/v1/auth/login", json={"email": "owner@acme.test", "password": "wrong-guess"}
    )
    assert wrong.status == 401  # verify
    unknown = await anyone.post(
        "/v1/auth/login", json={"email": "nobody@acme.test", "password": "wrong-guess"}
    )
    assert unknown.status == 401  # verify (against the dummy hash)
    invited = await owner.post(
        "/v1/members/invite", json={"email": "e@acme.test", "role": "editor"}
    )
    accepted = await anyone.post(
        "/v1/auth/accept-invite",
        json={"token": (await invited.json())["token"], "password": PASSWORD, "name": "E"},
    )
    assert accepted.status == 201  # hash
    graphql = await anyone.post(
        "/graphql",
        json={
            "query": LOGIN_MUTATION,
            "variables": {"email": "owner@acme.test", "password": PASSWORD},
        },
    )
    assert (await graphql.json()) == {"data": {"login": {"role": "owner"}}}  # verify

    assert [kind for kind, _ in recorder.calls] == ["hash", "verify", "verify", "hash", "verify"]
    threads = {thread.split("_")[0] for _, thread in recorder.calls}
    assert threads == {"emban-argon2"}  # credentials.HASH_THREAD_PREFIX, never MainThread


async def test_healthz_answers_while_a_password_is_being_hashed(
    make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ordering, not timing: the hash is held until /healthz has answered. Were the hash on the
    event loop, /healthz could not answer until the hold timed out (which the test records)."""
    inner = credentials._hasher
    started, release = threading.Event(), threading.Event()
    held_too_long: list[bool] = []

    class HeldHasher:
        def hash(self, password: str) -> str:
            started.set()
            if not release.wait(timeout=10):
                held_too_long.append(True)
            result: str = inner.hash(password)
            return result

        def verify(self, password_hash: str, password: str) -> bool:
            result: bool = inner.verify(password_hash, password)
            return result

    monkeypatch.setattr(credentials, "_hasher", HeldHasher())
    client = await make_client()
    registering = asyncio.create_task(
        client.post(
            "/v1/auth/register",
            json={"email": "o@acme.test", "password": PASSWORD, "name": "O", "org_name": "A"},
        )
    )
    assert await asyncio.to_thread(started.wait, 10)
    health = await (await make_client()).get("/healthz")
    assert (health.status, await health.json()) == (200, {"status": "ok"})
    assert not release.is_set()  # answered while the hash was still held
    release.set()
    assert (await registering).status == 201
    assert held_too_long == []


# --- request budgets: the token buckets -----------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def make_budgets(kind: str, redis: Redis, clock: FakeClock) -> RequestBudgets:
    if kind == "memory":
        return MemoryRequestBudgets(clock=clock)
    # A unique prefix per test: runs never share a bucket.
    return RedisRequestBudgets(
        redis, prefix=f"emban:test-budget:{secrets.token_hex(6)}:", clock=clock
    )


@pytest.mark.parametrize("kind", ["memory", "redis"])
async def test_token_bucket_allows_the_burst_then_refills_at_the_rate(
    kind: str, redis: Redis
) -> None:
    clock = FakeClock()
    budgets = make_budgets(kind, redis, clock)
    takes = [await budgets.take("k", rate=2, burst=3) for _ in range(5)]
    assert takes == [None, None, None, 1, 1]  # refusals spend nothing
    assert await budgets.take("other", rate=2, burst=3) is None  # buckets are per key
    clock.now += 0.5  # one token back at 2/s
    assert [await budgets.take("k", rate=2, burst=3) for _ in range(2)] == [None, 1]
    clock.now += 60  # refills up to the burst, never beyond
    assert [await budgets.take("k", rate=2, burst=3) for _ in range(4)] == [None, None, None, 1]
    # Retry-After is the whole seconds until the next token (rounded up).
    assert [await budgets.take("slow", rate=0.25, burst=1) for _ in range(2)] == [None, 4]
    clock.now += 1
    assert await budgets.take("slow", rate=0.25, burst=1) == 3


@pytest.mark.parametrize("kind", ["memory", "redis"])
async def test_concurrent_takes_never_exceed_the_burst(kind: str, redis: Redis) -> None:
    budgets = make_budgets(kind, redis, FakeClock())
    results = await asyncio.gather(*(budgets.take("k", rate=5, burst=25) for _ in range(60)))
    assert results.count(None) == 25
    assert results.count(1) == 35


async def test_redis_buckets_expire_once_they_would_be_full(redis: Redis) -> None:
    prefix = f"emban:test-budget:{secrets.token_hex(6)}:"
    budgets = RedisRequestBudgets(redis, prefix=prefix, clock=FakeClock())
    assert await budgets.take("k", rate=20, burst=60) is None
    ttl_ms = await redis.pttl(f"{prefix}k")
    assert 3000 < ttl_ms <= 4000  # 60 tokens at 20/s refill in 3 s, plus a second of slack


# --- request budgets over HTTP and websockets -----------------------------------------------------


@pytest.fixture(params=["memory", "redis"])
def budget_clock(
    request: pytest.FixtureRequest,
    runtime: Runtime,
    redis: Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> FakeClock:
    """The app's budgets on a frozen clock (no refill unless the test moves it), per backend."""
    clock = FakeClock()
    monkeypatch.setattr(runtime, "budgets", make_budgets(request.param, redis, clock))
    return clock


API_KEY_REFUSAL = "request budget of this API key exceeded; slow down"
EMBED_REFUSAL = "request budget of this embed session exceeded; slow down"


async def test_admin_key_budget_on_both_edges_and_ingest_is_exempt(
    make_client: ClientFactory,
    runtime: Runtime,
    monkeypatch: pytest.MonkeyPatch,
    budget_clock: FakeClock,
) -> None:
    monkeypatch.setattr(runtime, "settings", replace(runtime.settings, api_key_rate_burst=4))
    owner = await make_client()
    await register(owner)
    admin = await create_key(owner, "admin")
    ingest = await create_key(owner, "ingest")
    second = await create_key(owner, "admin", label="second")
    client = await make_client()
    for _ in range(4):
        assert (await client.get("/v1/auth/me", headers=bearer(admin))).status == 200
    refused = await client.get("/v1/auth/me", headers=bearer(admin))
    assert await rate_limited_body(refused, API_KEY_REFUSAL) == 1
    assert refused.headers["Retry-After"] == "1"

    over_graphql = await client.post(
        "/graphql", json={"query": "{ me { role } }"}, headers=bearer(admin)
    )
    assert over_graphql.status == 429
    assert over_graphql.headers["Retry-After"] == "1"
    assert await over_graphql.json() == {
        "data": None,
        "errors": [
            {
                "message": API_KEY_REFUSAL,
                "extensions": {"code": "RATE_LIMITED", "reason": "rate_limited", "retry_after": 1},
            }
        ],
    }

    # Ingest is governed by the plan's events cap: the admin key still ingests, and ingest keys
    # are never budgeted.
    events = {"events": [{"tenant_id": "t", "event_name": "e"}]}
    assert (await client.post("/v1/events", json=events, headers=bearer(admin))).status == 200
    for _ in range(6):
        assert (await client.post("/v1/events", json=events, headers=bearer(ingest))).status == 200
        assert (await client.get("/v1/auth/me", headers=bearer(ingest))).status == 200
    # Console sessions are not budgeted; another key has its own bucket.
    for _ in range(6):
        assert (await owner.get("/v1/auth/me")).status == 200
    assert (await client.get("/v1/auth/me", headers=bearer(second))).status == 200
    # A second later 100 more tokens have arrived (capped at the burst of 4).
    budget_clock.now += 1
    for _ in range(4):
        assert (await client.get("/v1/auth/me", headers=bearer(admin))).status == 200
    assert (await client.get("/v1/auth/me", headers=bearer(admin))).status == 429


async def test_embed_session_budget_on_graphql_rest_and_live_sockets(
    make_client: ClientFactory,
    runtime: Runtime,
    monkeypatch: pytest.MonkeyPatch,
    budget_clock: FakeClock,
    app_server: TestServer,
) -> None:
    monkeypatch.setattr(runtime, "settings", replace(runtime.settings, embed_rate_burst=3))
    acme = await embed_org(make_client)
    token = await mint(acme.client, acme.dashboard_id)
    other = await mint(acme.client, acme.dashboard_id)  # another session, another jti
    browser = await make_client()

    async def read(embed_token: str) -> aiohttp.ClientResponse:
        return await browser.post(
            "/graphql", json={"query": EMBED_DASHBOARD}, headers=bearer(embed_token)
        )

    for _ in range(3):
        response = await read(token)
        assert response.status == 200
        assert (await response.json())["data"]["embed"]["dashboard"]["id"] == acme.dashboard_id
    refused = await read(token)
    assert refused.status == 429
    assert refused.headers["Retry-After"] == "1"
    assert await refused.json() == {
        "data": None,
        "errors": [
            {
                "message": EMBED_REFUSAL,
                "extensions": {"code": "RATE_LIMITED", "reason": "rate_limited", "retry_after": 1},
            }
        ],
    }
    rest = await browser.get("/v1/auth/me", headers=bearer(token))
    assert await rate_limited_body(rest, EMBED_REFUSAL) == 1
    assert (await read(other)).status == 200

    # A live socket spends one request at connection_init; over budget it closes with 4429.
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(
            app_server.make_url("/graphql"), protocols=["graphql-transport-ws"]
        )
        await ws.send_json({"type": "connection_init", "payload": {"token": token}})
        message = await ws.receive(timeout=5)
        assert message.type == aiohttp.WSMsgType.CLOSE
        assert (message.data, message.extra) == (4429, "rate_limited")

        ws = await session.ws_connect(
            app_server.make_url("/graphql"), protocols=["graphql-transport-ws"]
        )
        await ws.send_json({"type": "connection_init", "payload": {"token": other}})
        assert (await ws.receive_json(timeout=5))["type"] == "connection_ack"
        await ws.close()
    # The other session has spent two of its three (a read and a socket): one more read.
    assert (await read(other)).status == 200
    assert (await read(other)).status == 429

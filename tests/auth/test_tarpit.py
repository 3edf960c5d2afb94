"""The tarpit (emban/auth/tarpit.py): a refusal of the login, sign-up and invite limits is sent
``min(Retry-After, EMBAN_AUTH_REFUSAL_DELAY)`` seconds late, at most 32 wait per client address
(the 33rd is answered at once with ``Connection: close``), a permitted attempt never waits, and
the refusal is decided before the body is decoded or a password hashed.

Delays are observed through a fake sleep handed to the runtime's tarpit (which sleeps it was
asked for), except for one lower bound of the real sleep.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest

from emban.auth import credentials
from emban.auth.tarpit import MAX_PENDING_PER_ADDRESS, RefusalTarpit
from emban.models import User
from emban.runtime import Runtime
from tests.auth.test_auth_abuse import (
    LOGIN_MUTATION,
    OWNER,
    STRANGER,
    RecordingHasher,
    configure,
    rate_limited_body,
    source,
)
from tests.conftest import PASSWORD, Client, ClientFactory

SOURCE_REFUSED = "too many attempts from this address; try again later"


class FakeSleep:
    """Records each delay; returns at once, or holds every sleeper until ``release()``."""

    def __init__(self, *, hold: bool = False) -> None:
        self.calls: list[float] = []
        self._released = asyncio.Event()
        if not hold:
            self._released.set()

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        await self._released.wait()

    def release(self) -> None:
        self._released.set()


def fake_tarpit(
    monkeypatch: pytest.MonkeyPatch, runtime: Runtime, *, hold: bool = False
) -> FakeSleep:
    sleep = FakeSleep(hold=hold)
    monkeypatch.setattr(runtime, "tarpit", RefusalTarpit(sleep=sleep))
    return sleep


async def sign_up(client: Client, n: int, ip: str, **extra: Any) -> aiohttp.ClientResponse:
    return await client.post(
        "/v1/auth/register",
        json={"email": f"u{n}@acme.test", "password": PASSWORD, "name": "U", "org_name": f"O{n}"},
        headers=source(ip),
        **extra,
    )


async def use_up_sign_ups(client: Client, ip: str) -> None:
    """Spend the one sign-up the test allows from ``ip``, with a body that does not decode: the
    attempt is counted before the body is read (400, never delayed)."""
    response = await client.post(
        "/v1/auth/register",
        data=b'{"email": ,,}',
        headers={**source(ip), "Content-Type": "application/json"},
    )
    assert response.status == 400, await response.text()


async def test_a_refused_registration_arrives_no_sooner_than_the_delay(
    make_client: ClientFactory, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(monkeypatch, runtime, register_max_per_ip=1, auth_refusal_delay=0.3)
    monkeypatch.setattr(runtime, "tarpit", RefusalTarpit())  # the real asyncio.sleep
    client = await make_client()
    await use_up_sign_ups(client, STRANGER)
    started = time.monotonic()
    refused = await sign_up(client, 1, STRANGER)
    assert time.monotonic() - started >= 0.3
    retry_after = await rate_limited_body(refused, SOURCE_REFUSED)
    assert 3540 < retry_after <= 3601
    assert refused.headers.get("Connection") != "close"
    assert runtime.tarpit.pending(STRANGER) == 0


async def test_with_no_delay_a_refusal_never_sleeps(
    make_client: ClientFactory, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(monkeypatch, runtime, register_max_per_ip=1, auth_refusal_delay=0.0)
    sleep = fake_tarpit(monkeypatch, runtime)
    client = await make_client()
    await use_up_sign_ups(client, STRANGER)
    await rate_limited_body(await sign_up(client, 1, STRANGER), SOURCE_REFUSED)
    assert sleep.calls == []


async def test_permitted_attempts_never_wait_and_refusals_wait_the_delay(
    make_client: ClientFactory, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(
        monkeypatch, runtime, register_max_per_ip=2, login_max_per_email=1, auth_refusal_delay=0.3
    )
    sleep = fake_tarpit(monkeypatch, runtime)
    client = await make_client()
    assert (await sign_up(client, 1, STRANGER)).status == 201
    wrong = {"email": "u1@acme.test", "password": "wrong-guess"}
    assert (await client.post("/v1/auth/login", json=wrong, headers=source(STRANGER))).status == 401
    await use_up_sign_ups(client, STRANGER)
    assert sleep.calls == []  # a success, a 401 and a 400 were all answered without waiting

    await rate_limited_body(await sign_up(client, 3, STRANGER), SOURCE_REFUSED)
    # The login limit per (email, address) is decided after the body (it needs the email), but
    # before the password is verified; its refusal waits too.
    refused = await client.post("/v1/auth/login", json=wrong, headers=source(STRANGER))
    await rate_limited_body(refused, "too many login attempts; try again later")
    assert sleep.calls == [0.3, 0.3]


async def test_the_delay_is_never_longer_than_retry_after(
    make_client: ClientFactory, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(
        monkeypatch,
        runtime,
        register_max_per_ip=1,
        signup_window_seconds=2,
        auth_refusal_delay=30.0,
    )
    sleep = fake_tarpit(monkeypatch, runtime)
    client = await make_client()
    await use_up_sign_ups(client, STRANGER)
    retry_after = await rate_limited_body(await sign_up(client, 1, STRANGER), SOURCE_REFUSED)
    assert retry_after <= 3
    assert sleep.calls == [float(retry_after)]


async def test_the_33rd_waiting_refusal_is_answered_at_once_and_closes_the_connection(
    make_client: ClientFactory, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(monkeypatch, runtime, register_max_per_ip=1, auth_refusal_delay=5.0)
    sleep = fake_tarpit(monkeypatch, runtime, hold=True)
    client = await make_client()
    await use_up_sign_ups(client, STRANGER)
    waiting = [
        asyncio.create_task(sign_up(client, n, STRANGER)) for n in range(MAX_PENDING_PER_ADDRESS)
    ]
    for _ in range(500):
        if runtime.tarpit.pending(STRANGER) == MAX_PENDING_PER_ADDRESS:
            break
        await asyncio.sleep(0.01)
    assert runtime.tarpit.pending(STRANGER) == MAX_PENDING_PER_ADDRESS == 32

    extra = await sign_up(client, 99, STRANGER)
    retry_after = await rate_limited_body(extra, SOURCE_REFUSED)
    assert extra.headers["Connection"] == "close"
    assert not any(task.done() for task in waiting)
    assert len(sleep.calls) == 32

    sleep.release()
    for response in await asyncio.gather(*waiting):
        assert await rate_limited_body(response, SOURCE_REFUSED) in (retry_after, retry_after + 1)
        assert response.headers.get("Connection") != "close"
    assert runtime.tarpit.pending(STRANGER) == 0
    assert await User.all().count() == 0


async def test_a_refusal_is_decided_before_the_body_is_read_or_a_password_hashed(
    make_client: ClientFactory, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(
        monkeypatch, runtime, register_max_per_ip=1, login_max_per_ip=1, accept_invite_max_per_ip=1
    )
    hasher = RecordingHasher(credentials._hasher)
    monkeypatch.setattr(credentials, "_hasher", hasher)
    client = await make_client()
    await use_up_sign_ups(client, STRANGER)
    bad = {**source(STRANGER), "Content-Type": "application/json"}
    # Over the limit, a body that does not even decode is a 429, not a 400.
    refused = await client.post("/v1/auth/register", data=b'{"email": ,,}', headers=bad)
    await rate_limited_body(refused, SOURCE_REFUSED)
    login = {"email": "nobody@acme.test", "password": "wrong-guess"}
    assert (await client.post("/v1/auth/login", json=login, headers=source(STRANGER))).status == 401
    assert [kind for kind, _ in hasher.calls] == ["verify"]
    spent = await client.post("/v1/auth/accept-invite", data=b"[", headers=bad)
    assert spent.status == 400  # the one acceptance allowed, counted before its body failed
    for route in ("/v1/auth/login", "/v1/auth/accept-invite"):
        refused = await client.post(route, data=b"[", headers=bad)
        assert refused.status == 429, (route, await refused.text())
    await rate_limited_body(await sign_up(client, 1, STRANGER), SOURCE_REFUSED)
    assert [kind for kind, _ in hasher.calls] == ["verify"]  # nothing hashed or verified since


async def test_graphql_refusals_wait_too(
    make_client: ClientFactory, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(monkeypatch, runtime, login_max_per_ip=1, auth_refusal_delay=0.3)
    sleep = fake_tarpit(monkeypatch, runtime)
    client = await make_client()

    async def gql_login(ip: str) -> dict[str, Any]:
        response = await client.post(
            "/graphql",
            json={
                "query": LOGIN_MUTATION,
                "variables": {"email": "nobody@acme.test", "password": "wrong-guess"},
            },
            headers=source(ip),
        )
        assert response.headers.get("Connection") != "close"
        body: dict[str, Any] = await response.json()
        return body

    first = await gql_login(STRANGER)
    assert first["errors"][0]["extensions"]["reason"] == "invalid_credentials"
    assert sleep.calls == []
    refused = await gql_login(STRANGER)
    assert refused["data"] is None
    extensions = refused["errors"][0]["extensions"]
    assert (extensions["code"], extensions["reason"]) == ("RATE_LIMITED", "rate_limited")
    assert 840 < extensions["retry_after"] <= 901
    assert sleep.calls == [0.3]
    # Another address has its own counter and is not delayed.
    assert (await gql_login(OWNER))["errors"][0]["extensions"]["reason"] == "invalid_credentials"
    assert sleep.calls == [0.3]

"""Building blocks of a test scenario over HTTP: an org's owner, its events, the clock.

Plain async factory helpers (no mocks): each goes through the public API as a client would.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from tests.conftest import Client, ClientFactory, bearer, register


async def owner(
    make_client: ClientFactory, email: str = "owner@acme.test", org: str | None = None
) -> tuple[Client, dict[str, Any]]:
    """A new org's owner, logged in: its client and the registration body (org, user, api_key).
    The org is named after the email's domain unless ``org`` is given."""
    client = await make_client()
    reg = await register(client, email=email, org_name=org or email.split("@")[1])
    return client, reg


async def owner_and_key(
    make_client: ClientFactory, email: str = "owner@acme.test", org: str | None = None
) -> tuple[Client, str]:
    """A new org's owner and the admin API key registration handed out."""
    client, reg = await owner(make_client, email, org)
    key: str = reg["api_key"]["key"]
    return client, key


async def send_events(client: Client, key: str, events: list[dict[str, Any]]) -> None:
    """``POST /v1/events`` with ``key``; every event is accepted."""
    response = await client.post("/v1/events", json={"events": events}, headers=bearer(key))
    assert response.status == 200, await response.text()
    assert await response.json() == {"accepted": len(events), "status": "ok"}


async def call(
    client: Client, method: str, path: str, body: Any = None
) -> tuple[int, dict[str, Any] | None]:
    """Status and JSON body of a request; a 204 has an empty body (``None``)."""
    response = await client.request(method, path, json=body)
    if response.status == 204:
        assert await response.read() == b""
        return 204, None
    return response.status, await response.json()


def stamp(moment: datetime) -> str:
    """An event timestamp as clients send it (ISO 8601, milliseconds)."""
    return moment.isoformat(timespec="milliseconds")


def iso(moment: datetime) -> str:
    """A bucket as analytics answers print it (ISO 8601, whole seconds, Z)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


async def stable_now(margin: int = 90) -> datetime:
    """Now, at least ``margin`` seconds before the next hour starts (so hour and day buckets
    stay put for the test)."""
    now = datetime.now(UTC)
    left = 3600 - (now.minute * 60 + now.second)
    if left < margin:
        await asyncio.sleep(left + 1)
        now = datetime.now(UTC)
    return now

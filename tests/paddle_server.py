"""A local stand-in for Paddle Billing (the one mock the suite allows: Paddle is off this machine).

It speaks the documented shapes: ``POST /customers/{customer_id}/portal-sessions`` answers
``{"data": {"id", "customer_id", "urls": {"general": {"overview"}, "subscriptions": [...]}}}``
and errors are ``{"error": {"type", "code", "detail", "documentation_url"}}``. Notifications are
signed the way Paddle signs them (``Paddle-Signature: ts=…;h1=…``)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from emban.billing.paddle import signature_header
from emban.runtime import Runtime
from emban.settings import Settings

API_KEY = "pdl_sdbx_apikey_01test"
NOTIFICATION_KEY = "pdl_ntfset_01test_secret"
CLIENT_TOKEN = "test_0123456789abcdef"
PRICES = (("starter", "pri_starter"), ("pro", "pri_pro"), ("enterprise", "pri_enterprise"))
# Customers the stand-in knows how to answer for.
SLOW_CUSTOMER = "ctm_slow"
UNKNOWN_CUSTOMER = "ctm_unknown"


@dataclass
class PaddleStandIn:
    url: str
    seen: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)


@pytest.fixture
async def paddle_api() -> AsyncIterator[PaddleStandIn]:
    state = PaddleStandIn(url="")

    async def portal(request: web.Request) -> web.Response:
        customer = request.match_info["customer_id"]
        body = await request.json()
        state.seen.append((request.path, request.headers.get("Authorization", ""), body))
        if request.headers.get("Authorization") != f"Bearer {API_KEY}":
            return _error(403, "request_error", "forbidden", "You aren't permitted.")
        if customer == SLOW_CUSTOMER:
            await asyncio.sleep(5)
        if customer == UNKNOWN_CUSTOMER:
            return _error(404, "request_error", "entity_not_found", "Entity ctm_unknown not found")
        data = {
            "id": "cpls_01test",
            "customer_id": customer,
            "urls": {
                "general": {
                    "overview": f"https://customer-portal.paddle.com/cpl_01test?c={customer}"
                },
                "subscriptions": [],
            },
            "created_at": "2026-11-29T10:00:00.000Z",
        }
        return web.json_response({"data": data, "meta": {"request_id": "req_1"}}, status=201)

    app = web.Application()
    app.router.add_post("/customers/{customer_id}/portal-sessions", portal)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    state.url = str(server.make_url("")).rstrip("/")
    yield state
    await server.close()


def _error(status: int, kind: str, code: str, detail: str) -> web.Response:
    return web.json_response(
        {
            "error": {
                "type": kind,
                "code": code,
                "detail": detail,
                "documentation_url": f"https://developer.paddle.com/errors/shared/{code}",
            },
            "meta": {"request_id": "req_2"},
        },
        status=status,
    )


def configured(settings: Settings, api_url: str) -> Settings:
    return dataclasses.replace(
        settings,
        paddle_notification_key=NOTIFICATION_KEY,
        paddle_api_key=API_KEY,
        paddle_client_token=CLIENT_TOKEN,
        paddle_api_url=api_url,
        paddle_price_ids=PRICES,
    )


@pytest.fixture
async def billing_on(runtime: Runtime, paddle_api: PaddleStandIn) -> AsyncIterator[PaddleStandIn]:
    """The running app with Paddle configured against the stand-in (restored afterwards)."""
    before = runtime.settings
    runtime.settings = configured(before, paddle_api.url)
    yield paddle_api
    runtime.settings = before


def signed(body: bytes, *, key: str = NOTIFICATION_KEY, ts: int | None = None) -> dict[str, str]:
    stamp = int(time.time()) if ts is None else ts
    return {
        "Paddle-Signature": signature_header(key, body, stamp),
        "Content-Type": "application/json",
    }


def notification(
    event_id: str, event_type: str, data: dict[str, Any], occurred_at: str = "2026-11-29T10:00:00Z"
) -> bytes:
    return msgspec.json.encode(
        {
            "event_id": event_id,
            "event_type": event_type,
            "occurred_at": occurred_at,
            "notification_id": f"ntf_{event_id}",
            "data": data,
        }
    )


def subscription(
    org_id: str | None,
    *,
    status: str = "active",
    price: str = "pri_starter",
    sub_id: str = "sub_01",
    customer_id: str = "ctm_01",
    scheduled_cancel: str | None = None,
) -> dict[str, Any]:
    return {
        "id": sub_id,
        "status": status,
        "customer_id": customer_id,
        "currency_code": "USD",
        "items": [
            {"status": "active", "quantity": 1, "price": {"id": price, "product_id": "pro_1"}}
        ],
        "next_billed_at": None if status == "canceled" else "2026-12-29T10:00:00.000Z",
        "canceled_at": "2026-11-29T12:00:00.000Z" if status == "canceled" else None,
        "scheduled_change": None
        if scheduled_cancel is None
        else {"action": "cancel", "effective_at": scheduled_cancel, "resume_at": None},
        "custom_data": None if org_id is None else {"org_id": org_id},
    }

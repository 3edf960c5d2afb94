"""Paddle Billing's wire: the ``Paddle-Signature`` check, the notification shapes, the API call.

Shapes follow Paddle Billing's documentation (developer.paddle.com): a notification is
``{"event_id", "event_type", "occurred_at", "notification_id", "data"}``; subscriptions and
transactions carry ``items[].price.id`` and the ``custom_data`` set at checkout; API errors are
``{"error": {"type", "code", "detail"}}``. Unknown fields are ignored, as Paddle adds fields
without notice.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import datetime
from typing import Annotated, Any

import aiohttp
import msgspec

from emban.wire import UNREADABLE_JSON, malformed_json

# Paddle's own recommendation: a signature whose ts is further than this from now is refused, so a
# captured notification cannot be replayed later.
SIGNATURE_TOLERANCE_SECONDS = 5
# Portal sessions are made while an admin waits.
API_TIMEOUT_SECONDS = 10.0


# Paddle ids are a prefix and 26 characters (``evt_01h…``); the columns that keep them are 64.
PaddleId = Annotated[str, msgspec.Meta(max_length=64)]


class BadSignature(Exception):
    """The ``Paddle-Signature`` header is missing, malformed, stale or matches no ``h1``."""


def signature_header(key: str, body: bytes, ts: int) -> str:
    """The header Paddle sends for ``body`` at ``ts`` (tests and docs build signatures with it)."""
    return f"ts={ts};h1={_digest(key, ts, body)}"


def _digest(key: str, ts: int | str, body: bytes) -> str:
    signed = f"{ts}:".encode() + body
    return hmac.new(key.encode(), signed, hashlib.sha256).hexdigest()


def verify_signature(key: str, header: str | None, body: bytes, now: float | None = None) -> None:
    """Raise :class:`BadSignature` unless ``header`` signs ``body`` with ``key`` within the
    tolerance. Several ``h1`` values may be present while Paddle rotates the secret: any one
    matching passes; each comparison is constant-time."""
    if not header:
        raise BadSignature("missing Paddle-Signature header")
    ts: str | None = None
    candidates: list[str] = []
    for part in header.split(";"):
        name, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if name == "ts":
            ts = value
        elif name == "h1":
            candidates.append(value)
    if ts is None or not ts.isdigit() or not candidates:
        raise BadSignature("malformed Paddle-Signature header")
    current = time.time() if now is None else now
    if abs(current - int(ts)) > SIGNATURE_TOLERANCE_SECONDS:
        raise BadSignature("Paddle-Signature timestamp is too far from now")
    expected = _digest(key, ts, body)
    # Compare against every candidate (no early exit), so timing says nothing about which matched.
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise BadSignature("Paddle-Signature does not match the body")


class Price(msgspec.Struct):
    id: str


class Item(msgspec.Struct):
    price: Price | None = None


class ScheduledChange(msgspec.Struct):
    action: str
    effective_at: datetime | None = None


class EventData(msgspec.Struct):
    """The fields of a subscription, transaction or customer entity this service reads."""

    id: PaddleId | None = None
    status: str | None = None
    customer_id: PaddleId | None = None
    subscription_id: PaddleId | None = None  # transactions
    email: Annotated[str, msgspec.Meta(max_length=320)] | None = None  # customers
    items: list[Item] = []
    next_billed_at: datetime | None = None
    canceled_at: datetime | None = None
    scheduled_change: ScheduledChange | None = None
    custom_data: dict[str, Any] | None = None

    @property
    def price_ids(self) -> list[str]:
        return [item.price.id for item in self.items if item.price is not None]

    @property
    def org_id(self) -> str | None:
        """The org checkout-config asked Paddle to carry (``custom_data.org_id``)."""
        value = (self.custom_data or {}).get("org_id")
        return value if isinstance(value, str) and value else None


class Notification(msgspec.Struct):
    """One webhook delivery's body."""

    event_id: PaddleId
    event_type: PaddleId
    occurred_at: datetime
    data: EventData
    notification_id: str | None = None


class BadNotification(Exception):
    """The body is not JSON, or not a notification's shape."""


def parse_notification(body: bytes) -> Notification:
    try:
        return msgspec.json.decode(body, type=Notification)
    except msgspec.ValidationError as exc:
        raise BadNotification(f"not a Paddle notification: {exc}") from None
    except UNREADABLE_JSON as exc:
        # Deep nesting and bytes that are not UTF-8 too: a signed body is still the sender's.
        raise BadNotification(malformed_json(exc).message) from None


class ProviderError(Exception):
    """Paddle answered an error, an unexpected shape, or not in time."""


class _Urls(msgspec.Struct):
    general: dict[str, str]


class _PortalSession(msgspec.Struct):
    urls: _Urls


class _PortalAnswer(msgspec.Struct):
    data: _PortalSession


class _ErrorBody(msgspec.Struct):
    type: str = ""
    code: str = ""
    detail: str = ""


class _ErrorAnswer(msgspec.Struct):
    error: _ErrorBody


async def create_portal_session(
    *, api_url: str, api_key: str, customer_id: str, subscription_ids: list[str]
) -> str:
    """``POST {api_url}/customers/{customer_id}/portal-sessions``: the portal's overview URL."""
    url = f"{api_url}/customers/{customer_id}/portal-sessions"
    timeout = aiohttp.ClientTimeout(total=API_TIMEOUT_SECONDS)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.post(
                url,
                json={"subscription_ids": subscription_ids},
                headers={"Authorization": f"Bearer {api_key}"},
            ) as response,
        ):
            body = await response.read()
            status = response.status
    except TimeoutError:
        raise ProviderError(f"Paddle did not answer within {API_TIMEOUT_SECONDS:g} s") from None
    except aiohttp.ClientError as exc:
        raise ProviderError(f"Paddle could not be reached: {type(exc).__name__}") from None
    if status >= 400:
        try:
            error = msgspec.json.decode(body, type=_ErrorAnswer).error
            detail = f"{error.code}: {error.detail}" if error.code else f"HTTP {status}"
        except (msgspec.ValidationError, msgspec.DecodeError):
            detail = f"HTTP {status}"
        raise ProviderError(f"Paddle refused the portal session ({detail})")
    try:
        answer = msgspec.json.decode(body, type=_PortalAnswer)
    except (msgspec.ValidationError, msgspec.DecodeError):
        raise ProviderError("Paddle answered an unexpected portal session shape") from None
    overview = answer.data.urls.general.get("overview")
    if not overview:
        raise ProviderError("Paddle answered no portal overview URL")
    return overview

"""Webhook signatures: ``Emban-Signature: t=<unix>,v1=<hex>[,v1=<hex>]``.

``v1`` is HMAC-SHA256 over ``"<t>.<raw body>"`` with the org's signing secret — the scheme Stripe
and Paddle use, so receivers can reuse their verification code. During the 24 hours after a
rotation the previous secret signs too, as a second ``v1``; a receiver accepts if any matches.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Sequence

SECRET_PREFIX = "whsec_"  # noqa: S105 - a label, not a secret
TOLERANCE_SECONDS = 300


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return mac.hexdigest()


def header(secrets_: Sequence[str], body: bytes, *, timestamp: int | None = None) -> str:
    """The ``Emban-Signature`` value: one ``v1`` per secret, newest first."""
    t = int(time.time()) if timestamp is None else timestamp
    return ",".join([f"t={t}", *(f"v1={signature(s, t, body)}" for s in secrets_)])


def verify(
    secret: str,
    header_value: str,
    body: bytes,
    *,
    now: float | None = None,
    tolerance: int = TOLERANCE_SECONDS,
) -> bool:
    """What a receiver does: parse, check the timestamp window, compare in constant time."""
    t: int | None = None
    candidates: list[str] = []
    for part in header_value.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            t = int(value)
        elif key == "v1":
            candidates.append(value)
    if t is None or not candidates:
        return False
    current = time.time() if now is None else now
    if abs(current - t) > tolerance:
        return False
    expected = signature(secret, t, body)
    return any(hmac.compare_digest(expected, c) for c in candidates)

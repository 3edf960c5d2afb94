"""One webhook POST: signed, SSRF-vetted, 10 s timeout, redirects not followed.

The caller (``emban.jobs.deliveries``) records the attempt and decides about retries from
:attr:`Attempt.retryable`: connection errors, timeouts, 5xx, 408 and 429 are retried; every other
4xx, a 3xx (redirects are not followed) and a refused address are final.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp

from emban.notify import signing
from emban.notify.ssrf import UnsafeURL, VettedResolver, check_url, describe

TIMEOUT_SECONDS = 10.0
EXCERPT_CHARS = 512
_READ_LIMIT = 4096
USER_AGENT = "Emban-Webhooks/1"


@dataclass(frozen=True)
class Attempt:
    ok: bool
    retryable: bool
    status_code: int | None
    error: str | None
    excerpt: str | None
    duration_ms: int


async def post(
    url: str,
    body: bytes,
    *,
    event_type: str,
    delivery_id: str,
    secrets: Sequence[str],
    allow_hosts: Sequence[str] = (),
    timeout_seconds: float = TIMEOUT_SECONDS,
) -> Attempt:
    started = time.perf_counter()

    def elapsed() -> int:
        return int((time.perf_counter() - started) * 1000)

    try:
        target = check_url(url, allow_hosts=allow_hosts)
    except UnsafeURL as exc:
        return Attempt(False, False, None, f"refused URL: {exc}", None, elapsed())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Emban-Event": event_type,
        "Emban-Delivery": delivery_id,
        "Emban-Signature": signing.header(secrets, body),
    }
    connector = aiohttp.TCPConnector(
        resolver=VettedResolver(allow_hosts), force_close=True, limit=1, use_dns_cache=False
    )
    try:
        async with (
            aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=timeout_seconds)
            ) as session,
            session.post(target, data=body, headers=headers, allow_redirects=False) as response,
        ):
            raw = await response.content.read(_READ_LIMIT)
            excerpt = raw.decode("utf-8", "replace")[:EXCERPT_CHARS]
            code = response.status
    except TimeoutError:
        return Attempt(False, True, None, f"timed out after {timeout_seconds:g} s", None, elapsed())
    except aiohttp.ClientConnectorError as exc:
        refused = isinstance(exc.os_error, OSError) and "refused:" in str(exc.os_error)
        return Attempt(False, not refused, None, describe(exc.os_error), None, elapsed())
    except (aiohttp.InvalidURL, ValueError) as exc:  # e.g. a host aiohttp will not connect to
        return Attempt(False, False, None, describe(exc), None, elapsed())
    except (aiohttp.ClientError, OSError) as exc:
        return Attempt(False, True, None, describe(exc), None, elapsed())
    if 200 <= code < 300:
        return Attempt(True, False, code, None, excerpt, elapsed())
    if 300 <= code < 400:
        return Attempt(False, False, code, "redirects are not followed", excerpt, elapsed())
    retryable = code >= 500 or code in (408, 429)
    return Attempt(False, retryable, code, f"HTTP {code}", excerpt, elapsed())

"""Realistic sample events for the demo org: 30 days, several tenants, marked ``is_sample``.

Deterministic (seeded), shaped like an AI API product: weekday and business-hour seasonality,
growth over the month, tenants of different sizes, a few percent of errors, long-tailed latency.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

from emban.analytics.ingest import COMPACT, EVENT_COLUMNS, EventRow
from emban.analytics.store import EventStore
from emban.analytics.tables import EVENTS

TENANTS = {  # tenant → relative size
    "demo_workspace": 1.0,
    "acme": 2.2,
    "globex": 1.4,
    "initech": 0.6,
    "umbrella": 0.3,
}
MODELS = (("gpt-4o", 0.45), ("claude-sonnet", 0.35), ("llama-3-70b", 0.2))
ENDPOINTS = (("/chat", 0.6), ("/embeddings", 0.25), ("/images", 0.15))
PLANS = (("free", 0.5), ("pro", 0.4), ("enterprise", 0.1))
SOURCES = (("api", 0.7), ("web", 0.2), ("sdk", 0.1))
REGIONS = (("us-east", 0.5), ("eu-west", 0.35), ("ap-south", 0.15))
BASE_CALLS_PER_HOUR = 24
BATCH = 20_000


def _pick(rng: random.Random, options: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([o for o, _ in options], weights=[w for _, w in options])[0]


def _rows(org_id: str, environment_id: str, now: datetime, days: int) -> Iterator[EventRow]:
    rng = random.Random(20261126)  # noqa: S311  (sample data, not security)
    start = (now - timedelta(days=days)).replace(minute=0, second=0, microsecond=0)
    hours = days * 24
    sequence = 0
    for hour in range(hours):
        moment = start + timedelta(hours=hour)
        growth = 0.7 + 0.6 * hour / hours
        weekday = 1.0 if moment.weekday() < 5 else 0.45
        daily = 0.35 + 0.65 * math.exp(-(((moment.hour - 15) / 5.0) ** 2))
        for tenant, size in TENANTS.items():
            expected = BASE_CALLS_PER_HOUR * size * growth * weekday * daily
            calls = max(0, int(rng.gauss(expected, math.sqrt(expected + 1))))
            users = max(3, int(20 * size))
            for _ in range(calls):
                sequence += 1
                second = rng.randrange(3600)
                ts = moment + timedelta(seconds=second, milliseconds=rng.randrange(1000))
                if ts > now:
                    continue
                model = _pick(rng, MODELS)
                status = "error" if rng.random() < 0.03 else "success"
                latency = rng.lognormvariate(math.log(420 if model == "gpt-4o" else 350), 0.5)
                tokens = float(int(rng.lognormvariate(6.3, 0.7)))
                yield EventRow(
                    org_id=org_id,
                    environment_id=environment_id,
                    tenant_id=tenant,
                    event_name="api.call",
                    timestamp=ts.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
                    event_id=f"sample-{sequence}",
                    user_id=f"{tenant}-user-{rng.randrange(users)}",
                    string_props={
                        "model": model,
                        "endpoint": _pick(rng, ENDPOINTS),
                        "status": status,
                        "plan": _pick(rng, PLANS),
                        "source": _pick(rng, SOURCES),
                        "region": _pick(rng, REGIONS),
                    },
                    numeric_props={
                        "tokens": tokens,
                        "latency_ms": round(latency, 1),
                        "cost_usd": round(tokens * 0.00002, 6),
                    },
                    is_sample=1,
                )
            if rng.random() < 0.08 * size * weekday:
                sequence += 1
                yield EventRow(
                    org_id=org_id,
                    environment_id=environment_id,
                    tenant_id=tenant,
                    event_name="user.signup",
                    timestamp=(moment + timedelta(seconds=rng.randrange(3600))).strftime(
                        "%Y-%m-%d %H:%M:%S.000"
                    ),
                    event_id=f"sample-{sequence}",
                    user_id=f"{tenant}-user-{rng.randrange(users)}",
                    string_props={
                        "plan": _pick(rng, PLANS),
                        "source": _pick(rng, SOURCES),
                    },
                    numeric_props={},
                    is_sample=1,
                )


async def load_sample_events(
    store: EventStore,
    org_id: str,
    environment_id: str,
    *,
    now: datetime | None = None,
    days: int = 30,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Insert the sample events in batches; ``progress`` gets the running total."""
    import msgspec

    encoder = msgspec.json.Encoder()
    total = 0
    batch: list[bytes] = []
    for row in _rows(org_id, environment_id, now or datetime.now(UTC), days):
        batch.append(encoder.encode(row))
        if len(batch) >= BATCH:
            await store.insert_json(EVENTS, EVENT_COLUMNS, b"\n".join(batch), COMPACT)
            total += len(batch)
            batch.clear()
            if progress:
                progress(total)
    if batch:
        await store.insert_json(EVENTS, EVENT_COLUMNS, b"\n".join(batch), COMPACT)
        total += len(batch)
        if progress:
            progress(total)
    return total


def estimated_total(days: int = 30) -> int:
    """Roughly how many rows :func:`load_sample_events` writes (for the progress bar)."""
    return int(sum(TENANTS.values()) * BASE_CALLS_PER_HOUR * 24 * days * 0.49)

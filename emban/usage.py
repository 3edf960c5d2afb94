"""Buffered per-org query counters, flushed to ``usage_daily`` every few seconds.

Counting a query must not add a database round trip to every analytics request; a crash loses at
most one flush interval of query counts (event counts are written by ingest directly: limits
depend on them).
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, date, datetime

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F

from emban.background_tasks import OwnedTask, every
from emban.models import Org, UsageDaily

log = logging.getLogger("emban.usage")
FLUSH_SECONDS = 5.0


class UsageRecorder:
    def __init__(self) -> None:
        self._queries: Counter[tuple[str, date]] = Counter()
        self._flusher = OwnedTask("emban-usage-flush")

    def count_query(self, org_id: str) -> None:
        self._queries[(org_id, datetime.now(UTC).date())] += 1

    def start(self) -> None:
        self._flusher.start(
            lambda: every(
                FLUSH_SECONDS,
                self.flush,
                log,
                "usage flush failed; counts are kept for the next one",
            )
        )

    async def stop(self) -> None:
        await self._flusher.stop()
        await self.flush()

    async def flush(self) -> None:
        pending, self._queries = self._queries, Counter()
        try:
            for (org_id, day), count in pending.items():
                await add_usage(org_id, day, queries=count)
        except Exception:
            self._queries.update(pending)
            raise


async def add_usage(org_id: str, day: date, *, events: int = 0, queries: int = 0) -> None:
    """Add to the org's ``usage_daily`` counters for ``day``: the one upsert both counters use.

    An UPDATE first (the common case: the day's row exists), then an INSERT; a row created
    concurrently by another process in between makes the INSERT fail, and the UPDATE is retried.
    An org deleted meanwhile gets no row (its counts have no one left to bill).
    """
    if events <= 0 and queries <= 0:
        return
    increments = {"events": F("events") + events, "queries": F("queries") + queries}
    if await UsageDaily.filter(org_id=org_id, day=day).update(**increments):
        return
    if not await Org.exists(id=org_id):
        return
    try:
        await UsageDaily.create(org_id=org_id, day=day, events=events, queries=queries)
    except IntegrityError:  # created concurrently by another request or process
        await UsageDaily.filter(org_id=org_id, day=day).update(**increments)

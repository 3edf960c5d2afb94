"""How many ad-hoc queries each org runs at once, in this process (issue 8, defect 6).

Ad-hoc SQL has its own engine connections, so it cannot make ingest, embeds or ``/healthz`` wait;
this cap keeps one org from taking all of those connections from the other orgs' ad-hoc work.
Registration is public, so the cap is per org, not per user or key. The count lives in the
process: the embedded engine has exactly one process, and with ClickHouse over HTTP each serving
process caps its own share (documented in docs/operations.md).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import AsyncIterator

from emban.errors import RateLimited


class OrgSlots:
    def __init__(self) -> None:
        self._running: dict[str, list[float]] = {}

    def running(self, org_id: str) -> int:
        return len(self._running.get(org_id, ()))

    @contextlib.asynccontextmanager
    async def hold(self, org_id: str, *, limit: int, busy_for_s: float) -> AsyncIterator[None]:
        """Take one of ``org_id``'s ``limit`` slots for the block, or raise 429 at once (never
        queue: a queue would hold the request open behind work that may run ``busy_for_s``).

        ``Retry-After`` is when the org's oldest running query must have ended: its
        ``max_execution_time`` (``busy_for_s``) after it started, at least one second."""
        running = self._running.setdefault(org_id, [])
        now = time.monotonic()
        if len(running) >= limit:
            retry_after = max(1, math.ceil(busy_for_s - (now - min(running))))
            raise RateLimited(
                f"This organization already runs {len(running)} ad-hoc queries, the most at once "
                f"(EMBAN_ADHOC_MAX_CONCURRENT_PER_ORG={limit}); retry when one has finished.",
                retry_after=retry_after,
            )
        running.append(now)
        try:
            yield
        finally:
            running.remove(now)
            if not running:
                del self._running[org_id]

"""Fixed-window attempt counters for login (per email and per IP).

In-process by default; with Redis configured, the counters live in Redis so every API process
shares them.
"""

from __future__ import annotations

import time
from typing import Protocol

from redis.asyncio import Redis


class AttemptLimiter(Protocol):
    async def hit(self, key: str, limit: int, window: int) -> int | None:
        """Count one attempt; return seconds to wait when the key is over its limit, else None."""
        ...

    async def reset(self, key: str) -> None: ...


class MemoryLimiter:
    def __init__(self) -> None:
        self._windows: dict[str, tuple[float, int]] = {}

    async def hit(self, key: str, limit: int, window: int) -> int | None:
        now = time.monotonic()
        started, count = self._windows.get(key, (now, 0))
        if now - started >= window:
            started, count = now, 0
        count += 1
        self._windows[key] = (started, count)
        if len(self._windows) > 100_000:
            self._windows = {k: v for k, v in self._windows.items() if now - v[0] < window}
        if count > limit:
            return max(1, int(window - (now - started)) + 1)
        return None

    async def reset(self, key: str) -> None:
        self._windows.pop(key, None)


class RedisLimiter:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def hit(self, key: str, limit: int, window: int) -> int | None:
        name = f"emban:ratelimit:{key}"
        pipe = self._redis.pipeline()
        pipe.incr(name)
        pipe.expire(name, window, nx=True)
        pipe.ttl(name)
        count, _, ttl = await pipe.execute()
        if int(count) > limit:
            return max(1, int(ttl))
        return None

    async def reset(self, key: str) -> None:
        await self._redis.delete(f"emban:ratelimit:{key}")

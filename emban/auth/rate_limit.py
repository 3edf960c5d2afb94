"""Fixed-window attempt counters (login, registration, invites) and per-caller request budgets.

In-process by default; with Redis configured, both live in Redis so every API process shares them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

# What redis-py raises when Redis cannot be reached or does not answer in time (the same tuple
# as ``emban.dependencies.REDIS_GONE``; not imported from there, which imports the ORM).
REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError)


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


# --- request budgets (token buckets) -------------------------------------------------------------

Clock = Callable[[], float]


class RequestBudgets(Protocol):
    async def take(self, key: str, *, rate: float, burst: int) -> int | None:
        """Spend one request from ``key``'s bucket (``burst`` tokens, refilled at ``rate``/s).

        Return None when the request may go ahead, else the whole seconds until a token is back.
        """
        ...


def _whole_seconds(wait: float) -> int:
    """Retry-After is a whole number of seconds, and a refused caller waits at least one."""
    return max(1, math.ceil(wait))


class MemoryRequestBudgets:
    """Token buckets in this process (the embedded mode is one process)."""

    MAX_KEYS = 100_000

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    async def take(self, key: str, *, rate: float, burst: int) -> int | None:
        now = self._clock()
        tokens, at = self._buckets.get(key, (float(burst), now))
        tokens = min(float(burst), tokens + max(0.0, now - at) * rate)
        if tokens < 1:
            self._buckets[key] = (tokens, now)
            return _whole_seconds((1 - tokens) / rate)
        self._buckets[key] = (tokens - 1, now)
        if len(self._buckets) > self.MAX_KEYS:
            # A bucket idle long enough to be full again carries no state worth keeping.
            self._buckets = {
                k: (t, a) for k, (t, a) in self._buckets.items() if t + (now - a) * rate < burst
            }
        return None


# One atomic step per request: refill from the elapsed time, then spend or refuse. The state is
# one hash per key (tokens, at) that expires once it would have refilled anyway. Lua numbers
# returned to Redis are truncated to integers, so the wait comes back as a string.
_TAKE_SCRIPT = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = burst
  at = now
end
if now > at then
  tokens = math.min(burst, tokens + (now - at) * rate)
  at = now
end
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(at))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return tostring(wait)
"""


class RedisRequestBudgets:
    """Token buckets shared by every API process (one Lua script call per request).

    The clock is the API process's wall clock (processes of one deployment agree on it closely
    enough for a per-second budget); tests inject one.
    """

    def __init__(
        self, redis: Redis, *, prefix: str = "emban:budget:", clock: Clock = time.time
    ) -> None:
        self._prefix = prefix
        self._clock = clock
        self._script = redis.register_script(_TAKE_SCRIPT)

    async def take(self, key: str, *, rate: float, burst: int) -> int | None:
        raw = await self._script(keys=[self._prefix + key], args=[rate, burst, self._clock()])
        wait = float(raw)
        return None if wait <= 0 else _whole_seconds(wait)


# --- with Redis down -----------------------------------------------------------------------------


class RedisOrLocalLimiter:
    """The Redis limiter, falling back to this process's own counters while Redis is down.

    Login, registration and invite attempts stay limited through a Redis outage (per process
    instead of across processes: with N API processes an attacker gets at most N times the
    attempts), and legitimate users can still sign in. Neither fail-open (no brute-force guard)
    nor fail-closed (nobody can log in): see docs/decisions.md."""

    def __init__(self, redis: Redis, on_down: Callable[[], None]) -> None:
        self._redis = RedisLimiter(redis)
        self._local = MemoryLimiter()
        self._on_down = on_down

    async def hit(self, key: str, limit: int, window: int) -> int | None:
        try:
            return await self._redis.hit(key, limit, window)
        except REDIS_ERRORS:
            self._on_down()
            return await self._local.hit(key, limit, window)

    async def reset(self, key: str) -> None:
        await self._local.reset(key)
        try:
            await self._redis.reset(key)
        except REDIS_ERRORS:
            self._on_down()


class RedisOrLocalBudgets:
    """Request budgets in Redis, in this process while Redis is down (the same choice as
    :class:`RedisOrLocalLimiter`: a budget keeps holding, per process, and requests go on)."""

    def __init__(self, redis: Redis, on_down: Callable[[], None]) -> None:
        self._redis = RedisRequestBudgets(redis)
        self._local = MemoryRequestBudgets()
        self._on_down = on_down

    async def take(self, key: str, *, rate: float, burst: int) -> int | None:
        try:
            return await self._redis.take(key, rate=rate, burst=burst)
        except REDIS_ERRORS:
            self._on_down()
            return await self._local.take(key, rate=rate, burst=burst)

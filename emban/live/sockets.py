"""Open live-embed sockets: how many each token holds, and closing them when a token is revoked.

Every graphql-transport-ws connection that authenticated with an embed token registers here
with a ``closer`` (how to close it with a code and a reason) until it ends.

- **Sockets per token.** At most ``max_per_token`` sockets per token (its ``jti``). With Redis
  the count is shared by every API process: a sorted set per token whose members are socket ids
  scored by a lease deadline, renewed while the socket is open; a process that dies without
  unregistering stops renewing, and its sockets stop counting after :data:`LEASE_SECONDS`.
  Without Redis there is one process and the count is in memory.
- **Revocation.** A revocation (:class:`RevocationRule`) is published on the live bus; every
  process closes the sockets it holds whose token the rule matches (4403
  ``embed_token_revoked``), so a revoked token's sockets close wherever they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass
from typing import Any

from redis.asyncio import Redis

from emban.auth.principal import EmbedGrant
from emban.background_tasks import OwnedTask, TaskSet
from emban.dependencies import REDIS, outages, redis_gone
from emban.error_codes import EmbedErrorCode
from emban.ids import new_id
from emban.live.bus import LiveBus

log = logging.getLogger("emban.live")

LEASE_SECONDS = 60
RENEW_SECONDS = 20
REDIS_PREFIX = "emban:live:sockets:"
REVOKED = (4403, EmbedErrorCode.embed_token_revoked.value)

Closer = Callable[[int, str], Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class RevocationRule:
    """Revokes the tokens of ``environment_id`` issued at or before ``issued_before`` whose
    session id, dashboard and tenant equal the ones set here (``None`` matches any)."""

    environment_id: str
    issued_before: int
    expires_at: int
    session_id: str | None = None
    dashboard_id: str | None = None
    tenant_id: str | None = None

    def matches(self, environment_id: str, grant: EmbedGrant) -> bool:
        return (
            environment_id == self.environment_id
            and grant.issued_at <= self.issued_before
            and (self.session_id is None or self.session_id == grant.jti)
            and (self.dashboard_id is None or self.dashboard_id == grant.dashboard_id)
            and (self.tenant_id is None or self.tenant_id == grant.tenant_id)
        )

    def message(self) -> dict[str, Any]:
        return {"type": "revocation", **asdict(self)}

    @classmethod
    def of_message(cls, message: dict[str, Any]) -> RevocationRule:
        return cls(
            environment_id=str(message["environment_id"]),
            issued_before=int(message["issued_before"]),
            expires_at=int(message["expires_at"]),
            session_id=message.get("session_id"),
            dashboard_id=message.get("dashboard_id"),
            tenant_id=message.get("tenant_id"),
        )


@dataclass(frozen=True)
class _Socket:
    environment_id: str
    grant: EmbedGrant
    closer: Closer


RevocationListener = Callable[[RevocationRule], None]


class LiveSockets:
    def __init__(self, bus: LiveBus, redis: Redis | None = None, max_per_token: int = 5) -> None:
        self._bus = bus
        self._redis = redis
        self.max_per_token = max_per_token
        self._open: dict[str, _Socket] = {}
        self._held: dict[str, int] = {}  # open sockets per jti (no scan of every socket)
        # Every acknowledged live socket, embed or console: closed when the server shuts down.
        self._all: dict[str, Closer] = {}
        self._renewer = OwnedTask("emban-live-socket-leases")
        self._closing = TaskSet()
        # Called with every revocation heard on the bus (the revocation cache listens).
        self.revocation_listeners: list[RevocationListener] = []
        bus.subscribe(self._on_message)

    @property
    def count(self) -> int:
        return len(self._open)

    @property
    def open_sockets(self) -> int:
        """Every acknowledged socket of this process, embed or console (the metrics gauge)."""
        return len(self._all)

    # --- every socket ------------------------------------------------------------------------

    def track(self, closer: Closer) -> str:
        """Remember an open socket so :meth:`close_all` reaches it; the id to :meth:`untrack`."""
        socket_id = new_id("ws")
        self._all[socket_id] = closer
        return socket_id

    def untrack(self, socket_id: str) -> None:
        self._all.pop(socket_id, None)

    async def close_all(self, code: int, reason: str) -> int:
        """Close every open socket (server shutdown: a socket would otherwise hold the process
        up until the shutdown timeout). Returns how many were closed."""
        closers = list(self._all.values())
        self._all.clear()
        await asyncio.gather(*(closer(code, reason) for closer in closers), return_exceptions=True)
        return len(closers)

    # --- sockets per token -----------------------------------------------------------------

    async def open(self, environment_id: str, grant: EmbedGrant, closer: Closer) -> str | None:
        """Register a socket; its id, or ``None`` when the token already holds the maximum."""
        socket_id = new_id("ws")
        claimed: bool | None = None  # None: counted in this process
        if self._redis is not None:
            try:
                claimed = await self._claim_in_redis(socket_id, grant)
            except Exception as exc:
                if not redis_gone(exc):
                    raise
                # Redis is down: the cap holds per process until it is back (docs/decisions.md).
                outages.down(REDIS)
        if claimed is False:
            return None
        if claimed is None and self._held.get(grant.jti, 0) >= self.max_per_token:
            return None
        self._open[socket_id] = _Socket(environment_id, grant, closer)
        self._held[grant.jti] = self._held.get(grant.jti, 0) + 1
        if self._redis is not None:
            self._renewer.start(self._renew)
        return socket_id

    async def release(self, socket_id: str) -> None:
        found = self._open.pop(socket_id, None)
        if found is not None:
            left = self._held.get(found.grant.jti, 1) - 1
            if left > 0:
                self._held[found.grant.jti] = left
            else:
                self._held.pop(found.grant.jti, None)
        if found is not None and self._redis is not None:
            with contextlib.suppress(Exception):  # the lease runs out anyway
                await self._redis.zrem(REDIS_PREFIX + found.grant.jti, socket_id)

    async def _claim_in_redis(self, socket_id: str, grant: EmbedGrant) -> bool:
        assert self._redis is not None
        key = REDIS_PREFIX + grant.jti
        now = time.time()
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(key, "-inf", now)  # sockets of processes that went away
            pipe.zadd(key, {socket_id: now + LEASE_SECONDS})
            pipe.zcard(key)
            pipe.expireat(key, max(grant.expires_at, int(now)) + LEASE_SECONDS)
            _, _, held, _ = await pipe.execute()
        if int(held) > self.max_per_token:
            # Two sockets opening at once may both see the other and both be refused: the cap
            # errs on the side of refusing, never of exceeding.
            await self._redis.zrem(key, socket_id)
            return False
        return True

    async def _renew(self) -> None:
        assert self._redis is not None
        while self._open:
            await asyncio.sleep(RENEW_SECONDS)
            try:
                deadline = time.time() + LEASE_SECONDS
                async with self._redis.pipeline(transaction=False) as pipe:
                    for socket_id, socket in list(self._open.items()):
                        pipe.zadd(REDIS_PREFIX + socket.grant.jti, {socket_id: deadline}, xx=True)
                    await pipe.execute()
            except Exception as exc:
                if redis_gone(exc):  # renewed on the next round after it is back
                    outages.down(REDIS)
                else:
                    log.exception("could not renew live socket leases")

    async def stop(self) -> None:
        await self._renewer.stop()
        await self._closing.cancel()

    # --- revocation ------------------------------------------------------------------------

    async def announce_revocation(self, rule: RevocationRule) -> None:
        """Tell every process (this one included, through the bus) to drop the rule's tokens."""
        await self._bus.publish(rule.message())

    async def _on_message(self, message: dict[str, Any]) -> None:
        if message.get("type") != "revocation":
            return
        rule = RevocationRule.of_message(message)
        for listener in list(self.revocation_listeners):
            listener(rule)
        for socket in list(self._open.values()):
            if rule.matches(socket.environment_id, socket.grant):
                # Closing waits for the client's close frame: never hold up the bus reader.
                self._closing.spawn(socket.closer(*REVOKED))

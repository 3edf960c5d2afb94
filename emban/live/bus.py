"""The live bus: in-process by default, Redis pub/sub when ``EMBAN_REDIS_URL`` is set, so every
API process hears about every ingest flush and publish-state change."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import msgspec
from redis.asyncio import Redis

from emban.background_tasks import OwnedTask

log = logging.getLogger("emban.live")

CHANNEL = "emban:live"
Handler = Callable[[dict[str, Any]], Awaitable[None]]


class LiveBus(Protocol):
    def subscribe(self, handler: Handler) -> None: ...

    async def publish(self, message: dict[str, Any]) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def alert_event_message(org_id: str, event: dict[str, Any]) -> dict[str, Any]:
    """A new alert event of ``org_id`` for console subscribers (``Subscription.alertEvents``)."""
    return {"type": "alert_event", "org_id": org_id, "event": event}


class InProcessBus:
    def __init__(self) -> None:
        self._handlers: list[Handler] = []

    def subscribe(self, handler: Handler) -> None:
        self._handlers.append(handler)

    async def publish(self, message: dict[str, Any]) -> None:
        for handler in list(self._handlers):
            try:
                await handler(message)
            except Exception:
                log.exception("live handler failed")

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


class RedisBus:
    """Publishes to one Redis channel; a reader task hands every message to the handlers
    (including this process's own messages, so all processes take the same path)."""

    def __init__(self, redis: Redis, channel: str = CHANNEL) -> None:
        self._redis = redis
        self._channel = channel
        self._handlers: list[Handler] = []
        self._reader = OwnedTask("emban-live-bus")
        self._ready = asyncio.Event()
        # Called when the reader subscribes again after losing Redis: messages published in
        # between were lost, so caches that rely on them (API keys) start over.
        self.resubscribed: list[Callable[[], None]] = []

    def subscribe(self, handler: Handler) -> None:
        self._handlers.append(handler)

    async def publish(self, message: dict[str, Any]) -> None:
        await self._redis.publish(self._channel, msgspec.json.encode(message))

    async def publish_alert_event(self, org_id: str, event: dict[str, Any]) -> None:
        await self.publish(alert_event_message(org_id, event))

    async def start(self) -> None:
        if self._reader.start(self._read):
            await asyncio.wait_for(self._ready.wait(), timeout=10)

    async def stop(self) -> None:
        await self._reader.stop()

    async def _read(self) -> None:
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(self._channel)
                if self._ready.is_set():
                    for callback in list(self.resubscribed):
                        callback()
                self._ready.set()
                async for item in pubsub.listen():
                    if item.get("type") != "message":
                        continue
                    message = msgspec.json.decode(item["data"])
                    for handler in list(self._handlers):
                        try:
                            await handler(message)
                        except Exception:
                            log.exception("live handler failed")
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("live bus lost Redis; reconnecting in 1 s")
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

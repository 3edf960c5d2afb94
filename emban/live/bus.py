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
from emban.dependencies import REDIS, outages, redis_gone

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
        """Publish to every process; with Redis down, to this process's handlers only (its own
        sockets still refresh; other processes miss the message, as they would any message
        sent while they were away)."""
        try:
            await self._redis.publish(self._channel, msgspec.json.encode(message))
        except Exception as exc:
            if not redis_gone(exc):
                raise
            outages.down(REDIS)
            await self._deliver(message)

    async def _deliver(self, message: dict[str, Any]) -> None:
        for handler in list(self._handlers):
            try:
                await handler(message)
            except Exception:
                log.exception("live handler failed")

    async def publish_alert_event(self, org_id: str, event: dict[str, Any]) -> None:
        await self.publish(alert_event_message(org_id, event))

    async def start(self) -> None:
        if self._reader.start(self._read):
            await asyncio.wait_for(self._ready.wait(), timeout=10)

    async def stop(self) -> None:
        await self._reader.stop()

    async def _read(self) -> None:
        """Subscribe, hand messages to the handlers, and when Redis goes away subscribe again
        (every second until it is back): the live hub keeps running through an outage."""
        lost = False
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(self._channel)
                if self._ready.is_set():
                    for callback in list(self.resubscribed):
                        callback()
                self._ready.set()
                if lost:
                    log.info("live bus: Redis is back, subscribed again")
                    lost = False
                while True:
                    # A bounded wait: the client's socket_timeout would otherwise end a quiet
                    # subscription as if Redis had gone.
                    item = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if item is None or item.get("type") != "message":
                        continue
                    await self._deliver(msgspec.json.decode(item["data"]))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if redis_gone(exc):
                    if not lost:
                        log.warning("live bus lost Redis; subscribing again every second")
                        lost = True
                    outages.down(REDIS)
                else:
                    log.exception("live bus reader failed; subscribing again in 1 s")
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

"""Verified API keys, cached in the process so a known key costs no metadata round trip.

Every ``/v1`` or ``/graphql`` request with an API key used to look the key's hash up in the
metadata database: 0.5 to 1 ms and a pooled connection per request, a fixed cost a 6 ms
analytics query could not hide (issue 13). A key, once verified, is kept here by its SHA-256
digest with what the principal needs (id, org, environment, scope, prefix), never the clear key.

How a revoked key stops working everywhere:

- Deleting a key (``api_keys.delete_api_key``) or its org (``orgs.delete_org``) forgets it in
  this process once the transaction commits, and publishes an invalidation on the live bus; every
  process (RedisBus: every ``emban serve`` on the same Redis) forgets it when the message arrives,
  in milliseconds. A load of a key that raced with an invalidation is not stored (a generation
  counter), so a request that read the row just before the delete cannot put it back.
- An entry also expires after ``EMBAN_API_KEY_CACHE_TTL`` seconds (60 by default): the bound on
  how long a process that missed a bus message (Redis reconnecting) may still accept a deleted
  key. When the Redis reader reconnects the cache is cleared too, for the same reason.
- Nothing else in a key's principal can change: a key's role follows from its scope, which is
  fixed at creation, and the org's plan is not part of the principal (services read it from the
  org row when they need it), so member role changes and plan changes need no invalidation.

Unknown keys are not cached (a guessed key stays a database miss and cannot fill memory), and the
cache holds at most :data:`LIMIT` keys (cleared when full, like the embed revocation cache).

``last_used_at`` is written at most once per :data:`TOUCH_SECONDS` per key and process, on the
request that finds it older than that: one write a minute for a busy key, not one per request.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from emban.services.boundary import after_commit

if TYPE_CHECKING:
    from emban.runtime import Runtime  # runtime.py imports this module

MESSAGE_TYPE = "api_keys_revoked"
LIMIT = 10_000
TOUCH_SECONDS = 60.0
DEFAULT_TTL_SECONDS = 60.0


@dataclass(frozen=True)
class VerifiedKey:
    """What a request needs of a key whose digest matched a stored row."""

    api_key_id: str
    org_id: str
    environment_id: str
    scope: str
    prefix: str


@dataclass
class _Entry:
    key: VerifiedKey
    loaded_at: float  # monotonic
    touched_at: float  # monotonic: when this process last wrote last_used_at (or saw it fresh)


def revocation_message(*, key_ids: Iterable[str] = (), org_id: str | None = None) -> dict[str, Any]:
    """The bus message that makes every process forget keys (by id) or every key of an org."""
    return {"type": MESSAGE_TYPE, "key_ids": sorted(key_ids), "org_id": org_id}


def announce_revoked(
    rt: Runtime, *, key_ids: Iterable[str] = (), org_id: str | None = None
) -> None:
    """Once the caller's transaction commits: forget the keys here at once, then tell every
    process through the live bus (this one hears it again, harmlessly)."""
    ids = list(key_ids)

    async def call() -> None:
        rt.api_keys.forget(key_ids=ids, org_id=org_id)
        await rt.live.publish(revocation_message(key_ids=ids, org_id=org_id))

    after_commit(call)


class ApiKeyCache:
    """Digest → verified key, with a TTL and explicit invalidation (see the module docstring)."""

    def __init__(self, ttl_seconds: float = DEFAULT_TTL_SECONDS, limit: int = LIMIT) -> None:
        self.ttl_seconds = ttl_seconds
        self._limit = limit
        self._entries: dict[str, _Entry] = {}
        self._generation = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def generation(self) -> int:
        """Read before a database lookup and hand to :meth:`store`."""
        return self._generation

    def get(self, digest: str) -> VerifiedKey | None:
        entry = self._entries.get(digest)
        if entry is None or time.monotonic() - entry.loaded_at >= self.ttl_seconds:
            self.misses += 1
            return None
        self.hits += 1
        return entry.key

    def store(self, digest: str, key: VerifiedKey, generation: int, *, touched: bool) -> None:
        """Remember a key loaded at ``generation``; dropped if an invalidation came since."""
        if generation != self._generation:
            return
        if len(self._entries) >= self._limit:
            self._entries.clear()
        now = time.monotonic()
        previous = self._entries.get(digest)
        touched_at = now if touched or previous is None else previous.touched_at
        self._entries[digest] = _Entry(key, now, touched_at)

    def due_for_touch(self, digest: str) -> bool:
        """Whether ``last_used_at`` should be written now; marks it written if so."""
        entry = self._entries.get(digest)
        if entry is None:
            return False
        now = time.monotonic()
        if now - entry.touched_at < TOUCH_SECONDS:
            return False
        entry.touched_at = now
        return True

    def forget(self, *, key_ids: Iterable[str] = (), org_id: str | None = None) -> None:
        """Drop the given keys and every key of ``org_id``; loads in flight are not stored."""
        self._generation += 1
        ids = set(key_ids)
        for digest, entry in list(self._entries.items()):
            if entry.key.api_key_id in ids or entry.key.org_id == org_id:
                del self._entries[digest]

    def clear(self) -> None:
        """Forget everything (the bus lost messages while reconnecting)."""
        self._generation += 1
        self._entries.clear()

    async def on_message(self, message: dict[str, Any]) -> None:
        """The live bus handler: apply an invalidation published by any process."""
        if message.get("type") != MESSAGE_TYPE:
            return
        org_id = message.get("org_id")
        self.forget(
            key_ids=[str(k) for k in message.get("key_ids") or ()],
            org_id=org_id if isinstance(org_id, str) else None,
        )

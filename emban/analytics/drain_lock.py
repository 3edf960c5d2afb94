"""One ingest drain at a time per ClickHouse database, across every ``emban serve`` process.

De-duplication by event id reads the ids stored in the last day and then inserts the rest
(select-then-insert). It is exact while no other drain inserts into the same database between
the read and the insert: inside a process no two chunks of one org run at once; across processes
sharing one ClickHouse server (``EMBAN_CLICKHOUSE_URL``) each chunk holds this lock:

- PostgreSQL metadata: a session advisory lock (``pg_advisory_lock``) on a connection of its
  own, keyed by the ClickHouse database. PostgreSQL releases it when the holder's session ends,
  so a killed process never leaves it taken.
- SQLite metadata (processes on one machine sharing the file): an exclusive ``flock`` on a file
  next to the database, released by the kernel when the process ends.

Embedded chDB needs none across processes (one process owns the engine's directory); within the
process the lock is per org, so the two ingest lanes drain different orgs at the same time.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import IO, Protocol
from urllib.parse import urlsplit, urlunsplit

import asyncpg

log = logging.getLogger("emban.ingest")


class DrainLock(Protocol):
    def hold(self, orgs: Sequence[str] = ()) -> contextlib.AbstractAsyncContextManager[None]:
        """Held while a drain chunk holding rows of ``orgs`` reads stored ids and inserts."""
        ...

    async def close(self) -> None: ...


class ProcessLock:
    """Within one process only (embedded chDB: the only process on the engine). Per org: chunks
    of different orgs (the ingest lanes) drain at the same time; two chunks holding rows of one
    org take turns."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}

    @contextlib.asynccontextmanager
    async def hold(self, orgs: Sequence[str] = ()) -> AsyncIterator[None]:
        keys = sorted(set(orgs)) or [""]  # one order for every holder: no deadlock
        for key in keys:
            self._users[key] = self._users.get(key, 0) + 1
            self._locks.setdefault(key, asyncio.Lock())
        try:
            async with contextlib.AsyncExitStack() as stack:
                for key in keys:
                    await stack.enter_async_context(self._locks[key])
                yield
        finally:
            for key in keys:
                self._users[key] -= 1
                if not self._users[key]:
                    del self._users[key], self._locks[key]

    async def close(self) -> None:
        return None


def lock_key(clickhouse_url: str) -> int:
    """A signed 64-bit advisory-lock key naming one ClickHouse database (credentials left out)."""
    parts = urlsplit(clickhouse_url)
    where = f"{parts.hostname}:{parts.port or 8123}/{parts.path.strip('/') or 'default'}"
    digest = hashlib.blake2b(f"emban-ingest-drain:{where}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PostgresLock:
    def __init__(self, database_url: str, key: int) -> None:
        parts = urlsplit(database_url)
        self._dsn = urlunsplit(("postgresql", parts.netloc, parts.path, "", ""))
        self.key = key
        self._conn: asyncpg.Connection | None = None
        self._local = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def hold(self, orgs: Sequence[str] = ()) -> AsyncIterator[None]:
        """One chunk at a time per ClickHouse database, whatever its orgs."""
        async with self._local:
            if self._conn is None or self._conn.is_closed():
                self._conn = await asyncpg.connect(self._dsn)
            conn = self._conn
            await conn.execute("SELECT pg_advisory_lock($1)", self.key)
            try:
                yield
            finally:
                try:
                    await conn.execute("SELECT pg_advisory_unlock($1)", self.key)
                except (asyncpg.PostgresError, OSError):
                    # The session is gone, and the lock with it; reconnect next time.
                    log.warning("releasing the drain lock failed; reconnecting", exc_info=True)
                    await conn.close(timeout=1)
                    self._conn = None

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None


class FileLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def hold(self, orgs: Sequence[str] = ()) -> AsyncIterator[None]:
        """One chunk at a time per ClickHouse database, whatever its orgs."""
        async with self._local:
            file: IO[str] = self.path.open("a+")
            try:
                await asyncio.to_thread(fcntl.flock, file.fileno(), fcntl.LOCK_EX)
                yield
            finally:
                file.close()  # closing the descriptor releases the lock

    async def close(self) -> None:
        return None


def drain_lock(clickhouse_url: str | None, metadata_url: str) -> DrainLock:
    """The lock the settings call for (see the module's docstring)."""
    if clickhouse_url is None:
        return ProcessLock()
    if metadata_url.startswith(("postgres://", "postgresql://")):
        return PostgresLock(metadata_url, lock_key(clickhouse_url))
    sqlite_file = Path(urlsplit(metadata_url).path)
    return FileLock(sqlite_file.with_name(sqlite_file.name + ".ingest-drain.lock"))

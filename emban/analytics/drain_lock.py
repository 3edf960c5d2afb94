"""One ingest drain at a time per ClickHouse database, across every ``emban serve`` process.

De-duplication by event id reads the ids stored in the last day and then inserts the rest
(select-then-insert). It is exact while no other drain inserts into the same database between
the read and the insert: inside a process one drainer runs one chunk at a time; across processes
sharing one ClickHouse server (``EMBAN_CLICKHOUSE_URL``) each chunk holds this lock:

- PostgreSQL metadata: a session advisory lock (``pg_advisory_lock``) on a connection of its
  own, keyed by the ClickHouse database. PostgreSQL releases it when the holder's session ends,
  so a killed process never leaves it taken.
- SQLite metadata (processes on one machine sharing the file): an exclusive ``flock`` on a file
  next to the database, released by the kernel when the process ends.

Embedded chDB needs none: one process owns the engine's directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Protocol
from urllib.parse import urlsplit, urlunsplit

import asyncpg

log = logging.getLogger("emban.ingest")


class DrainLock(Protocol):
    def hold(self) -> contextlib.AbstractAsyncContextManager[None]: ...

    async def close(self) -> None: ...


class ProcessLock:
    """Within one process only (embedded chDB: the only process on the engine)."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        async with self._lock:
            yield

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
    async def hold(self) -> AsyncIterator[None]:
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
    async def hold(self) -> AsyncIterator[None]:
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

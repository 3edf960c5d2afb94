"""When a dependency is down: which one, what the caller is told, and how often it is logged.

The three dependencies a request can need are ClickHouse (the HTTP store; chDB is in-process and
cannot be "down"), the metadata database (PostgreSQL) and Redis. A failure to reach one of them is
not a bug and not the caller's fault: both edges turn it into :class:`emban.errors.Unavailable`
(503 ``unavailable`` with ``Retry-After``, naming the dependency) through
:func:`dependency_failure`, the same way they turn a PostgreSQL refusal of a NUL character into a
400. Nothing is reconnected here: aiohttp's connector, asyncpg's pool and redis-py's pool each
open a new connection on the next use, so the service recovers on its own once the dependency
answers again (``tests/e2e/test_dependency_outages.py`` stops and restarts each one under a
running ``emban serve``).

Logging: an outage is one WARNING when it is first seen (and again at most once a minute while it
lasts), and one INFO when ``/healthz`` finds the dependency back — not a traceback per request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from types import TracebackType
from typing import Final

import asyncpg
import redis.exceptions
from tortoise.exceptions import DBConnectionError

from emban.errors import Unavailable

log = logging.getLogger("emban.dependencies")

CLICKHOUSE: Final = "clickhouse"
METADATA: Final = "metadata"
REDIS: Final = "redis"

RETRY_AFTER_SECONDS: Final = 5
"""``Retry-After`` of a 503 ``unavailable``: long enough for a restart or a failover to finish,
short enough that a client's retry lands soon after it does."""

REPEAT_WARNING_SECONDS: Final = 60.0

# Exceptions that mean "the server is gone", whoever raised them.
_POSTGRES_GONE: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    DBConnectionError,
)
REDIS_GONE: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)
"""What redis-py raises when Redis cannot be reached or does not answer in time."""


def redis_gone(exc: BaseException) -> bool:
    """Whether ``exc`` means Redis cannot be reached: one of :data:`REDIS_GONE`, or an error
    raised while handling one. redis-py turns a connection lost during ``WATCH`` into a
    ``WatchError`` (arq's job pickup watches keys), which is not a ``ConnectionError``."""
    return any(isinstance(error, REDIS_GONE) for error in _chain(exc))


# Raised from a socket (refused, reset, timed out, name not resolved): which dependency it is
# comes from the library whose frames raised it.
_SOCKET_ERRORS: tuple[type[BaseException], ...] = (OSError, asyncio.TimeoutError)
_MODULE_PARTS: tuple[tuple[str, str], ...] = (
    ("asyncpg", METADATA),
    ("tortoise", METADATA),
    ("redis", REDIS),
    ("arq", REDIS),
    ("aiochclient", CLICKHOUSE),
)
# aiohttp is not in the list: its frames are also the server's own (a client hanging up), and
# the ClickHouse store turns its aiohttp errors into ``Unavailable`` itself (http_store.py).


def unavailable(dependency: str) -> Unavailable:
    """The 503 for ``dependency`` (and its WARNING, if this outage has not been logged yet)."""
    outages.down(dependency)
    return Unavailable(dependency, retry_after=RETRY_AFTER_SECONDS)


def dependency_failure(exc: BaseException) -> Unavailable | None:
    """The 503 for an exception that means a dependency cannot be reached, else None.

    Looks through the exception's causes (Tortoise wraps asyncpg's errors, aiohttp wraps the
    socket's) and, for a bare socket error, at which library raised it."""
    for error in _chain(exc):
        if isinstance(error, Unavailable):
            return error
    part = dependency_failure_part(exc)
    return None if part is None else unavailable(part)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    error: BaseException | None = exc
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ if error.__cause__ is not None else error.__context__


def _part_of(error: BaseException) -> str | None:
    if isinstance(error, _POSTGRES_GONE):
        return METADATA
    if isinstance(error, asyncpg.exceptions.InterfaceError) and "closed" in str(error):
        return METADATA  # "connection is closed": the pooled connection died with the server
    if isinstance(error, REDIS_GONE):
        return REDIS
    if isinstance(error, _SOCKET_ERRORS):
        return _raised_in(error.__traceback__)
    return None


def _raised_in(tb: TracebackType | None) -> str | None:
    """The dependency whose client library holds the innermost frame of ``tb`` that names one."""
    part: str | None = None
    while tb is not None:
        module = str(tb.tb_frame.f_globals.get("__name__", ""))
        for prefix, name in _MODULE_PARTS:
            if module == prefix or module.startswith(prefix + "."):
                part = name
                break
        tb = tb.tb_next
    return part


class Outages:
    """Which dependencies are known to be down, so an outage is logged once, not per request."""

    def __init__(self) -> None:
        self._warned_at: dict[str, float] = {}

    def down(self, dependency: str) -> None:
        now = time.monotonic()
        last = self._warned_at.get(dependency)
        if last is None or now - last >= REPEAT_WARNING_SECONDS:
            self._warned_at[dependency] = now
            log.warning(
                "%s is unavailable: requests that need it answer 503 unavailable", dependency
            )

    def up(self, dependency: str) -> None:
        if self._warned_at.pop(dependency, None) is not None:
            log.info("%s is available again", dependency)

    def is_down(self, dependency: str) -> bool:
        return dependency in self._warned_at


outages = Outages()
"""This process's record of the outages it has logged."""


class _WithoutTraceback(logging.Filter):
    """Keeps a client library's reconnect warning but drops its traceback when the exception
    only says the dependency is down (asyncpg's pool logs one each time it fails to refill)."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is not None and dependency_failure_part(error) is not None:
            record.exc_info = None
            record.exc_text = None
        return True


def dependency_failure_part(exc: BaseException) -> str | None:
    """The dependency an exception says is down (like :func:`dependency_failure`, without
    counting an outage)."""
    for error in _chain(exc):
        if isinstance(error, Unavailable):
            return error.dependency
        part = _part_of(error)
        if part is not None:
            return part
    return None


_QUIET = _WithoutTraceback()


def quiet_reconnect_tracebacks() -> None:
    """Install the filter on the client libraries' loggers (idempotent)."""
    for name in ("asyncpg.pool",):
        logger = logging.getLogger(name)
        if _QUIET not in logger.filters:
            logger.addFilter(_QUIET)

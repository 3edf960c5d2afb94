"""The metadata store (Tortoise ORM): configuration, migrations and the connection lifecycle."""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import asyncpg
from tortoise import connections as tortoise_connections
from tortoise import exceptions as tortoise_exceptions
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.context import TortoiseContext
from tortoise.migrations.api import migrate as tortoise_migrate

from emban.error_codes import RequestErrorCode
from emban.errors import BadRequest
from emban.settings import Settings

APP_LABEL = "emban"
READ_CONNECTION = "read"  # SQLite: the connection reads outside a transaction use


def tortoise_config(settings: Settings, *, read_connection: bool = True) -> dict[str, Any]:
    """Tortoise's configuration; ``read_connection=False`` for migrations, whose reads must see
    their own transaction's writes."""
    url = settings.metadata_db_url
    connections = {"default": url}
    routers: list[str] = []
    if read_connection and _sqlite_file(url):
        # One SQLite connection runs one statement at a time (Tortoise serialises them behind a
        # lock), so every lookup (a credential, an embed's dashboard, an org's plan) would wait
        # for whatever write or transaction holds it. In WAL mode readers never block the
        # writer nor wait for it: reads outside a transaction take a second connection.
        connections[READ_CONNECTION] = url
        routers.append(f"{__name__}.ReadRouter")
    return {
        "connections": connections,
        "routers": routers,
        "apps": {
            APP_LABEL: {
                "models": ["emban.models"],
                "migrations": "emban.models.migrations",
                "default_connection": "default",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


def _sqlite_file(url: str) -> bool:
    """A file-backed SQLite URL (``:memory:`` would give each connection a database of its own)."""
    return url.startswith("sqlite://") and ":memory:" not in url


class ReadRouter:
    """Tortoise's router: a read outside a metadata transaction goes to the read connection; a
    read inside one stays on the transaction's connection (it must see the transaction's own
    writes), and every write goes to the default connection. A read after a committed write
    sees it (SQLite WAL: each statement outside a transaction reads the latest commit)."""

    def db_for_read(self, model: type[Any]) -> str | None:
        return None if _transaction_open.get() else READ_CONNECTION

    def db_for_write(self, model: type[Any]) -> str | None:
        return None


def probe_connection() -> BaseDBAsyncClient:
    """The connection ``/healthz`` asks ``SELECT 1``: the read connection where there is one
    (SQLite), so the probe answers whether the database answers instead of queueing behind the
    writes and transactions on the one write connection (under a sign-up or auto-create loop that
    queue is what it would measure); else the default connection (PostgreSQL: its pool)."""
    client: BaseDBAsyncClient
    try:
        client = tortoise_connections.get(READ_CONNECTION)
    except tortoise_exceptions.ConfigurationError:
        client = tortoise_connections.get("default")
    return client


async def migrate_metadata(settings: Settings) -> None:
    """Apply pending Tortoise migrations (files under ``emban/models/migrations``).

    Runs in a context of its own, closed on exit, so it never shadows the serving context.
    """
    if settings.embedded:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    async with TortoiseContext():
        await tortoise_migrate(config=tortoise_config(settings, read_connection=False))


async def open_metadata(settings: Settings) -> TortoiseContext:
    """Open this process's metadata connections; every task falls back to this context.

    The context is not bound to the calling task (no contextvar), so request handlers, jobs and
    tests running in other tasks all see it; close it with :func:`close_metadata`.
    """
    context = TortoiseContext()
    with context:  # bound only while initialising: the app registry looks the context up
        await context.init(config=tortoise_config(settings), _enable_global_fallback=True)
    return context


async def close_metadata(context: TortoiseContext) -> None:
    await context.close_connections()


@asynccontextmanager
async def metadata_opened(settings: Settings) -> AsyncIterator[TortoiseContext]:
    """Open the metadata store for a command-line action and close it afterwards."""
    context = await open_metadata(settings)
    try:
        yield context
    finally:
        await close_metadata(context)


# --- engine I/O stays outside metadata transactions ---------------------------------------------
# On the embedded defaults the metadata store is one SQLite connection: while a transaction is
# open, every other metadata query waits, the credential lookup of every request included. Engine
# calls take milliseconds to seconds (scans, mutations, a wait for a pooled connection), so one of
# them inside a transaction stalls every org. The request/job boundary marks its transactions here
# and the engine store refuses to run inside one (``analytics/guarded.py``), so the mistake fails
# loudly in the first test that takes the path instead of slowing everyone down in production.

_transaction_open: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "emban_metadata_transaction_open", default=False
)


class EngineIOInTransaction(RuntimeError):
    """ClickHouse work was attempted while a metadata transaction is open in this task."""


@contextmanager
def marked_transaction() -> Iterator[None]:
    """Mark the current task as holding a metadata transaction (used by the boundary)."""
    token = _transaction_open.set(True)
    try:
        yield
    finally:
        _transaction_open.reset(token)


def transaction_open() -> bool:
    return _transaction_open.get()


def refuse_inside_transaction(what: str) -> None:
    """Raise :class:`EngineIOInTransaction` when a metadata transaction is open in this task.

    Do the engine work first and write in a short transaction afterwards, or defer it with
    ``boundary.after_commit`` (e.g. to a job).
    """
    if _transaction_open.get():
        raise EngineIOInTransaction(
            f"{what} inside a metadata transaction: engine work blocks every other metadata "
            "query while the transaction is open; run it before the transaction or after commit"
        )


def refused_text(exc: BaseException) -> BadRequest | None:
    """The 400 for a metadata write PostgreSQL refused because of the caller's text (a NUL
    character, which no PostgreSQL text or JSON column can hold), else None.

    Services refuse NUL where they know the field (``require_storable``); this is the net under
    every other text a request stores, so the class answers 400, never 500. The request's
    transaction is rolled back as for any error."""
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    if isinstance(cause, asyncpg.exceptions.UntranslatableCharacterError):
        return BadRequest(
            "text must not contain a NUL character", code=RequestErrorCode.invalid_text
        )
    if isinstance(exc, tortoise_exceptions.ValidationError):
        # The ORM checks a value against its column before any SQL (a text longer than the
        # column, an integer past its range), in a write or a lookup: the value came from the
        # request. Its message quotes the whole value, so it is not passed on.
        field = str(exc).split(":", 1)[0].strip()
        if field.isidentifier():
            return BadRequest(f"{field} is too long or out of range", field=field)
        return BadRequest("a value is too long or out of range", code=RequestErrorCode.bad_request)
    if isinstance(cause, asyncpg.exceptions.DataError):
        # SQLSTATE class 22 (data exception: a number out of range, a timestamp past the year
        # 294276, a string past its column) or asyncpg refusing a parameter before sending it.
        return BadRequest("a value is out of the range PostgreSQL stores")
    return None

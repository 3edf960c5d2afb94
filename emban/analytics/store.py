"""One small interface over the two ClickHouse stores (chDB embedded, ClickHouse over HTTP)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from emban.settings import Settings

_CODE = re.compile(r"Code:\s*(\d+)")
_TOKEN = re.compile(r"[A-Za-z0-9:_-]{1,200}")


class ClickHouseError(Exception):
    """An error reported by the engine, with its numeric ClickHouse code when it gave one."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        match = _CODE.search(message)
        self.code: int | None = int(match.group(1)) if match else None


class ResultTooLarge(ClickHouseError):
    """An answer longer than the caller's byte cap; refused before it is decoded."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"The result is {size} bytes, over the cap of {limit} bytes.")
        self.size = size
        self.limit = limit


@dataclass(frozen=True)
class QueryResult:
    columns: list[tuple[str, str]]
    rows: list[list[Any]]
    rows_read: int = 0
    elapsed_ms: float = 0.0


class EventStore(Protocol):
    """``params`` bind server-side as ``{name:Type}`` placeholders; values never enter SQL text.

    ``cluster``: the ClickHouse cluster the schema is spread over (``EMBAN_CLICKHOUSE_CLUSTER``),
    or ``None`` for one node (always for chDB); the DDL and the org deletion read it."""

    cluster: str | None

    async def ping(self) -> None: ...

    async def execute(self, sql: str, params: dict[str, Any] | None = None) -> None: ...

    async def query(
        self, sql: str, params: dict[str, Any] | None = None, *, background: bool = False
    ) -> QueryResult:
        """``background``: work that may wait (an ingest flush's de-duplication), run where it
        does not compete with reads (chDB: the insert connections, on a low-priority thread)."""
        ...

    async def query_adhoc(self, sql: str, *, max_result_bytes: int) -> QueryResult:
        """Run ad-hoc SQL on connections reserved for it, never the ones ingest, embeds and
        ``/healthz`` use, so slow ad-hoc work cannot make them wait. An answer longer than
        ``max_result_bytes`` raises :class:`ResultTooLarge` without being decoded."""
        ...

    async def insert_json(
        self,
        table: str,
        columns: list[str],
        payload: bytes,
        fmt: str = "JSONEachRow",
        *,
        token: str | None = None,
    ) -> None:
        """Insert newline-delimited JSON rows into ``table`` in one INSERT: objects
        (``JSONEachRow``) or arrays in column order (``JSONCompactEachRow``). With ``token``
        the INSERT carries it as ``insert_deduplication_token`` (materialized views included):
        the engine drops a repeat of an INSERT with the same token (the WAL's replay)."""
        ...

    async def close(self) -> None: ...


# ClickHouse reads a ``{name:Type}`` parameter value the way it reads a field of its escaped
# (TSV) format: ``\x76`` becomes ``v``, ``\N`` is NULL (an empty String), a lone trailing ``\``
# is a parse error and a raw tab or newline ends the value early (measured on chDB 26.9 and the
# HTTP interface). Every scalar string is therefore escaped so that ClickHouse reads back exactly
# the characters it was given; the table covers every character that parser gives a meaning to.
_ESCAPED = str.maketrans(
    {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0", "\b": "\\b", "\f": "\\f"}
)
_ESCAPE_ORDER = (
    ("\\", "\\\\"),
    ("\t", "\\t"),
    ("\n", "\\n"),
    ("\r", "\\r"),
    ("\0", "\\0"),
    ("\b", "\\b"),
    ("\f", "\\f"),
)
# Inside an array value each element is a quoted literal (the whole value is not unescaped
# first: measured), so a quote must be escaped as well; control characters are escaped too so the
# text never depends on how a raw one is read.
_QUOTED = str.maketrans(
    {
        "\\": "\\\\",
        "'": "\\'",
        "\t": "\\t",
        "\n": "\\n",
        "\r": "\\r",
        "\0": "\\0",
        "\b": "\\b",
        "\f": "\\f",
    }
)


def dedup_settings(token: str) -> dict[str, str]:
    """The settings of an INSERT named by ``token``: a repeat is dropped by the table and by the
    materialized views' targets (each table needs ``non_replicated_deduplication_window``)."""
    if not _TOKEN.fullmatch(token):
        raise ValueError(f"not a deduplication token: {token!r}")
    return {
        "insert_deduplication_token": token,
        "insert_deduplicate": "1",
        "deduplicate_blocks_in_dependent_materialized_views": "1",
    }


def insert_dedup(token: str | None) -> dict[str, str]:
    """An INSERT's deduplication settings. The tables keep a deduplication window (for the WAL's
    tokens), and ClickHouse then drops an INSERT whose data repeats a recent block even without
    a token and with ``insert_deduplicate = 0`` (measured, chDB 26.9): an INSERT without a token
    of its own gets a random one, so it is never taken for another."""
    if token is None:
        return {"insert_deduplication_token": f"once-{uuid.uuid4().hex}"}
    return dedup_settings(token)


def param_text(value: Any) -> str:
    """Text form of a server-side parameter value, in the escaped form ClickHouse parses, so the
    engine reads back exactly ``value`` whatever characters it holds (arrays as quoted literals)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_quoted(v) for v in value) + "]"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return _escaped(value)
    raise TypeError(f"cannot bind a {type(value).__name__} as a ClickHouse parameter")


_NEEDS_ESCAPE = re.compile(r"[\\\t\n\r\0\b\f]")


def _escaped(value: str) -> str:
    """``value.translate(_ESCAPED)``, fast: most values (ids, names) need nothing, and a long one
    (the drain's 20,000 event ids in one parameter) is escaped in C, one character class at a
    time, the backslash first (the same text: each replacement adds only escaped backslashes)."""
    if _NEEDS_ESCAPE.search(value) is None:
        return value
    for char, escape in _ESCAPE_ORDER:
        value = value.replace(char, escape)
    return value


def _quoted(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_quoted(v) for v in value) + "]"
    if isinstance(value, str):
        return "'" + value.translate(_QUOTED) + "'"
    raise TypeError(f"cannot bind a {type(value).__name__} in a ClickHouse array parameter")


def open_store(settings: Settings) -> EventStore:
    """The HTTP store when ``EMBAN_CLICKHOUSE_URL`` is set, else chDB in the data dir."""
    if settings.clickhouse_url:
        from emban.analytics.http_store import HttpStore

        return HttpStore(settings.clickhouse_url, cluster=settings.clickhouse_cluster)
    from emban.analytics.chdb_store import ChdbStore

    return ChdbStore(settings.chdb_path)

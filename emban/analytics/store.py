"""One small interface over the two ClickHouse stores (chDB embedded, ClickHouse over HTTP)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

from emban.settings import Settings

_CODE = re.compile(r"Code:\s*(\d+)")


class ClickHouseError(Exception):
    """An error reported by the engine, with its numeric ClickHouse code when it gave one."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        match = _CODE.search(message)
        self.code: int | None = int(match.group(1)) if match else None


@dataclass(frozen=True)
class QueryResult:
    columns: list[tuple[str, str]]
    rows: list[list[Any]]
    rows_read: int = 0
    elapsed_ms: float = 0.0


class EventStore(Protocol):
    """``params`` bind server-side as ``{name:Type}`` placeholders; values never enter SQL text."""

    async def ping(self) -> None: ...

    async def execute(self, sql: str, params: dict[str, Any] | None = None) -> None: ...

    async def query(self, sql: str, params: dict[str, Any] | None = None) -> QueryResult: ...

    async def insert_json(
        self, table: str, columns: list[str], payload: bytes, fmt: str = "JSONEachRow"
    ) -> None:
        """Insert newline-delimited JSON rows into ``table`` in one INSERT: objects
        (``JSONEachRow``) or arrays in column order (``JSONCompactEachRow``)."""
        ...

    async def close(self) -> None: ...


def param_text(value: Any) -> str:
    """Text form of a server-side parameter value (arrays as quoted ClickHouse literals)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_quoted(v) for v in value) + "]"
    return str(value)


def _quoted(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


def open_store(settings: Settings) -> EventStore:
    """The HTTP store when ``EMBAN_CLICKHOUSE_URL`` is set, else chDB in the data dir."""
    if settings.clickhouse_url:
        from emban.analytics.http_store import HttpStore

        return HttpStore(settings.clickhouse_url)
    from emban.analytics.chdb_store import ChdbStore

    return ChdbStore(settings.chdb_path)

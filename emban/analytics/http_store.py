"""ClickHouse over HTTP; parameters go as ``param_<name>``, bound server-side.

Statements run through aiochclient. Queries are read as ``JSONCompact`` over the same aiohttp
session instead of aiochclient's ``fetch``: that is the format ChdbStore decodes, so both stores
return the same values, the column types, the columns of an empty result, duplicate column names
and the server's ``rows_read`` (aiochclient's Records expose none of these).

Ad-hoc SQL (``query_adhoc``) goes through its own aiohttp session with its own small connection
pool, so slow ad-hoc queries never occupy the connections ingest, embeds and ``/healthz`` use; its
answer is read in chunks and abandoned as soon as it passes the byte cap.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import unquote, urlsplit

import aiohttp
import msgspec
from aiochclient import ChClient, ChClientError

from emban.analytics.store import (
    ClickHouseError,
    QueryResult,
    ResultTooLarge,
    insert_dedup,
    param_text,
)
from emban.dependencies import CLICKHOUSE, unavailable

ADHOC_CONNECTIONS = 2
# A server that is down refuses at once; one that hangs (or a dropped route) must not hold a
# request for aiohttp's default 5 minutes before it is told 503 unavailable.
CONNECT_TIMEOUT = aiohttp.ClientTimeout(total=300, sock_connect=5)
_CHUNK = 1 << 16


class _JsonCompact(msgspec.Struct):
    meta: list[dict[str, str]]
    data: list[list[Any]]
    statistics: dict[str, float] = {}
    exception: str | None = None  # newer servers report a mid-stream error inside the JSON


class HttpStore:
    def __init__(self, url: str, *, cluster: str | None = None) -> None:
        self.cluster = cluster
        parts = urlsplit(url)
        self._url = f"{parts.scheme}://{parts.hostname}:{parts.port or 8123}/"
        self._user = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else None
        self._database = parts.path.strip("/") or "default"
        self._session: aiohttp.ClientSession | None = None
        self._adhoc_session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=CONNECT_TIMEOUT)
        return self._session

    def _adhoc_http(self) -> aiohttp.ClientSession:
        if self._adhoc_session is None:
            self._adhoc_session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=ADHOC_CONNECTIONS), timeout=CONNECT_TIMEOUT
            )
        return self._adhoc_session

    def _client(self, params: dict[str, Any] | None) -> ChClient:
        # aiochclient takes settings per client only; clients are cheap and share one session.
        return ChClient(
            self._http(),
            url=self._url,
            user=self._user,
            password=self._password,
            database=self._database,
            **_param_settings(params),
        )

    async def _post(
        self,
        data: bytes,
        settings: dict[str, str],
        *,
        session: aiohttp.ClientSession | None = None,
        max_bytes: int | None = None,
    ) -> bytes:
        """POST ``data`` (the query, or an INSERT's rows) with the same auth aiochclient sends;
        an answer longer than ``max_bytes`` raises ResultTooLarge as soon as it passes the cap."""
        headers = {}
        if self._user:
            headers["X-ClickHouse-User"] = self._user
        if self._password:
            headers["X-ClickHouse-Key"] = self._password
        try:
            async with (session or self._http()).post(
                self._url,
                params={"database": self._database, **settings},
                headers=headers,
                data=data,
            ) as response:
                body = await _read(response, max_bytes if response.status == 200 else None)
                if response.status != 200:
                    raise ClickHouseError(
                        body.decode(errors="replace").strip()
                        or f"ClickHouse answered HTTP {response.status} with an empty body"
                    )
                return body
        except (aiohttp.ClientConnectionError, TimeoutError) as exc:
            # Not a ClickHouseError: services turn those into 400 query_failed; this is a 503.
            raise unavailable(CLICKHOUSE) from exc
        except aiohttp.ClientError as exc:
            raise ClickHouseError(f"ClickHouse answered unreadably: {exc}") from exc

    async def ping(self) -> None:
        await self.query("SELECT 1")

    async def execute(self, sql: str, params: dict[str, Any] | None = None) -> None:
        try:
            await self._client(params).execute(sql)
        except ChClientError as exc:
            raise ClickHouseError(str(exc)) from exc
        except (aiohttp.ClientConnectionError, TimeoutError) as exc:
            raise unavailable(CLICKHOUSE) from exc
        except aiohttp.ClientError as exc:
            raise ClickHouseError(f"ClickHouse answered unreadably: {exc}") from exc

    async def query(
        self, sql: str, params: dict[str, Any] | None = None, *, background: bool = False
    ) -> QueryResult:
        # The server schedules its own work; ``background`` changes nothing over HTTP.
        return await self._query(sql, params, self._http(), None)

    async def query_adhoc(self, sql: str, *, max_result_bytes: int) -> QueryResult:
        return await self._query(sql, None, self._adhoc_http(), max_result_bytes)

    async def _query(
        self,
        sql: str,
        params: dict[str, Any] | None,
        session: aiohttp.ClientSession,
        max_bytes: int | None,
    ) -> QueryResult:
        started = time.perf_counter()
        # default_format applies only when the SQL has no FORMAT clause of its own; 64-bit
        # integers as JSON numbers, as chDB (and servers since 25.x) give them, not as strings.
        settings = {
            "default_format": "JSONCompact",
            "output_format_json_quote_64bit_integers": "0",
            **_param_settings(params),
        }
        body = await self._post(sql.encode(), settings, session=session, max_bytes=max_bytes)
        if not body.strip():
            return QueryResult(columns=[], rows=[])
        try:
            decoded = msgspec.json.decode(body, type=_JsonCompact)
        except msgspec.DecodeError as exc:
            # An error after the server started streaming arrives with HTTP 200, appended to
            # the partial result ("Code: N, ..."), so keep the tail where the message is.
            text = body[-2000:].decode(errors="replace").strip()
            raise ClickHouseError(f"Unreadable ClickHouse result: {text}") from exc
        if decoded.exception is not None:
            raise ClickHouseError(decoded.exception)
        return QueryResult(
            columns=[(col["name"], col["type"]) for col in decoded.meta],
            rows=decoded.data,
            rows_read=int(decoded.statistics.get("rows_read", 0)),
            elapsed_ms=(time.perf_counter() - started) * 1000.0,
        )

    async def insert_json(
        self,
        table: str,
        columns: list[str],
        payload: bytes,
        fmt: str = "JSONEachRow",
        *,
        token: str | None = None,
    ) -> None:
        query = f"INSERT INTO {table} ({', '.join(columns)}) FORMAT {fmt}"
        # Without a token no deduplication setting is sent: servers older than the schema's
        # deduplication window (the transport tests' 18.16) do not know it, and without the
        # window ClickHouse drops no repeat.
        settings = {"query": query, **self._insert_settings()}
        if token is not None:
            settings |= insert_dedup(token)
        await self._post(payload, settings)

    def _insert_settings(self) -> dict[str, str]:
        """On a cluster ``table`` is a Distributed table: insert in the foreground, so the
        request is answered only once every shard stored its rows (docs/decisions.md, "ClickHouse
        cluster DDL"). ``insert_distributed_sync`` is the name every version accepts (newer ones
        also call it ``distributed_foreground_insert``); sent as a URL setting, which servers too
        old for ``INSERT … SETTINGS`` read as well."""
        return {"insert_distributed_sync": "1"} if self.cluster else {}

    async def close(self) -> None:
        for session in (self._session, self._adhoc_session):
            if session is not None:
                await session.close()
        self._session = None
        self._adhoc_session = None


async def _read(response: aiohttp.ClientResponse, max_bytes: int | None) -> bytes:
    if max_bytes is None:
        return await response.read()
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(_CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise ResultTooLarge(size, max_bytes)  # leaving the context drops the connection
        chunks.append(chunk)
    return b"".join(chunks)


def _param_settings(params: dict[str, Any] | None) -> dict[str, str]:
    return {f"param_{name}": param_text(value) for name, value in (params or {}).items()}

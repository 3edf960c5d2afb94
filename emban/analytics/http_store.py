"""ClickHouse over HTTP (aiochclient); parameters go as ``param_<name>``, bound server-side."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import unquote, urlsplit

import aiohttp
from aiochclient import ChClient, ChClientError

from emban.analytics.store import ClickHouseError, QueryResult, param_text


class HttpStore:
    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self._url = f"{parts.scheme}://{parts.hostname}:{parts.port or 8123}/"
        self._user = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else None
        self._database = parts.path.strip("/") or "default"
        self._session: aiohttp.ClientSession | None = None

    def _client(self, params: dict[str, Any] | None) -> ChClient:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        settings = {f"param_{name}": param_text(value) for name, value in (params or {}).items()}
        # aiochclient takes settings per client only; clients are cheap and share one session.
        return ChClient(
            self._session,
            url=self._url,
            user=self._user,
            password=self._password,
            database=self._database,
            **settings,
        )

    async def ping(self) -> None:
        await self.query("SELECT 1")

    async def execute(self, sql: str, params: dict[str, Any] | None = None) -> None:
        try:
            await self._client(params).execute(sql)
        except ChClientError as exc:
            raise ClickHouseError(str(exc)) from exc
        except aiohttp.ClientError as exc:
            raise ClickHouseError(f"ClickHouse is unreachable: {exc}") from exc

    async def query(self, sql: str, params: dict[str, Any] | None = None) -> QueryResult:
        started = time.perf_counter()
        try:
            records = await self._client(params).fetch(sql)
        except ChClientError as exc:
            raise ClickHouseError(str(exc)) from exc
        except aiohttp.ClientError as exc:
            raise ClickHouseError(f"ClickHouse is unreachable: {exc}") from exc
        columns: list[tuple[str, str]] = []
        rows: list[list[Any]] = []
        for record in records:
            if not columns:
                columns = [(name, "") for name in record.keys()]  # noqa: SIM118
            rows.append(list(record.values()))
        return QueryResult(
            columns=columns, rows=rows, elapsed_ms=(time.perf_counter() - started) * 1000.0
        )

    async def insert_json(self, table: str, columns: list[str], payload: bytes) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        query = f"INSERT INTO {table} ({', '.join(columns)}) FORMAT JSONEachRow"
        headers = {}
        if self._user:
            headers["X-ClickHouse-User"] = self._user
        if self._password:
            headers["X-ClickHouse-Key"] = self._password
        try:
            async with self._session.post(
                self._url,
                params={"query": query, "database": self._database},
                headers=headers,
                data=payload,
            ) as response:
                if response.status != 200:
                    raise ClickHouseError((await response.text()).strip())
        except aiohttp.ClientError as exc:
            raise ClickHouseError(f"ClickHouse is unreachable: {exc}") from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

"""A ClickHouse server over HTTP for tests that need one they can stop: chDB behind the part of
ClickHouse's HTTP interface that ``emban.analytics.http_store.HttpStore`` speaks.

Why not the Debian ``clickhouse-server``: it is 18.16, which cannot hold emban's schema
(``DateTime64``, ``Map``) or bind ``{name:Type}`` parameters, so ``emban serve`` cannot ingest into
it. chDB is the same engine as a current server (26.9); this process gives it an HTTP port and
its own data directory, so a test can SIGKILL it (connections refused, as when a server dies) and
start it again on the same directory (the data is still there).

Spoken: ``POST /`` with the statement as the body, or with ``query=`` as a URL parameter and the
INSERT's rows as the body; ``param_<name>`` bound server-side; ``default_format`` when the SQL
names none. Errors answer 500 with the engine's ``Code: N, ...`` text, as the server does.

Run: ``python -m tests.clickhouse_http_front --port N --path DIR``; it prints ``ready`` when it
answers.
"""

from __future__ import annotations

import argparse
import asyncio
import re
from typing import Any

import chdb
from aiohttp import web

_HAS_FORMAT = re.compile(r"\bFORMAT\s+\w+\s*$", re.IGNORECASE)
_WRITES = re.compile(r"^\s*(CREATE|ALTER|DROP|INSERT|RENAME|TRUNCATE|OPTIMIZE|SYSTEM)\b", re.I)


def _run(conn: Any, sql: str, fmt: str, params: dict[str, str]) -> bytes:
    result = conn.query(sql, fmt, params=params) if params else conn.query(sql, fmt)
    return bytes(result.bytes())


def make_app(path: str) -> web.Application:
    conn = chdb.connect(path)
    lock = asyncio.Lock()  # one chDB connection runs one query at a time

    async def handle(request: web.Request) -> web.Response:
        body = (await request.read()).decode()
        query = request.query.get("query")
        sql = f"{query}\n{body}" if query else body
        params = {
            name.removeprefix("param_"): value
            for name, value in request.query.items()
            if name.startswith("param_")
        }
        if _HAS_FORMAT.search(sql.strip()) or _WRITES.match(sql):
            fmt = "CSV"  # the SQL's own FORMAT wins (an INSERT's rows follow it)
        else:
            fmt = request.query.get("default_format", "TabSeparated")
        try:
            async with lock:
                answer = await asyncio.to_thread(_run, conn, sql, fmt, params)
        except Exception as exc:  # chDB's error text carries ClickHouse's "Code: N"
            return web.Response(status=500, text=str(exc))
        return web.Response(body=answer)

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_route("*", "/", handle)

    async def close(app: web.Application) -> None:
        conn.close()

    app.on_cleanup.append(close)
    return app


async def main(port: int, path: str) -> None:
    runner = web.AppRunner(make_app(path))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.port, arguments.path))

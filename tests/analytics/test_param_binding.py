"""Parameter values reach ClickHouse byte-exact, whatever characters they hold (issue 8, defect 1).

ClickHouse reads a ``{name:String}`` value in its escaped (TSV) form: sent as-is, the 9 characters
``\\x76ictim`` were read as ``victim`` and a value ending in ``\\`` failed every query. These
properties bind arbitrary text (control characters, backslashes, quotes, ``\\N``, any Unicode) as a
scalar String, as Array(String) elements and as Map keys, and read it back unchanged:

- on chDB (the engine itself parses the value);
- on the HTTP store: Debian's 18.16 server has no server-side parameters, so a recording server
  captures the exact HTTP request the store sends (for both of its paths, ``query`` through our own
  POST and ``execute`` through aiochclient), the query string is decoded the way ClickHouse's HTTP
  handler decodes it, and that text is handed to the ClickHouse 26.9 parameter parser (chDB's)
  unchanged — the same text a current server would receive.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emban.analytics.chdb_store import ChdbStore
from emban.analytics.guarded import OutsideTransactions
from emban.analytics.http_store import HttpStore
from emban.analytics.store import param_text
from emban.runtime import Runtime

# Every character st.text() can draw except surrogates (not encodable as UTF-8): control
# characters, NUL, backslashes, quotes, braces and the whole Unicode range.
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
# The spellings that used to be reinterpreted, mixed in so each run certainly covers them.
TRICKY = st.sampled_from(
    ["\\x76ictim", "victim\\", "\\N", "\\", "vic\\tim", "\\'", "'", "\t\n\r\0", "{x}", "\\0", "é☃𝄞"]
)
VALUES = st.one_of(TRICKY, TEXT, st.builds(lambda a, b: a + b, TRICKY, TEXT))
EXAMPLES = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

ROUND_TRIP = (
    "SELECT {s:String} AS s, {a:Array(String)} AS a, "
    "map({s:String}, 1, 'other', 2)[{s:String}] AS by_key, "
    "{s:String} IN {a:Array(String)} AS found"
)


def expected(value: str, others: list[str]) -> list[Any]:
    by_key = 2 if value == "other" else 1
    return [value, [*others, value], by_key, 1]


@given(value=VALUES, others=st.lists(VALUES, max_size=3))
@EXAMPLES
async def test_chdb_reads_back_every_string_exactly(
    runtime: Runtime, value: str, others: list[str]
) -> None:
    result = await runtime.events.query(ROUND_TRIP, {"s": value, "a": [*others, value]})
    assert result.rows == [expected(value, others)]


async def test_chdb_escaped_spellings_are_not_their_unescaped_value(runtime: Runtime) -> None:
    result = await runtime.events.query(
        "SELECT {a:String} = 'victim', {b:String} = 'victim', length({c:String}), "
        "{d:String} = 'victim', {e:Array(String)}",
        {"a": "\\x76ictim", "b": "vic\\tim", "c": "\\N", "d": "victim\\", "e": ["\\x76ictim"]},
    )
    assert result.rows == [[0, 0, 2, 0, ["\\x76ictim"]]]


# --- the HTTP store: the exact request it sends -----------------------------------------------


@dataclass
class Recorder:
    """A stand-in ClickHouse that keeps each request's query-string parameters and body."""

    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        # ClickHouse's HTTP handler decodes the query string as an HTML form does ('+' is a space,
        # %XX a byte, then UTF-8): parse_qsl applies the same rules to the raw text sent.
        params = dict(parse_qsl(request.query_string, keep_blank_values=True, strict_parsing=True))
        self.requests.append((params, await request.read()))
        return web.Response(body=json.dumps({"meta": [], "data": []}).encode())


@pytest.fixture
async def recorder() -> AsyncIterator[tuple[Recorder, HttpStore]]:
    recording = Recorder()
    app = web.Application()
    app.router.add_post("/", recording.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    store = HttpStore(f"http://127.0.0.1:{server.port}/default")
    yield recording, store
    await store.close()
    await server.close()


async def parsed_by_clickhouse(runtime: Runtime, sql: str, sent: dict[str, str]) -> list[Any]:
    """What ClickHouse 26.9 reads from ``param_<name>`` texts exactly as they were sent."""
    store = runtime.events.inner if isinstance(runtime.events, OutsideTransactions) else None
    assert isinstance(store, ChdbStore)
    # The raw engine connection: ChdbStore.query would escape the text a second time.
    pool = await store._connections()
    conn = await pool.get()
    try:
        raw = await asyncio.to_thread(
            conn.query,
            sql,
            "JSONCompact",
            params={k.removeprefix("param_"): v for k, v in sent.items()},
        )
    finally:
        pool.put_nowait(conn)
    rows: list[Any] = json.loads(bytes(raw.bytes()))["data"]
    return rows


@given(value=VALUES, others=st.lists(VALUES, max_size=3))
@EXAMPLES
async def test_http_store_sends_text_clickhouse_reads_back_exactly(
    runtime: Runtime, recorder: tuple[Recorder, HttpStore], value: str, others: list[str]
) -> None:
    recording, store = recorder
    recording.requests.clear()
    params = {"s": value, "a": [*others, value]}
    await store.query(ROUND_TRIP, params)
    await store.execute("ALTER TABLE t DELETE WHERE s = {s:String}", params)  # via aiochclient
    (query_params, query_body), (exec_params, exec_body) = recording.requests
    assert query_body.decode() == ROUND_TRIP
    assert exec_body.decode() == "ALTER TABLE t DELETE WHERE s = {s:String}"
    for sent in (query_params, exec_params):
        bound = {k: v for k, v in sent.items() if k.startswith("param_")}
        assert sorted(bound) == ["param_a", "param_s"]
        assert await parsed_by_clickhouse(runtime, ROUND_TRIP, bound) == [expected(value, others)]


def test_param_text_escapes_what_the_parser_reads() -> None:
    assert param_text("\\x76ictim") == "\\\\x76ictim"
    assert param_text("a\tb\nc\rd\0") == "a\\tb\\nc\\rd\\0"
    assert param_text("it's") == "it's"  # a scalar is not quoted: a quote is plain text
    assert param_text(["it's", "\\N"]) == "['it\\'s','\\\\N']"
    assert param_text([1, 2.5]) == "[1,2.5]"
    assert param_text(True) == "1"
    with pytest.raises(TypeError):
        param_text(None)


ESCAPES = {
    "\\": "\\\\",
    "\t": "\\t",
    "\n": "\\n",
    "\r": "\\r",
    "\0": "\\0",
    "\b": "\\b",
    "\f": "\\f",
}


@settings(max_examples=500)
@given(value=st.text(st.sampled_from([*ESCAPES, "a", "t", "'", "é", "\x01"])) | st.text())
def test_param_text_escapes_each_character_on_its_own(value: str) -> None:
    """The fast escaping (a check, then one replace per character class) gives the text of
    escaping each character independently, whatever follows what."""
    assert param_text(value) == "".join(ESCAPES.get(c, c) for c in value)

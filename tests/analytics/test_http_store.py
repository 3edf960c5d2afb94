"""HttpStore against a real ClickHouse server (scripts/ensure-clickhouse.sh: Debian's 18.16 on
127.0.0.1:18123, users `default` without a password and `emban`/`secret`).

18.16 has no server-side query parameters, Map or DateTime64, so these tests cover the transport
only: connect, auth, DDL, JSONEachRow inserts, JSONCompact reads and error mapping. Only HTTP here:
the test process already owns a chDB, and a second one must not be started.
"""

# Table names in the SQL below are generated here (secrets.token_hex), never user input.
# ruff: noqa: S608

from __future__ import annotations

import asyncio
import json
import secrets
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from emban.analytics.http_store import HttpStore
from emban.analytics.store import ClickHouseError, ResultTooLarge
from emban.errors import Unavailable

HOST = "127.0.0.1:18123"
URL = f"http://{HOST}/default"
EMBAN_URL = f"http://emban:secret@{HOST}/default"
SERVER_VERSION = "18.16.1"

COLUMNS = ["name", "n", "x", "at"]
TYPES = [("name", "String"), ("n", "UInt64"), ("x", "Float64"), ("at", "DateTime")]


def payload(rows: list[dict[str, Any]]) -> bytes:
    return b"\n".join(json.dumps(row, ensure_ascii=False).encode() for row in rows)


@pytest.fixture
async def store() -> AsyncIterator[HttpStore]:
    opened = HttpStore(URL)
    yield opened
    await opened.close()


@pytest.fixture
async def table(store: HttpStore) -> AsyncIterator[str]:
    name = f"http_store_{secrets.token_hex(6)}"
    await store.execute(
        f"CREATE TABLE {name} (name String, n UInt64, x Float64, at DateTime) "
        "ENGINE = MergeTree ORDER BY n"
    )
    yield name
    await store.execute(f"DROP TABLE IF EXISTS {name}")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # bound then released without listen(): connections are refused


async def test_ping_and_version(store: HttpStore) -> None:
    await store.ping()
    result = await store.query("SELECT version() AS v")
    assert result.columns == [("v", "String")]
    assert result.rows == [[SERVER_VERSION]]


async def test_password_user_from_url_is_the_one_authenticated() -> None:
    emban = HttpStore(EMBAN_URL)
    try:
        await emban.ping()
        # 18.16 has no currentUser(): a query finds itself in system.processes.
        result = await emban.query(
            "SELECT user FROM system.processes WHERE query LIKE '%whoami-5c1e%'"
        )
        assert result.rows == [["emban"]]
    finally:
        await emban.close()


async def test_insert_json_then_query_returns_exactly_those_rows(
    store: HttpStore, table: str
) -> None:
    rows = [
        {"name": "alpha", "n": 3, "x": 1.5, "at": "2024-01-02 03:04:05"},
        {"name": "beta", "n": 1, "x": -0.25, "at": "2024-02-29 23:59:59"},
        {"name": "gamma", "n": 18446744073709551615, "x": 0.0, "at": "1970-01-02 00:00:00"},
    ]
    await store.insert_json(table, COLUMNS, payload(rows))

    result = await store.query(f"SELECT name, n, x, at FROM {table} ORDER BY n")
    assert result.columns == TYPES
    assert result.rows == [
        ["beta", 1, -0.25, "2024-02-29 23:59:59"],
        ["alpha", 3, 1.5, "2024-01-02 03:04:05"],
        ["gamma", 18446744073709551615, 0.0, "1970-01-02 00:00:00"],
    ]
    assert result.rows_read == 3

    reordered = await store.query(f"SELECT at, x, n, name FROM {table} WHERE n = 3")
    assert reordered.columns == [
        ("at", "DateTime"),
        ("x", "Float64"),
        ("n", "UInt64"),
        ("name", "String"),
    ]
    assert reordered.rows == [["2024-01-02 03:04:05", 1.5, 3, "alpha"]]


async def test_a_clustered_store_inserts_in_the_foreground(table: str) -> None:
    """With EMBAN_CLICKHOUSE_CLUSTER the insert carries ``insert_distributed_sync=1`` as a URL
    setting: a real server accepts it (it would refuse an unknown setting, Code 115) and stores
    the rows; on a plain table the setting changes nothing."""
    clustered = HttpStore(URL, cluster="emban_cluster")
    try:
        await clustered.insert_json(table, ["name", "n"], payload([{"name": "sync", "n": 1}]))
        result = await clustered.query(f"SELECT name, n FROM {table}")
        assert result.rows == [["sync", 1]]
        with pytest.raises(ClickHouseError) as unknown:
            await clustered._post(b"", {"query": "SELECT 1", "no_such_setting_x": "1"})
        assert "Code: 115" in str(unknown.value)
    finally:
        await clustered.close()


async def test_insert_json_and_query_as_password_user(table: str) -> None:
    emban = HttpStore(EMBAN_URL)
    try:
        await emban.insert_json(
            table, ["name", "n"], payload([{"name": "from-emban", "n": 7}, {"name": "b", "n": 8}])
        )
        result = await emban.query(f"SELECT name, n, x, at FROM {table} ORDER BY n")
        assert result.rows == [
            ["from-emban", 7, 0.0, "0000-00-00 00:00:00"],
            ["b", 8, 0.0, "0000-00-00 00:00:00"],
        ]
    finally:
        await emban.close()


async def test_select_with_no_rows_keeps_its_columns(store: HttpStore, table: str) -> None:
    result = await store.query(f"SELECT name, n FROM {table}")
    assert result.columns == [("name", "String"), ("n", "UInt64")]
    assert result.rows == []
    assert result.rows_read == 0

    none = await store.query(
        "SELECT number AS k, toString(number) AS s FROM system.numbers LIMIT 0"
    )
    assert none.columns == [("k", "UInt64"), ("s", "String")]
    assert none.rows == []


async def test_duplicate_column_names_are_kept(store: HttpStore) -> None:
    result = await store.query("SELECT 1 AS a, 2 AS b, a, b")
    assert result.columns == [("a", "UInt8"), ("b", "UInt8"), ("a", "UInt8"), ("b", "UInt8")]
    assert result.rows == [[1, 2, 1, 2]]


async def test_syntax_error_is_code_62(store: HttpStore) -> None:
    with pytest.raises(ClickHouseError) as raised:
        await store.query("SELEC 1")
    assert raised.value.code == 62
    assert "Syntax error" in str(raised.value)

    with pytest.raises(ClickHouseError) as raised:
        await store.execute("CREATE TABLE (")
    assert raised.value.code == 62


async def test_unknown_table_is_code_60(store: HttpStore) -> None:
    missing = f"missing_{secrets.token_hex(6)}"
    with pytest.raises(ClickHouseError) as raised:
        await store.query(f"SELECT * FROM {missing}")
    assert raised.value.code == 60
    assert f"Table default.{missing} doesn't exist" in str(raised.value)

    with pytest.raises(ClickHouseError) as raised:
        await store.insert_json(missing, ["name"], payload([{"name": "x"}]))
    assert raised.value.code == 60

    with pytest.raises(ClickHouseError) as raised:
        await store.execute(f"DROP TABLE {missing}")
    assert raised.value.code == 60


async def test_bad_row_in_insert_json_is_a_clickhouse_error(store: HttpStore, table: str) -> None:
    with pytest.raises(ClickHouseError) as raised:
        await store.insert_json(table, ["name", "n"], b'{"name": "ok", "n": "not a number"}')
    assert raised.value.code == 27  # CANNOT_PARSE_INPUT_ASSERTION_FAILED
    assert (await store.query(f"SELECT count() FROM {table}")).rows == [[0]]


async def test_wrong_password_is_code_193_on_18_16() -> None:
    # WRONG_PASSWORD (193) on 18.16; servers since 20.x answer AUTHENTICATION_FAILED (516).
    wrong = HttpStore(f"http://emban:not-secret@{HOST}/default")
    try:
        for attempt in (wrong.ping(), wrong.execute("SELECT 1")):
            with pytest.raises(ClickHouseError) as raised:
                await attempt
            assert raised.value.code == 193
            assert "Wrong password for user emban" in str(raised.value)
        with pytest.raises(ClickHouseError) as raised:
            await wrong.insert_json("anything", ["name"], b'{"name": "x"}')
        assert raised.value.code == 193
    finally:
        await wrong.close()


async def test_unknown_user_is_code_192() -> None:
    ghost = HttpStore(f"http://ghost:pw@{HOST}/default")
    try:
        with pytest.raises(ClickHouseError) as raised:
            await ghost.ping()
        assert raised.value.code == 192
        assert "Unknown user ghost" in str(raised.value)
    finally:
        await ghost.close()


async def test_unknown_database_in_url_is_code_81() -> None:
    nowhere = HttpStore(f"http://{HOST}/no_such_db")
    try:
        with pytest.raises(ClickHouseError) as raised:
            await nowhere.ping()
        assert raised.value.code == 81
    finally:
        await nowhere.close()


async def test_unreachable_server_is_unavailable_not_a_query_error() -> None:
    down = HttpStore(f"http://127.0.0.1:{closed_port()}/default")
    try:
        for attempt in (
            down.ping(),
            down.execute("SELECT 1"),
            down.query("SELECT 1"),
            down.insert_json("t", ["name"], b'{"name": "x"}'),
        ):
            with pytest.raises(Unavailable) as raised:
                await attempt
            assert raised.value.status == 503
            assert raised.value.body() == {
                "error": "clickhouse is unavailable; retry later",
                "code": "unavailable",
                "dependency": "clickhouse",
                "retry_after": 5,
            }
            assert raised.value.headers() == {"Retry-After": "5"}
            assert not isinstance(raised.value, ClickHouseError)
    finally:
        await down.close()


async def test_awkward_strings_round_trip(store: HttpStore, table: str) -> None:
    names = [
        "it's",
        'say "hi"',
        "back\\slash",
        "trailing\\",
        "\\'both\\\"",
        "tab\there",
        "new\nline\r\n",
        "nul\x00byte",
        "ünïcødé — 中文 — русский",
        "emoji 🎉👩‍💻",
        "{tenant:String} and {0}",
        "",
    ]
    rows = [{"name": name, "n": i} for i, name in enumerate(names)]
    await store.insert_json(table, ["name", "n"], payload(rows))
    result = await store.query(f"SELECT n, name, length(name) FROM {table} ORDER BY n")
    assert result.rows == [[i, name, len(name.encode())] for i, name in enumerate(names)]


async def test_ten_thousand_rows(store: HttpStore, table: str) -> None:
    count = 10_000
    rows = [{"name": f"row-{i}", "n": i, "x": i / 4, "at": 1_700_000_000 + i} for i in range(count)]
    await store.insert_json(table, COLUMNS, payload(rows))

    result = await store.query(
        f"SELECT count(), sum(n), sum(x), uniqExact(name), min(at), max(at) FROM {table}"
    )
    assert result.rows == [
        [count, 49_995_000, 12_498_750.0, count, "2023-11-14 22:13:20", "2023-11-15 00:59:59"]
    ]
    assert result.rows_read == count

    everything = await store.query(f"SELECT n, name FROM {table} ORDER BY n")
    assert everything.rows == [[i, f"row-{i}"] for i in range(count)]


async def test_params_travel_as_param_settings(store: HttpStore) -> None:
    # 18.16 predates server-side parameters, so it names the HTTP parameter it was sent.
    with pytest.raises(ClickHouseError) as raised:
        await store.query("SELECT {tenant:String}", {"tenant": "acme"})
    assert raised.value.code == 115
    assert "Unknown setting param_tenant" in str(raised.value)


async def test_error_after_streaming_started_is_not_a_short_result(store: HttpStore) -> None:
    # Past ~1 MB of output the server has already answered 200 and appends the exception text
    # to the partial body; that must raise, not return the rows read so far.
    with pytest.raises(ClickHouseError) as raised:
        await store.query(
            "SELECT throwIf(number = 300000) FROM system.numbers LIMIT 1000000 "
            "SETTINGS max_block_size = 1000"
        )
    assert raised.value.code == 395
    assert "Value passed to 'throwIf' function is non zero" in str(raised.value)


async def test_adhoc_answer_over_the_cap_is_abandoned_while_read(store: HttpStore) -> None:
    small = await store.query_adhoc("SELECT 1 AS one", max_result_bytes=10_000)
    assert small.rows == [[1]]
    with pytest.raises(ResultTooLarge) as raised:
        await store.query_adhoc(
            "SELECT number, toString(number) AS s FROM system.numbers LIMIT 100000",
            max_result_bytes=100_000,
        )
    assert raised.value.limit == 100_000
    assert raised.value.size > 100_000
    assert (await store.query("SELECT 2 AS two")).rows == [[2]]


async def test_adhoc_has_its_own_client(store: HttpStore) -> None:
    sleeping = [
        asyncio.create_task(store.query_adhoc("SELECT sleep(2) AS nap", max_result_bytes=1000))
        for _ in range(2)
    ]
    for _ in range(200):
        running = await store.query(
            "SELECT count() FROM system.processes WHERE query LIKE 'SELECT sleep(2) AS nap%'"
        )
        if running.rows == [[2]]:
            break
        await asyncio.sleep(0.02)
    assert running.rows == [[2]]  # both ad-hoc queries run, and the main client still answers
    assert [task.done() for task in sleeping] == [False, False]
    assert [r.rows for r in await asyncio.gather(*sleeping)] == [[[0]], [[0]]]

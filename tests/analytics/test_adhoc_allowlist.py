"""Ad-hoc SQL calls data functions only (issue 8, defect 7) and never reads virtual columns
(defect 11): an allowlist, so introspection and every function not listed — including one a
later ClickHouse adds — is refused with a 400 naming it; the common data functions still run."""

# ruff: noqa: S608  (the SQL text is what is under test)

from __future__ import annotations

import re
from typing import Any

import pytest

from emban.analytics.adhoc import validate_adhoc
from emban.analytics.adhoc_functions import (
    AGGREGATE_FUNCTIONS,
    ALLOWED_FUNCTIONS,
    is_allowed_function,
)
from emban.analytics.tables import VISIBLE_DATASETS
from emban.errors import BadRequest
from emban.runtime import Runtime
from tests.analytics.test_adhoc_injection import adhoc, seeded

__all__ = ["seeded"]  # the fixture, imported for the tests below

# Server and environment introspection, and functions reading around the query's sources: each
# call here must be refused, the message naming the function as the engine would run it.
REFUSED_CALLS: list[tuple[str, str]] = [
    ("SELECT version()", "VERSION"),
    ("SELECT hostName()", "hostName"),
    ("SELECT hostname()", "hostname"),
    ("SELECT FQDN()", "FQDN"),
    ("SELECT fullHostName()", "fullHostName"),
    ("SELECT currentUser()", "currentUser"),
    ("SELECT user()", "user"),
    ("SELECT authenticatedUser()", "authenticatedUser"),
    ("SELECT currentDatabase()", "CURRENT_DATABASE"),
    ("SELECT current_database()", "CURRENT_DATABASE"),
    ("SELECT getSetting('readonly')", "getSetting"),
    ("SELECT getSettingOrDefault('readonly', 0)", "getSettingOrDefault"),
    ("SELECT getServerSetting('path')", "getServerSetting"),
    ("SELECT getMergeTreeSetting('index_granularity')", "getMergeTreeSetting"),
    ("SELECT getMacro('shard')", "getMacro"),
    ("SELECT uptime()", "uptime"),
    ("SELECT buildId()", "buildId"),
    ("SELECT serverUUID()", "serverUUID"),
    ("SELECT revision()", "revision"),
    ("SELECT timezone()", "timezone"),
    ("SELECT serverTimezone()", "serverTimezone"),
    ("SELECT tcpPort()", "tcpPort"),
    ("SELECT getServerPort('tcp_port')", "getServerPort"),
    ("SELECT queryID()", "queryID"),
    ("SELECT initialQueryID()", "initialQueryID"),
    ("SELECT currentRoles()", "currentRoles"),
    ("SELECT currentProfiles()", "currentProfiles"),
    ("SELECT shardNum()", "shardNum"),
    ("SELECT getOSKernelVersion()", "getOSKernelVersion"),
    ("SELECT zookeeperSessionUptime()", "zookeeperSessionUptime"),
    ("SELECT getClientHTTPHeader('x')", "getClientHTTPHeader"),
    ("SELECT chdb()", "chdb"),
    ("SELECT blockNumber() FROM events", "blockNumber"),
    ("SELECT blockSize() FROM events", "blockSize"),
    ("SELECT rowNumberInBlock() FROM events", "rowNumberInBlock"),
    ("SELECT neighbor(event_id, 1) FROM events", "neighbor"),
    ("SELECT file('/etc/passwd')", "file"),
    ("SELECT `file`('/etc/passwd')", "file"),
    ("SELECT dictGet('d', 'v', 1)", "dictGet"),
    ("SELECT joinGet('j', 'v', 1)", "joinGet"),
    ("SELECT globalIn(org_id, event_ids) FROM events", "globalIn"),
    ("SELECT notIn(org_id, event_ids) FROM events", "notIn"),
    ("SELECT hasColumnInTable('default', 'events', 'org_id')", "hasColumnInTable"),
    ("SELECT aiGenerate('x')", "aiGenerate"),
    ("SELECT __getScalar('x')", "__getScalar"),
    ("SELECT _CAST(1, 'String')", "_CAST"),
    ("SELECT logTrace('x')", "logTrace"),
    ("SELECT geohashEncode(1.0, 2.0)", "geohashEncode"),
    # not a ClickHouse function today: a new one is refused until someone lists it
    ("SELECT someFunctionOfNextYear(1)", "someFunctionOfNextYear"),
    # nested inside data functions, lambdas and subqueries
    ("SELECT lower(hostName())", "hostName"),
    ("SELECT arrayMap(x -> concat(x, version()), ['a'])", "VERSION"),
    ("SELECT count() FROM events WHERE event_name = (SELECT currentUser())", "currentUser"),
    ("SELECT countIf(uptime() > 0) FROM events", "uptime"),
]


@pytest.mark.parametrize(("sql", "name"), REFUSED_CALLS, ids=[n for _, n in REFUSED_CALLS])
def test_non_data_functions_are_refused_by_name(sql: str, name: str) -> None:
    with pytest.raises(BadRequest) as refused:
        validate_adhoc(sql)
    assert refused.value.status == 400
    assert refused.value.code == "adhoc_rejected"
    assert refused.value.message.startswith(f"The function {name}() is not allowed in ad-hoc SQL")


VIRTUAL_COLUMNS = [
    "_part",
    "_part_offset",
    "_part_index",
    "_part_uuid",
    "_part_data_version",
    "_partition_id",
    "_partition_value",
    "_block_number",
    "_block_offset",
    "_row_exists",
    "_sample_factor",
    "_disk_name",
    "_table",
    "_database",
]


@pytest.mark.parametrize("column", VIRTUAL_COLUMNS)
def test_virtual_columns_are_refused(column: str) -> None:
    for sql in (
        f"SELECT {column} FROM events",
        f"SELECT e.{column} FROM events AS e",
        f"SELECT `{column}` FROM events",
        f"SELECT count() FROM events WHERE {column} IS NOT NULL",
        f"SELECT count() FROM events AS a JOIN events AS b USING ({column})",
        f"SELECT max(x) FROM (SELECT {column} AS x FROM events_daily_rollup)",
    ):
        with pytest.raises(BadRequest) as refused:
            validate_adhoc(sql)
        assert refused.value.code == "adhoc_rejected"
        assert refused.value.message.startswith(f"The column {column} is not available"), sql


async def test_no_dataset_column_starts_with_an_underscore(seeded: Runtime) -> None:
    # The virtual-column rule refuses every name starting with '_': it must never hide a real one.
    result = await seeded.events.query(
        "SELECT count() FROM system.columns WHERE database = currentDatabase() "
        "AND table IN {names:Array(String)} AND startsWith(name, '_')",
        {"names": list(VISIBLE_DATASETS)},
    )
    assert result.rows == [[0]]


def test_apply_is_refused() -> None:
    with pytest.raises(BadRequest) as refused:
        validate_adhoc("SELECT * APPLY(hostName) FROM events")
    assert (
        refused.value.message == "APPLY is not allowed; call the function on each column instead."
    )


async def test_every_listed_function_is_known_to_the_engine(seeded: Runtime) -> None:
    """No typo in the list; and nothing from the introspection categories slipped in."""
    result = await seeded.events.query(
        "SELECT name, categories FROM system.functions WHERE name IN {names:Array(String)}",
        {"names": sorted(ALLOWED_FUNCTIONS)},
    )
    known = {str(name): str(category) for name, category in result.rows}
    assert sorted(ALLOWED_FUNCTIONS - set(known)) == []
    refused_categories = {"Introspection", "Internal", "Dictionary", "AI", "Embedded Dictionary"}
    assert sorted(n for n, c in known.items() if c in refused_categories) == []


def test_combinators_apply_to_allowed_aggregates_only() -> None:
    for name in ("countIf", "sumIf", "uniqExactMerge", "quantileExactIf", "avgState", "sumMap"):
        assert is_allowed_function(name), name
    for name in ("uptimeIf", "hostNameState", "fileMerge", "dictGetIf", "versionOrNull"):
        assert not is_allowed_function(name), name
    assert {"count", "sum", "uniqExact", "quantile"} <= AGGREGATE_FUNCTIONS


# Data functions of every kind, on org_a/env_a's five rows (tests/test_adhoc_injection.py).
DATA_QUERIES: list[tuple[str, list[list[Any]]]] = [
    (
        "SELECT count(), countIf(event_name = 'login'), uniqExact(user_id), uniq(user_id), "
        "min(timestamp), max(timestamp) FROM events",
        [[5, 2, 3, 3, "2024-03-01 10:00:00.000", "2024-03-03 09:00:00.000"]],
    ),
    (
        "SELECT sum(numeric_props['latency_ms']), avg(numeric_props['latency_ms']), "
        "sumIf(numeric_props['latency_ms'], event_name = 'login'), "
        "quantileExact(0.5)(numeric_props['latency_ms']), median(numeric_props['latency_ms']), "
        "round(stddevPop(numeric_props['latency_ms']), 3) FROM events",
        [[150.0, 30.0, 90.0, 30.0, 30.0, 14.142]],
    ),
    (
        "SELECT event_name, groupArray(event_id) AS ids, any(tenant_id), argMax(event_id, "
        "timestamp) FROM (SELECT * FROM events ORDER BY event_id) GROUP BY event_name "
        "ORDER BY event_name",
        [
            ["api.call", ["ev_a1", "ev_a2", "ev_a3"], "t_a", "ev_a3"],
            ["login", ["ev_a4", "ev_a5"], "t_a", "ev_a5"],
        ],
    ),
    (
        "SELECT toDate(timestamp) AS day, toStartOfHour(min(timestamp)), count() FROM events "
        "GROUP BY day ORDER BY day",
        [
            ["2024-03-01", "2024-03-01 10:00:00", 3],
            ["2024-03-02", "2024-03-02 10:00:00", 1],
            ["2024-03-03", "2024-03-03 09:00:00", 1],
        ],
    ),
    (
        "SELECT upper(event_name), concat(tenant_id, '/', user_id), substring(event_id, 4), "
        "length(event_id), replaceAll(event_name, '.', '_'), lower('ABC'), "
        "position(event_name, 'call'), splitByChar('.', event_name), "
        "startsWith(event_name, 'api'), event_name LIKE 'api%', "
        "if(event_name = 'login', 'L', 'A'), multiIf(user_id = 'u1', 1, user_id = 'u2', 2, 3), "
        "CASE WHEN user_id = 'u1' THEN 'one' ELSE 'other' END, coalesce(NULL, user_id), "
        "toString(numeric_props['latency_ms']), CAST(numeric_props['latency_ms'] AS Int64), "
        "toUInt32(numeric_props['latency_ms']) % 7, intDiv(10, 3), abs(-2), "
        "floor(numeric_props['latency_ms'] / 3), string_props['model'], "
        "mapContains(string_props, 'model'), has(mapKeys(string_props), 'model'), "
        "cityHash64('x') = cityHash64('x'), length(MD5('x')), hex(65), "
        "JSONExtractString('{\"a\": \"b\"}', 'a'), dateDiff('day', timestamp, timestamp), "
        "formatDateTime(timestamp, '%Y-%m'), toYYYYMM(timestamp), "
        "arrayMap(x -> x * 2, [1, 2]), arrayFilter(x -> x > 1, [1, 2, 3]), "
        "tuple(1, 'a').2, [1, 2][2], greatest(1, 3), isNull(NULL), toTypeName(1) "
        "FROM events WHERE event_id = 'ev_a1'",
        [
            [
                "API.CALL",
                "t_a/u1",
                "a1",
                5,
                "api_call",
                "abc",
                5,
                ["api", "call"],
                True,
                True,
                "A",
                1,
                "one",
                "u1",
                "10",
                10,
                3,
                3,
                2,
                3.0,
                "m1",
                True,
                True,
                True,
                16,
                "41",
                "b",
                0,
                "2024-03",
                202403,
                [2, 4],
                [2, 3],
                "a",
                2,
                3,
                True,
                "UInt8",
            ]
        ],
    ),
    (
        "SELECT event_id, row_number() OVER (ORDER BY event_id), "
        "lagInFrame(event_id) OVER (ORDER BY event_id ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) "
        "FROM events WHERE event_name = 'login' ORDER BY event_id",
        [["ev_a4", 1, ""], ["ev_a5", 2, "ev_a4"]],
    ),
    (
        "SELECT uniqExactMerge(users), sum(events) FROM events_daily_rollup",
        [[3, 5]],
    ),
    ("SELECT count() FROM events WHERE EXISTS (SELECT 1)", [[5]]),
    ("SELECT sleep(0), toDate(DATE_ADD(DAY, 1, toDate('2024-03-01')))", [[0, "2024-03-02"]]),
]


@pytest.mark.parametrize(("sql", "rows"), DATA_QUERIES, ids=[str(i) for i in range(9)])
async def test_data_functions_still_run(seeded: Runtime, sql: str, rows: list[list[Any]]) -> None:
    result = await adhoc(seeded, sql)
    assert result.rows == rows


def test_refusal_message_names_only_the_function() -> None:
    with pytest.raises(BadRequest) as refused:
        validate_adhoc("SELECT count() FROM events WHERE uptime() > 0")
    assert re.fullmatch(
        r"The function uptime\(\) is not allowed in ad-hoc SQL; only data functions are \(see "
        r"the ad-hoc SQL section of the docs\)\.",
        refused.value.message,
    )

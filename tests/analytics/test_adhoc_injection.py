"""The ad-hoc SQL guard against the real embedded engine (runtime.events, chDB).

Rows of three (org, environment) pairs are inserted directly; every query runs as org_a/env_a.
The hostile suite checks each statement is either refused by the parser or, when it runs, returns
exactly the org_a/env_a answer — and that nothing changed in the store either way.
"""

# SQL text is built on purpose here: hostile statements and the guard's own SETTINGS clause.
# ruff: noqa: S608

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pytest

from emban.analytics.adhoc import AdhocResult, adhoc_settings, run_adhoc, validate_adhoc
from emban.errors import BadRequest
from emban.runtime import Runtime

ORG, ENV = "org_a", "env_a"

# (org, environment, tenant, event name, timestamp, event id, user, model)
ROWS: list[tuple[str, str, str, str, str, str, str, str]] = [
    ("org_a", "env_a", "t_a", "api.call", "2024-03-01 10:00:00", "ev_a1", "u1", "m1"),
    ("org_a", "env_a", "t_a", "api.call", "2024-03-01 11:00:00", "ev_a2", "u2", "m1"),
    ("org_a", "env_a", "t_a", "api.call", "2024-03-02 10:00:00", "ev_a3", "u1", "m1"),
    ("org_a", "env_a", "t_a", "login", "2024-03-01 12:00:00", "ev_a4", "u1", "m2"),
    ("org_a", "env_a", "t_a", "login", "2024-03-03 09:00:00", "ev_a5", "u3", "m2"),
    ("org_b", "env_b", "t_b", "api.call", "2024-03-01 10:00:00", "ev_b1", "ub1", "m_b"),
    ("org_b", "env_b", "t_b", "api.call", "2024-03-02 10:00:00", "ev_b2", "ub1", "m_b"),
    ("org_b", "env_b", "t_b", "secret.b", "2024-03-01 10:00:00", "ev_b3", "ub2", "m_b"),
    ("org_b", "env_b", "t_b", "secret.b", "2024-03-04 10:00:00", "ev_b4", "ub2", "m_b"),
    ("org_a", "env_other", "t_o", "other.env", "2024-03-01 10:00:00", "ev_o1", "uo1", "m_o"),
    ("org_a", "env_other", "t_o", "other.env", "2024-03-01 11:00:00", "ev_o2", "uo1", "m_o"),
    ("org_a", "env_other", "t_o", "other.env", "2024-03-02 10:00:00", "ev_o3", "uo2", "m_o"),
]
A_EVENT_IDS = ["ev_a1", "ev_a2", "ev_a3", "ev_a4", "ev_a5"]
# Strings that exist only in org_b's or env_other's rows: none may ever come back.
FOREIGN_MARKERS = (
    "org_b",
    "env_b",
    "env_other",
    "t_b",
    "t_o",
    "secret.b",
    "other.env",
    "ev_b",
    "ev_o",
    "ub1",
    "ub2",
    "uo1",
    "uo2",
    "m_b",
    "m_o",
)
EXPECTED_COUNTS = [["org_a", "env_a", 5], ["org_a", "env_other", 3], ["org_b", "env_b", 4]]
POOL_DRAIN_QUERIES = 12


def _values() -> str:
    return ", ".join(
        f"('{org}', '{env}', '{tenant}', '{name}', '{ts}', '{eid}', '{user}', "
        f"map('model', '{model}'), map('latency_ms', {10.0 * (i + 1)}))"
        for i, (org, env, tenant, name, ts, eid, user, model) in enumerate(ROWS)
    )


@pytest.fixture
async def seeded(runtime: Runtime) -> Runtime:
    """conftest empties events and the rollups before each test; the views fill the rollups."""
    await runtime.events.execute(
        "INSERT INTO events (org_id, environment_id, tenant_id, event_name, timestamp, event_id, "
        f"user_id, string_props, numeric_props) VALUES {_values()}"
    )
    return runtime


async def _counts(runtime: Runtime) -> list[list[Any]]:
    result = await runtime.events.query(
        "SELECT org_id, environment_id, count() FROM events "
        "GROUP BY org_id, environment_id ORDER BY org_id, environment_id"
    )
    return result.rows


async def _rollup_total(runtime: Runtime) -> list[list[Any]]:
    result = await runtime.events.query(
        "SELECT org_id, sum(events) FROM events_daily_rollup GROUP BY org_id ORDER BY org_id"
    )
    return result.rows


async def _tables(runtime: Runtime) -> list[list[Any]]:
    result = await runtime.events.query(
        "SELECT name FROM system.tables WHERE database = currentDatabase() ORDER BY name"
    )
    return result.rows


async def _drain_pool(runtime: Runtime) -> None:
    """chDB keeps the partial output of a query that failed mid-stream (a timeout) and prepends
    it to the next result read on that connection; cycle every pooled connection once so the
    next test starts clean. (Store-level issue, reported; not the guard's behaviour.)"""
    for _ in range(POOL_DRAIN_QUERIES):
        await runtime.events.execute("SELECT 1")


async def adhoc(runtime: Runtime, sql: str, **kwargs: Any) -> AdhocResult:
    return await run_adhoc(runtime.events, org_id=ORG, environment_id=ENV, sql=sql, **kwargs)


def _assert_no_foreign(value: Any) -> None:
    text = repr(value)
    for marker in FOREIGN_MARKERS:
        assert marker not in text, f"{marker!r} leaked in {text}"


# --- legitimate queries -------------------------------------------------------------------------


async def test_counts_by_event_name(seeded: Runtime) -> None:
    result = await adhoc(
        seeded,
        "SELECT event_name, count() AS n FROM events GROUP BY event_name ORDER BY event_name",
    )
    assert result.columns == [
        {"name": "event_name", "type": "LowCardinality(String)"},
        {"name": "n", "type": "UInt64"},
    ]
    assert result.rows == [["api.call", 3], ["login", 2]]
    assert result.stats["rows_returned"] == 2
    assert result.stats["truncated"] is False
    assert isinstance(result.stats["wall_ms"], int)
    assert result.stats["wall_ms"] >= 0
    assert result.as_dict()["rows"] == [["api.call", 3], ["login", 2]]


async def test_cte(seeded: Runtime) -> None:
    result = await adhoc(
        seeded,
        "WITH per_user AS (SELECT user_id, count() AS n FROM events GROUP BY user_id) "
        "SELECT user_id, n FROM per_user ORDER BY user_id",
    )
    assert result.rows == [["u1", 3], ["u2", 1], ["u3", 1]]


async def test_join_events_with_daily_rollup(seeded: Runtime) -> None:
    result = await adhoc(
        seeded,
        "SELECT e.event_name, count() AS matched, sum(d.events) AS rolled "
        "FROM events AS e JOIN events_daily_rollup AS d "
        "ON e.event_name = d.event_name AND toDate(e.timestamp) = d.bucket "
        "GROUP BY e.event_name ORDER BY e.event_name",
    )
    # api.call on 03-01 has 2 raw rows joined to a rollup row of 2 events: 2*2 + 1*1.
    assert result.rows == [["api.call", 3, 5], ["login", 2, 2]]


async def test_union_all_of_visible_tables(seeded: Runtime) -> None:
    result = await adhoc(
        seeded,
        "SELECT 'raw' AS source, count() AS n FROM events "
        "UNION ALL SELECT 'daily' AS source, sum(events) AS n FROM events_daily_rollup",
    )
    assert sorted(result.rows) == [["daily", 5], ["raw", 5]]


async def test_subquery_and_rollups(seeded: Runtime) -> None:
    distinct_users = await adhoc(
        seeded, "SELECT count() AS users FROM (SELECT DISTINCT user_id FROM events)"
    )
    assert distinct_users.rows == [[3]]
    by_model = await adhoc(
        seeded,
        "SELECT value, sum(events) AS n FROM events_daily_dim_rollup "
        "WHERE dimension = 'model' GROUP BY value ORDER BY value",
    )
    assert by_model.rows == [["m1", 3], ["m2", 2]]
    hourly = await adhoc(
        seeded,
        "SELECT sum(events) AS n, uniqExactMerge(users) AS users FROM events_hourly_rollup",
    )
    assert hourly.rows == [[5, 3]]
    hourly_dim = await adhoc(
        seeded,
        "SELECT count() AS dims FROM (SELECT DISTINCT dimension FROM events_hourly_dim_rollup)",
    )
    assert hourly_dim.rows == [[5]]


async def test_the_rendered_text_runs_not_the_raw_text(seeded: Runtime) -> None:
    validated = validate_adhoc(
        "select /* hidden */ count() as n -- SETTINGS readonly=0\nfrom events;"
    )
    assert validated.sql == "SELECT count() AS n FROM events"
    assert validated.tables == frozenset({"events"})
    result = await adhoc(seeded, "select /* hidden */ count() as n -- x\nfrom events;")
    assert result.rows == [[5]]


async def test_query_level_settings_are_applied(seeded: Runtime) -> None:
    # getSetting is not a data function (refused in ad-hoc SQL), so read the guard's clause back
    # through the engine directly: exactly the SETTINGS run_adhoc appends.
    clause = adhoc_settings(
        org_id=ORG, environment_id=ENV, limit=8, timeout_s=4, max_result_bytes=12345
    )
    result = await seeded.events.query(
        "SELECT getSetting('readonly') AS ro, getSetting('max_execution_time') AS t, "
        "getSetting('allow_introspection_functions') AS i, "
        "getSetting('timeout_overflow_mode') AS mode, getSetting('max_memory_usage') AS mem, "
        "getSetting('max_result_bytes') AS bytes, getSetting('result_overflow_mode') AS overflow "
        f"SETTINGS {clause}"
    )
    # (``limit`` reads back as 0: the engine consumes it into the plan; test_truncation checks it)
    assert result.rows == [[1, 4, False, "throw", 1 << 30, 12345, "throw"]]


# --- row limit ----------------------------------------------------------------------------------


async def test_truncation(seeded: Runtime) -> None:
    over = await adhoc(seeded, "SELECT event_id FROM events ORDER BY event_id", max_rows=3)
    assert over.rows == [["ev_a1"], ["ev_a2"], ["ev_a3"]]
    assert over.stats["rows_returned"] == 3
    assert over.stats["truncated"] is True

    exact = await adhoc(
        seeded,
        "SELECT event_id FROM events WHERE event_name = 'api.call' ORDER BY event_id",
        max_rows=3,
    )
    assert exact.rows == [["ev_a1"], ["ev_a2"], ["ev_a3"]]
    assert exact.stats == {
        "wall_ms": exact.stats["wall_ms"],
        "rows_returned": 3,
        "truncated": False,
    }

    user_limit = await adhoc(
        seeded, "SELECT event_id FROM events ORDER BY event_id DESC LIMIT 2", max_rows=3
    )
    assert user_limit.rows == [["ev_a5"], ["ev_a4"]]
    assert user_limit.stats["truncated"] is False

    union = await adhoc(
        seeded,
        "SELECT event_id FROM events UNION ALL SELECT event_id FROM events",
        max_rows=4,
    )
    assert len(union.rows) == 4
    assert union.stats["truncated"] is True
    assert {row[0] for row in union.rows} <= set(A_EVENT_IDS)


# --- engine errors ------------------------------------------------------------------------------


async def test_timeout_is_a_bad_request(seeded: Runtime) -> None:
    joins = ", ".join(f"events AS e{i}" for i in range(16))  # 5**16 row combinations
    started = time.perf_counter()
    try:
        with pytest.raises(BadRequest) as caught:
            await adhoc(seeded, f"SELECT count() FROM {joins}", timeout_s=1)
    finally:
        await _drain_pool(seeded)
    assert time.perf_counter() - started < 10
    assert caught.value.code == "adhoc_failed"
    assert caught.value.status == 400
    assert "Timeout exceeded" in caught.value.message
    assert "\n" not in caught.value.message


async def test_unknown_column_is_a_bad_request(seeded: Runtime) -> None:
    try:
        with pytest.raises(BadRequest) as caught:
            await adhoc(seeded, "SELECT no_such_column FROM events")
    finally:
        await _drain_pool(seeded)
    assert caught.value.code == "adhoc_failed"
    assert "no_such_column" in caught.value.message
    assert "\n" not in caught.value.message


async def test_parse_error_is_rejected() -> None:
    with pytest.raises(BadRequest) as caught:
        validate_adhoc("SELECT FROM WHERE (")
    assert caught.value.code == "adhoc_rejected"
    assert caught.value.message.startswith("The query could not be parsed")
    for empty in ("", "   ", ";", "-- only a comment"):
        with pytest.raises(BadRequest) as caught:
            validate_adhoc(empty)
        assert caught.value.message == "The query is empty."


# --- the engine-level guard on its own ----------------------------------------------------------


async def test_table_filter_alone_hides_other_orgs(seeded: Runtime) -> None:
    everything = await adhoc(seeded, "SELECT * FROM events")
    assert len(everything.rows) == 5
    assert sorted(row[5] for row in everything.rows) == A_EVENT_IDS
    assert {(row[0], row[1]) for row in everything.rows} == {("org_a", "env_a")}
    _assert_no_foreign(everything.rows)

    asked_for_b = await adhoc(
        seeded, "SELECT org_id, environment_id, event_id FROM events WHERE org_id = 'org_b'"
    )
    assert asked_for_b.rows == []
    assert asked_for_b.stats["rows_returned"] == 0

    for table in ("events_hourly_rollup", "events_daily_rollup", "events_daily_dim_rollup"):
        pairs = await adhoc(seeded, f"SELECT DISTINCT org_id, environment_id FROM {table}")
        assert pairs.rows == [["org_a", "env_a"]]


async def test_engine_pin_without_the_parser(seeded: Runtime) -> None:
    """Run texts the parser would refuse straight on the store with run_adhoc's SETTINGS."""
    pin = adhoc_settings(org_id=ORG, environment_id=ENV, limit=100, timeout_s=5)
    qualified = await seeded.events.query(
        "SELECT org_id, environment_id, count() FROM default.events "
        f"GROUP BY org_id, environment_id SETTINGS {pin}"
    )
    assert qualified.rows == [["org_a", "env_a", 5]]
    # readonly=1 neutralises a SETTINGS clause nested in a subquery (measured on chDB 26.9)...
    nested = await seeded.events.query(
        "SELECT org_id, environment_id, count() FROM "
        "(SELECT * FROM events SETTINGS additional_table_filters = {'events': '1'}) "
        f"GROUP BY org_id, environment_id SETTINGS {pin}"
    )
    assert nested.rows == [["org_a", "env_a", 5]]
    # ... reading through a rollup's materialized view is pinned by its own entry ...
    view = await seeded.events.query(
        f"SELECT DISTINCT org_id, environment_id FROM events_daily_rollup_mv SETTINGS {pin}"
    )
    assert view.rows == [["org_a", "env_a"]]
    # ... but merge() reads around additional_table_filters: only the parser stops it.
    merged = await seeded.events.query(f"SELECT count() FROM merge('^events$') SETTINGS {pin}")
    assert merged.rows == [[12]]
    with pytest.raises(BadRequest) as caught:
        validate_adhoc("SELECT count() FROM merge('^events$')")
    assert caught.value.code == "adhoc_rejected"


async def test_hostile_ids_are_escaped_in_the_pin(seeded: Runtime) -> None:
    for org_id in ("org_a' OR '1'='1", "org_a\\", "org_a\\' OR 1 OR \\'", "org_b'--"):
        result = await run_adhoc(
            seeded.events, org_id=org_id, environment_id=ENV, sql="SELECT count() FROM events"
        )
        assert result.rows == [[0]], org_id
    result = await run_adhoc(
        seeded.events, org_id=ORG, environment_id="x' OR '1'='1", sql="SELECT count() FROM events"
    )
    assert result.rows == [[0]]


# --- the hostile suite --------------------------------------------------------------------------

REJECT = None


@dataclass(frozen=True)
class Hostile:
    id: str
    sql: str
    rows: list[list[Any]] | None = REJECT  # None: must be refused; else the exact org_a/env_a rows


HOSTILE: list[Hostile] = [
    # other orgs' rows through joins, subqueries, UNION, CTEs (refused: non-visible tables)
    Hostile(
        "join_event_ids",
        "SELECT e.org_id FROM events AS e JOIN event_ids AS i ON e.event_id = i.event_id",
    ),
    Hostile("subquery_schema_versions", "SELECT * FROM (SELECT * FROM emban_schema_versions)"),
    Hostile(
        "union_system_tables", "SELECT org_id FROM events UNION ALL SELECT name FROM system.tables"
    ),
    Hostile("cte_system_tables", "WITH t AS (SELECT name FROM system.tables) SELECT * FROM t"),
    Hostile("rollup_view", "SELECT * FROM events_hourly_rollup_mv"),
    Hostile(
        "cte_self_reference", "WITH event_ids AS (SELECT * FROM event_ids) SELECT * FROM event_ids"
    ),
    Hostile(
        "cte_scope_escape",
        "SELECT * FROM event_ids WHERE 1 IN (WITH event_ids AS (SELECT 1) SELECT * FROM event_ids)",
    ),
    Hostile("scalar_alias_as_table", "WITH 1 AS event_ids SELECT * FROM event_ids"),
    Hostile("cte_later_name", "WITH a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a"),
    # quoting and qualification
    Hostile("default_events", "SELECT * FROM default.events"),
    Hostile("quoted_default_events", 'SELECT * FROM "default"."events"'),
    Hostile("backtick_default_events", "SELECT * FROM `default`.`events`"),
    Hostile("mixed_case_table", "SELECT * FROM EvEnTs"),
    Hostile("upper_case_table", "SELECT count() FROM EVENTS"),
    # table functions
    Hostile("url", "SELECT * FROM url('http://127.0.0.1:9/x', 'CSV', 'a String')"),
    Hostile("file_table_function", "SELECT * FROM file('/etc/passwd', 'LineAsString')"),
    Hostile("remote", "SELECT * FROM remote('127.0.0.1', default.events)"),
    Hostile("remote_secure", "SELECT * FROM remoteSecure('127.0.0.1', default, events)"),
    Hostile("s3", "SELECT * FROM s3('http://127.0.0.1:9/b/x.csv', 'CSV', 'a String')"),
    Hostile("s3_cluster", "SELECT * FROM s3Cluster('default', 'http://127.0.0.1:9/b/x.csv')"),
    Hostile("cluster", "SELECT * FROM cluster('default', default, events)"),
    Hostile("cluster_all_replicas", "SELECT * FROM clusterAllReplicas('default', default.events)"),
    Hostile("merge", "SELECT org_id, count() FROM merge('^events$') GROUP BY org_id"),
    Hostile(
        "merge_in_subquery",
        "SELECT * FROM events WHERE org_id IN (SELECT org_id FROM merge(currentDatabase(), '^ev'))",
    ),
    Hostile("numbers", "SELECT * FROM numbers(10)"),
    Hostile("numbers_in_join", "SELECT * FROM events AS e CROSS JOIN numbers(2) AS n"),
    Hostile("input", "SELECT * FROM input('x String')"),
    Hostile("mysql", "SELECT * FROM mysql('127.0.0.1:3306', 'db', 't', 'u', 'p')"),
    Hostile("postgresql", "SELECT * FROM postgresql('127.0.0.1:5432', 'db', 't', 'u', 'p')"),
    Hostile("jdbc", "SELECT * FROM jdbc('jdbc:mysql://127.0.0.1/db', 't')"),
    Hostile("odbc", "SELECT * FROM odbc('DSN=x', 't')"),
    Hostile("hdfs", "SELECT * FROM hdfs('hdfs://127.0.0.1:9000/x', 'TSV', 'a String')"),
    Hostile("values_table_function", "SELECT * FROM values('x UInt8', 1, 2)"),
    Hostile("executable", "SELECT * FROM executable('x.sh', 'TSV', 'x String')"),
    Hostile("chdb_python", "SELECT * FROM Python(df)"),
    Hostile("view", "SELECT * FROM view(SELECT * FROM events)"),
    Hostile(
        "view_if_permitted",
        "SELECT * FROM viewIfPermitted(SELECT * FROM events ELSE null('a String'))",
    ),
    Hostile("loop", "SELECT * FROM loop(events) LIMIT 20"),
    Hostile("query_parameter_table", "SELECT * FROM {t:Identifier}"),
    # system tables
    Hostile("system_tables", "SELECT name FROM system.tables"),
    Hostile("system_query_log", "SELECT query FROM system.query_log"),
    Hostile("system_settings", "SELECT name, value FROM system.settings"),
    Hostile("system_users", "SELECT * FROM system.users"),
    Hostile("information_schema", "SELECT * FROM information_schema.tables"),
    Hostile("system_in_scalar_subquery", "SELECT (SELECT count() FROM system.parts) AS n"),
    # dictionaries and cross-table functions
    Hostile("dict_get", "SELECT dictGet('d', 'v', toUInt64(1))"),
    Hostile("dict_has", "SELECT dictHas('d', toUInt64(1))"),
    Hostile("dictionary_table", "SELECT * FROM dictionary('d')"),
    Hostile("join_get", "SELECT joinGet('j', 'v', 1)"),
    Hostile("has_column_in_table", "SELECT hasColumnInTable('default', 'event_ids', 'org_id')"),
    Hostile("file_scalar", "SELECT file('/etc/passwd')"),
    Hostile("file_scalar_quoted", "SELECT `file`('/etc/passwd') AS f"),
    Hostile("server_setting", "SELECT getServerSetting('path')"),
    Hostile("global_in_function", "SELECT globalIn(org_id, event_ids) FROM events"),
    Hostile("in_table_name", "SELECT count() FROM events WHERE org_id IN event_ids"),
    Hostile("in_parenthesized_system_table", "SELECT toUInt8(0) IN (system.one)"),
    Hostile(
        "not_in_parenthesized_table",
        "SELECT count() FROM events WHERE (org_id, environment_id, event_id) NOT IN ((event_ids))",
    ),
    Hostile("global_in_parenthesized_table", "SELECT toUInt8(0) GLOBAL IN (system.one)"),
    Hostile(
        "recursive_cte_named_like_table",
        "WITH RECURSIVE event_ids AS (SELECT * FROM event_ids) SELECT * FROM event_ids",
    ),
    Hostile(
        "recursive_cte_anchor_reads_table",
        "WITH RECURSIVE emban_schema_versions AS (SELECT version FROM emban_schema_versions "
        "UNION ALL SELECT version + 1 FROM emban_schema_versions WHERE version < 3) "
        "SELECT * FROM emban_schema_versions",
    ),
    Hostile("cte_body_not_a_query", "WITH event_ids AS (events) SELECT * FROM event_ids"),
    Hostile("deep_nesting", "SELECT " + "(" * 3000 + "1" + ")" * 3000),
    Hostile("internal_function", "SELECT __getScalar('x')"),
    # SETTINGS anywhere
    Hostile(
        "settings_top", "SELECT * FROM events SETTINGS additional_table_filters={'events':'1'}"
    ),
    Hostile(
        "settings_subquery",
        "SELECT * FROM (SELECT * FROM events SETTINGS additional_table_filters={'events':'1'})",
    ),
    Hostile(
        "settings_cte",
        "WITH x AS (SELECT * FROM events SETTINGS additional_table_filters={'events':'1'}) "
        "SELECT * FROM x",
    ),
    Hostile(
        "settings_union_branch",
        "SELECT org_id FROM events UNION ALL "
        "(SELECT org_id FROM events SETTINGS additional_table_filters={'events':'1'})",
    ),
    Hostile("settings_readonly", "SELECT 1 SETTINGS readonly = 0"),
    Hostile(
        "settings_behind_comments",
        "SELECT * FROM events /* */ SETTINGS /* x */ additional_table_filters={'events':'1'}",
    ),
    # several statements and comments
    Hostile("two_statements", "SELECT 1; DROP TABLE events"),
    Hostile("two_selects", "SELECT 1; SELECT * FROM system.tables"),
    Hostile("comment_then_statement", "SELECT 1 /* ; */; DROP TABLE events"),
    Hostile("newline_statement", "SELECT 1 -- comment\n; TRUNCATE TABLE events"),
    # output redirection
    Hostile("into_outfile", "SELECT * FROM events INTO OUTFILE '/tmp/adhoc_leak.csv'"),
    Hostile("format", "SELECT * FROM events FORMAT TSV"),
    # writes, DDL and administration
    Hostile(
        "insert_values",
        "INSERT INTO events (org_id, environment_id, tenant_id, event_name, timestamp, event_id) "
        "VALUES ('org_b', 'env_b', 't', 'x', now(), 'x')",
    ),
    Hostile("insert_select", "INSERT INTO events SELECT * FROM events"),
    Hostile("alter_delete", "ALTER TABLE events DELETE WHERE org_id = 'org_b'"),
    Hostile("drop", "DROP TABLE events"),
    Hostile("truncate", "TRUNCATE TABLE events"),
    Hostile("create_as_select", "CREATE TABLE leak ENGINE = Memory AS SELECT * FROM events"),
    Hostile("system", "SYSTEM DROP MARK CACHE"),
    Hostile("kill", "KILL QUERY WHERE 1"),
    Hostile("optimize", "OPTIMIZE TABLE events FINAL"),
    Hostile("set", "SET readonly = 0"),
    Hostile("detach", "DETACH TABLE events"),
    Hostile("attach", "ATTACH TABLE events"),
    Hostile("rename", "RENAME TABLE events TO events_old"),
    Hostile("grant", "GRANT SELECT ON *.* TO default"),
    Hostile("use", "USE system"),
    Hostile("explain", "EXPLAIN SELECT * FROM system.tables"),
    Hostile("describe", "DESCRIBE TABLE event_ids"),
    Hostile("show", "SHOW TABLES"),
    # higher-order functions, arrayJoin and lambdas reading other tables
    Hostile("lambda_system", "SELECT arrayMap(x -> (SELECT count() FROM system.tables), [1])"),
    Hostile("array_join_system", "SELECT arrayJoin((SELECT groupArray(name) FROM system.tables))"),
    # statements that run: the answer is exactly org_a/env_a's
    Hostile(
        "where_org_b",
        "SELECT org_id, environment_id, count() FROM events WHERE org_id = 'org_b' "
        "GROUP BY org_id, environment_id",
        [],
    ),
    Hostile("where_or_true", "SELECT count() FROM events WHERE org_id = 'org_b' OR 1 = 1", [[5]]),
    Hostile(
        "where_env_other",
        "SELECT count() FROM events WHERE org_id = 'org_a' AND environment_id = 'env_other'",
        [[0]],
    ),
    Hostile(
        "distinct_pairs", "SELECT DISTINCT org_id, environment_id FROM events", [["org_a", "env_a"]]
    ),
    Hostile("double_quoted", 'SELECT count() FROM "events"', [[5]]),
    Hostile("backticks", "SELECT count() FROM `events`", [[5]]),
    Hostile("alias_named_like_table", "SELECT count() FROM events AS event_ids", [[5]]),
    Hostile(
        "cte_shadowing_a_table",
        "WITH event_ids AS (SELECT * FROM events) SELECT count() FROM event_ids",
        [[5]],
    ),
    Hostile(
        "cte_named_like_system",
        "WITH tables AS (SELECT org_id FROM events) SELECT count() FROM tables",
        [[5]],
    ),
    Hostile(
        "self_join",
        "SELECT count() FROM events AS a JOIN events AS b ON a.event_id = b.event_id",
        [[5]],
    ),
    Hostile(
        "join_rollup_on_org",
        "SELECT DISTINCT d.org_id, d.environment_id FROM events_daily_rollup AS d "
        "JOIN events AS e ON e.org_id = d.org_id",
        [["org_a", "env_a"]],
    ),
    Hostile(
        "union_of_all_rollups",
        "SELECT DISTINCT org_id, environment_id FROM ("
        "SELECT org_id, environment_id FROM events_hourly_rollup UNION ALL "
        "SELECT org_id, environment_id FROM events_daily_rollup UNION ALL "
        "SELECT org_id, environment_id FROM events_hourly_dim_rollup UNION ALL "
        "SELECT org_id, environment_id FROM events_daily_dim_rollup)",
        [["org_a", "env_a"]],
    ),
    Hostile(
        "in_subquery_org_b",
        "SELECT count() FROM events WHERE org_id IN "
        "(SELECT org_id FROM events_daily_rollup WHERE org_id = 'org_b')",
        [[0]],
    ),
    Hostile(
        "global_in_subquery",
        "SELECT count() FROM events WHERE event_name GLOBAL IN "
        "(SELECT event_name FROM events_daily_rollup)",
        [[5]],
    ),
    Hostile(
        "array_join_of_subquery",
        "SELECT arrayJoin((SELECT groupUniqArray(org_id) FROM events)) AS o",
        [["org_a"]],
    ),
    Hostile(
        "lambda_with_subquery",
        "SELECT arrayMap(x -> x * (SELECT count() FROM events), [1, 2]) AS m",
        [[[5, 10]]],
    ),
    Hostile(
        "higher_order_filter",
        "SELECT arrayFilter(o -> o != 'org_a', (SELECT groupArray(org_id) FROM events)) AS f",
        [[[]]],
    ),
    Hostile(
        "line_comment_hiding_settings",
        "SELECT count() FROM events -- SETTINGS additional_table_filters={'events':'1'}",
        [[5]],
    ),
    Hostile(
        "block_comment_hiding_source", "SELECT count() /* FROM system.tables */ FROM events", [[5]]
    ),
    Hostile("final", "SELECT sum(events) FROM events_daily_rollup FINAL", [[5]]),
    Hostile("scalar_with", "WITH (SELECT count() FROM events) AS total SELECT total", [[5]]),
    Hostile("intersect", "SELECT org_id FROM events INTERSECT SELECT 'org_' || 'b'", []),
    Hostile("rollup_states", "SELECT uniqExactMerge(users) FROM events_daily_rollup", [[3]]),
    Hostile(
        "get_setting_is_not_data",
        "SELECT getSetting('readonly'), getSetting('allow_introspection_functions')",
    ),
]


def test_hostile_suite_size() -> None:
    assert len(HOSTILE) >= 40
    assert len({case.id for case in HOSTILE}) == len(HOSTILE)
    assert sum(case.rows is REJECT for case in HOSTILE) >= 40


@pytest.mark.parametrize("case", HOSTILE, ids=[case.id for case in HOSTILE])
async def test_hostile(seeded: Runtime, case: Hostile) -> None:
    counts_before = await _counts(seeded)
    assert counts_before == EXPECTED_COUNTS
    rollup_before = await _rollup_total(seeded)
    tables_before = await _tables(seeded)

    if case.rows is REJECT:
        with pytest.raises(BadRequest) as refused:
            validate_adhoc(case.sql)
        assert refused.value.code == "adhoc_rejected"
        assert refused.value.status == 400
        assert refused.value.message
        with pytest.raises(BadRequest) as refused_run:
            await adhoc(seeded, case.sql)
        assert refused_run.value.code == "adhoc_rejected"
        assert refused_run.value.message == refused.value.message
    else:
        result = await adhoc(seeded, case.sql)
        assert result.rows == case.rows
        _assert_no_foreign(result.rows)

    assert await _counts(seeded) == counts_before
    assert await _rollup_total(seeded) == rollup_before == [["org_a", 8], ["org_b", 4]]
    assert await _tables(seeded) == tables_before


def test_accepted_statements_are_remembered_and_refusals_are_not() -> None:
    """The same accepted text is parsed once (a dashboard or a retrying client resends it); a
    refused text is refused every time, and long texts are not kept."""
    from emban.analytics.adhoc import CACHED_SQL_LENGTH, VALIDATED_CACHE, _validate_remembered

    sql = "SELECT count() FROM events WHERE event_name = 'remembered once'"
    first = validate_adhoc(sql)
    assert validate_adhoc(sql) is first
    assert first.sql == validate_adhoc(sql + " ").sql
    for _ in range(2):
        with pytest.raises(BadRequest) as refused:
            validate_adhoc("SELECT nosuchfunction(1) FROM events")
        assert "nosuchfunction" in refused.value.message
    long = "SELECT count() FROM events WHERE event_name = '" + "x" * CACHED_SQL_LENGTH + "'"
    kept = _validate_remembered.cache_info().currsize
    assert validate_adhoc(long) == validate_adhoc(long)
    assert validate_adhoc(long) is not validate_adhoc(long)
    assert _validate_remembered.cache_info().currsize == kept
    assert _validate_remembered.cache_info().maxsize == VALIDATED_CACHE

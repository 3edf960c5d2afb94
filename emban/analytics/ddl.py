"""Versioned ClickHouse DDL, applied in order by ``emban migrate`` and on embedded start.

Each version is a list of statements; ``emban_schema_versions`` records what ran. Statements are
idempotent (``IF NOT EXISTS``) so a crash between a statement and its record is safe to re-run.
"""

from __future__ import annotations

from emban.analytics.store import EventStore
from emban.analytics.tables import (
    DAILY,
    DAILY_DIM,
    EVENT_IDS,
    EVENTS,
    HOURLY,
    HOURLY_DIM,
    ROLLUP_DIMENSIONS,
)

_ROLLUP_COLUMNS = """
    events SimpleAggregateFunction(sum, UInt64),
    users AggregateFunction(uniqExact, String),
    users_hll AggregateFunction(uniqCombined64, String)
"""
_ROLLUP_SELECT = """
    count() AS events,
    uniqExactStateIf(user_id, user_id != '') AS users,
    uniqCombined64StateIf(user_id, user_id != '') AS users_hll
"""
_DIMENSIONS = "[" + ", ".join(f"'{d}'" for d in ROLLUP_DIMENSIONS) + "]"


def _rollup(table: str, bucket_type: str, bucket_expr: str, dimensional: bool) -> list[str]:
    dim_cols = "dimension LowCardinality(String), value String," if dimensional else ""
    dim_key = "dimension, value, " if dimensional else ""
    dim_select = "dimension, string_props[dimension] AS value," if dimensional else ""
    array_join = f"ARRAY JOIN {_DIMENSIONS} AS dimension" if dimensional else ""
    return [
        f"""
        CREATE TABLE IF NOT EXISTS {table} (
            org_id LowCardinality(String),
            environment_id LowCardinality(String),
            tenant_id String,
            event_name LowCardinality(String),
            {dim_cols}
            bucket {bucket_type},
            {_ROLLUP_COLUMNS}
        )
        ENGINE = AggregatingMergeTree
        PARTITION BY toYYYYMM(bucket)
        ORDER BY (org_id, environment_id, tenant_id, event_name, {dim_key}bucket)
        """,
        f"""
        CREATE MATERIALIZED VIEW IF NOT EXISTS {table}_mv TO {table} AS
        SELECT org_id, environment_id, tenant_id, event_name, {dim_select}
               {bucket_expr} AS bucket,
               {_ROLLUP_SELECT}
        FROM {EVENTS}
        {array_join}
        GROUP BY org_id, environment_id, tenant_id, event_name, {dim_key}bucket
        """,
    ]


VERSIONS: list[tuple[int, str, list[str]]] = [
    (
        1,
        "events, event ids for de-duplication, hourly and daily rollups",
        [
            f"""
            CREATE TABLE IF NOT EXISTS {EVENTS} (
                org_id LowCardinality(String),
                environment_id LowCardinality(String),
                tenant_id String,
                event_name LowCardinality(String),
                timestamp DateTime64(3, 'UTC'),
                event_id String,
                user_id String DEFAULT '',
                string_props Map(String, String),
                numeric_props Map(String, Float64),
                is_sample UInt8 DEFAULT 0,
                inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
            )
            ENGINE = MergeTree
            PARTITION BY toYYYYMM(timestamp)
            ORDER BY (org_id, environment_id, tenant_id, event_name, timestamp)
            SETTINGS fsync_after_insert = 1, fsync_part_directory = 1
            """,
            # event_ids seen in the last day: ingest skips ids already here (resends).
            f"""
            CREATE TABLE IF NOT EXISTS {EVENT_IDS} (
                org_id LowCardinality(String),
                environment_id LowCardinality(String),
                event_id String,
                seen_at DateTime('UTC') DEFAULT now()
            )
            ENGINE = ReplacingMergeTree(seen_at)
            ORDER BY (org_id, environment_id, event_id)
            TTL seen_at + INTERVAL 1 DAY
            """,
            *_rollup(HOURLY, "DateTime('UTC')", "toStartOfHour(timestamp)", False),
            *_rollup(DAILY, "Date", "toDate(timestamp)", False),
            *_rollup(HOURLY_DIM, "DateTime('UTC')", "toStartOfHour(timestamp)", True),
            *_rollup(DAILY_DIM, "Date", "toDate(timestamp)", True),
        ],
    ),
]


async def migrate_clickhouse(store: EventStore) -> list[int]:
    """Apply every DDL version not yet recorded; returns the versions applied now."""
    await store.execute(
        "CREATE TABLE IF NOT EXISTS emban_schema_versions "
        "(version UInt32, name String, applied_at DateTime DEFAULT now()) "
        "ENGINE = MergeTree ORDER BY version"
    )
    result = await store.query("SELECT version FROM emban_schema_versions")
    done = {int(row[0]) for row in result.rows}
    applied: list[int] = []
    for version, name, statements in VERSIONS:
        if version in done:
            continue
        for statement in statements:
            await store.execute(statement)
        await store.execute(
            "INSERT INTO emban_schema_versions (version, name) VALUES ({v:UInt32}, {n:String})",
            {"v": version, "n": name},
        )
        applied.append(version)
    return applied


async def delete_org_events(store: EventStore, org_id: str) -> None:
    """Remove every row of one org from the events, rollups and de-duplication tables."""
    for table in (EVENTS, EVENT_IDS, HOURLY, DAILY, HOURLY_DIM, DAILY_DIM):
        await store.execute(
            f"ALTER TABLE {table} DELETE WHERE org_id = {{org:String}} SETTINGS mutations_sync = 1",
            {"org": org_id},
        )

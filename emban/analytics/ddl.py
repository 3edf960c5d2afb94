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

_DIMENSIONS = "[" + ", ".join(f"'{d}'" for d in ROLLUP_DIMENSIONS) + "]"


def _rollup(table: str, bucket_type: str, *, dimensional: bool) -> str:
    """An AggregatingMergeTree rollup: event count, HLL unique users and, for the plain
    rollups, exact unique users (exact states per dimension value would cost more at ingest
    than they save: exact counts by dimension read raw events)."""
    dim_cols = "dimension LowCardinality(String), value String," if dimensional else ""
    dim_key = "dimension, value, " if dimensional else ""
    exact = "" if dimensional else "users AggregateFunction(uniqExact, String),"
    return f"""
        CREATE TABLE IF NOT EXISTS {table} (
            org_id LowCardinality(String),
            environment_id LowCardinality(String),
            tenant_id String,
            event_name LowCardinality(String),
            {dim_cols}
            bucket {bucket_type},
            events SimpleAggregateFunction(sum, UInt64),
            {exact}
            users_hll AggregateFunction(uniqCombined64, String)
        )
        ENGINE = AggregatingMergeTree
        PARTITION BY toYYYYMM(bucket)
        ORDER BY (org_id, environment_id, tenant_id, event_name, {dim_key}bucket)
        """


def _hourly_view(table: str, *, dimensional: bool) -> str:
    """Raw events → hourly rollup (the only views that read raw inserts)."""
    dim_select = "dimension, string_props[dimension] AS value," if dimensional else ""
    dim_key = "dimension, value, " if dimensional else ""
    array_join = f"ARRAY JOIN {_DIMENSIONS} AS dimension" if dimensional else ""
    exact = "" if dimensional else "uniqExactStateIf(user_id, user_id != '') AS users,"
    return f"""
        CREATE MATERIALIZED VIEW IF NOT EXISTS {table}_mv TO {table} AS
        SELECT org_id, environment_id, tenant_id, event_name, {dim_select}
               toStartOfHour(timestamp) AS bucket,
               count() AS events,
               {exact}
               uniqCombined64StateIf(user_id, user_id != '') AS users_hll
        FROM {EVENTS}
        {array_join}
        GROUP BY org_id, environment_id, tenant_id, event_name, {dim_key}bucket
        """


def _daily_view(table: str, source: str, *, dimensional: bool) -> str:
    """Hourly rollup → daily rollup: merges the hourly states of each inserted block, so the
    daily views never re-read raw events."""
    dim_key = "dimension, value, " if dimensional else ""
    exact = "" if dimensional else "uniqExactMergeState(users) AS users,"
    return f"""
        CREATE MATERIALIZED VIEW IF NOT EXISTS {table}_mv TO {table} AS
        SELECT org_id, environment_id, tenant_id, event_name, {dim_key}
               day AS bucket,
               sum(events) AS events,
               {exact}
               uniqCombined64MergeState(users_hll) AS users_hll
        FROM (SELECT *, toDate(bucket) AS day FROM {source})
        GROUP BY org_id, environment_id, tenant_id, event_name, {dim_key}day
        """


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
            _rollup(HOURLY, "DateTime('UTC')", dimensional=False),
            _rollup(DAILY, "Date", dimensional=False),
            _rollup(HOURLY_DIM, "DateTime('UTC')", dimensional=True),
            _rollup(DAILY_DIM, "Date", dimensional=True),
            # Daily views first: they must exist before rows reach the hourly tables.
            _daily_view(DAILY, HOURLY, dimensional=False),
            _daily_view(DAILY_DIM, HOURLY_DIM, dimensional=True),
            _hourly_view(HOURLY, dimensional=False),
            _hourly_view(HOURLY_DIM, dimensional=True),
        ],
    ),
    (
        2,
        "INSERTs named by a deduplication token (the ingest WAL's exactly-once replay)",
        [
            # Non-replicated MergeTree keeps no block ids unless asked: the last 10,000 INSERTs'
            # tokens are remembered per table, so a replayed WAL chunk (same token) is dropped
            # by the events table and, with deduplicate_blocks_in_dependent_materialized_views,
            # by each rollup the views write.
            f"ALTER TABLE {table} MODIFY SETTING non_replicated_deduplication_window = 10000"
            for table in (EVENTS, EVENT_IDS, HOURLY, DAILY, HOURLY_DIM, DAILY_DIM)
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

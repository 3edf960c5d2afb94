"""Versioned ClickHouse DDL, applied in order by ``emban migrate`` and on embedded start.

Each version is a list of statements; ``emban_schema_versions`` records what ran. Statements are
idempotent (``IF NOT EXISTS``) so a crash between a statement and its record is safe to re-run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

SCHEMA_VERSIONS = "emban_schema_versions"
MIN_PARTS_TO_MERGE = 10
# Every table that stores rows (versions 2 and 3 set their settings, an org's deletion mutates
# them).
MERGE_TREE_TABLES = (EVENTS, EVENT_IDS, HOURLY, DAILY, HOURLY_DIM, DAILY_DIM)
# A tenant's events live on one shard, and so do their rollup rows: the views run on the shard
# the events were inserted into and write to that shard's local rollup tables. The Distributed
# rollup tables declare the same key, so a row written through them lands beside its events too.
TENANT_SHARDING = "cityHash64(org_id, tenant_id)"
# event_ids has no tenant: spread by id; ingest's de-duplication reads it through the
# Distributed table (every shard), and a resent id always reaches the shard that holds it.
EVENT_ID_SHARDING = "cityHash64(org_id, event_id)"
# One ZooKeeper/Keeper path per shard and table, one replica name per host. Explicit
# {database}/{table} rather than {uuid}: the path stays readable and the same across DROP/CREATE
# (a dropped table must be dropped with SYNC before it is created again), see docs/decisions.md.
REPLICA_PATH = "'/clickhouse/tables/{shard}/{database}/{table}', '{replica}'"


@dataclass(frozen=True)
class Layout:
    """Where the tables live: one node (``cluster is None``) or a ClickHouse cluster, where each
    readable table name is a ``Distributed`` table over ``<name>_local`` on every shard."""

    cluster: str | None = None

    def __post_init__(self) -> None:
        if self.cluster is not None and _IDENTIFIER.fullmatch(self.cluster) is None:
            raise ValueError(f"not a cluster identifier: {self.cluster!r}")

    @property
    def on(self) -> str:
        """The ``ON CLUSTER`` clause of every DDL statement ("" on one node)."""
        return f" ON CLUSTER {self.cluster}" if self.cluster else ""

    def local(self, table: str) -> str:
        """The table that stores rows: ``table`` itself on one node, ``<table>_local`` on a
        cluster (mutations and materialized views work on these)."""
        return f"{table}_local" if self.cluster else table

    def engine(self, family: str, args: str = "") -> str:
        """``family`` (a MergeTree engine) with its ``args``; its Replicated form on a cluster."""
        if self.cluster:
            return f"Replicated{family}({REPLICA_PATH}{', ' + args if args else ''})"
        return f"{family}({args})" if args else family

    def distributed(self, table: str, sharding_key: str) -> list[str]:
        """On a cluster, the ``Distributed`` table ``table`` over ``<table>_local``."""
        if not self.cluster:
            return []
        return [
            f"CREATE TABLE IF NOT EXISTS {table}{self.on} AS {self.local(table)} "
            f"ENGINE = Distributed({self.cluster}, currentDatabase(), {self.local(table)}, "
            f"{sharding_key})"
        ]


def _rollup(layout: Layout, table: str, bucket_type: str, *, dimensional: bool) -> list[str]:
    """An AggregatingMergeTree rollup: event count, HLL unique users and, for the plain
    rollups, exact unique users (exact states per dimension value would cost more at ingest
    than they save: exact counts by dimension read raw events)."""
    dim_cols = "dimension LowCardinality(String), value String," if dimensional else ""
    dim_key = "dimension, value, " if dimensional else ""
    exact = "" if dimensional else "users AggregateFunction(uniqExact, String),"
    local = f"""
        CREATE TABLE IF NOT EXISTS {layout.local(table)}{layout.on} (
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
        ENGINE = {layout.engine("AggregatingMergeTree")}
        PARTITION BY toYYYYMM(bucket)
        ORDER BY (org_id, environment_id, tenant_id, event_name, {dim_key}bucket)
        """
    return [local, *layout.distributed(table, TENANT_SHARDING)]


def _hourly_view(layout: Layout, table: str, *, dimensional: bool) -> str:
    """Raw events → hourly rollup (the only views that read raw inserts). On a cluster the
    view reads the shard's local events and writes its local rollup."""
    dim_select = "dimension, string_props[dimension] AS value," if dimensional else ""
    dim_key = "dimension, value, " if dimensional else ""
    array_join = f"ARRAY JOIN {_DIMENSIONS} AS dimension" if dimensional else ""
    exact = "" if dimensional else "uniqExactStateIf(user_id, user_id != '') AS users,"
    return f"""
        CREATE MATERIALIZED VIEW IF NOT EXISTS {table}_mv{layout.on} TO {layout.local(table)} AS
        SELECT org_id, environment_id, tenant_id, event_name, {dim_select}
               toStartOfHour(timestamp) AS bucket,
               count() AS events,
               {exact}
               uniqCombined64StateIf(user_id, user_id != '') AS users_hll
        FROM {layout.local(EVENTS)}
        {array_join}
        GROUP BY org_id, environment_id, tenant_id, event_name, {dim_key}bucket
        """


def _daily_view(layout: Layout, table: str, source: str, *, dimensional: bool) -> str:
    """Hourly rollup → daily rollup: merges the hourly states of each inserted block, so the
    daily views never re-read raw events."""
    dim_key = "dimension, value, " if dimensional else ""
    exact = "" if dimensional else "uniqExactMergeState(users) AS users,"
    return f"""
        CREATE MATERIALIZED VIEW IF NOT EXISTS {table}_mv{layout.on} TO {layout.local(table)} AS
        SELECT org_id, environment_id, tenant_id, event_name, {dim_key}
               day AS bucket,
               sum(events) AS events,
               {exact}
               uniqCombined64MergeState(users_hll) AS users_hll
        FROM (SELECT *, toDate(bucket) AS day FROM {layout.local(source)})
        GROUP BY org_id, environment_id, tenant_id, event_name, {dim_key}day
        """


def _version_1(layout: Layout) -> list[str]:
    events_engine = layout.engine("MergeTree")
    return [
        f"""
            CREATE TABLE IF NOT EXISTS {layout.local(EVENTS)}{layout.on} (
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
            ENGINE = {events_engine}
            PARTITION BY toYYYYMM(timestamp)
            ORDER BY (org_id, environment_id, tenant_id, event_name, timestamp)
            SETTINGS fsync_after_insert = 1, fsync_part_directory = 1
            """,
        *layout.distributed(EVENTS, TENANT_SHARDING),
        # event_ids seen in the last day: ingest skips ids already here (resends).
        f"""
            CREATE TABLE IF NOT EXISTS {layout.local(EVENT_IDS)}{layout.on} (
                org_id LowCardinality(String),
                environment_id LowCardinality(String),
                event_id String,
                seen_at DateTime('UTC') DEFAULT now()
            )
            ENGINE = {layout.engine("ReplacingMergeTree", "seen_at")}
            ORDER BY (org_id, environment_id, event_id)
            TTL seen_at + INTERVAL 1 DAY
            """,
        *layout.distributed(EVENT_IDS, EVENT_ID_SHARDING),
        *_rollup(layout, HOURLY, "DateTime('UTC')", dimensional=False),
        *_rollup(layout, DAILY, "Date", dimensional=False),
        *_rollup(layout, HOURLY_DIM, "DateTime('UTC')", dimensional=True),
        *_rollup(layout, DAILY_DIM, "Date", dimensional=True),
        # Daily views first: they must exist before rows reach the hourly tables.
        _daily_view(layout, DAILY, HOURLY, dimensional=False),
        _daily_view(layout, DAILY_DIM, HOURLY_DIM, dimensional=True),
        _hourly_view(layout, HOURLY, dimensional=False),
        _hourly_view(layout, HOURLY_DIM, dimensional=True),
    ]


def _version_2(layout: Layout) -> list[str]:
    """Non-replicated MergeTree keeps no block ids unless asked: the last 10,000 INSERTs' tokens
    are remembered per table, so a replayed WAL chunk (same token) is dropped by the events table
    and, with deduplicate_blocks_in_dependent_materialized_views, by each rollup the views write.
    Replicated tables (a cluster) de-duplicate by token already: nothing to change there."""
    if layout.cluster is not None:
        return []
    return [
        f"ALTER TABLE {table} MODIFY SETTING non_replicated_deduplication_window = 10000"
        for table in MERGE_TREE_TABLES
    ]


def _version_3(layout: Layout) -> list[str]:
    """Merges wait for ten parts of a partition instead of a few (``min_parts_to_merge_at_once``):
    an org's burst of inserts is merged in fewer, larger merges, each part rewritten fewer times,
    so merging takes less of the cores that every org's requests share."""
    return [
        f"ALTER TABLE {layout.local(table)}{layout.on} "
        f"MODIFY SETTING min_parts_to_merge_at_once = {MIN_PARTS_TO_MERGE}"
        for table in MERGE_TREE_TABLES
    ]


def versions(cluster: str | None = None) -> list[tuple[int, str, list[str]]]:
    """Every DDL version for one node (``cluster is None``) or for the named cluster."""
    layout = Layout(cluster)
    return [
        (1, "events, event ids for de-duplication, hourly and daily rollups", _version_1(layout)),
        (
            2,
            "INSERTs named by a deduplication token (the ingest WAL's exactly-once replay)",
            _version_2(layout),
        ),
        (3, "merges of ten parts at once (less merging under a burst)", _version_3(layout)),
    ]


VERSIONS: list[tuple[int, str, list[str]]] = versions()


def schema_versions_table(cluster: str | None = None) -> str:
    """The bookkeeping table. On a cluster it is one replicated table on every node (one Keeper
    path for the whole cluster, not one per shard), so any node a migration or a load balancer
    reaches reads the same applied versions."""
    layout = Layout(cluster)
    engine = (
        "ReplicatedMergeTree('/clickhouse/tables/all/{database}/"
        f"{SCHEMA_VERSIONS}', '{{shard}}-{{replica}}')"
        if cluster
        else "MergeTree"
    )
    return (
        f"CREATE TABLE IF NOT EXISTS {SCHEMA_VERSIONS}{layout.on} "
        "(version UInt32, name String, applied_at DateTime DEFAULT now()) "
        f"ENGINE = {engine} ORDER BY version"
    )


def all_statements(cluster: str | None = None) -> list[str]:
    """Every DDL statement a fresh migration runs, in order (the bookkeeping table first)."""
    return [schema_versions_table(cluster), *(s for _, _, ss in versions(cluster) for s in ss)]


async def migrate_clickhouse(store: EventStore) -> list[int]:
    """Apply every DDL version not yet recorded; returns the versions applied now. On a cluster
    (``store.cluster``) every statement runs ``ON CLUSTER`` and returns once every host ran it."""
    await store.execute(schema_versions_table(store.cluster))
    result = await store.query(f"SELECT version FROM {SCHEMA_VERSIONS}")
    done = {int(row[0]) for row in result.rows}
    applied: list[int] = []
    for version, name, statements in versions(store.cluster):
        if version in done:
            continue
        for statement in statements:
            await store.execute(statement)
        await store.execute(
            f"INSERT INTO {SCHEMA_VERSIONS} (version, name) VALUES ({{v:UInt32}}, {{n:String}})",
            {"v": version, "n": name},
        )
        applied.append(version)
    return applied


def delete_org_statements(cluster: str | None = None) -> list[str]:
    """The mutations that remove one org (``{org:String}``). On a cluster they run on the local
    tables of every shard (a Distributed table takes no mutation) and wait for every replica."""
    layout = Layout(cluster)
    wait = 2 if cluster else 1
    return [
        f"ALTER TABLE {layout.local(table)}{layout.on} DELETE WHERE org_id = {{org:String}} "
        f"SETTINGS mutations_sync = {wait}"
        for table in MERGE_TREE_TABLES
    ]


async def delete_org_events(store: EventStore, org_id: str) -> None:
    """Remove every row of one org from the events, rollups and de-duplication tables."""
    for statement in delete_org_statements(store.cluster):
        await store.execute(statement, {"org": org_id})

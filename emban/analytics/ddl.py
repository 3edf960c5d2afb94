"""Versioned ClickHouse DDL, applied in order by ``emban migrate`` and on embedded start.

Each version is a list of statements; ``emban_schema_versions`` records what ran. Statements are
idempotent (``IF NOT EXISTS``) so a crash between a statement and its record is safe to re-run.
"""

from __future__ import annotations

from emban.analytics.store import EventStore

VERSIONS: list[tuple[int, str, list[str]]] = [
    (
        1,
        "events table",
        [
            """
            CREATE TABLE IF NOT EXISTS events (
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
            ENGINE = ReplacingMergeTree(inserted_at)
            PARTITION BY toYYYYMM(timestamp)
            ORDER BY (org_id, environment_id, tenant_id, event_name, timestamp, event_id)
            """,
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
    """Remove every event row of one org (used when the org is deleted)."""
    await store.execute(
        "ALTER TABLE events DELETE WHERE org_id = {org:String} SETTINGS mutations_sync = 1",
        {"org": org_id},
    )

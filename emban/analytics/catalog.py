"""Catalog reads: visible tables, their columns, org-scoped statistics, DDL, sample counts."""

from __future__ import annotations

from dataclasses import dataclass

from emban.analytics.query_spec import Scope
from emban.analytics.store import EventStore
from emban.analytics.tables import CATALOG_DATASETS, EVENTS, VISIBLE_DATASETS


async def table_engines(store: EventStore) -> dict[str, str]:
    """name → table engine per dataset, views included (schema facts, the same for every org)."""
    result = await store.query(
        "SELECT name, engine FROM system.tables "
        "WHERE database = currentDatabase() AND name IN {names:Array(String)}",
        {"names": list(CATALOG_DATASETS)},
    )
    return {str(name): str(engine) for name, engine in result.rows}


@dataclass(frozen=True)
class OrgTableStats:
    rows: int
    bytes: int  # uncompressed size of the org's rows (byteSize), not of the table's parts
    last_write: int | None  # unix seconds of the org's latest ingest, None before any


async def org_stats(store: EventStore, table: str, scope: Scope) -> OrgTableStats:
    """Statistics of one org/environment's rows only. Table-level metadata (system.parts sizes
    and modification times) moves when any org ingests, so it would show one org another's
    activity (issue 8, defect 11); every figure here is computed from the scope's own rows."""
    if table not in VISIBLE_DATASETS:
        raise ValueError(f"{table} is not a visible dataset")
    guard = "org_id = {org:String} AND environment_id = {env:String}"
    # The rollups are written by materialized views inside the same INSERT as the raw events,
    # so the org's latest write to any of them is its latest events.inserted_at.
    result = await store.query(
        f"SELECT count(), sum(byteSize(*)), "
        f"(SELECT toUnixTimestamp(max(inserted_at)) FROM {EVENTS} WHERE {guard}) "
        f"FROM {table} WHERE {guard}",
        {"org": scope.org_id, "env": scope.environment_id},
    )
    rows, size, last_write = result.rows[0] if result.rows else (0, 0, 0)
    return OrgTableStats(
        rows=int(rows), bytes=int(size or 0), last_write=int(last_write) if rows else None
    )


async def table_columns(store: EventStore) -> dict[str, list[dict[str, str]]]:
    result = await store.query(
        "SELECT table, name, type FROM system.columns WHERE database = currentDatabase() "
        "AND table IN {names:Array(String)} ORDER BY table, position",
        {"names": list(CATALOG_DATASETS)},
    )
    by_table: dict[str, list[dict[str, str]]] = {}
    for table, name, type_ in result.rows:
        by_table.setdefault(str(table), []).append({"name": str(name), "type": str(type_)})
    return by_table


async def show_create(store: EventStore, table: str) -> str:
    """The CREATE statement of a dataset: a table's or a materialized view's."""
    if table not in CATALOG_DATASETS:
        raise ValueError(f"{table} is not a visible dataset")
    result = await store.query(f"SHOW CREATE TABLE {table}")
    return str(result.rows[0][0]) if result.rows else ""


async def sample_counts(store: EventStore, org_id: str) -> tuple[int, int]:
    """(real events, sample events) of one org, all environments."""
    result = await store.query(
        f"SELECT countIf(is_sample = 0), countIf(is_sample = 1) FROM {EVENTS} "
        "WHERE org_id = {org:String}",
        {"org": org_id},
    )
    if not result.rows:
        return 0, 0
    real, sample = result.rows[0]
    return int(real), int(sample)

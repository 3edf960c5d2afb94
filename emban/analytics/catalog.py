"""Catalog reads: visible tables, their columns, org-scoped row counts, DDL, sample counts."""

from __future__ import annotations

from typing import Any

from emban.analytics.planner import Scope
from emban.analytics.store import EventStore
from emban.analytics.tables import EVENTS, VISIBLE_DATASETS


async def table_info(store: EventStore) -> dict[str, list[Any]]:
    """name → [name, engine, total_rows, total_bytes, last write (unix s or '')] per dataset."""
    result = await store.query(
        "SELECT t.name, t.engine, t.total_rows, t.total_bytes, "
        "if(p.modified > 0, toString(p.modified), '') FROM system.tables AS t "
        "LEFT JOIN (SELECT table, toUnixTimestamp(max(modification_time)) AS modified "
        "FROM system.parts WHERE database = currentDatabase() AND active GROUP BY table) AS p "
        "ON p.table = t.name "
        "WHERE t.database = currentDatabase() AND t.name IN {names:Array(String)}",
        {"names": list(VISIBLE_DATASETS)},
    )
    return {str(row[0]): row for row in result.rows}


async def table_columns(store: EventStore) -> dict[str, list[dict[str, str]]]:
    result = await store.query(
        "SELECT table, name, type FROM system.columns WHERE database = currentDatabase() "
        "AND table IN {names:Array(String)} ORDER BY table, position",
        {"names": list(VISIBLE_DATASETS)},
    )
    by_table: dict[str, list[dict[str, str]]] = {}
    for table, name, type_ in result.rows:
        by_table.setdefault(str(table), []).append({"name": str(name), "type": str(type_)})
    return by_table


async def org_rows(store: EventStore, table: str, scope: Scope) -> int:
    if table not in VISIBLE_DATASETS:
        raise ValueError(f"{table} is not a visible dataset")
    result = await store.query(
        f"SELECT count() FROM {table} WHERE org_id = {{org:String}} "
        "AND environment_id = {env:String}",
        {"org": scope.org_id, "env": scope.environment_id},
    )
    return int(result.rows[0][0]) if result.rows else 0


async def show_create(store: EventStore, table: str) -> str:
    if table not in VISIBLE_DATASETS:
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

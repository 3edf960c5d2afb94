"""Datasets: the ClickHouse tables an org can read and the materialized views that fill the
rollups, with org-scoped statistics and their DDL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from emban.analytics import catalog
from emban.analytics.query_spec import Scope
from emban.analytics.shaping import iso_seconds
from emban.analytics.tables import CATALOG_DATASETS, EVENTS, MATERIALIZED_VIEWS
from emban.auth.principal import Principal
from emban.error_codes import QueryErrorCode
from emban.errors import NotFound
from emban.runtime import Runtime
from emban.services.access import requires

DESCRIPTIONS = {
    "events": "Raw events, one row per ingested event.",
    "events_hourly_rollup": "Hourly counts and unique-user states per tenant and event.",
    "events_daily_rollup": "Daily counts and unique-user states per tenant and event.",
    "events_hourly_dim_rollup": "Hourly rollup per common dimension (model, endpoint, status, "
    "plan, source).",
    "events_daily_dim_rollup": "Daily rollup per common dimension (model, endpoint, status, "
    "plan, source).",
}


def _view_description(view: str) -> str:
    return (
        f"Materialized view: fills {MATERIALIZED_VIEWS[view]} as events are inserted "
        "(it stores nothing itself; its rows are counted there)."
    )


@dataclass(frozen=True)
class Dataset:
    name: str
    kind: Literal["table", "materialized_view"]
    engine: str
    description: str
    approx_rows: int
    approx_bytes: int
    updated_at: str | None
    columns: list[dict[str, str]]
    ddl: str


@requires("admin")
async def list_datasets(rt: Runtime, *, actor: Principal) -> list[Dataset]:
    """Visible tables, then the materialized views, with engine, columns, DDL, and every
    statistic computed from the caller's own rows (org and environment): row count, their
    uncompressed size and the time of the org's latest ingest. Nothing here moves when another
    org writes. A view stores no rows (0 rows, 0 bytes); its update time is the org's latest
    write through it, which is the org's latest ingest like its target's."""
    scope = Scope(actor.org_id, actor.environment_id)
    engines = await catalog.table_engines(rt.events)
    by_table = await catalog.table_columns(rt.events)
    latest_ingest: int | None = None  # from the events table, listed first
    out: list[Dataset] = []
    for name in CATALOG_DATASETS:
        if name not in engines:
            continue
        is_view = name in MATERIALIZED_VIEWS
        if is_view:
            rows, size, written = 0, 0, latest_ingest
        else:
            stats = await catalog.org_stats(rt.events, name, scope)
            rows, size, written = stats.rows, stats.bytes, stats.last_write
            if name == EVENTS:
                latest_ingest = stats.last_write
        out.append(
            Dataset(
                name=name,
                kind="materialized_view" if is_view else "table",
                engine=engines[name],
                description=_view_description(name) if is_view else DESCRIPTIONS[name],
                approx_rows=rows,
                approx_bytes=size,
                updated_at=iso_seconds(written) if written else None,
                columns=by_table.get(name, []),
                ddl=await catalog.show_create(rt.events, name),
            )
        )
    return out


@requires("admin")
async def dataset_ddl(rt: Runtime, *, actor: Principal, name: str) -> str:
    """The CREATE statement of one table or materialized view (404 for any other name)."""
    if name not in CATALOG_DATASETS:
        raise NotFound(f"no dataset named {name!r}", code=QueryErrorCode.dataset_not_found)
    return await catalog.show_create(rt.events, name)

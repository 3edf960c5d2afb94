"""Datasets: the ClickHouse tables an org can read, with org-scoped sizes, and their DDL."""

from __future__ import annotations

from dataclasses import dataclass

from emban.analytics import catalog
from emban.analytics.query_spec import Scope
from emban.analytics.shaping import iso_seconds
from emban.analytics.tables import VISIBLE_DATASETS
from emban.auth.principal import Principal
from emban.error_codes import QueryErrorCode
from emban.errors import NotFound
from emban.runtime import Runtime

DESCRIPTIONS = {
    "events": "Raw events, one row per ingested event.",
    "events_hourly_rollup": "Hourly counts and unique-user states per tenant and event.",
    "events_daily_rollup": "Daily counts and unique-user states per tenant and event.",
    "events_hourly_dim_rollup": "Hourly rollup per common dimension (model, endpoint, status, "
    "plan, source).",
    "events_daily_dim_rollup": "Daily rollup per common dimension (model, endpoint, status, "
    "plan, source).",
}


@dataclass(frozen=True)
class Dataset:
    name: str
    kind: str
    engine: str
    description: str
    approx_rows: int
    approx_bytes: int
    updated_at: str | None
    columns: list[dict[str, str]]


async def list_datasets(rt: Runtime, *, actor: Principal) -> list[Dataset]:
    """Visible tables with engine, columns, and every statistic computed from the caller's own
    rows (org and environment): row count, their uncompressed size and the time of the org's
    latest ingest. Nothing here moves when another org writes."""
    actor.require_role("admin")
    scope = Scope(actor.org_id, actor.environment_id)
    engines = await catalog.table_engines(rt.events)
    by_table = await catalog.table_columns(rt.events)
    out: list[Dataset] = []
    for name in VISIBLE_DATASETS:
        if name not in engines:
            continue
        stats = await catalog.org_stats(rt.events, name, scope)
        out.append(
            Dataset(
                name=name,
                kind="table",
                engine=engines[name],
                description=DESCRIPTIONS[name],
                approx_rows=stats.rows,
                approx_bytes=stats.bytes,
                updated_at=iso_seconds(stats.last_write) if stats.last_write else None,
                columns=by_table.get(name, []),
            )
        )
    return out


async def dataset_ddl(rt: Runtime, *, actor: Principal, name: str) -> str:
    actor.require_role("admin")
    if name not in VISIBLE_DATASETS:
        raise NotFound(f"no dataset named {name!r}", code=QueryErrorCode.dataset_not_found)
    return await catalog.show_create(rt.events, name)

"""Names of the ClickHouse tables and the dimensions the rollups carry (the allowlists)."""

from __future__ import annotations

EVENTS = "events"
EVENT_IDS = "event_ids"
HOURLY = "events_hourly_rollup"
DAILY = "events_daily_rollup"
HOURLY_DIM = "events_hourly_dim_rollup"
DAILY_DIM = "events_daily_dim_rollup"

# The common SaaS dimensions rolled up per hour and per day (string_props keys).
ROLLUP_DIMENSIONS: tuple[str, ...] = ("model", "endpoint", "status", "plan", "source")

# Tables an org may read through ad-hoc SQL and the datasets API; each has org_id and
# environment_id columns, which the org/environment guard pins.
VISIBLE_DATASETS: tuple[str, ...] = (EVENTS, HOURLY, DAILY, HOURLY_DIM, DAILY_DIM)

# The materialized views that fill the rollups (view → the table it writes to), created by
# analytics/ddl.py. Listed by the datasets API with their DDL; not readable by ad-hoc SQL (a view
# with TO stores nothing itself: its rows are its target's).
MATERIALIZED_VIEWS: dict[str, str] = {
    f"{HOURLY}_mv": HOURLY,
    f"{DAILY}_mv": DAILY,
    f"{HOURLY_DIM}_mv": HOURLY_DIM,
    f"{DAILY_DIM}_mv": DAILY_DIM,
}

# Everything the datasets API describes: the readable tables, then the views.
CATALOG_DATASETS: tuple[str, ...] = (*VISIBLE_DATASETS, *MATERIALIZED_VIEWS)

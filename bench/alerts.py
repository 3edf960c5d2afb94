"""One alert evaluation cycle: 1,000 enabled rules, half of them per tenant over 100 tenants.

    .venv/bin/python -m bench.alerts [--rules 1000] [--events 1000000] [--cycles 3]

In-process on the embedded defaults (SQLite metadata and chDB in a temp dir): loads N synthetic
events over the last --hours (default a week) for 100 tenants, creates one dashboard with 12
widgets and the rules (threshold, delta and no_data mixed), then times
``evaluate_all`` — the job ``emban worker`` runs on its cron — and counts the engine queries it
sends. Next to it, the raw engine: the same rule queries sent straight to chDB one after another.
Rules vary: 12 widgets, 4 lookbacks, whole-environment, one-tenant and per-tenant scopes.
Target: a cycle under 5 s, one engine query per rule (rules asking the same question share one).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

LOAD_SQL = """
INSERT INTO events (org_id, environment_id, tenant_id, event_name, timestamp, event_id, user_id,
                    string_props, numeric_props, is_sample)
SELECT {org:String}, {env:String},
       concat('tenant-', toString(number % 100)),
       'api.call',
       now64(3) - toIntervalMillisecond(cityHash64(number) % ({hours:UInt32} * 3600000)),
       concat('ev-', toString(number)),
       concat('user-', toString(cityHash64(number, 1) % 5000)),
       map('model', ['gpt-4o', 'claude-sonnet', 'llama-3'][number % 3 + 1]),
       map('latency_ms', toFloat64(cityHash64(number, 2) % 2000)),
       0
FROM numbers({n:UInt64})
"""

MODELS = ("gpt-4o", "claude-sonnet", "llama-3")


def _widget(widget_id: str, metric: str, model: str | None) -> dict[str, Any]:
    query: dict[str, Any] = {"event_name": "api.call", "metric": metric, "period": "24h"}
    if metric not in ("count", "count_unique"):
        query["numeric_prop"] = "latency_ms"
    if model is not None:
        query["filters"] = {"model": model}
    return {
        "id": widget_id,
        "kind": "metric",
        "title": widget_id,
        "query": query,
        "viz": {"type": "number"},
        "layout": {"x": 0, "y": 0, "w": 6, "h": 2},
    }


# 12 widgets: count, unique users, avg and p95 latency, each for all models and per model.
WIDGETS: list[dict[str, Any]] = [
    _widget(f"{metric}_{model or 'all'}", metric, model)
    for metric in ("count", "count_unique", "avg", "p95")
    for model in (None, *MODELS[:2])
]
LOOKBACKS = (15, 30, 60, 120)


class CountingStore:
    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.queries: list[tuple[str, dict[str, Any]]] = []

    async def query(self, sql: str, params: Any = None, **kw: Any) -> Any:
        self.queries.append((sql, params))
        return await self.inner.query(sql, params, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class NoJobs:
    async def enqueue(self, job: str, *args: str) -> None:
        return None


async def main(rules: int, events: int, cycles: int, hours: int, batch: int) -> None:
    from emban.analytics import alert_query
    from emban.analytics.chdb_store import ChdbStore
    from emban.analytics.ddl import migrate_clickhouse
    from emban.metadata import close_metadata, migrate_metadata, open_metadata
    from emban.models import AlertRule, AlertState, Dashboard, Environment, Org
    from emban.services import alert_eval
    from emban.services.alert_eval import AlertRunner, evaluate_all

    alert_query.BATCH_SIZE = batch
    alert_eval.BATCH_SIZE = batch
    from emban.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), secret_key="b" * 40)
        await migrate_metadata(settings)
        metadata = await open_metadata(settings)
        store = ChdbStore(settings.chdb_path)
        await migrate_clickhouse(store)
        org = await Org.create(name="Bench")
        env = await Environment.create(org=org, name="production", embed_secret="s" * 40)
        t = time.perf_counter()
        for offset in range(0, events, 1_000_000):
            n = min(1_000_000, events - offset)
            await store.execute(LOAD_SQL, {"org": org.id, "env": env.id, "n": n, "hours": hours})
        load_s = time.perf_counter() - t
        dashboard = await Dashboard.create(
            org=org,
            name="Ops",
            draft={"widgets": WIDGETS},
            published={"widgets": WIDGETS},
            is_published=True,
        )
        kinds = [("threshold", "gt", 1000.0), ("delta", "gte", 10.0), ("no_data", "gt", 0.0)]
        await AlertRule.bulk_create(
            [
                AlertRule(
                    org_id=org.id,
                    environment_id=env.id,
                    dashboard_id=dashboard.id,
                    widget_id=WIDGETS[(i // 2) % len(WIDGETS)]["id"],
                    name=f"rule {i}",
                    condition_type=kinds[i % 3][0],
                    operator=kinds[i % 3][1],
                    threshold_value=kinds[i % 3][2],
                    lookback_minutes=LOOKBACKS[(i // 24) % len(LOOKBACKS)],
                    per_tenant=i % 2 == 0,
                    # Half of the other rules watch one tenant, half the whole environment.
                    tenant_id=f"tenant-{(i // 4) % 100}" if i % 4 == 1 else None,
                )
                for i in range(rules)
            ]
        )
        counting = CountingStore(store)
        runner = AlertRunner(counting, NoJobs(), settings)  # type: ignore[arg-type]
        times: list[float] = []
        for _ in range(cycles):
            counting.queries.clear()
            t = time.perf_counter()
            evaluated, _ = await evaluate_all(runner, now=datetime.now(UTC))
            times.append(time.perf_counter() - t)
            sent = len(counting.queries)
        states = await AlertState.all().count()
        # The raw engine: the same statements, one after another, straight to chDB.
        t = time.perf_counter()
        for sql, params in counting.queries:
            await store.query(sql, params)
        raw_s = time.perf_counter() - t
        await store.close()
        await close_metadata(metadata)
    print(
        f"events loaded: {events:,} over the last {hours} h in {load_s:.1f} s; probes per "
        f"scan: {batch}; rules: {evaluated:,} "
        f"({rules // 2:,} per tenant over 100 tenants)"
    )
    print(
        f"cycle (evaluate_all), median of {cycles}: {statistics.median(times):.2f} s "
        f"(first {times[0]:.2f} s, transitions recorded in the first: {states:,} states)"
    )
    distinct = len({(sql, repr(sorted(params.items()))) for sql, params in counting.queries})
    print(
        f"engine queries per cycle: {sent:,} ({sent / evaluated:.2f} per rule; rules asking "
        f"the same question share one: {evaluated - distinct:,} shared)"
    )
    print(f"raw engine, same {sent:,} queries sequentially: {raw_s:.2f} s")
    print(
        f"target: cycle < 5 s -> {'met' if statistics.median(times) < 5 else 'NOT met'}; "
        f"at most one query per rule -> {'met' if sent <= evaluated else 'NOT met'}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--hours", type=int, default=168, help="events spread over the last N h")
    parser.add_argument("--batch", type=int, default=16, help="probes answered per engine scan")
    args = parser.parse_args()
    asyncio.run(main(args.rules, args.events, args.cycles, args.hours, args.batch))

"""DESIGN §4: "A rollup answer must equal the raw answer" — checked on seeded random data.

One dataset (~20k events from 100 days ago to 2 days ahead for one org/environment, plus decoys
in another org and another environment) is inserted into ``events``; the materialized views fill
the rollups. Then every combination of metric, period, granularity and filter shape (with a
random tenant, event, dimension and value) is planned twice — by the rules and with
``force_raw=True`` — run on the same store with the same ``now``, shaped with ``shape_rows`` and
compared: exactly for ``count`` and ``count_unique``, within 2 % per point for
``count_unique_approx``. The raw answer is also checked against the same aggregation computed in
Python from the generated rows.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec

from emban.analytics.ingest import EVENT_COLUMNS
from emban.analytics.planner import Plan, plan_query
from emban.analytics.query_spec import QuerySpec, Scope, build_spec
from emban.analytics.shaping import Point, shape_rows
from emban.analytics.tables import EVENTS, ROLLUP_DIMENSIONS
from emban.runtime import Runtime

SEED = 20240310
SCOPE = Scope("org_a", "env_a")
DECOYS = (Scope("org_b", "env_a"), Scope("org_a", "env_b"))
TENANTS = ("t1", "t2", "t3")
EVENT_NAMES = ("api.call", "page.view", "signup")
VALUES: dict[str, tuple[str, ...]] = {
    "model": ("gpt-4", "claude", "llama"),
    "endpoint": ("/chat", "/embed", "/search", "/v1/complete"),
    "status": ("success", "error", "timeout"),
    "plan": ("free", "pro", 'o\'neil "team"'),
    "source": ("api", "web", "sdk"),
    "region": ("eu", "us", "apac"),
}
NON_ROLLUP = "region"
METRICS = ("count", "count_unique", "count_unique_approx")
PERIODS = ("1h", "24h", "7d", "30d", "90d")
GRANULARITIES = ("hour", "day", "week", "month")
MODES = (
    "none",
    "filter_rollup_dim",
    "filter_and_group_same_dim",
    "group_rollup_dim",
    "filter_non_rollup_dim",
    "group_non_rollup_dim",
    "two_dims",
)
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


@dataclass(frozen=True)
class Row:
    tenant: str
    event: str
    ms: int  # epoch milliseconds, UTC
    user: str
    props: dict[str, str]


def _text(ms: int) -> str:
    moment = datetime.fromtimestamp(ms // 1000, UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{ms % 1000:03d}"


def _generate(rng: random.Random, now_ms: int, count: int) -> list[Row]:
    rows: list[Row] = []
    earliest = now_ms - 100 * DAY_MS
    # past every window's end (ingest accepts up to 24 h ahead; the store holds whatever)
    latest = now_ms + 2 * DAY_MS
    for _ in range(count):
        ms = rng.randrange(earliest, latest)
        edge = rng.random()
        if edge < 0.08:  # exactly on an hour (and so sometimes a day/week/month) boundary
            ms -= ms % HOUR_MS
        elif edge < 0.16:  # the last millisecond before one
            ms -= ms % HOUR_MS + 1
        user = "" if rng.random() < 0.1 else f"u{int(rng.paretovariate(1.2) * 40) % 4000}"
        props = {key: rng.choice(values) for key, values in VALUES.items() if rng.random() < 0.85}
        rows.append(Row(rng.choice(TENANTS), rng.choice(EVENT_NAMES), ms, user, props))
    return rows


async def _insert(runtime: Runtime, scope: Scope, rows: list[Row], rng: random.Random) -> None:
    encoder = msgspec.json.Encoder()
    lines = []
    for row in rows:
        lines.append(
            encoder.encode(
                {
                    "org_id": scope.org_id,
                    "environment_id": scope.environment_id,
                    "tenant_id": row.tenant,
                    "event_name": row.event,
                    "timestamp": _text(row.ms),
                    "event_id": f"{rng.getrandbits(64):016x}",
                    "user_id": row.user,
                    "string_props": row.props,
                    "numeric_props": {"tokens": float(rng.randrange(1, 5000))},
                    "is_sample": 0,
                }
            )
        )
    # several inserts, so the rollups hold several partial states per bucket to merge
    for start in range(0, len(lines), 4000):
        await runtime.events.insert_json(
            EVENTS, EVENT_COLUMNS, b"\n".join(lines[start : start + 4000])
        )


def _random_spec(
    rng: random.Random, metric: str, period: str, granularity: str, mode: str
) -> QuerySpec:
    rollup_dims = list(ROLLUP_DIMENSIONS)
    dim = rng.choice(rollup_dims)

    def value(key: str) -> str:
        # mostly a real value; sometimes '' (events without the key) or a value nobody sent
        pick = rng.random()
        if pick < 0.1:
            return ""
        if pick < 0.15:
            return "nobody-sent-this"
        return rng.choice(VALUES[key])

    filters: dict[str, object] = {}
    group_by: str | None = None
    if mode == "filter_rollup_dim":
        filters = {dim: value(dim)}
    elif mode == "filter_and_group_same_dim":
        filters = {dim: value(dim)}
        group_by = dim
    elif mode == "group_rollup_dim":
        group_by = dim
    elif mode == "filter_non_rollup_dim":
        filters = {NON_ROLLUP: value(NON_ROLLUP)}
    elif mode == "group_non_rollup_dim":
        group_by = NON_ROLLUP
    elif mode == "two_dims":
        other = rng.choice([d for d in [*rollup_dims, NON_ROLLUP] if d != dim])
        if rng.random() < 0.5:
            filters = {dim: value(dim), other: value(other)}
        else:
            filters = {dim: value(dim)}
            group_by = other
    tenant = rng.choice([*TENANTS, None])
    return build_spec(
        event_name=rng.choice(EVENT_NAMES),
        tenant_id=tenant,
        tenant_required=False,
        metric=metric,
        period=period,
        granularity=granularity,
        group_by=group_by,
        filters=filters,
    )


def _expected_source(spec: QuerySpec) -> tuple[str, str, str | None]:
    """The module docstring's rules, restated independently of choose_source."""
    dims = {key for key, _ in spec.filters} | ({spec.group_by} if spec.group_by else set())
    if len(dims) > 1 or (dims and not dims <= set(ROLLUP_DIMENSIONS)):
        return ("raw", "events", None)
    if spec.metric == "count_unique" and (dims or spec.granularity in ("week", "month")):
        return ("raw", "events", None)  # the dimension rollups keep no exact states
    suffix = "_dim_rollup" if dims else "_rollup"
    if spec.granularity == "hour":
        return ("hourly_rollup", f"events_hourly{suffix}", "hour")
    return ("daily_rollup", f"events_daily{suffix}", "day")


def _bucket(ms: int, granularity: str) -> int:
    """Bucket start (epoch seconds), computed without the planner's helpers."""
    seconds = ms // 1000
    if granularity == "hour":
        return seconds - seconds % 3600
    day = seconds - seconds % 86400
    if granularity == "day":
        return day
    moment = datetime.fromtimestamp(day, UTC)
    if granularity == "week":
        return day - moment.weekday() * 86400
    return int(moment.replace(day=1).timestamp())


def _python_answer(
    rows_by_event: dict[str, list[Row]], spec: QuerySpec, plan: Plan
) -> dict[tuple[int, str | None], int]:
    """The exact answer (count, or distinct non-empty users) per (bucket, group)."""
    start_ms = int(plan.start.timestamp() * 1000)
    end_ms = int(plan.end.timestamp() * 1000)
    counts: dict[tuple[int, str | None], int] = defaultdict(int)
    users: dict[tuple[int, str | None], set[str]] = defaultdict(set)
    for row in rows_by_event[spec.event_name]:
        if spec.tenant_id is not None and row.tenant != spec.tenant_id:
            continue
        if not start_ms <= row.ms < end_ms:
            continue
        if any(row.props.get(key, "") != value for key, value in spec.filters):
            continue
        group = row.props.get(spec.group_by, "") if spec.group_by else None
        key = (_bucket(row.ms, spec.granularity), group)
        counts[key] += 1
        if row.user:
            users[key].add(row.user)
        else:
            users.setdefault(key, set())
    if spec.metric == "count":
        return dict(counts)
    return {key: len(found) for key, found in users.items()}


def _as_map(points: list[Point]) -> dict[tuple[int, str | None], int | float]:
    return {(int(p.bucket.timestamp()), p.group): p.value for p in points}


def _within(a: float, b: float, tolerance: float) -> bool:
    return abs(a - b) <= tolerance * max(abs(a), abs(b))


async def _run(runtime: Runtime, plan: Plan, metric: str) -> list[Point]:
    result = await runtime.events.query(plan.sql, plan.params)
    return shape_rows(plan, result.rows, metric).points


async def test_rollup_answers_equal_raw_answers_on_random_data(runtime: Runtime) -> None:
    rng = random.Random(SEED)  # noqa: S311 - reproducible test data, not secrets
    now = datetime.now(UTC).replace(microsecond=0)
    now_ms = int(now.timestamp() * 1000)
    rows = _generate(rng, now_ms, 20_000)
    await _insert(runtime, SCOPE, rows, rng)
    for decoy in DECOYS:
        await _insert(runtime, decoy, _generate(rng, now_ms, 3_000), rng)
    stored = await runtime.events.query("SELECT count() FROM events")
    assert int(stored.rows[0][0]) == 26_000

    rows_by_event: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        rows_by_event[row.event].append(row)

    planned: defaultdict[str, int] = defaultdict(int)
    checked_points = 0
    nonzero_points = 0
    for metric in METRICS:
        for period in PERIODS:
            for granularity in GRANULARITIES:
                for mode in MODES:
                    spec = _random_spec(rng, metric, period, granularity, mode)
                    label = f"{spec} at {now.isoformat()}"
                    plan = plan_query(spec, SCOPE, now)
                    raw_plan = plan_query(spec, SCOPE, now, force_raw=True)
                    expected_source = _expected_source(spec)
                    assert (
                        plan.planned_by,
                        plan.source_table,
                        plan.rollup_granularity,
                    ) == expected_source, label
                    assert (raw_plan.planned_by, raw_plan.source_table) == ("raw", "events")
                    assert raw_plan.buckets == plan.buckets
                    planned[plan.planned_by] += 1

                    chosen = await _run(runtime, plan, metric)
                    raw = await _run(runtime, raw_plan, metric)
                    if not spec.group_by:
                        assert len(raw) == len(plan.buckets), label
                    # the same (bucket, group) points in the same order, whatever the source
                    assert [(p.bucket, p.group) for p in chosen] == [
                        (p.bucket, p.group) for p in raw
                    ], label

                    truth = _python_answer(rows_by_event, spec, plan)
                    raw_map = _as_map(raw)
                    # zero-filled points are absent from the Python answer (and vice versa)
                    assert {k for k, v in raw_map.items() if v} == {
                        k for k, v in truth.items() if v
                    }, label
                    if metric == "count_unique_approx":
                        for key, value in truth.items():
                            assert _within(raw_map[key], value, 0.02), (label, key)
                        for mine, theirs in zip(chosen, raw, strict=True):
                            assert _within(mine.value, theirs.value, 0.02), (label, mine, theirs)
                    else:
                        assert {k: v for k, v in raw_map.items() if v} == {
                            k: v for k, v in truth.items() if v
                        }, label
                        assert chosen == raw, label
                    checked_points += len(raw)
                    nonzero_points += sum(1 for p in raw if p.value)

    # 420 specs; by the rules exactly 170 read a rollup (so this is not raw against raw): per
    # period, count and count_unique_approx with no or one common dimension (2 x 4 x 4) and
    # count_unique without dimensions for hour and day buckets (2)
    assert sum(planned.values()) == len(METRICS) * len(PERIODS) * len(GRANULARITIES) * len(MODES)
    assert planned["raw"] == 250
    assert planned["hourly_rollup"] == 5 * (4 + 4 + 1)
    assert planned["daily_rollup"] == 5 * (12 + 12 + 1)
    assert nonzero_points > 10_000, (checked_points, nonzero_points)

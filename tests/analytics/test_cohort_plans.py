"""One query for many live cohorts (``plan_cohorts``) answers each exactly as its own query would.

The live hub refreshes the cohorts of a dashboard and tenant together, and each widget's specs
(one per cohort, differing in the viewers' filters) run as one engine query. Checked on the
seeded random data of the rollup-equals-raw test: random groups of specs — every metric, period
and granularity, grouped or not, totals, the period before, string filters, "any of" filters and
numeric ranges, values with quotes — are planned one by one with ``plan_query`` and together
with ``plan_cohorts``; after ``split_rows`` every spec's shaped points are exactly its own
query's, and a row matching several cohorts' filters is counted for each of them.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Hashable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from emban.analytics.planner import cohort_group, plan_cohorts, plan_query
from emban.analytics.query_spec import METRICS, QuerySpec, build_spec
from emban.analytics.shaping import Point, shape_rows, split_rows
from emban.analytics.tables import ROLLUP_DIMENSIONS
from emban.runtime import Runtime
from emban.services.analytics import run_specs
from tests.analytics.test_planner_property import (
    DECOYS,
    EVENT_NAMES,
    SCOPE,
    TENANTS,
    VALUES,
    _generate,
    _insert,
)

SEED = 20261130
GRANULARITIES = ("hour", "day", "week", "month")
PERIODS = ("1h", "24h", "7d", "30d", "90d")


def _base(rng: random.Random, now: datetime) -> QuerySpec:
    metric = rng.choice(list(METRICS))
    period = rng.choice(PERIODS)
    granularity = rng.choice(GRANULARITIES)
    spec = build_spec(
        event_name=rng.choice(EVENT_NAMES),
        tenant_id=rng.choice(TENANTS),
        metric=metric,
        period=period,
        granularity=granularity,
        numeric_prop="tokens" if metric in ("sum", "avg", "p95", "p99") else None,
    )
    if rng.random() < 0.3:
        spec = replace(spec, group_by=rng.choice([*ROLLUP_DIMENSIONS, "region"]))
    if rng.random() < 0.3:
        spec = replace(spec, total=True, periods_back=rng.choice((0, 1)))
    if rng.random() < 0.15:
        start = (now - timedelta(days=rng.randrange(1, 60))).replace(minute=0, second=0)
        spec = replace(spec, date_range=(start, start + timedelta(hours=rng.randrange(1, 400))))
    return spec


def _cohort(rng: random.Random, base: QuerySpec, dim: str) -> QuerySpec:
    """The base spec narrowed the way one viewer's filters narrow it."""
    shape = rng.random()
    if shape < 0.1:
        return base  # no filter at all: every row of the base
    values = VALUES[dim]
    if shape < 0.55:
        value = rng.choice([*values, "", "nobody-sent-this"])
        return replace(base, filters=((dim, value),))
    if shape < 0.85:
        chosen = tuple(sorted(rng.sample(values, 2)))
        return replace(base, any_of=((dim, chosen),))
    low = float(rng.randrange(0, 3000))
    high = None if rng.random() < 0.3 else low + rng.randrange(1, 2000)
    return replace(
        base, filters=((dim, rng.choice(values)),), numeric_ranges=(("tokens", low, high),)
    )


def _points(points: list[Point]) -> list[tuple[datetime, float | int, str | None]]:
    return [(p.bucket, p.value, p.group) for p in points]


@pytest.fixture
async def seeded(runtime: Runtime) -> datetime:
    rng = random.Random(SEED)  # noqa: S311 - reproducible test data, not secrets
    now = datetime.now(UTC).replace(microsecond=0)
    now_ms = int(now.timestamp() * 1000)
    await _insert(runtime, SCOPE, _generate(rng, now_ms, 20_000), rng)
    for decoy in DECOYS:
        await _insert(runtime, decoy, _generate(rng, now_ms, 3_000), rng)
    return now


async def test_one_query_answers_each_cohort_as_its_own_query_would(
    runtime: Runtime, seeded: datetime
) -> None:
    now = seeded
    rng = random.Random(SEED + 1)  # noqa: S311
    compared: defaultdict[str, int] = defaultdict(int)
    nonzero = 0
    for _ in range(120):
        base = _base(rng, now)
        dim = base.group_by if base.group_by in ROLLUP_DIMENSIONS else None
        dim = dim or rng.choice(ROLLUP_DIMENSIONS)
        members = list(dict.fromkeys(_cohort(rng, base, dim) for _ in range(rng.randrange(2, 8))))
        groups: dict[Hashable, list[QuerySpec]] = defaultdict(list)
        for member in members:
            groups[cohort_group(member)].append(member)
        for specs in groups.values():
            if len(specs) < 2:
                continue
            plan = plan_cohorts(specs, SCOPE, now)
            assert plan.cohorts == len(specs)
            together = await runtime.events.query(plan.sql, plan.params)
            for spec, rows in zip(specs, split_rows(plan, together.rows), strict=True):
                alone = plan_query(spec, SCOPE, now)
                assert (alone.source_table, alone.buckets) == (plan.source_table, plan.buckets)
                own = await runtime.events.query(alone.sql, alone.params)
                expected = _points(shape_rows(alone, own.rows, spec.metric).points)
                got = _points(shape_rows(plan, rows, spec.metric).points)
                assert got == expected, spec
                nonzero += sum(1 for _, value, _ in expected if value)
            compared[plan.planned_by] += len(specs)
    # raw plans and both rollups were compared, over answers that are not all zero
    assert compared["raw"] > 100, dict(compared)
    assert compared["hourly_rollup"] > 10, dict(compared)
    assert compared["daily_rollup"] > 10, dict(compared)
    assert nonzero > 1_000


async def test_run_specs_answers_equal_specs_once_and_refusals_alone(
    runtime: Runtime, seeded: datetime
) -> None:
    """``run_specs``: answers in the order asked, a repeated spec answered alike, and a spec whose
    answer is over the points cap refused on its own while the rest of its group answers."""
    base = build_spec(
        event_name="api.call", tenant_id="t1", metric="count", period="7d", granularity="hour"
    )
    grouped = replace(base, group_by="region")
    specs = [
        replace(grouped, filters=(("model", "claude"),)),
        replace(grouped, any_of=(("model", ("claude", "gpt-4")),)),
        replace(grouped, filters=(("model", "claude"),)),
        replace(base, filters=(("model", "llama"),)),
    ]
    expected = []
    for spec in specs:
        plan = plan_query(spec, SCOPE, seeded)
        rows = (await runtime.events.query(plan.sql, plan.params)).rows
        expected.append(_points(shape_rows(plan, rows, spec.metric).points))
    answers = await run_specs(runtime, SCOPE, specs)
    assert [_points(a.points) for a in answers if not isinstance(a, Exception)] == expected
    assert all(len(points) > 0 for points in expected)

    # 7 days of hours, the current one included: 169 buckets; x 4 groups (3 regions and ''
    # for events without one) is 676 points, over a cap of 600
    tight = replace(runtime.settings, query_max_points=600)
    roomy = replace(grouped, filters=(("region", "eu"),))  # one group: 169 points
    crowded = replace(grouped, filters=(("model", "claude"),))  # four groups: 676 points
    original = runtime.settings
    runtime.settings = tight
    try:
        first, second = await run_specs(runtime, SCOPE, [roomy, crowded])
    finally:
        runtime.settings = original
    assert not isinstance(first, Exception)
    assert len(first.points) == 169
    assert isinstance(second, Exception)
    assert (second.code, second.extra) == ("too_many_points", {"limit": 600, "field": "group_by"})

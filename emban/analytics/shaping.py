"""Result shaping: engine rows into points in bucket order, zero-filled where a count has no
row; and the ISO renderings of buckets and instants the edges answer with."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from emban.analytics.planner import Plan, too_many_points
from emban.analytics.query_spec import COUNT_METRICS


@dataclass(frozen=True)
class Point:
    bucket: datetime
    value: float | int
    group: str | None = None


def shape_rows(plan: Plan, rows: list[list[Any]], metric: str) -> list[Point]:
    """Engine rows → points in bucket order (groups sorted within a bucket); count metrics get 0
    for empty buckets. Refuses (400) an answer over ``plan.max_points`` before building it."""
    if len(rows) > plan.max_points:
        raise too_many_points(plan.max_points, grouped=plan.grouped)
    integral = metric in COUNT_METRICS
    found: dict[tuple[str | None, int], float | int] = {}
    seen: set[str | None] = set()
    for row in rows:
        stamp = int(row[0])
        group = str(row[1]) if plan.grouped else None
        raw = row[-1]
        if raw is None:
            continue  # JSON output renders NaN (avg/quantile without the property) as null
        value: float | int = int(raw) if integral else float(raw)
        if not math.isfinite(value):
            continue  # avg/quantile over a bucket without the property
        found[(group, stamp)] = value
        seen.add(group)
    groups: list[str | None] = sorted(seen, key=lambda g: g or "") if plan.grouped else [None]
    if plan.fill_zero and len(groups) * len(plan.buckets) > plan.max_points:
        raise too_many_points(plan.max_points, grouped=plan.grouped)
    points: list[Point] = []
    fill = plan.fill_zero
    for bucket in plan.buckets:
        stamp = int(bucket.timestamp())
        for group in groups:
            value_found = found.get((group, stamp))
            if value_found is not None:
                points.append(Point(bucket, value_found, group))
            elif fill:
                points.append(Point(bucket, 0, group))
    return points


def iso_bucket(moment: datetime | date) -> str:
    if isinstance(moment, datetime):
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return moment.isoformat()


def iso_timestamp(value: datetime | None) -> str | None:
    """A stored moment as the API writes it: ISO 8601 in UTC with milliseconds and ``Z``."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_seconds(unix_seconds: int) -> str:
    return iso_bucket(datetime.fromtimestamp(unix_seconds, UTC))

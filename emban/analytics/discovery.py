"""Discovery reads: the event names an environment holds, and their property keys and values.

Every statement is pinned to one org and one environment by :func:`_guard`, which needs a
:class:`Scope`; every value (org, environment, event names, times) is a server-side parameter.

Bounded (issue 13, item 7): nothing reads all history. Event statistics read the columns of the
window only (``timestamp >= since``: the monthly partitions outside it are never opened, and
inside the (tenant, event) runs of the sort key the index skips the granules before ``since``).
Property statistics (the Map columns, by far the costliest to read) read only the most recent
whole hours of the window that together hold about ``sample_rows`` events: :func:`sample_start`
finds that hour from the hourly rollup (a few hundred rows), so no statement sorts or samples the
raw events. No ``SAMPLE``: the events table has no sampling key, and a hash filter would still
read every granule.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from emban.analytics.query_spec import Scope
from emban.analytics.store import EventStore
from emban.analytics.tables import EVENTS, HOURLY

MAX_EVENTS = 100  # event names reported, most frequent first
TOP_VALUES = 5  # most frequent values reported per string property


@dataclass(frozen=True)
class EventStats:
    event_name: str
    count: int
    unique_users: int
    first_seen_ms: int
    last_seen_ms: int


@dataclass(frozen=True)
class StringKeyStats:
    event_name: str
    key: str
    count: int  # events carrying the key
    distinct_values: int
    top_values: list[tuple[str, int]]  # most frequent first, ties by value


@dataclass(frozen=True)
class NumericKeyStats:
    event_name: str
    key: str
    count: int
    min: float
    avg: float
    max: float


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


# Events at or after ``since`` (ms since the epoch, UTC) only.
_SINCE = "timestamp >= fromUnixTimestamp64Milli({since:Int64}, 'UTC')"


def _guard(scope: Scope, since: datetime | None = None) -> tuple[str, dict[str, Any]]:
    """The org/environment condition every discovery statement starts its WHERE with, and
    the window's start when ``since`` is given."""
    guard = "org_id = {org:String} AND environment_id = {env:String}"
    params: dict[str, Any] = {"org": scope.org_id, "env": scope.environment_id}
    if since is None:
        return guard, params
    return f"{guard} AND {_SINCE}", {**params, "since": _ms(since)}


async def sample_start(store: EventStore, scope: Scope, since: datetime, rows: int) -> datetime:
    """The start of the most recent whole hours of the window that hold at least ``rows``
    events (``since`` when the whole window holds fewer), read from the hourly rollup."""
    guard, params = _guard(scope)
    result = await store.query(
        f"SELECT toUnixTimestamp(bucket), sum(events) AS c FROM {HOURLY} "
        f"WHERE {guard} AND bucket >= toStartOfHour(fromUnixTimestamp64Milli({{since:Int64}}, "
        "'UTC')) GROUP BY bucket ORDER BY bucket DESC",
        {**params, "since": _ms(since)},
    )
    total = 0
    for bucket, count in result.rows:
        total += int(count)
        if total >= rows:
            return max(since, datetime.fromtimestamp(int(bucket), since.tzinfo))
    return since


async def event_stats(
    store: EventStore, scope: Scope, since: datetime, limit: int = MAX_EVENTS
) -> list[EventStats]:
    """Event names with their counts, distinct users and first/last timestamps (ms) since
    ``since``, most frequent first (ties by name)."""
    guard, params = _guard(scope, since)
    result = await store.query(
        "SELECT event_name, count() AS c, uniqExactIf(user_id, user_id != ''), "
        "toUnixTimestamp64Milli(min(timestamp)), toUnixTimestamp64Milli(max(timestamp)) "
        f"FROM {EVENTS} WHERE {guard} GROUP BY event_name ORDER BY c DESC, event_name "
        "LIMIT {limit:UInt32}",
        {**params, "limit": limit},
    )
    return [
        EventStats(str(name), int(count), int(users), int(first), int(last))
        for name, count, users, first, last in result.rows
    ]


async def string_key_stats(
    store: EventStore,
    scope: Scope,
    event_names: list[str],
    since: datetime,
    top: int = TOP_VALUES,
) -> list[StringKeyStats]:
    """Per (event, string property key) over the events since ``since``: events carrying it,
    distinct values and the ``top`` most frequent values with their counts. Ordered by event
    name, then key."""
    if not event_names:
        return []
    guard, params = _guard(scope, since)
    result = await store.query(
        "SELECT event_name, key, value, c, total, distinct_values FROM ("
        " SELECT event_name, key, value, c,"
        " sum(c) OVER per_key AS total, count() OVER per_key AS distinct_values"
        " FROM ("
        f"  SELECT event_name, key, value, count() AS c FROM {EVENTS}"
        "  ARRAY JOIN mapKeys(string_props) AS key, mapValues(string_props) AS value"
        f"  WHERE {guard} AND event_name IN {{events:Array(String)}}"
        "  GROUP BY event_name, key, value"
        " ) WINDOW per_key AS (PARTITION BY event_name, key)"
        ") ORDER BY event_name, key, c DESC, value LIMIT {top:UInt32} BY event_name, key",
        {**params, "events": event_names, "top": top},
    )
    found: dict[tuple[str, str], StringKeyStats] = {}
    for name, key, value, count, total, distinct in result.rows:
        ident = (str(name), str(key))
        if ident not in found:
            found[ident] = StringKeyStats(ident[0], ident[1], int(total), int(distinct), [])
        found[ident].top_values.append((str(value), int(count)))
    return list(found.values())


async def numeric_key_stats(
    store: EventStore, scope: Scope, event_names: list[str], since: datetime
) -> list[NumericKeyStats]:
    """Per (event, numeric property key) over the events since ``since``: events carrying it
    and min/avg/max of its values."""
    if not event_names:
        return []
    guard, params = _guard(scope, since)
    result = await store.query(
        "SELECT event_name, key, count(), min(v), avg(v), max(v) "
        f"FROM {EVENTS} ARRAY JOIN mapKeys(numeric_props) AS key, mapValues(numeric_props) AS v "
        f"WHERE {guard} AND event_name IN {{events:Array(String)}} "
        "GROUP BY event_name, key ORDER BY event_name, key",
        {**params, "events": event_names},
    )
    return [
        NumericKeyStats(str(name), str(key), int(count), float(low), float(mean), float(high))
        for name, key, count, low, mean, high in result.rows
    ]

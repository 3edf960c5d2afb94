"""Prometheus metrics: one :class:`Metrics` (and its own ``CollectorRegistry``) per app or worker.

Why a registry per app, not prometheus-client's global one: the test suite builds many apps in one
process, and the global registry refuses a second metric of the same name (or, shared, would sum
every app's activity into one series, so no test could assert an exact value). Each
``create_app`` and each ``emban worker`` makes one :class:`Metrics`; the components that count
(the ingest writer, the live hub, the store wrapper, the job runner) receive it when they are
built. Components built without one (unit tests, the demo loader) count nothing.

Cardinality is bounded by construction: HTTP requests are labelled by route *template* (aiohttp's
canonical resource, ``/v1/dashboards/{id}``), never the raw path; GraphQL operations by name, but a
name that is not a plain GraphQL name, or arrives after :data:`MAX_OPERATION_NAMES` distinct names
were seen, is counted as ``other``; ClickHouse work by the kind of call, never SQL text; jobs by
the job function's name.

Hot paths (ingest, live pushes) only increment counters; depths and open counts (ingest queue,
sockets, cohorts) are read by callbacks when Prometheus scrapes, so they cost nothing in between.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

# The text exposition format every Prometheus version reads (0.0.4); all our names are plain
# (no UTF-8 escaping), so 1.0.0 would describe the same bytes.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

# No ``*_created`` series (one per counter and histogram child): Prometheus does not use them in
# the text format and they double the lines of a scrape. A process-wide switch of the library.
disable_created_metrics()  # type: ignore[no-untyped-call]

MAX_OPERATION_NAMES = 100
OTHER = "other"
ANONYMOUS = "anonymous"
UNMATCHED_ROUTE = "unmatched"
_OPERATION_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,63}")

# Seconds. HTTP and GraphQL: from sub-millisecond reads to slow ad-hoc queries.
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Jobs (alert evaluation, report rendering, webhook delivery) run longer.
JOB_BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

LIVE_UPDATE_TYPES = ("config", "data", "not_published", "error")
CLICKHOUSE_KINDS = ("query", "background_query", "adhoc", "execute", "insert", "ping")


class Metrics:
    """Every metric Emban exports, registered in :attr:`registry`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        r = self.registry
        self.http_requests = Counter(
            "emban_http_requests",
            "HTTP requests answered, by method, route template and status",
            ("method", "route", "status"),
            registry=r,
        )
        self.http_duration = Histogram(
            "emban_http_request_duration_seconds",
            "HTTP request latency (websocket upgrades excluded), by method and route template",
            ("method", "route"),
            buckets=REQUEST_BUCKETS,
            registry=r,
        )
        self.graphql_operations = Counter(
            "emban_graphql_operations",
            "GraphQL operations executed, by operation name, type and outcome (ok or error)",
            ("operation", "type", "outcome"),
            registry=r,
        )
        self.graphql_duration = Histogram(
            "emban_graphql_operation_duration_seconds",
            "GraphQL query and mutation latency, by operation name and type",
            ("operation", "type"),
            buckets=REQUEST_BUCKETS,
            registry=r,
        )
        self.ingest_rows = Counter(
            "emban_ingest_rows",
            "Event rows through ingest flushes: stored, duplicate (event_id seen) or failed",
            ("outcome",),
            registry=r,
        )
        self.ingest_flushes = Counter(
            "emban_ingest_flushes",
            "Ingest flushes (group-committed inserts), by outcome (ok or failed)",
            ("outcome",),
            registry=r,
        )
        self.ingest_flush_duration = Histogram(
            "emban_ingest_flush_duration_seconds",
            "Time from a flush's start until its rows are durable (or it failed)",
            buckets=REQUEST_BUCKETS,
            registry=r,
        )
        self.ingest_queue_rows = Gauge(
            "emban_ingest_queue_rows",
            "Event rows waiting for a flush (accepted, not yet taken into an insert)",
            registry=r,
        )
        self.live_sockets = Gauge(
            "emban_live_sockets",
            "Open graphql-transport-ws sockets (embeds and console)",
            registry=r,
        )
        self.live_cohorts = Gauge(
            "emban_live_cohorts",
            "Live cohorts: identical (dashboard, tenant, filters) viewers computed once",
            registry=r,
        )
        self.live_viewers = Gauge(
            "emban_live_viewers", "Live dashboard subscriptions across all cohorts", registry=r
        )
        self.live_pushes = Counter(
            "emban_live_pushes",
            "Live updates queued to viewers, by update type",
            ("type",),
            registry=r,
        )
        self.job_runs = Counter(
            "emban_job_runs", "Job runs (each try counts), by job name", ("job",), registry=r
        )
        self.job_failures = Counter(
            "emban_job_failures",
            "Job runs that raised (including a Retry asking to run again later), by job name",
            ("job",),
            registry=r,
        )
        self.job_duration = Histogram(
            "emban_job_duration_seconds",
            "Job run duration, by job name",
            ("job",),
            buckets=JOB_BUCKETS,
            registry=r,
        )
        self.clickhouse_duration = Histogram(
            "emban_clickhouse_query_duration_seconds",
            "ClickHouse call latency, by kind: " + ", ".join(CLICKHOUSE_KINDS),
            ("kind",),
            buckets=REQUEST_BUCKETS,
            registry=r,
        )
        self.clickhouse_errors = Counter(
            "emban_clickhouse_errors",
            "ClickHouse calls that failed, by kind",
            ("kind",),
            registry=r,
        )
        # Children bound once: the hot paths then pay one lock-protected addition, no lookup.
        self.ingest_stored = self.ingest_rows.labels("stored")
        self.ingest_duplicate = self.ingest_rows.labels("duplicate")
        self.ingest_failed = self.ingest_rows.labels("failed")
        self.ingest_flush_ok = self.ingest_flushes.labels("ok")
        self.ingest_flush_failed = self.ingest_flushes.labels("failed")
        self.live_push_by_type = {t: self.live_pushes.labels(t) for t in LIVE_UPDATE_TYPES}
        for kind in CLICKHOUSE_KINDS:  # exported at 0 from the start, so rate() has a series
            self.clickhouse_errors.labels(kind)
        self._operation_names: set[str] = set()
        self._names_lock = threading.Lock()

    def operation_label(self, name: str | None) -> str:
        """The label of a GraphQL operation name: ``anonymous`` when unnamed, ``other`` when it
        is not a plain name or comes after the first :data:`MAX_OPERATION_NAMES` names."""
        if not name:
            return ANONYMOUS
        if (
            not isinstance(name, str)
            or _OPERATION_NAME.fullmatch(name) is None
            or name in (ANONYMOUS, OTHER)
        ):
            return OTHER
        if name in self._operation_names:
            return name
        with self._names_lock:
            if len(self._operation_names) >= MAX_OPERATION_NAMES:
                return OTHER
            self._operation_names.add(name)
        return name

    def live_pushed(self, update_type: str, viewers: int) -> None:
        child = self.live_push_by_type.get(update_type)
        if child is not None and viewers:
            child.inc(viewers)

    def watch(self, gauge: Gauge, read: Callable[[], float]) -> None:
        """Read ``gauge`` from ``read()`` at each scrape."""
        gauge.set_function(read)

    def exposition(self) -> bytes:
        """The registry in Prometheus text format."""
        return generate_latest(self.registry)

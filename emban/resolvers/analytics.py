"""GraphQL analytics: queries, ingest, ad-hoc SQL, datasets, saved queries, usage."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import strawberry
from strawberry.scalars import JSON

from emban import models
from emban.analytics.query_spec import build_spec
from emban.analytics.shaping import iso_bucket
from emban.resolvers.context import GqlInfo, OwnTransaction, ctx
from emban.resolvers.scalars import Int64, optional_int64
from emban.services import adhoc, analytics, datasets, saved_queries, usage
from emban.services import events as event_service
from emban.services.analytics import AnalyticsResult as ServiceResult


@strawberry.input
class FilterInput:
    dimension: str
    value: str


@strawberry.input
class AnalyticsQueryInput:
    event_name: str
    metric: str
    period: str
    tenant_id: str | None = None
    granularity: str | None = None
    group_by: str | None = None
    filters: list[FilterInput] | None = None
    numeric_prop: str | None = None


@strawberry.type
class DataPoint:
    bucket: str
    value: float
    group: str | None


@strawberry.type
class AnalyticsMeta:
    query_time_ms: float
    rows_scanned: Int64
    event_name: str
    metric: str
    period: str
    granularity: str
    group_by: str | None
    source_table: str
    planned_by: str
    rollup_granularity: str | None
    previous_query_time_ms: float | None = strawberry.field(
        default=None, description="Metric widgets: the previous period's query."
    )


@strawberry.type
class AnalyticsResult:
    data: list[DataPoint]
    meta: AnalyticsMeta

    @classmethod
    def of(cls, result: ServiceResult) -> AnalyticsResult:
        # Format each bucket once: every group repeats every bucket.
        series = result.series
        iso: dict[datetime, str] = {}
        for bucket in series.buckets:
            if bucket not in iso:
                iso[bucket] = iso_bucket(bucket)
        groups = series.groups if series.groups is not None else [None] * len(series)
        return cls(
            data=[
                DataPoint(bucket=iso[b], value=v, group=g)
                for b, v, g in zip(series.buckets, series.values, groups, strict=True)
            ],
            meta=AnalyticsMeta(**result.meta),
        )


@strawberry.input
class EventInput:
    tenant_id: str
    event_name: str
    timestamp: str | None = None
    event_id: str | None = None
    user_id: str | None = None
    string_props: JSON | None = None
    numeric_props: JSON | None = None


@strawberry.type
class IngestResult:
    accepted: int
    status: str


@strawberry.type
class AdhocColumn:
    name: str
    type: str


@strawberry.type
class AdhocStats:
    wall_ms: float
    rows_returned: int
    truncated: bool


@strawberry.type
class AdhocResult:
    columns: list[AdhocColumn]
    rows: JSON
    stats: AdhocStats


@strawberry.type
class DatasetColumn:
    name: str
    type: str


@strawberry.type
class Dataset:
    name: str
    kind: str
    engine: str
    description: str
    approx_rows: Int64
    approx_bytes: Int64
    updated_at: str | None
    columns: list[DatasetColumn]
    ddl: str


@strawberry.type
class SavedQuery:
    id: strawberry.ID
    name: str
    sql: str
    dataset: str
    starred: bool
    created_by: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, q: models.SavedQuery) -> SavedQuery:
        return cls(
            id=strawberry.ID(q.id),
            name=q.name,
            sql=q.sql,
            dataset=q.dataset,
            starred=q.starred,
            created_by=q.created_by,
            created_at=q.created_at,
            updated_at=q.updated_at,
        )


@strawberry.type
class UsageDay:
    date: str
    events: Int64
    queries: Int64


@strawberry.type
class Usage:
    period: str
    plan: str
    events_total: Int64
    events_this_month: Int64
    events_limit: Int64 | None
    queries_total: Int64
    days: list[UsageDay]


@strawberry.type
class Onboarding:
    sample_only: bool
    real_events: Int64
    sample_events: Int64
    has_ingest_key: bool


@strawberry.type
class AnalyticsQueries:
    @strawberry.field(description="Run an analytics query (same rules as GET /v1/query).")
    async def analytics(self, info: GqlInfo, query: AnalyticsQueryInput) -> AnalyticsResult:
        spec = build_spec(
            event_name=query.event_name,
            metric=query.metric,
            period=query.period,
            granularity=query.granularity,
            tenant_id=query.tenant_id,
            group_by=query.group_by,
            filters={f.dimension: f.value for f in query.filters or []},
            numeric_prop=query.numeric_prop,
        )
        context = ctx(info)
        result = await analytics.run_query(context.runtime, actor=context.actor(), spec=spec)
        return AnalyticsResult.of(result)

    @strawberry.field(description="Run read-only SQL over the org's datasets (admin).")
    async def adhoc_query(self, info: GqlInfo, sql: str) -> AdhocResult:
        context = ctx(info)
        result = await adhoc.run_adhoc_query(context.runtime, actor=context.actor(), sql=sql)
        return AdhocResult(
            columns=[AdhocColumn(name=c["name"], type=c["type"]) for c in result.columns],
            rows=cast(JSON, result.rows),
            stats=AdhocStats(**result.stats),
        )

    @strawberry.field
    async def datasets(self, info: GqlInfo) -> list[Dataset]:
        context = ctx(info)
        found = await datasets.list_datasets(context.runtime, actor=context.actor())
        return [
            Dataset(
                name=d.name,
                kind=d.kind,
                engine=d.engine,
                description=d.description,
                approx_rows=Int64(d.approx_rows),
                approx_bytes=Int64(d.approx_bytes),
                updated_at=d.updated_at,
                columns=[DatasetColumn(name=c["name"], type=c["type"]) for c in d.columns],
                ddl=d.ddl,
            )
            for d in found
        ]

    @strawberry.field
    async def dataset_ddl(self, info: GqlInfo, name: str) -> str:
        context = ctx(info)
        return await datasets.dataset_ddl(context.runtime, actor=context.actor(), name=name)

    @strawberry.field
    async def saved_queries(self, info: GqlInfo) -> list[SavedQuery]:
        found = await saved_queries.list_saved_queries(actor=ctx(info).actor())
        return [SavedQuery.of(q) for q in found]

    @strawberry.field
    async def usage(self, info: GqlInfo, period: str | None = None) -> Usage:
        context = ctx(info)
        found = await usage.get_usage(context.runtime, actor=context.actor(), period=period)
        return Usage(
            period=found.period,
            plan=found.plan,
            events_total=Int64(found.events_total),
            events_this_month=Int64(found.events_this_month),
            events_limit=optional_int64(found.events_limit),
            queries_total=Int64(found.queries_total),
            days=[
                UsageDay(date=d.day.isoformat(), events=Int64(d.events), queries=Int64(d.queries))
                for d in found.days
            ],
        )

    @strawberry.field
    async def onboarding_status(self, info: GqlInfo) -> Onboarding:
        context = ctx(info)
        found = await usage.onboarding_status(context.runtime, actor=context.actor())
        return Onboarding(
            sample_only=found.sample_only,
            real_events=Int64(found.real_events),
            sample_events=Int64(found.sample_events),
            has_ingest_key=found.has_ingest_key,
        )


def _event_dict(event: EventInput) -> dict[str, Any]:
    raw: dict[str, Any] = {"tenant_id": event.tenant_id, "event_name": event.event_name}
    for key in ("timestamp", "event_id", "user_id", "string_props", "numeric_props"):
        value = getattr(event, key)
        if value is not None:
            raw[key] = value
    return raw


@strawberry.type
class AnalyticsMutations:
    @strawberry.mutation(
        description="Ingest events with an admin or ingest key (POST /v1/events).",
        extensions=[OwnTransaction("no metadata rows held open while the group commit waits")],
    )
    async def ingest_events(self, info: GqlInfo, events: list[EventInput]) -> IngestResult:
        context = ctx(info)
        actor = context.actor()
        event_service.check_can_ingest(actor)
        raw = {"events": [_event_dict(e) for e in events]}
        batch = event_service.decode_events(raw, datetime.now(UTC))
        accepted = await event_service.ingest_events(context.runtime, actor=actor, batch=batch)
        return IngestResult(accepted=accepted, status="ok")

    @strawberry.mutation
    async def create_saved_query(
        self, info: GqlInfo, name: str, sql: str, dataset: str = "events", starred: bool = False
    ) -> SavedQuery:
        saved = await saved_queries.create_saved_query(
            actor=ctx(info).actor(), name=name, sql=sql, dataset=dataset, starred=starred
        )
        return SavedQuery.of(saved)

    @strawberry.mutation
    async def update_saved_query(
        self,
        info: GqlInfo,
        id: strawberry.ID,
        name: str | None = None,
        sql: str | None = None,
        dataset: str | None = None,
        starred: bool | None = None,
    ) -> SavedQuery:
        saved = await saved_queries.update_saved_query(
            actor=ctx(info).actor(),
            query_id=str(id),
            name=name,
            sql=sql,
            dataset=dataset,
            starred=starred,
        )
        return SavedQuery.of(saved)

    @strawberry.mutation
    async def delete_saved_query(self, info: GqlInfo, id: strawberry.ID) -> bool:
        await saved_queries.delete_saved_query(actor=ctx(info).actor(), query_id=str(id))
        return True

"""GraphQL analytics: queries, ingest, ad-hoc SQL, datasets, saved queries, usage."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import msgspec
import strawberry
from strawberry.scalars import JSON

from emban import models
from emban.analytics.planner import build_spec, iso_bucket
from emban.resolvers.context import GqlInfo, ctx, transactional
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
    rows_scanned: int
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
        iso = {p.bucket: "" for p in result.points}
        for bucket in iso:
            iso[bucket] = iso_bucket(bucket)
        return cls(
            data=[
                DataPoint(bucket=iso[p.bucket], value=p.value, group=p.group) for p in result.points
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
    approx_rows: int
    approx_bytes: int
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
    events: int
    queries: int


@strawberry.type
class Usage:
    period: str
    plan: str
    events_total: int
    events_this_month: int
    events_limit: int | None
    queries_total: int
    days: list[UsageDay]


@strawberry.type
class Onboarding:
    sample_only: bool
    real_events: int
    sample_events: int
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
                approx_rows=d.approx_rows,
                approx_bytes=d.approx_bytes,
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
            events_total=found.events_total,
            events_this_month=found.events_this_month,
            events_limit=found.events_limit,
            queries_total=found.queries_total,
            days=[
                UsageDay(date=d.day.isoformat(), events=d.events, queries=d.queries)
                for d in found.days
            ],
        )

    @strawberry.field
    async def onboarding_status(self, info: GqlInfo) -> Onboarding:
        context = ctx(info)
        found = await usage.onboarding_status(context.runtime, actor=context.actor())
        return Onboarding(
            sample_only=found.sample_only,
            real_events=found.real_events,
            sample_events=found.sample_events,
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
    @strawberry.mutation(description="Ingest events with an admin or ingest key (POST /v1/events).")
    async def ingest_events(self, info: GqlInfo, events: list[EventInput]) -> IngestResult:
        context = ctx(info)
        body = msgspec.json.encode({"events": [_event_dict(e) for e in events]})
        accepted = await event_service.ingest_events(
            context.runtime, actor=context.actor(), body=body
        )
        return IngestResult(accepted=accepted, status="ok")

    @strawberry.mutation
    @transactional
    async def create_saved_query(
        self, info: GqlInfo, name: str, sql: str, dataset: str = "events", starred: bool = False
    ) -> SavedQuery:
        saved = await saved_queries.create_saved_query(
            actor=ctx(info).actor(), name=name, sql=sql, dataset=dataset, starred=starred
        )
        return SavedQuery.of(saved)

    @strawberry.mutation
    @transactional
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
    @transactional
    async def delete_saved_query(self, info: GqlInfo, id: strawberry.ID) -> bool:
        await saved_queries.delete_saved_query(actor=ctx(info).actor(), query_id=str(id))
        return True

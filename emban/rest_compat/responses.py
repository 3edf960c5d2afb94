"""Response bodies of the ``/v1`` routes as typed structs.

Every route declares one of these (``@route(..., response=...)``); its answer is encoded through
it and ``schema/openapi.json`` carries its JSON Schema, so the documented shape is the sent one.
Field order is the order the JSON has always had. ``UNSET`` fields are left out of the JSON
(and are not ``required`` in the schema); ``None`` is sent as ``null``.

Widget configs, query ``meta`` and plan snapshots are objects of their own shape here; their
fields are the widget-config type's (services/widget_config.py) and are refined there.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

Timestamp = str  # ISO 8601 in UTC with milliseconds, e.g. 2026-11-29T10:00:00.000Z
Role = Literal["viewer", "editor", "admin", "owner"]
JsonObject = dict[str, Any]


class Response(msgspec.Struct):
    """Base of every response body."""


# --- accounts, keys, team, settings ----------------------------------------------------------


class User(Response):
    id: str
    email: str
    name: str
    created_at: Timestamp | None


class Org(Response):
    id: str
    name: str
    email: str | None
    plan: str
    created_at: Timestamp | None
    updated_at: Timestamp | None


class EnvironmentRef(Response):
    id: str
    name: str


class RegisteredApiKey(Response):
    """The admin key registration creates; ``key`` is shown only this once."""

    id: str
    label: str
    scope: str
    prefix: str
    environment: str
    key: str


class Registration(Response):
    user: User
    org: Org
    environments: list[EnvironmentRef]
    api_key: RegisteredApiKey


class SessionStarted(Response):
    """Login and invite acceptance: who is now signed in (the cookie carries the session)."""

    user: User
    org: Org
    role: Role


class Me(Response):
    user: User | None
    org: Org
    role: Role | None
    scope: str
    environment: EnvironmentRef


class ApiKey(Response):
    id: str
    label: str
    scope: str
    prefix: str
    environment: str
    created_at: Timestamp | None
    last_used_at: Timestamp | None


class CreatedApiKey(ApiKey):
    key: str


class ApiKeyList(Response):
    api_keys: list[ApiKey]


class Member(Response):
    id: str
    user_id: str
    email: str
    name: str
    role: Role
    created_at: Timestamp | None


class MemberList(Response):
    members: list[Member]


class Invite(Response):
    id: str
    email: str
    role: Role
    created_at: Timestamp | None
    expires_at: Timestamp | None


class CreatedInvite(Invite):
    token: str
    invite_url: str


class InviteList(Response):
    invites: list[Invite]


class PlanLimits(Response):
    published_dashboards: int | None
    api_keys: int | None
    events_per_month: int | None


class PlanFeatures(Response):
    advanced_embed_permissions: bool


class BillingPlan(Response):
    name: str
    title: str
    limits: PlanLimits
    features: PlanFeatures


class PlanList(Response):
    plans: list[BillingPlan]


class AuditEntry(Response):
    id: int
    actor_type: str
    actor_id: str | None
    actor_label: str | None
    action: str
    resource_type: str
    resource_id: str | None
    ip: str | None
    metadata: JsonObject
    created_at: Timestamp | None


class AuditList(Response):
    entries: list[AuditEntry]


# --- events, queries, datasets, usage --------------------------------------------------------


class IngestAccepted(Response):
    accepted: int
    status: Literal["ok"]


class Point(Response, kw_only=True):
    bucket: Timestamp
    value: int | float
    group: str | UnsetType = UNSET  # only for grouped queries


class QueryResult(Response):
    data: list[Point]
    meta: JsonObject  # the planner's proof: source table, bucket, timings


class Column(Response):
    name: str
    type: str


class AdhocResult(Response):
    columns: list[Column]
    rows: list[list[Any]]
    stats: JsonObject


class Dataset(Response):
    name: str
    kind: Literal["table", "materialized_view"]
    engine: str
    description: str
    approx_rows: int
    approx_bytes: int
    updated_at: Timestamp | None
    columns: list[Column]
    ddl: str


class DatasetList(Response):
    datasets: list[Dataset]


class DatasetDdl(Response):
    name: str
    ddl: str


class SavedQuery(Response):
    id: str
    name: str
    sql: str
    dataset: str
    starred: bool
    created_by: str | None
    created_at: Timestamp | None
    updated_at: Timestamp | None


class SavedQueryList(Response):
    saved_queries: list[SavedQuery]


class DayCount(Response):
    date: str  # YYYY-MM-DD
    count: int


class UsageEvents(Response):
    total: int
    this_month: int
    limit: int | None
    by_day: list[DayCount]


class UsageQueries(Response):
    total: int
    by_day: list[DayCount]


class Usage(Response):
    period: str
    plan: str
    events: UsageEvents
    queries: UsageQueries


class Onboarding(Response):
    sample_only: bool
    real_events: int
    sample_events: int
    has_ingest_key: bool
    steps: dict[str, bool]


# --- dashboards and widgets ------------------------------------------------------------------


class Layout(Response):
    x: int
    y: int
    w: int
    h: int


class WidgetConfig(Response, kw_only=True):
    """A widget as stored in a dashboard's draft (services/widget_config.py normalizes it)."""

    id: str
    kind: Literal["metric", "timeseries", "breakdown", "table", "text"]
    title: str
    description: str | UnsetType = UNSET
    text: str | UnsetType = UNSET  # text widgets only
    query: JsonObject | None
    viz: JsonObject
    layout: Layout


class Dashboard(Response):
    id: str
    name: str
    description: str | None
    widgets: list[WidgetConfig]
    is_published: bool
    published_at: Timestamp | None
    published: JsonObject | None  # the published snapshot: name, description, widgets
    created_at: Timestamp | None
    updated_at: Timestamp | None


class DashboardList(Response):
    dashboards: list[Dashboard]


class Widget(WidgetConfig, kw_only=True):
    """A standalone widget: its draft config plus its published snapshot."""

    published: JsonObject | None
    published_at: Timestamp | None
    created_at: Timestamp | None
    updated_at: Timestamp | None


class WidgetList(Response):
    widgets: list[Widget]


class WidgetPreview(Response):
    widget: WidgetConfig
    data: list[Point]
    meta: JsonObject | None


# --- discovery -------------------------------------------------------------------------------


class TopValue(Response):
    value: str
    count: int


class StringProperty(Response):
    key: str
    count: int
    distinct_values: int
    top_values: list[TopValue]


class NumericProperty(Response):
    key: str
    count: int
    min: float
    avg: float
    max: float


class DiscoveredEvent(Response):
    event_name: str
    count: int
    unique_users: int
    first_seen: Timestamp | None
    last_seen: Timestamp | None
    string_props: list[StringProperty]
    numeric_props: list[NumericProperty]


class DiscoveredEvents(Response):
    events: list[DiscoveredEvent]


class AutoCreatedDashboard(Response):
    dashboard_id: str
    name: str
    widgets: int
    events_found: int


# --- embed sessions and environments ---------------------------------------------------------


class EmbedSession(Response):
    token: str
    embed_url: str
    expires_at: Timestamp


class DemoEmbedSession(EmbedSession):
    dashboard_id: str
    tenant_id: str


class EmbedActor(Response):
    type: str
    id: str | None
    label: str | None


class ActiveEmbedSession(Response):
    id: str
    tenant_id: str
    resource: str
    scope: str
    actor: EmbedActor
    issued_at: Timestamp
    expires_at: Timestamp
    ttl_seconds: int


class EmbedSessionList(Response):
    sessions: list[ActiveEmbedSession]


class RevokedSession(Response):
    revoked: bool
    id: str


class RevokedCount(Response):
    revoked: int


class Environment(Response):
    id: str
    name: str
    allowed_origins: list[str]
    created_at: Timestamp | None


class EnvironmentList(Response):
    environments: list[Environment]

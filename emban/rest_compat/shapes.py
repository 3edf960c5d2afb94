"""Domain objects → the response structs of responses.py (one place, so every route answers
alike)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

import msgspec

from emban.analytics.adhoc import AdhocResult
from emban.analytics.shaping import iso_bucket, iso_timestamp
from emban.models import (
    ApiKey,
    AuditLog,
    Environment,
    Invite,
    Membership,
    Org,
    SavedQuery,
    User,
)
from emban.rest_compat import responses as out
from emban.services.accounts import Me
from emban.services.analytics import AnalyticsResult
from emban.services.billing import Plan
from emban.services.datasets import Dataset
from emban.services.usage import Onboarding, Usage
from emban.services.widget_config import Widget as WidgetType
from emban.services.widget_config import widget_json

iso = iso_timestamp  # how every REST answer writes a stored moment


def role(value: str) -> out.Role:
    """A stored role (the Membership column only ever holds the four roles)."""
    if value not in ("viewer", "editor", "admin", "owner"):
        raise ValueError(f"not a role: {value!r}")
    return cast(out.Role, value)


def user(u: User) -> out.User:
    return out.User(id=u.id, email=u.email, name=u.name, created_at=iso(u.created_at))


def org(o: Org) -> out.Org:
    return out.Org(
        id=o.id,
        name=o.name,
        email=o.email,
        plan=o.plan,
        created_at=iso(o.created_at),
        updated_at=iso(o.updated_at),
    )


def environment(e: Environment) -> out.EnvironmentRef:
    return out.EnvironmentRef(id=e.id, name=e.name)


def api_key(k: ApiKey, env: Environment) -> out.ApiKey:
    return out.ApiKey(
        id=k.id,
        label=k.label,
        scope=k.scope,
        prefix=k.prefix,
        environment=env.name,
        created_at=iso(k.created_at),
        last_used_at=iso(k.last_used_at),
    )


def created_api_key(k: ApiKey, env: Environment, clear_key: str) -> out.CreatedApiKey:
    return out.CreatedApiKey(
        id=k.id,
        label=k.label,
        scope=k.scope,
        prefix=k.prefix,
        environment=env.name,
        created_at=iso(k.created_at),
        last_used_at=iso(k.last_used_at),
        key=clear_key,
    )


def member(m: Membership, u: User) -> out.Member:
    return out.Member(
        id=m.id,
        user_id=u.id,
        email=u.email,
        name=u.name,
        role=role(m.role),
        created_at=iso(m.created_at),
    )


def invite(i: Invite) -> out.Invite:
    return out.Invite(
        id=i.id,
        email=i.email,
        role=role(i.role),
        created_at=iso(i.created_at),
        expires_at=iso(i.expires_at),
    )


def created_invite(i: Invite, token: str, url: str) -> out.CreatedInvite:
    return out.CreatedInvite(
        id=i.id,
        email=i.email,
        role=role(i.role),
        created_at=iso(i.created_at),
        expires_at=iso(i.expires_at),
        token=token,
        invite_url=url,
    )


def audit_row(a: AuditLog) -> out.AuditEntry:
    return out.AuditEntry(
        id=a.id,
        actor_type=a.actor_type,
        actor_id=a.actor_id,
        actor_label=a.actor_label,
        action=a.action,
        resource_type=a.resource_type,
        resource_id=a.resource_id,
        ip=a.ip,
        metadata=a.metadata,
        created_at=iso(a.created_at),
    )


def me(m: Me) -> out.Me:
    return out.Me(
        user=user(m.user) if m.user else None,
        org=org(m.org),
        role=role(m.role) if m.role is not None else None,
        scope=m.scope,
        environment=environment(m.environment),
    )


# Answers with more points than this are encoded off the event loop (route.Reply.off_loop).
INLINE_POINTS = 5_000


def points(result: AnalyticsResult) -> list[out.Point]:
    """The response points, built from the answer's columns (each bucket formatted once: every
    group repeats every bucket)."""
    series = result.series
    iso: dict[datetime, str] = {}
    for bucket in series.buckets:
        if bucket not in iso:
            iso[bucket] = iso_bucket(bucket)
    point = out.Point
    if series.groups is None:
        pairs = zip(series.buckets, series.values, strict=True)
        return [point(bucket=iso[b], value=v) for b, v in pairs]
    return [
        point(bucket=iso[b], value=v) if g is None else point(bucket=iso[b], value=v, group=g)
        for b, v, g in zip(series.buckets, series.values, series.groups, strict=True)
    ]


def analytics(result: AnalyticsResult) -> out.QueryResult:
    """``GET /v1/query``'s answer: msgspec structs encoded in one call, no dict per point."""
    return out.QueryResult(data=points(result), meta=result.meta)


def adhoc(result: AdhocResult) -> out.AdhocResult:
    return out.AdhocResult(
        columns=[out.Column(name=c["name"], type=c["type"]) for c in result.columns],
        rows=result.rows,
        stats=result.stats,
    )


def dataset(d: Dataset) -> out.Dataset:
    return out.Dataset(
        name=d.name,
        kind=d.kind,
        engine=d.engine,
        description=d.description,
        approx_rows=d.approx_rows,
        approx_bytes=d.approx_bytes,
        updated_at=d.updated_at,
        columns=[out.Column(name=c["name"], type=c["type"]) for c in d.columns],
        ddl=d.ddl,
    )


def saved_query(q: SavedQuery) -> out.SavedQuery:
    return out.SavedQuery(
        id=q.id,
        name=q.name,
        sql=q.sql,
        dataset=q.dataset,
        starred=q.starred,
        created_by=q.created_by,
        created_at=iso(q.created_at),
        updated_at=iso(q.updated_at),
    )


def usage(u: Usage) -> out.Usage:
    return out.Usage(
        period=u.period,
        plan=u.plan,
        events=out.UsageEvents(
            total=u.events_total,
            this_month=u.events_this_month,
            limit=u.events_limit,
            by_day=[out.DayCount(date=d.day.isoformat(), count=d.events) for d in u.days],
        ),
        queries=out.UsageQueries(
            total=u.queries_total,
            by_day=[out.DayCount(date=d.day.isoformat(), count=d.queries) for d in u.days],
        ),
    )


def onboarding(o: Onboarding) -> out.Onboarding:
    return out.Onboarding(
        sample_only=o.sample_only,
        real_events=o.real_events,
        sample_events=o.sample_events,
        has_ingest_key=o.has_ingest_key,
        steps=o.steps,
    )


def plan(p: Plan) -> out.BillingPlan:
    return out.BillingPlan(
        name=p.name,
        title=p.title,
        limits=out.PlanLimits(
            published_dashboards=p.published_dashboards,
            api_keys=p.api_keys,
            events_per_month=p.events_per_month,
        ),
        features=out.PlanFeatures(advanced_embed_permissions=p.advanced_embed_permissions),
    )


def widget_config(config: WidgetType | dict[str, Any]) -> out.WidgetConfig:
    """A widget config (typed, or its stored wire form) as its response type."""
    wire = config if isinstance(config, dict) else widget_json(config)
    return msgspec.convert(wire, out.WidgetConfig)


def widget_configs(configs: Sequence[WidgetType | dict[str, Any]]) -> list[out.WidgetConfig]:
    return [widget_config(c) for c in configs]

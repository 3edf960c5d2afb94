"""JSON shapes of the spec's resources (one place, so every route answers alike)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from emban.analytics.shaping import iso_bucket
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
from emban.services.accounts import Me
from emban.services.analytics import AnalyticsResult
from emban.services.billing import Plan
from emban.services.datasets import Dataset
from emban.services.usage import Onboarding, Usage


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def user(u: User) -> dict[str, Any]:
    return {"id": u.id, "email": u.email, "name": u.name, "created_at": iso(u.created_at)}


def org(o: Org) -> dict[str, Any]:
    return {
        "id": o.id,
        "name": o.name,
        "email": o.email,
        "plan": o.plan,
        "created_at": iso(o.created_at),
        "updated_at": iso(o.updated_at),
    }


def environment(e: Environment) -> dict[str, Any]:
    return {"id": e.id, "name": e.name}


def api_key(k: ApiKey, env: Environment) -> dict[str, Any]:
    return {
        "id": k.id,
        "label": k.label,
        "scope": k.scope,
        "prefix": k.prefix,
        "environment": env.name,
        "created_at": iso(k.created_at),
        "last_used_at": iso(k.last_used_at),
    }


def member(m: Membership, u: User) -> dict[str, Any]:
    return {
        "id": m.id,
        "user_id": u.id,
        "email": u.email,
        "name": u.name,
        "role": m.role,
        "created_at": iso(m.created_at),
    }


def invite(i: Invite) -> dict[str, Any]:
    return {
        "id": i.id,
        "email": i.email,
        "role": i.role,
        "created_at": iso(i.created_at),
        "expires_at": iso(i.expires_at),
    }


def audit_row(a: AuditLog) -> dict[str, Any]:
    return {
        "id": a.id,
        "actor_type": a.actor_type,
        "actor_id": a.actor_id,
        "actor_label": a.actor_label,
        "action": a.action,
        "resource_type": a.resource_type,
        "resource_id": a.resource_id,
        "ip": a.ip,
        "metadata": a.metadata,
        "created_at": iso(a.created_at),
    }


def me(m: Me) -> dict[str, Any]:
    return {
        "user": user(m.user) if m.user else None,
        "org": org(m.org),
        "role": m.role,
        "scope": m.scope,
        "environment": environment(m.environment),
    }


# Answers with more points than this are rendered off the event loop (http.json_response_off_loop).
INLINE_POINTS = 5_000


def analytics(result: AnalyticsResult) -> dict[str, Any]:
    data: list[dict[str, Any]] = []
    # Every group repeats every bucket: format each bucket once (strftime dominates otherwise).
    iso: dict[datetime, str] = {}
    for point in result.points:
        bucket = iso.get(point.bucket)
        if bucket is None:
            bucket = iso[point.bucket] = iso_bucket(point.bucket)
        item: dict[str, Any] = {"bucket": bucket, "value": point.value}
        if point.group is not None:
            item["group"] = point.group
        data.append(item)
    return {"data": data, "meta": result.meta}


def dataset(d: Dataset) -> dict[str, Any]:
    return {
        "name": d.name,
        "kind": d.kind,
        "engine": d.engine,
        "description": d.description,
        "approx_rows": d.approx_rows,
        "approx_bytes": d.approx_bytes,
        "updated_at": d.updated_at,
        "columns": d.columns,
    }


def saved_query(q: SavedQuery) -> dict[str, Any]:
    return {
        "id": q.id,
        "name": q.name,
        "sql": q.sql,
        "dataset": q.dataset,
        "starred": q.starred,
        "created_by": q.created_by,
        "created_at": iso(q.created_at),
        "updated_at": iso(q.updated_at),
    }


def usage(u: Usage) -> dict[str, Any]:
    return {
        "period": u.period,
        "plan": u.plan,
        "events": {
            "total": u.events_total,
            "this_month": u.events_this_month,
            "limit": u.events_limit,
            "by_day": [{"date": d.day.isoformat(), "count": d.events} for d in u.days],
        },
        "queries": {
            "total": u.queries_total,
            "by_day": [{"date": d.day.isoformat(), "count": d.queries} for d in u.days],
        },
    }


def onboarding(o: Onboarding) -> dict[str, Any]:
    return {
        "sample_only": o.sample_only,
        "real_events": o.real_events,
        "sample_events": o.sample_events,
        "has_ingest_key": o.has_ingest_key,
        "steps": o.steps,
    }


def plan(p: Plan) -> dict[str, Any]:
    return p.as_dict()

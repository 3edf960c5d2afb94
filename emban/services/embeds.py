"""Signed embed sessions, and what an embed token may read.

An admin mints a session for one tenant and one dashboard (``POST /v1/embed-sessions``); the
token (:mod:`emban.auth.embed_tokens`) carries the permissions below, and every data request made
with it (``embed.widgetData`` and ``embedLive``) goes through :func:`embed_spec` /
:func:`check_embed_filters`, which is where they are enforced (the table: docs/embedding-api.md):

- the tenant is always the token's tenant, the org and environment the token's (never a filter);
- ``locked_filters`` are ANDed to every query; a request filtering a locked dimension with another
  value is refused (403 ``embed_filter_forbidden``), with the same value it is a no-op;
- ``hidden_widgets`` are never listed and answer 404 ``widget_not_found``; a property key only
  hidden widgets use is never filterable, rangeable or drillable (:class:`Exposure`);
- ``numericRanges`` only on a property a visible widget measures or ``allowed_dimensions`` lists;
- ``allowed_dimensions`` (when non-empty) bounds the dimension filters, the widget's ``group_by``
  and the drill dimension (403 ``embed_filter_forbidden``);
- ``allowed_periods`` (when non-empty) bounds the requested period and keeps date ranges inside
  the longest allowed period's window (403); a widget whose own period is not allowed shows the
  first allowed period instead;
- ``max_date_range_days`` bounds periods, the length of date ranges and how far back they reach
  (403); a widget whose own period is longer shows the longest period that fits (the first
  allowed one when periods are listed);
- ``allow_drill_down`` gates ``drill`` (403 ``embed_drill_forbidden``); a drill adds one
  dimension filter.

Sessions are not stored: the list of active ones is derived from the ``embed_session.create``
audit rows (the spec's wording), which is also why every mint is audited.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from emban.analytics.planner import (
    GRANULARITIES,
    MAX_NAME,
    NUMERIC_METRICS,
    PERIOD_LENGTH,
    PERIODS,
    QuerySpec,
    Scope,
    default_granularity,
    iso_seconds,
    property_key,
    window,
)
from emban.auth.embed_tokens import mint_embed_token
from emban.auth.principal import EmbedGrant, Principal
from emban.error_codes import DashboardErrorCode, EmbedErrorCode, PlanErrorCode
from emban.errors import BadRequest, Forbidden, NotFound, RateLimited
from emban.models import AuditLog, Dashboard, Environment, Org
from emban.runtime import Runtime
from emban.services import audit, billing, embed_revocations
from emban.services.analytics import AnalyticsResult
from emban.services.dashboards import draft_widgets, get_own, published_widgets
from emban.services.scope import in_org
from emban.services.validation import lookupable, require_storable, storable
from emban.services.widget_config import spec_of
from emban.services.widgets import run_widget_spec

SESSION_ACTION = "embed_session.create"
SESSION_SCOPE = "dashboard:read"
DEFAULT_TTL = 3_600
MIN_TTL = 60
MAX_TTL = 86_400
MAX_TENANT = 200
MAX_ITEMS = 50  # per permission list / filter object: tokens travel in URLs
MAX_RANGE_DAYS = 3_650
MAX_BUCKETS = 1_000  # a changed window keeps the widget's granularity up to this many buckets
MAX_LISTED_SESSIONS = 500
ADVANCED = "advanced_embed_permissions"  # the plan feature flag

DEMO_TENANT = "demo_workspace"
DEMO_TTL = 3_600
DEMO_MINTS_PER_MINUTE = 30  # per IP: the route is public and every mint writes an audit row

_PERMISSION_KEYS = (
    "allow_drill_down",
    "locked_filters",
    "hidden_widgets",
    "allowed_dimensions",
    "allowed_periods",
    "max_date_range_days",
)
_FILTER_KEYS = ("period", "dimensions", "numericRanges", "dateRanges")
_RANGE_KEYS = ("min", "max")
_DATE_KEYS = ("from", "to")
_BUCKET = {
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(days=7),
    "month": timedelta(days=30),
}
# A text widget has no query; its "data" is an empty result with a meta that says so.
_NO_QUERY_META: dict[str, Any] = {
    "query_time_ms": 0.0,
    "rows_scanned": 0,
    "event_name": "",
    "metric": "",
    "period": "",
    "granularity": "",
    "group_by": None,
    "source_table": "",
    "planned_by": "none",
    "rollup_granularity": None,
}


# --- permissions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EmbedPermissions:
    """What a session allows; empty lists and ``None`` mean "no restriction"."""

    allow_drill_down: bool = False
    locked_filters: Mapping[str, str] = field(default_factory=dict)
    hidden_widgets: tuple[str, ...] = ()
    allowed_dimensions: tuple[str, ...] = ()
    allowed_periods: tuple[str, ...] = ()
    max_date_range_days: int | None = None

    @property
    def advanced(self) -> tuple[str, ...]:
        """The permissions in use that need a plan with advanced embed permissions."""
        used = (
            ("allow_drill_down", self.allow_drill_down),
            ("allowed_dimensions", bool(self.allowed_dimensions)),
            ("allowed_periods", bool(self.allowed_periods)),
            ("max_date_range_days", self.max_date_range_days is not None),
        )
        return tuple(name for name, on in used if on)

    def claims(self) -> dict[str, Any]:
        return {
            "allow_drill_down": self.allow_drill_down,
            "locked_filters": dict(self.locked_filters),
            "hidden_widgets": list(self.hidden_widgets),
            "allowed_dimensions": list(self.allowed_dimensions),
            "allowed_periods": list(self.allowed_periods),
            "max_date_range_days": self.max_date_range_days,
        }

    @classmethod
    def of_claims(cls, claims: Mapping[str, Any]) -> EmbedPermissions:
        """From a verified token (signed by us after :func:`validate_permissions`)."""
        return cls(
            allow_drill_down=claims.get("allow_drill_down") is True,
            locked_filters=dict(claims.get("locked_filters") or {}),
            hidden_widgets=tuple(claims.get("hidden_widgets") or ()),
            allowed_dimensions=tuple(claims.get("allowed_dimensions") or ()),
            allowed_periods=tuple(claims.get("allowed_periods") or ()),
            max_date_range_days=claims.get("max_date_range_days"),
        )

    def allows_period(self, period: str) -> bool:
        if self.allowed_periods and period not in self.allowed_periods:
            return False
        return self.max_date_range_days is None or PERIOD_LENGTH[period] <= timedelta(
            days=self.max_date_range_days
        )


def _object(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRequest(f"{name} must be an object", field=name)
    return value


def _string(value: Any, name: str, max_length: int = MAX_NAME) -> str:
    if not isinstance(value, str) or len(value) > max_length:
        raise BadRequest(f"{name} must be a string of at most {max_length} characters", field=name)
    return value


def _strings(value: Any, name: str) -> list[str]:
    """A list of strings, duplicates dropped (order kept); ``None`` is the empty list."""
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_ITEMS:
        raise BadRequest(f"{name} must be a list of at most {MAX_ITEMS} strings", field=name)
    return list(dict.fromkeys(_string(item, name) for item in value))


def validate_permissions(raw: Any, dashboard: Dashboard) -> EmbedPermissions:
    """The ``permissions`` object of a new session; every error is a 400 naming the field."""
    if raw is None:
        return EmbedPermissions()
    given = _object(raw, "permissions")
    require_storable(given, "permissions")  # the mint's audit row keeps them
    for key in given:
        if key not in _PERMISSION_KEYS:
            raise BadRequest(
                f"permissions.{key} is not a permission (use {', '.join(_PERMISSION_KEYS)})",
                field=f"permissions.{key}",
            )
    drill = given.get("allow_drill_down", False)
    if drill is None:
        drill = False
    if not isinstance(drill, bool):
        raise BadRequest(
            "permissions.allow_drill_down must be true or false",
            field="permissions.allow_drill_down",
        )
    locked_raw = given.get("locked_filters") or {}
    locked = _object(locked_raw, "permissions.locked_filters")
    if len(locked) > MAX_ITEMS:
        raise BadRequest(
            f"permissions.locked_filters: at most {MAX_ITEMS} filters",
            field="permissions.locked_filters",
        )
    for key, value in locked.items():
        name = f"permissions.locked_filters.{key}"
        property_key(key, name)
        _string(value, name)
    hidden = _strings(given.get("hidden_widgets"), "permissions.hidden_widgets")
    known = {w["id"] for w in (*draft_widgets(dashboard), *published_widgets(dashboard))}
    for widget_id in hidden:
        if widget_id not in known:
            raise BadRequest(
                f"permissions.hidden_widgets: no widget {widget_id!r} in this dashboard",
                field="permissions.hidden_widgets",
            )
    dimensions = _strings(given.get("allowed_dimensions"), "permissions.allowed_dimensions")
    for key in dimensions:
        property_key(key, "permissions.allowed_dimensions")
    periods = _strings(given.get("allowed_periods"), "permissions.allowed_periods")
    for period in periods:
        if period not in PERIODS:
            raise BadRequest(
                f"permissions.allowed_periods: {period!r} is not one of {', '.join(PERIODS)}",
                field="permissions.allowed_periods",
            )
    max_days = given.get("max_date_range_days")
    if max_days is not None and (
        isinstance(max_days, bool)
        or not isinstance(max_days, int)
        or not 1 <= max_days <= MAX_RANGE_DAYS
    ):
        raise BadRequest(
            f"permissions.max_date_range_days must be a whole number from 1 to {MAX_RANGE_DAYS}",
            field="permissions.max_date_range_days",
        )
    permissions = EmbedPermissions(
        allow_drill_down=drill,
        locked_filters=dict(locked),
        hidden_widgets=tuple(hidden),
        allowed_dimensions=tuple(dimensions),
        allowed_periods=tuple(periods),
        max_date_range_days=max_days,
    )
    for period in periods:  # the fallback period must itself be usable
        if not permissions.allows_period(period):
            raise BadRequest(
                f"permissions.allowed_periods: {period} is longer than max_date_range_days",
                field="permissions.allowed_periods",
            )
    return permissions


# --- sessions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class EmbedSession:
    token: str
    embed_url: str
    expires_at: datetime
    jti: str
    tenant_id: str
    dashboard_id: str


def _tenant(tenant_id: Any) -> str:
    if not isinstance(tenant_id, str) or not 1 <= len(tenant_id) <= MAX_TENANT:
        raise BadRequest(
            f"tenant_id must be a string of 1 to {MAX_TENANT} characters", field="tenant_id"
        )
    if not storable(tenant_id):
        # The session is audited in the metadata database, which cannot store a NUL: a clear
        # 400 instead of a failed insert (ingest and queries take such a tenant id as it is).
        raise BadRequest("tenant_id must not contain a NUL character", field="tenant_id")
    return tenant_id


def _ttl(expires_in: Any) -> int:
    if (
        isinstance(expires_in, bool)
        or not isinstance(expires_in, int)
        or not MIN_TTL <= expires_in <= MAX_TTL
    ):
        raise BadRequest(
            f"expires_in must be a whole number of seconds from {MIN_TTL} to {MAX_TTL}",
            field="expires_in",
        )
    return expires_in


async def _mint(
    rt: Runtime,
    actor: Principal,
    environment: Environment,
    *,
    tenant_id: str,
    dashboard_id: str,
    permissions: EmbedPermissions,
    expires_in: int,
) -> EmbedSession:
    claims = permissions.claims()
    minted = mint_embed_token(
        environment,
        tenant_id=tenant_id,
        dashboard_id=dashboard_id,
        permissions=claims,
        expires_in=expires_in,
    )
    await audit.record(
        actor,
        SESSION_ACTION,
        "embed_session",
        minted.jti,
        {
            "tenant_id": tenant_id,
            "dashboard_id": dashboard_id,
            "jti": minted.jti,
            "environment_id": environment.id,  # what revocations match (they are per environment)
            "issued_at": iso_seconds(minted.issued_at),
            "expires_at": iso_seconds(minted.expires_at),
            "scope": SESSION_SCOPE,
            "permissions": claims,
        },
    )
    return EmbedSession(
        token=minted.token,
        embed_url=f"{rt.settings.base_url}/embed/{dashboard_id}?token={minted.token}",
        expires_at=datetime.fromtimestamp(minted.expires_at, UTC),
        jti=minted.jti,
        tenant_id=tenant_id,
        dashboard_id=dashboard_id,
    )


async def create_embed_session(
    rt: Runtime,
    *,
    actor: Principal,
    tenant_id: str,
    dashboard_id: str,
    expires_in: int = DEFAULT_TTL,
    permissions: Any = None,
) -> EmbedSession:
    """Mint a signed session for one tenant and one dashboard of the actor's org (admin).

    The session reads the actor's environment. The dashboard need not be published yet: until it
    is, the embed answers ``dashboard_not_published``.
    """
    actor.require_role("admin")
    tenant = _tenant(tenant_id)
    ttl = _ttl(expires_in)
    dashboard = await get_own(actor, dashboard_id)
    granted = validate_permissions(permissions, dashboard)
    if granted.advanced:
        billing.check_feature(
            await Org.get(id=actor.org_id), ADVANCED, code=PlanErrorCode.advanced_embed_permissions
        )
    environment = await Environment.get(id=actor.environment_id)
    return await _mint(
        rt,
        actor,
        environment,
        tenant_id=tenant,
        dashboard_id=dashboard.id,
        permissions=granted,
        expires_in=ttl,
    )


@dataclass(frozen=True)
class ActiveEmbedSession:
    id: str  # the token's jti
    tenant_id: str
    dashboard_id: str
    scope: str
    actor_type: str
    actor_id: str | None
    actor_label: str | None
    issued_at: datetime
    expires_at: datetime
    ttl_seconds: int

    @property
    def resource(self) -> str:
        return f"dashboard:{self.dashboard_id}"


async def list_embed_sessions(
    *, actor: Principal, now: datetime | None = None
) -> list[ActiveEmbedSession]:
    """Sessions of the org that have not expired nor been revoked, newest first (admin), from
    the audit rows.

    No session lives longer than :data:`MAX_TTL`, so only that much of the log is read; at most
    :data:`MAX_LISTED_SESSIONS` are listed.
    """
    actor.require_role("admin")
    now = now or datetime.now(UTC)
    rows = await (
        in_org(AuditLog, actor)
        .filter(action=SESSION_ACTION, created_at__gte=now - timedelta(seconds=MAX_TTL))
        .order_by("-created_at", "-id")
    )
    revoked = await embed_revocations.revoked_filter(actor, [row.metadata for row in rows])
    active: list[ActiveEmbedSession] = []
    for row in rows:
        meta = row.metadata
        expires_at = datetime.fromisoformat(meta["expires_at"])
        if expires_at <= now or meta["jti"] in revoked:
            continue
        active.append(
            ActiveEmbedSession(
                id=meta["jti"],
                tenant_id=meta["tenant_id"],
                dashboard_id=meta["dashboard_id"],
                scope=meta["scope"],
                actor_type=row.actor_type,
                actor_id=row.actor_id,
                actor_label=row.actor_label,
                issued_at=datetime.fromisoformat(meta["issued_at"]),
                expires_at=expires_at,
                ttl_seconds=math.ceil((expires_at - now).total_seconds()),
            )
        )
        if len(active) == MAX_LISTED_SESSIONS:
            break
    return active


async def demo_embed_url(
    rt: Runtime, *, tenant_id: str = DEMO_TENANT, ip: str | None = None
) -> EmbedSession:
    """Public: a one-hour session without permissions on the seeded demo dashboard.

    404 ``demo_not_seeded`` until ``emban demo`` (or a test) has published one; audited with the
    operator as actor; rate-limited per IP (429).
    """
    wait = await rt.limiter.hit(f"demo-embed:ip:{ip}", DEMO_MINTS_PER_MINUTE, 60)
    if wait is not None:
        raise RateLimited("too many demo sessions; try again later", retry_after=wait)
    tenant = _tenant(tenant_id)
    org = await Org.filter(is_demo=True).order_by("created_at").first()
    dashboard = (
        await Dashboard.filter(org_id=org.id, is_demo=True, is_published=True)
        .order_by("created_at")
        .first()
        if org is not None
        else None
    )
    environment = (
        await Environment.get_or_none(org_id=org.id, name="production") if org is not None else None
    )
    if org is None or dashboard is None or environment is None:
        raise NotFound(
            "no demo dashboard is seeded (run `emban demo`)", code=EmbedErrorCode.demo_not_seeded
        )
    return await _mint(
        rt,
        Principal.operator(org.id, environment.id),
        environment,
        tenant_id=tenant,
        dashboard_id=dashboard.id,
        permissions=EmbedPermissions(),
        expires_in=DEMO_TTL,
    )


# --- the browser runtime's filters -----------------------------------------------------------


@dataclass(frozen=True)
class EmbedFilters:
    """The spec's ``setFilters`` payload, validated and in canonical (sorted) order."""

    period: str | None = None
    dimensions: tuple[tuple[str, str], ...] = ()
    numeric_ranges: tuple[tuple[str, float | None, float | None], ...] = ()
    date_range: tuple[datetime, datetime] | None = None

    @property
    def cohort_key(self) -> str:
        """Canonical JSON: equal filters give equal keys (live cohorts share one query)."""
        return json.dumps(
            [
                self.period,
                self.dimensions,
                self.numeric_ranges,
                [moment.isoformat() for moment in self.date_range] if self.date_range else None,
            ],
            separators=(",", ":"),
        )


@dataclass(frozen=True)
class Drill:
    """A drill-down: one more dimension filter (needs ``allow_drill_down``)."""

    dimension: str
    value: str


def _bound(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadRequest(f"{name} must be a number", field=name)
    return float(value)


def _moment(value: Any, name: str) -> datetime:
    if not isinstance(value, str) or len(value) > 64:
        raise BadRequest(f"{name} must be an ISO 8601 date-time", field=name)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{name} must be an ISO 8601 date-time", field=name) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _sized(value: Any, name: str) -> dict[str, Any]:
    found = _object(value, name)
    if len(found) > MAX_ITEMS:
        raise BadRequest(f"{name}: at most {MAX_ITEMS} entries", field=name)
    return found


def parse_embed_filters(raw: Any) -> EmbedFilters:
    """``{period, dimensions: {dim: value}, numericRanges: {prop: {min?, max?}},
    dateRanges: {"timestamp": {"from", "to"}}}`` → :class:`EmbedFilters`; 400 naming the field.

    A ``null`` dimension value, date range or a range without bounds constrains nothing (the
    runtime clears a filter that way).
    """
    if raw is None:
        return EmbedFilters()
    given = _object(raw, "filters")
    for key in given:
        if key not in _FILTER_KEYS:
            raise BadRequest(
                f"filters.{key} is not a filter (use {', '.join(_FILTER_KEYS)})",
                field=f"filters.{key}",
            )
    period = given.get("period")
    if period is not None and period not in PERIODS:
        raise BadRequest(
            f"filters.period must be one of {', '.join(PERIODS)}", field="filters.period"
        )
    dimensions: list[tuple[str, str]] = []
    for key, value in _sized(given.get("dimensions") or {}, "filters.dimensions").items():
        name = f"filters.dimensions.{key}"
        property_key(key, name)
        if value is not None:
            dimensions.append((key, _string(value, name)))
    ranges: list[tuple[str, float | None, float | None]] = []
    for key, bounds in _sized(given.get("numericRanges") or {}, "filters.numericRanges").items():
        name = f"filters.numericRanges.{key}"
        property_key(key, name)
        if bounds is None:
            continue
        for bound in _object(bounds, name):
            if bound not in _RANGE_KEYS:
                raise BadRequest(f"{name}.{bound}: use min and max", field=f"{name}.{bound}")
        low = _bound(bounds.get("min"), f"{name}.min")
        high = _bound(bounds.get("max"), f"{name}.max")
        if low is not None and high is not None and low > high:
            raise BadRequest(f"{name}: min must not be above max", field=name)
        if low is not None or high is not None:
            ranges.append((key, low, high))
    date_range: tuple[datetime, datetime] | None = None
    for key, bounds in _object(given.get("dateRanges") or {}, "filters.dateRanges").items():
        name = f"filters.dateRanges.{key}"
        if key != "timestamp":
            raise BadRequest(f"{name}: only timestamp can be ranged", field=name)
        if bounds is None:
            continue
        for bound in _object(bounds, name):
            if bound not in _DATE_KEYS:
                raise BadRequest(f"{name}.{bound}: use from and to", field=f"{name}.{bound}")
        start = _moment(bounds.get("from"), f"{name}.from")
        end = _moment(bounds.get("to"), f"{name}.to")
        if start >= end:
            raise BadRequest(f"{name}: from must be before to", field=name)
        if end - start > timedelta(days=MAX_RANGE_DAYS):
            raise BadRequest(f"{name}: at most {MAX_RANGE_DAYS} days", field=name)
        date_range = (start, end)
    return EmbedFilters(
        period=period,
        dimensions=tuple(sorted(dimensions)),
        numeric_ranges=tuple(sorted(ranges, key=lambda r: r[0])),
        date_range=date_range,
    )


# --- what a token reads ----------------------------------------------------------------------


def embed_grant(actor: Principal) -> EmbedGrant:
    """The caller's embed grant; 403 for anyone else (console users, API keys)."""
    if actor.kind != "embed" or actor.embed is None:
        raise Forbidden(
            "this needs an embed token (Authorization: Bearer <token>)",
            code=EmbedErrorCode.embed_token_required,
        )
    return actor.embed


@dataclass(frozen=True)
class Exposure:
    """What the published dashboard lets a session measure beyond its own widgets.

    ``numeric``: the numeric properties its visible widgets measure (``numeric_prop`` of a
    sum/avg/p95/p99 widget); a viewer may range those, since their values are shown anyway.
    ``hidden_only``: property keys (numeric property, filter keys, group-by) that only hidden
    widgets use. Those are never filterable, rangeable or drillable, whatever the other
    permissions say: bisecting ``numericRanges.revenue`` on a visible count widget (or filtering
    it by a hidden widget's filter) would otherwise rebuild the hidden widget's numbers.

    The empty value allows no numeric range and protects no key: it is only right for a
    dashboard without query widgets.
    """

    numeric: frozenset[str] = frozenset()
    hidden_only: frozenset[str] = frozenset()


def exposure_of(widgets: list[dict[str, Any]], hidden: frozenset[str] | set[str]) -> Exposure:
    """The :class:`Exposure` of a dashboard's widgets (every one, hidden ones included)."""
    numeric: set[str] = set()
    visible_keys: set[str] = set()
    hidden_keys: set[str] = set()
    for widget in widgets:
        if widget["kind"] == "text" or not widget.get("query"):
            continue
        # Read from the stored query as it is (not through the planner): listing the dashboard
        # must not fail on one widget. A hidden widget protects every key it names; a visible
        # one exposes only what it really reads (a metric ignores group_by, a count its
        # numeric_prop).
        query = widget["query"]
        filters = set(query.get("filters") or {})
        group_by = query.get("group_by") or None
        named = query.get("numeric_prop") or None
        prop = named if query.get("metric") in NUMERIC_METRICS else None
        if widget["id"] in hidden:
            hidden_keys |= filters | {k for k in (group_by, named) if k}
        else:
            shown_group = group_by if widget["kind"] != "metric" else None
            visible_keys |= filters | {k for k in (shown_group, prop) if k}
            if prop:
                numeric.add(prop)
    return Exposure(frozenset(numeric), frozenset(hidden_keys - visible_keys))


@dataclass(frozen=True)
class EmbedDashboard:
    """The published dashboard a token names, as its viewer may see it."""

    id: str
    name: str
    widgets: list[dict[str, Any]]  # full configs (query included), hidden widgets left out
    # What the session may range and which keys only hidden widgets use; computed from the whole
    # published snapshot (hidden widgets included) before they are left out of ``widgets``.
    exposure: Exposure = field(default_factory=Exposure)


async def embed_dashboard(*, actor: Principal) -> EmbedDashboard:
    """The token's dashboard, published snapshot only, without hidden widgets.

    404 ``dashboard_not_published`` when it is unpublished, deleted or not in the token's org.
    """
    grant = embed_grant(actor)
    found = (
        await in_org(Dashboard, actor).get_or_none(id=grant.dashboard_id)
        if lookupable(grant.dashboard_id)
        else None
    )
    if found is None or not found.is_published or found.published is None:
        raise NotFound(
            "this dashboard is not published", code=EmbedErrorCode.dashboard_not_published
        )
    hidden = set(EmbedPermissions.of_claims(grant.permissions).hidden_widgets)
    widgets = published_widgets(found)
    return EmbedDashboard(
        id=found.id,
        name=found.published.get("name", found.name),
        widgets=[w for w in widgets if w["id"] not in hidden],
        exposure=exposure_of(widgets, hidden),
    )


def _forbidden(
    message: str, name: str, code: EmbedErrorCode = EmbedErrorCode.embed_filter_forbidden
) -> Forbidden:
    return Forbidden(message, code=code, field=name)


def _period(own: str, requested: str | None, permissions: EmbedPermissions) -> str:
    if requested is not None:
        if not permissions.allows_period(requested):
            raise _forbidden(f"period {requested} is not allowed in this embed", "filters.period")
        return requested
    if permissions.allows_period(own):
        return own
    if permissions.allowed_periods:
        return permissions.allowed_periods[0]
    return [p for p in PERIODS if permissions.allows_period(p)][-1]  # 24h always fits a day


def _granularity(own: str, period: str, span: timedelta, *, aligned: bool) -> str:
    """The widget's granularity for a changed window: not coarser than the period's default
    (a day-bucketed widget asked for 24h answers hourly), coarsened past :data:`MAX_BUCKETS`."""
    index = GRANULARITIES.index(own)
    if aligned:
        index = min(index, GRANULARITIES.index(default_granularity(period)))
    while index < len(GRANULARITIES) - 1 and span / _BUCKET[GRANULARITIES[index]] > MAX_BUCKETS:
        index += 1
    return GRANULARITIES[index]


def _check_dimension(
    key: str, value: str, permissions: EmbedPermissions, exposure: Exposure, name: str
) -> None:
    locked = permissions.locked_filters
    if key in locked:
        if value != locked[key]:
            raise _forbidden(f"{key} is locked to {locked[key]!r} in this embed", name)
        return  # the same value as the lock adds nothing
    # One message for every refused key: saying "a hidden widget uses it" would itself tell the
    # viewer which keys the hidden widgets use.
    if (permissions.allowed_dimensions and key not in permissions.allowed_dimensions) or (
        key in exposure.hidden_only
    ):
        raise _forbidden(f"filtering by {key} is not allowed in this embed", name)


def _check_numeric_range(
    key: str, permissions: EmbedPermissions, exposure: Exposure, name: str
) -> None:
    """A range on a numeric property measures its values (bisecting it recovers each one), so it
    is allowed only on what the session already sees measured or was explicitly granted."""
    shown = key in exposure.numeric
    granted = key in permissions.allowed_dimensions and key not in exposure.hidden_only
    if not (shown or granted):
        raise _forbidden(f"numeric ranges on {key} are not allowed in this embed", name)


def _period_window(period: str, now: datetime) -> tuple[datetime, datetime]:
    """The [start, end) a period shows at its default granularity (the planner's window)."""
    probe = QuerySpec(
        event_name="-",
        metric="count",
        period=period,  # type: ignore[arg-type]  # one of PERIODS
        granularity=default_granularity(period),
    )
    return window(probe, now)


def date_range_bounds(
    permissions: EmbedPermissions, now: datetime
) -> list[tuple[str, datetime, datetime]]:
    """Each window a date range must lie in, with the words the refusal uses.

    ``allowed_periods``: the window of the longest allowed period, measured back from now as the
    period itself would show it (whole hours for 1h/24h, whole days otherwise).
    ``max_date_range_days``: the last that many days, measured back from the start of the current
    hour to its end (so a client clock a few seconds behind still fits); the length is bounded
    separately.
    """
    bounds: list[tuple[str, datetime, datetime]] = []
    if permissions.allowed_periods:
        longest = max(permissions.allowed_periods, key=lambda p: PERIOD_LENGTH[p])
        start, end = _period_window(longest, now)
        bounds.append((f"the last {longest} (the longest allowed period)", start, end))
    if permissions.max_date_range_days is not None:
        days = permissions.max_date_range_days
        hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        bounds.append(
            (
                f"the last {days} days",
                hour - timedelta(days=days),
                hour + timedelta(hours=1),
            )
        )
    return bounds


def check_embed_filters(
    filters: EmbedFilters,
    permissions: EmbedPermissions,
    exposure: Exposure,
    drill: Drill | None = None,
    *,
    now: datetime | None = None,
) -> None:
    """Every permission against every way the viewer narrows or widens the data (the table in
    docs/embedding-api.md): period, dimensions, numeric ranges, date ranges and drill. 403
    ``embed_filter_forbidden`` / ``embed_drill_forbidden`` naming the field.

    Used by GraphQL ``embed.widgetData`` and by ``embedLive`` (when it subscribes and on every
    recompute), through :func:`embed_spec`; the widget's own ``group_by`` is checked there.
    """
    if filters.period is not None and not permissions.allows_period(filters.period):
        raise _forbidden(f"period {filters.period} is not allowed in this embed", "filters.period")
    for key, value in filters.dimensions:
        _check_dimension(key, value, permissions, exposure, f"filters.dimensions.{key}")
    for key, _, _ in filters.numeric_ranges:
        _check_numeric_range(key, permissions, exposure, f"filters.numericRanges.{key}")
    if filters.date_range is not None:
        start, end = filters.date_range
        name = "filters.dateRanges.timestamp"
        limit = permissions.max_date_range_days
        if limit is not None and end - start > timedelta(days=limit):
            raise _forbidden(
                f"date ranges longer than {limit} days are not allowed in this embed", name
            )
        for words, earliest, latest in date_range_bounds(permissions, now or datetime.now(UTC)):
            outside = f"{name}.from" if start < earliest else f"{name}.to" if end > latest else None
            if outside is not None:
                raise _forbidden(f"date ranges must lie within {words} in this embed", outside)
    if drill is not None:
        if not permissions.allow_drill_down:
            raise _forbidden(
                "drill-down is not allowed in this embed",
                "drill",
                EmbedErrorCode.embed_drill_forbidden,
            )
        property_key(drill.dimension, "drill.dimension")
        value = _string(drill.value, "drill.value")
        _check_dimension(drill.dimension, value, permissions, exposure, "drill.dimension")


def embed_spec(
    widget: dict[str, Any],
    grant: EmbedGrant,
    filters: EmbedFilters,
    drill: Drill | None = None,
    *,
    exposure: Exposure,
    now: datetime | None = None,
) -> QuerySpec:
    """The query one (visible, non-text) widget runs for this grant and these filters.

    Every permission is enforced here (:func:`check_embed_filters`, then the widget's own
    ``group_by``); the tenant is the grant's whatever the filters say. ``exposure`` is the
    published dashboard's (:attr:`EmbedDashboard.exposure`).
    """
    permissions = EmbedPermissions.of_claims(grant.permissions)
    check_embed_filters(filters, permissions, exposure, drill, now=now)
    base = spec_of(widget, grant.tenant_id)
    period = _period(base.period, filters.period, permissions)
    pairs = {*base.filters, *filters.dimensions, *permissions.locked_filters.items()}
    if drill is not None:
        pairs.add((drill.dimension, drill.value))
    group_by = base.group_by
    if (
        widget["kind"] != "metric"
        and group_by is not None
        and permissions.allowed_dimensions
        and group_by not in permissions.allowed_dimensions
        and group_by not in permissions.locked_filters
    ):
        raise _forbidden(f"this widget groups by {group_by}, not allowed in this embed", "group_by")
    granularity: str = base.granularity
    if filters.date_range is not None:
        span = filters.date_range[1] - filters.date_range[0]
        granularity = _granularity(granularity, period, span, aligned=False)
    elif period != base.period:
        granularity = _granularity(granularity, period, PERIOD_LENGTH[period], aligned=True)
    return replace(
        base,
        period=period,  # type: ignore[arg-type]  # one of PERIODS
        granularity=granularity,  # type: ignore[arg-type]  # one of GRANULARITIES
        filters=tuple(sorted(pairs)),
        numeric_ranges=filters.numeric_ranges,
        date_range=filters.date_range,
    )


async def check_live_filters(*, actor: Principal, filters: EmbedFilters) -> None:
    """``embedLive``'s check when it subscribes, so a forbidden filter is refused with its code
    instead of joining a cohort whose every widget would answer an error. An unpublished
    dashboard is not refused here (the subscription says ``not_published`` and waits); every
    recompute checks again against the config it shows."""
    grant = embed_grant(actor)
    try:
        dashboard = await embed_dashboard(actor=actor)
    except NotFound:
        return
    check_embed_filters(filters, EmbedPermissions.of_claims(grant.permissions), dashboard.exposure)


async def embed_widget_result(
    rt: Runtime,
    *,
    actor: Principal,
    widget: dict[str, Any],
    filters: EmbedFilters,
    drill: Drill | None = None,
    dashboard: EmbedDashboard | None = None,
) -> AnalyticsResult:
    """One widget of :func:`embed_dashboard`'s answer (already published and visible), run for
    the token's tenant, org and environment. Text widgets answer an empty result.

    ``dashboard`` is the :func:`embed_dashboard` answer the widget came from (its exposure bounds
    the filters); without it, it is loaded again."""
    grant = embed_grant(actor)
    if dashboard is None:
        dashboard = await embed_dashboard(actor=actor)
    if widget["kind"] == "text":
        # Still checked: a refused filter is refused for every widget alike.
        check_embed_filters(
            filters, EmbedPermissions.of_claims(grant.permissions), dashboard.exposure, drill
        )
        return AnalyticsResult([], dict(_NO_QUERY_META))
    spec = embed_spec(widget, grant, filters, drill, exposure=dashboard.exposure)
    scope = Scope(actor.org_id, actor.environment_id)
    return await run_widget_spec(rt, scope, widget["kind"], spec)


async def embed_widget_data(
    rt: Runtime,
    *,
    actor: Principal,
    widget_id: str,
    filters: EmbedFilters | None = None,
    drill: Drill | None = None,
) -> AnalyticsResult:
    """One widget's data for an embed token: only its published dashboard, only its tenant.

    Hidden and unknown widgets answer 404 ``widget_not_found``.
    """
    dashboard = await embed_dashboard(actor=actor)
    widget = next((w for w in dashboard.widgets if w["id"] == widget_id), None)
    if widget is None:
        raise NotFound(
            "widget not found in this dashboard", code=DashboardErrorCode.widget_not_found
        )
    return await embed_widget_result(
        rt,
        actor=actor,
        widget=widget,
        filters=filters or EmbedFilters(),
        drill=drill,
        dashboard=dashboard,
    )

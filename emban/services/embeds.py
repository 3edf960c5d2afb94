"""Signed embed sessions, and what an embed token may read.

An admin mints a session for one tenant and one dashboard (``POST /v1/embed-sessions``); the
token (:mod:`emban.auth.embed_tokens`) carries the permissions below, and every data request made
with it goes through :func:`embed_spec`, which is where they are enforced:

- the tenant is always the token's tenant, the org and environment the token's (never a filter);
- ``locked_filters`` are ANDed to every query; a request filtering a locked dimension with another
  value is refused (403 ``embed_filter_forbidden``), with the same value it is a no-op;
- ``hidden_widgets`` are never listed and answer 404 ``widget_not_found``;
- ``allowed_dimensions`` (when non-empty) bounds the dimension filters, the widget's ``group_by``
  and the drill dimension (403 ``embed_filter_forbidden``);
- ``allowed_periods`` (when non-empty) bounds the requested period (403); a widget whose own
  period is not allowed shows the first allowed period instead;
- ``max_date_range_days`` bounds periods and date ranges (403); a widget whose own period is
  longer shows the longest period that fits (the first allowed one when periods are listed);
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
    PERIOD_LENGTH,
    PERIODS,
    QuerySpec,
    Scope,
    default_granularity,
    iso_seconds,
    property_key,
)
from emban.auth.embed_tokens import mint_embed_token
from emban.auth.principal import EmbedGrant, Principal
from emban.errors import BadRequest, Forbidden, NotFound, RateLimited
from emban.models import AuditLog, Dashboard, Environment, Org
from emban.runtime import Runtime
from emban.services import audit, billing
from emban.services.analytics import AnalyticsResult
from emban.services.dashboards import draft_widgets, get_own, published_widgets
from emban.services.scope import in_org
from emban.services.validation import lookupable, storable
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
ADVANCED = "advanced_embed_permissions"
FILTER_FORBIDDEN = "embed_filter_forbidden"
DRILL_FORBIDDEN = "embed_drill_forbidden"

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
        billing.check_feature(await Org.get(id=actor.org_id), ADVANCED, code=ADVANCED)
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
    """Sessions of the org that have not expired, newest first (admin), from the audit rows.

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
    active: list[ActiveEmbedSession] = []
    for row in rows:
        meta = row.metadata
        expires_at = datetime.fromisoformat(meta["expires_at"])
        if expires_at <= now:
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
        raise NotFound("no demo dashboard is seeded (run `emban demo`)", code="demo_not_seeded")
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
            code="embed_token_required",
        )
    return actor.embed


@dataclass(frozen=True)
class EmbedDashboard:
    """The published dashboard a token names, as its viewer may see it."""

    id: str
    name: str
    widgets: list[dict[str, Any]]  # full configs (query included), hidden widgets left out


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
        raise NotFound("this dashboard is not published", code="dashboard_not_published")
    hidden = set(EmbedPermissions.of_claims(grant.permissions).hidden_widgets)
    return EmbedDashboard(
        id=found.id,
        name=found.published.get("name", found.name),
        widgets=[w for w in published_widgets(found) if w["id"] not in hidden],
    )


def _forbidden(message: str, name: str, code: str = FILTER_FORBIDDEN) -> Forbidden:
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


def _check_dimension(key: str, value: str, permissions: EmbedPermissions, name: str) -> None:
    locked = permissions.locked_filters
    if key in locked:
        if value != locked[key]:
            raise _forbidden(f"{key} is locked to {locked[key]!r} in this embed", name)
        return  # the same value as the lock adds nothing
    if permissions.allowed_dimensions and key not in permissions.allowed_dimensions:
        raise _forbidden(f"filtering by {key} is not allowed in this embed", name)


def embed_spec(
    widget: dict[str, Any], grant: EmbedGrant, filters: EmbedFilters, drill: Drill | None = None
) -> QuerySpec:
    """The query one (visible, non-text) widget runs for this grant and these filters.

    Every permission is enforced here; the tenant is the grant's whatever the filters say.
    """
    permissions = EmbedPermissions.of_claims(grant.permissions)
    base = spec_of(widget, grant.tenant_id)
    period = _period(base.period, filters.period, permissions)
    if filters.date_range is not None:
        start, end = filters.date_range
        limit = permissions.max_date_range_days
        if limit is not None and end - start > timedelta(days=limit):
            raise _forbidden(
                f"date ranges longer than {limit} days are not allowed in this embed",
                "filters.dateRanges.timestamp",
            )
    for key, value in filters.dimensions:
        _check_dimension(key, value, permissions, f"filters.dimensions.{key}")
    pairs = {*base.filters, *filters.dimensions, *permissions.locked_filters.items()}
    if drill is not None:
        if not permissions.allow_drill_down:
            raise _forbidden("drill-down is not allowed in this embed", "drill", DRILL_FORBIDDEN)
        property_key(drill.dimension, "drill.dimension")
        _check_dimension(
            drill.dimension, _string(drill.value, "drill.value"), permissions, "drill.dimension"
        )
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


async def embed_widget_result(
    rt: Runtime,
    *,
    actor: Principal,
    widget: dict[str, Any],
    filters: EmbedFilters,
    drill: Drill | None = None,
) -> AnalyticsResult:
    """One widget of :func:`embed_dashboard`'s answer (already published and visible), run for
    the token's tenant, org and environment. Text widgets answer an empty result."""
    grant = embed_grant(actor)
    if widget["kind"] == "text":
        return AnalyticsResult([], dict(_NO_QUERY_META))
    spec = embed_spec(widget, grant, filters, drill)
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
        raise NotFound("widget not found in this dashboard", code="widget_not_found")
    return await embed_widget_result(
        rt, actor=actor, widget=widget, filters=filters or EmbedFilters(), drill=drill
    )

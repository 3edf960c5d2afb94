"""The role x route matrix for every authenticated ``/v1`` route, and the spec's error-table rows.

The matrix runs ~100 requests, each against a freshly truncated database. Registering through the
API costs one argon2 hash per account (~0.1 s here), so the org and its principals are written
straight into the metadata tables instead: the same rows registration, invites and key creation
write (sessions and keys stored as SHA-256 digests). How those rows come to exist through the API
is tested in test_rest_auth.py and test_rest_keys_team_settings.py.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import secrets
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from argon2 import PasswordHasher

from emban.analytics.ingest import COMPACT, EVENT_COLUMNS, EventRow
from emban.analytics.tables import EVENTS
from emban.auth import credentials
from emban.models import (
    AlertRule,
    ApiKey,
    AuditLog,
    BillingAccount,
    Dashboard,
    Environment,
    Invite,
    Membership,
    Org,
    Report,
    SavedQuery,
    User,
    UserSession,
    Widget,
)
from emban.rest_compat.routes import ROUTES
from emban.runtime import Runtime
from tests.conftest import PASSWORD, ClientFactory, bearer
from tests.paddle_server import PaddleStandIn

PRINCIPALS = ("anonymous", "ingest_key", "viewer", "editor", "admin", "owner", "admin_key")
Row = tuple[int, int, int, int, int, int, int]

# Expected status of every authenticated route for each principal, columns in PRINCIPALS order:
# 401 anonymous; 403 ingest keys everywhere but /me and ingest; viewers and editors read members,
# settings, queries, saved queries, usage and onboarding; admins also manage keys, invites,
# members and saved queries, patch settings, run ad-hoc SQL, see datasets and the audit log; only
# the owner changes roles or deletes the org; an admin key acts with the admin role but has no
# session to log out of (403 not_a_session); events are sent with API keys only. Dashboards and
# standalone widgets are read by viewers; editors write dashboards (publish, unpublish, inline
# widget patch/delete), preview widgets and auto-create a dashboard from discovery; restoring the
# published snapshot, adding an inline widget, every standalone widget write and minting or
# listing embed sessions need an admin. Environments are read by every console user and their
# allowed origins set by admins.
MATRIX: dict[tuple[str, str], Row] = {
    # (method, path): (anonymous, ingest_key, viewer, editor, admin, owner, admin_key)
    ("POST", "/v1/auth/logout"): (401, 403, 204, 204, 204, 204, 403),
    ("GET", "/v1/auth/me"): (401, 200, 200, 200, 200, 200, 200),
    ("GET", "/v1/api-keys"): (401, 403, 403, 403, 200, 200, 200),
    ("POST", "/v1/api-keys"): (401, 403, 403, 403, 201, 201, 201),
    ("DELETE", "/v1/api-keys/{id}"): (401, 403, 403, 403, 204, 204, 204),
    ("GET", "/v1/members"): (401, 403, 200, 200, 200, 200, 200),
    ("POST", "/v1/members/invite"): (401, 403, 403, 403, 201, 201, 201),
    ("GET", "/v1/members/invites"): (401, 403, 403, 403, 200, 200, 200),
    ("PATCH", "/v1/members/{id}"): (401, 403, 403, 403, 403, 200, 403),
    ("DELETE", "/v1/members/{id}"): (401, 403, 403, 403, 204, 204, 204),
    ("GET", "/v1/settings/org"): (401, 403, 200, 200, 200, 200, 200),
    ("PATCH", "/v1/settings/org"): (401, 403, 403, 403, 200, 200, 200),
    ("DELETE", "/v1/settings/org"): (401, 403, 403, 403, 403, 204, 403),
    ("GET", "/v1/audit"): (401, 403, 403, 403, 200, 200, 200),
    ("POST", "/v1/events"): (401, 200, 403, 403, 403, 403, 200),
    ("GET", "/v1/query"): (401, 403, 200, 200, 200, 200, 200),
    ("POST", "/v1/query/adhoc"): (401, 403, 403, 403, 200, 200, 200),
    ("GET", "/v1/datasets"): (401, 403, 403, 403, 200, 200, 200),
    ("GET", "/v1/datasets/{name}/ddl"): (401, 403, 403, 403, 200, 200, 200),
    ("GET", "/v1/saved-queries"): (401, 403, 200, 200, 200, 200, 200),
    ("POST", "/v1/saved-queries"): (401, 403, 403, 403, 201, 201, 201),
    ("PATCH", "/v1/saved-queries/{id}"): (401, 403, 403, 403, 200, 200, 200),
    ("DELETE", "/v1/saved-queries/{id}"): (401, 403, 403, 403, 204, 204, 204),
    ("GET", "/v1/usage"): (401, 403, 200, 200, 200, 200, 200),
    ("GET", "/v1/onboarding/status"): (401, 403, 200, 200, 200, 200, 200),
    ("GET", "/v1/dashboards"): (401, 403, 200, 200, 200, 200, 200),
    ("GET", "/v1/dashboards/{id}"): (401, 403, 200, 200, 200, 200, 200),
    ("POST", "/v1/dashboards"): (401, 403, 403, 201, 201, 201, 201),
    ("PATCH", "/v1/dashboards/{id}"): (401, 403, 403, 200, 200, 200, 200),
    ("DELETE", "/v1/dashboards/{id}"): (401, 403, 403, 204, 204, 204, 204),
    ("POST", "/v1/dashboards/{id}/publish"): (401, 403, 403, 204, 204, 204, 204),
    ("POST", "/v1/dashboards/{id}/unpublish"): (401, 403, 403, 204, 204, 204, 204),
    ("POST", "/v1/dashboards/{id}/restore-published"): (401, 403, 403, 403, 204, 204, 204),
    ("POST", "/v1/dashboards/{id}/widgets"): (401, 403, 403, 403, 201, 201, 201),
    ("PATCH", "/v1/dashboards/{id}/widgets/{widget_id}"): (401, 403, 403, 200, 200, 200, 200),
    ("DELETE", "/v1/dashboards/{id}/widgets/{widget_id}"): (401, 403, 403, 204, 204, 204, 204),
    ("GET", "/v1/widgets"): (401, 403, 200, 200, 200, 200, 200),
    ("GET", "/v1/widgets/{id}"): (401, 403, 200, 200, 200, 200, 200),
    ("POST", "/v1/widgets"): (401, 403, 403, 403, 201, 201, 201),
    ("PATCH", "/v1/widgets/{id}"): (401, 403, 403, 403, 200, 200, 200),
    ("POST", "/v1/widgets/{id}/publish"): (401, 403, 403, 403, 204, 204, 204),
    ("DELETE", "/v1/widgets/{id}"): (401, 403, 403, 403, 204, 204, 204),
    ("POST", "/v1/widgets/preview/data"): (401, 403, 403, 200, 200, 200, 200),
    ("GET", "/v1/discover"): (401, 403, 200, 200, 200, 200, 200),
    ("POST", "/v1/discover/auto-create"): (401, 403, 403, 201, 201, 201, 201),
    ("POST", "/v1/embed-sessions"): (401, 403, 403, 403, 201, 201, 201),
    ("GET", "/v1/embed-sessions"): (401, 403, 403, 403, 200, 200, 200),
    ("DELETE", "/v1/embed-sessions/{id}"): (401, 403, 403, 403, 200, 200, 200),
    ("POST", "/v1/embed-sessions/revoke"): (401, 403, 403, 403, 200, 200, 200),
    ("GET", "/v1/environments"): (401, 403, 200, 200, 200, 200, 200),
    ("PATCH", "/v1/environments/{id}"): (401, 403, 403, 403, 200, 200, 200),
    # Alerts and reports: read by every console user, written, run and evaluated by admins;
    # the webhooks page shows the signing secret: admins only.
    ("GET", "/v1/alerts"): (401, 403, 200, 200, 200, 200, 200),
    ("GET", "/v1/alerts/{id}"): (401, 403, 200, 200, 200, 200, 200),
    ("GET", "/v1/alerts/{id}/events"): (401, 403, 200, 200, 200, 200, 200),
    ("POST", "/v1/alerts"): (401, 403, 403, 403, 201, 201, 201),
    ("PATCH", "/v1/alerts/{id}"): (401, 403, 403, 403, 200, 200, 200),
    ("DELETE", "/v1/alerts/{id}"): (401, 403, 403, 403, 204, 204, 204),
    ("POST", "/v1/alerts/{id}/evaluate"): (401, 403, 403, 403, 200, 200, 200),
    ("GET", "/v1/reports"): (401, 403, 200, 200, 200, 200, 200),
    ("GET", "/v1/reports/{id}"): (401, 403, 200, 200, 200, 200, 200),
    ("GET", "/v1/reports/{id}/runs"): (401, 403, 200, 200, 200, 200, 200),
    ("POST", "/v1/reports"): (401, 403, 403, 403, 201, 201, 201),
    ("PATCH", "/v1/reports/{id}"): (401, 403, 403, 403, 200, 200, 200),
    ("DELETE", "/v1/reports/{id}"): (401, 403, 403, 403, 204, 204, 204),
    ("POST", "/v1/reports/{id}/run"): (401, 403, 403, 403, 202, 202, 202),
    ("GET", "/v1/webhooks"): (401, 403, 403, 403, 200, 200, 200),
    ("POST", "/v1/webhooks/rotate-secret"): (401, 403, 403, 403, 200, 200, 200),
    # Billing: the overview and the Paddle portal are for admins, checkout data for every
    # console user (run with Paddle configured against the local stand-in).
    ("GET", "/v1/billing"): (401, 403, 403, 403, 200, 200, 200),
    ("GET", "/v1/billing/checkout-config"): (401, 403, 200, 200, 200, 200, 200),
    ("GET", "/v1/billing/portal"): (401, 403, 403, 403, 200, 200, 200),
}

# Routes that need an event in the world's environment to succeed.
NEEDS_EVENTS = {("POST", "/v1/discover/auto-create")}

# Routes that refuse console sessions by scope rather than by role.
KEY_ONLY = {("POST", "/v1/events")}

# Routes that refuse API keys because they act on a console session (403 not_a_session).
SESSION_ONLY = {("POST", "/v1/auth/logout")}

# Public routes answer without credentials; their refusals are tested in test_rest_auth.py.
PUBLIC: dict[tuple[str, str], int] = {
    ("POST", "/v1/auth/register"): 201,
    ("POST", "/v1/auth/login"): 200,
    ("POST", "/v1/auth/accept-invite"): 201,
    ("GET", "/v1/billing/plans"): 200,
    ("GET", "/v1/demo/embed-url"): 200,
}

# Routes that act on an embed session minted before the request (its mint row is not counted
# among the request's effects).
NEEDS_SESSION = {("DELETE", "/v1/embed-sessions/{id}")}

# Public routes that answer only once a demo org with a published demo dashboard exists.
NEEDS_DEMO = {("GET", "/v1/demo/embed-url")}

# The audit action an allowed request writes (None: a read, or the org and its log are gone).
AUDIT_ACTION: dict[tuple[str, str], str | None] = {
    ("POST", "/v1/alerts"): "alert.create",
    ("PATCH", "/v1/alerts/{id}"): "alert.update",
    ("DELETE", "/v1/alerts/{id}"): "alert.delete",
    ("POST", "/v1/reports"): "report.create",
    ("PATCH", "/v1/reports/{id}"): "report.update",
    ("DELETE", "/v1/reports/{id}"): "report.delete",
    ("POST", "/v1/reports/{id}/run"): "report.run",
    ("POST", "/v1/webhooks/rotate-secret"): "webhook.rotate_secret",
    ("POST", "/v1/auth/logout"): "session.logout",
    ("POST", "/v1/api-keys"): "api_key.create",
    ("DELETE", "/v1/api-keys/{id}"): "api_key.delete",
    ("POST", "/v1/members/invite"): "invite.create",
    ("PATCH", "/v1/members/{id}"): "member.update_role",
    ("DELETE", "/v1/members/{id}"): "member.remove",
    ("PATCH", "/v1/settings/org"): "org.update",
    ("POST", "/v1/saved-queries"): "saved_query.create",
    ("PATCH", "/v1/saved-queries/{id}"): "saved_query.update",
    ("DELETE", "/v1/saved-queries/{id}"): "saved_query.delete",
    ("POST", "/v1/dashboards"): "dashboard.create",
    ("PATCH", "/v1/dashboards/{id}"): "dashboard.update",
    ("DELETE", "/v1/dashboards/{id}"): "dashboard.delete",
    ("POST", "/v1/dashboards/{id}/publish"): "dashboard.publish",
    ("POST", "/v1/dashboards/{id}/unpublish"): "dashboard.unpublish",
    ("POST", "/v1/dashboards/{id}/restore-published"): "dashboard.restore_published",
    ("POST", "/v1/dashboards/{id}/widgets"): "dashboard.widget_add",
    ("PATCH", "/v1/dashboards/{id}/widgets/{widget_id}"): "dashboard.widget_update",
    ("DELETE", "/v1/dashboards/{id}/widgets/{widget_id}"): "dashboard.widget_delete",
    ("POST", "/v1/widgets"): "widget.create",
    ("PATCH", "/v1/widgets/{id}"): "widget.update",
    ("POST", "/v1/widgets/{id}/publish"): "widget.publish",
    ("DELETE", "/v1/widgets/{id}"): "widget.delete",
    ("POST", "/v1/discover/auto-create"): "dashboard.create",
    ("POST", "/v1/embed-sessions"): "embed_session.create",
    ("DELETE", "/v1/embed-sessions/{id}"): "embed_session.revoked",
    ("POST", "/v1/embed-sessions/revoke"): "embed_sessions.revoked",
    ("PATCH", "/v1/environments/{id}"): "environment.update",
}

INVITE_TOKEN = "matrix-invite-token"
PASSWORD_HASH = PasswordHasher().hash(PASSWORD)  # the service hashes the same way, in its pool


def _widget(widget_id: str, x: int = 0) -> dict[str, Any]:
    return {
        "id": widget_id,
        "kind": "timeseries",
        "title": "Calls",
        "query": {"event_name": "api.call", "metric": "count", "period": "24h"},
        "viz": {"type": "line"},
        "layout": {"x": x, "y": 0, "w": 6, "h": 4},
    }


@dataclass
class World:
    """One org with a member of every role, an admin and an ingest key, and targets to act on."""

    org_id: str
    environment_id: str
    target_member_id: str
    target_key_id: str
    saved_query_id: str = ""
    dashboard_id: str = ""
    widget_id: str = ""
    session_id: str = ""
    alert_id: int = 0
    report_id: int = 0
    headers: dict[str, dict[str, str]] = field(default_factory=dict)


async def _member(org: Org, env: Environment, role: str, email: str) -> tuple[Membership, str]:
    user = await User.create(email=email, name=role.title(), password_hash=PASSWORD_HASH)
    membership = await Membership.create(org_id=org.id, user_id=user.id, role=role)
    token = credentials.new_session_token()
    await UserSession.create(
        token_hash=credentials.token_digest(token),
        user_id=user.id,
        org_id=org.id,
        environment_id=env.id,
        ip="127.0.0.1",
        expires_at=datetime.now(UTC) + timedelta(days=1),
    )
    return membership, token


async def _key(org: Org, env: Environment, scope: str) -> tuple[ApiKey, str]:
    clear = credentials.new_api_key()
    key = await ApiKey.create(
        org_id=org.id,
        environment_id=env.id,
        label=f"{scope} key",
        scope=scope,
        prefix=credentials.key_prefix(clear),
        key_hash=credentials.token_digest(clear),
    )
    return key, clear


async def seed_world(tag: str = "") -> World:
    """A new org; ``tag`` keeps emails and the invite token unique when a test seeds several."""
    org = await Org.create(name="Acme", email=f"owner@acme{tag}.test", plan="free")
    await BillingAccount.create(org_id=org.id, customer_id=f"ctm_world{tag}")
    production = await Environment.create(
        org_id=org.id, name="production", embed_secret=secrets.token_urlsafe(48)
    )
    await Environment.create(
        org_id=org.id, name="development", embed_secret=secrets.token_urlsafe(48)
    )
    world = World(
        org_id=org.id, environment_id=production.id, target_member_id="", target_key_id=""
    )
    world.headers["anonymous"] = {}
    for role in ("owner", "admin", "editor", "viewer"):
        _, token = await _member(org, production, role, f"{role}@acme{tag}.test")
        world.headers[role] = {"Cookie": f"emban_session={token}"}
    for scope in ("admin", "ingest"):
        _, clear = await _key(org, production, scope)
        world.headers[f"{scope}_key"] = bearer(clear)
    target_member, _ = await _member(org, production, "viewer", f"target@acme{tag}.test")
    target_key, _ = await _key(org, production, "ingest")
    world.target_member_id = target_member.id
    world.target_key_id = target_key.id
    saved = await SavedQuery.create(
        org_id=org.id, name="Top events", sql="SELECT event_name FROM events", dataset="events"
    )
    world.saved_query_id = saved.id
    # The org's one published dashboard (the free plan's limit: publishing it again is allowed,
    # and it has a snapshot to restore) with an inline widget, and a standalone widget.
    draft = {"widgets": [_widget("calls")]}
    dashboard = await Dashboard.create(
        org_id=org.id,
        name="Usage",
        draft=draft,
        published={"name": "Usage", "description": "", **draft},
        is_published=True,
        published_at=datetime.now(UTC),
    )
    world.dashboard_id = dashboard.id
    widget = Widget(org_id=org.id)
    widget.draft = {**_widget("w"), "id": widget.id}
    await widget.save()
    world.widget_id = widget.id
    alert = await AlertRule.create(
        org_id=org.id,
        environment_id=production.id,
        dashboard_id=dashboard.id,
        widget_id="calls",
        name="Calls",
        condition_type="threshold",
        operator="gt",
        threshold_value=100,
        lookback_minutes=60,
    )
    world.alert_id = alert.id
    report = await Report.create(
        org_id=org.id,
        environment_id=production.id,
        dashboard_id=dashboard.id,
        name="Weekly",
        schedule="0 9 * * 1",
    )
    world.report_id = report.id
    await Invite.create(
        org_id=org.id,
        email=f"invitee@acme{tag}.test",
        role="viewer",
        token_hash=credentials.token_digest(INVITE_TOKEN + tag),
        expires_at=datetime.now(UTC) + timedelta(days=1),
    )
    return world


async def _one_event(runtime: Runtime, world: World) -> None:
    # Recent: discovery reads the last 30 days only (EMBAN_DISCOVERY_WINDOW_DAYS).
    at = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S.000")
    row = EventRow(world.org_id, world.environment_id, "t", "x", at, "e1", "", {}, {})
    await runtime.events.insert_json(EVENTS, EVENT_COLUMNS, msgspec.json.encode(row), COMPACT)


async def _mint_session(world: World) -> int:
    """Record a one-hour session of the world's dashboard as a mint does; the row's id."""
    now = datetime.now(UTC).replace(microsecond=0)
    world.session_id = "es_matrixsession0000000"
    row = await AuditLog.create(
        org_id=world.org_id,
        actor_type="user",
        action="embed_session.create",
        resource_type="embed_session",
        resource_id=world.session_id,
        metadata={
            "tenant_id": "acme",
            "dashboard_id": world.dashboard_id,
            "jti": world.session_id,
            "environment_id": world.environment_id,
            "issued_at": now.isoformat(),
            "expires_at": (now + timedelta(hours=1)).isoformat(),
            "scope": "embed:dashboard:read",
            "permissions": {},
        },
    )
    return row.id


def _url(path: str, world: World) -> str:
    if path == "/v1/query":
        return "/v1/query?event_name=x&tenant_id=t&metric=count&period=7d"
    if path.startswith("/v1/members/{id}"):
        return path.format(id=world.target_member_id)
    if path.startswith("/v1/saved-queries/{id}"):
        return path.format(id=world.saved_query_id)
    if path.startswith("/v1/dashboards/{id}"):
        return path.format(id=world.dashboard_id, widget_id="calls")
    if path.startswith("/v1/widgets/{id}"):
        return path.format(id=world.widget_id)
    if path.startswith("/v1/environments/{id}"):
        return path.format(id=world.environment_id)
    if path.startswith("/v1/embed-sessions/{id}"):
        return path.format(id=world.session_id)
    if path.startswith("/v1/alerts/{id}"):
        return path.format(id=world.alert_id)
    if path.startswith("/v1/reports/{id}"):
        return path.format(id=world.report_id)
    return path.format(id=world.target_key_id, name="events")


def _body(route: tuple[str, str], world: World) -> Any:
    if route == ("POST", "/v1/embed-sessions"):
        return {"tenant_id": "acme", "dashboard_id": world.dashboard_id}
    if route in (("POST", "/v1/alerts"), ("POST", "/v1/reports")):
        return {**BODIES[route], "dashboard_id": world.dashboard_id}
    return BODIES.get(route)


BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/v1/api-keys"): {"label": "matrix", "scope": "ingest"},
    ("POST", "/v1/members/invite"): {"email": "new@acme.test", "role": "viewer"},
    ("PATCH", "/v1/members/{id}"): {"role": "editor"},
    ("PATCH", "/v1/settings/org"): {"name": "Acme Renamed"},
    ("POST", "/v1/events"): {"events": [{"tenant_id": "t", "event_name": "x"}]},
    ("POST", "/v1/query/adhoc"): {"sql": "SELECT count() FROM events"},
    ("POST", "/v1/saved-queries"): {"name": "Count", "sql": "SELECT count() FROM events"},
    ("PATCH", "/v1/saved-queries/{id}"): {"starred": True},
    ("POST", "/v1/dashboards"): {"name": "New", "widgets": [_widget("calls")]},
    ("PATCH", "/v1/dashboards/{id}"): {"name": "Renamed"},
    ("POST", "/v1/dashboards/{id}/widgets"): _widget("more", x=6),
    ("PATCH", "/v1/dashboards/{id}/widgets/{widget_id}"): {"title": "Renamed"},
    ("POST", "/v1/widgets"): _widget("ignored"),
    ("PATCH", "/v1/widgets/{id}"): {"title": "Renamed"},
    ("PATCH", "/v1/environments/{id}"): {"allowed_origins": ["https://app.example.com"]},
    ("POST", "/v1/alerts"): {
        "widget_id": "calls",
        "name": "Too many calls",
        "condition_type": "threshold",
        "operator": "gt",
        "threshold_value": 1000,
    },
    ("PATCH", "/v1/alerts/{id}"): {"name": "Renamed"},
    ("POST", "/v1/reports"): {"name": "Daily", "schedule": "0 8 * * *"},
    ("PATCH", "/v1/reports/{id}"): {"name": "Renamed"},
    ("POST", "/v1/widgets/preview/data"): {"widget": _widget("preview")},
    ("POST", "/v1/auth/register"): {
        "email": "fresh@acme.test",
        "password": PASSWORD,
        "name": "Fresh",
        "org_name": "Fresh Inc",
    },
    ("POST", "/v1/auth/login"): {"email": "owner@acme.test", "password": PASSWORD},
    ("POST", "/v1/auth/accept-invite"): {
        "token": INVITE_TOKEN,
        "password": PASSWORD,
        "name": "Invitee",
    },
}


def _denial_code(route: tuple[str, str], principal: str, status: int) -> str:
    if status == 401:
        return "unauthenticated"
    if route in SESSION_ONLY and principal.endswith("_key") and principal != "ingest_key":
        return "not_a_session"
    if principal == "ingest_key" or route in KEY_ONLY:
        return "insufficient_scope"
    owner_only = MATRIX[route][PRINCIPALS.index("admin")] == 403
    return "owner_required" if owner_only else "insufficient_role"


async def _audit_actions(org_id: str, after_id: int = 0) -> list[str]:
    rows = await AuditLog.filter(org_id=org_id, id__gt=after_id).order_by("id")
    return [row.action for row in rows]


def _route_id(route: tuple[str, str]) -> str:
    return f"{route[0]} {route[1]}"


def _expected(principal: str) -> dict[str, tuple[int, str | None, list[str] | str]]:
    """Per route: status, error code, and effect (audit actions written, or the org deleted)."""
    expected: dict[str, tuple[int, str | None, list[str] | str]] = {}
    for route, row in MATRIX.items():
        status = row[PRINCIPALS.index(principal)]
        if status >= 400:
            # A refused request changes nothing, its audit row included.
            expected[_route_id(route)] = (status, _denial_code(route, principal, status), [])
        elif route == ("DELETE", "/v1/settings/org"):
            expected[_route_id(route)] = (status, None, "org deleted")
        else:
            action = AUDIT_ACTION.get(route)
            expected[_route_id(route)] = (status, None, [action] if action else [])
    return expected


@pytest.mark.parametrize("principal", PRINCIPALS)
async def test_every_route_answers_the_principal_as_the_matrix_says(
    make_client: ClientFactory, runtime: Runtime, principal: str, billing_on: PaddleStandIn
) -> None:
    # One fresh org per route (several routes destroy state), all in one test: the per-test
    # database truncation would otherwise cost more than the requests themselves.
    observed: dict[str, tuple[int, str | None, list[str] | str]] = {}
    for n, route in enumerate(MATRIX):
        world = await seed_world(f"-{n}")
        if route in NEEDS_EVENTS:
            await _one_event(runtime, world)
        seeded = await _mint_session(world) if route in NEEDS_SESSION else 0
        client = await make_client()
        method, path = route
        response = await client.request(
            method, _url(path, world), json=_body(route, world), headers=world.headers[principal]
        )
        code = None
        if response.status >= 400:
            body = await response.json()
            assert set(body) == {"error", "code"}, (route, body)
            code = body["code"]
        effect: list[str] | str = "org deleted"
        if await Org.filter(id=world.org_id).exists():
            effect = await _audit_actions(world.org_id, after_id=seeded)
        observed[_route_id(route)] = (response.status, code, effect)
    assert observed == _expected(principal)


def test_matrix_covers_every_route_and_has_an_allowed_and_a_denied_case() -> None:
    routes = {(route.method, route.path) for route in ROUTES}
    assert set(MATRIX).isdisjoint(PUBLIC)
    assert routes == set(MATRIX) | set(PUBLIC), "a route is missing from MATRIX/PUBLIC"
    for route in ROUTES:
        key = (route.method, route.path)
        assert (key in PUBLIC) == (route.auth == "public"), key
        if key in MATRIX:
            statuses = MATRIX[key]
            assert statuses[0] == 401, f"{key}: anonymous is the denied case of every route"
            assert any(s < 300 for s in statuses), f"{key} has no allowed case"
            assert route.status in statuses, key
        else:
            assert PUBLIC[key] == route.status, key


ROLE_RANK = {"viewer": 1, "editor": 2, "admin": 3, "owner": 4}
# The role each principal acts with (an admin key acts as admin; an ingest key has none).
ACTS_AS = {"viewer": 1, "editor": 2, "admin": 3, "owner": 4, "admin_key": 3, "ingest_key": 0}


def test_route_declarations_predict_every_refusal_in_the_matrix() -> None:
    """The ``@route`` declarations (auth, and the least role of the service a console route
    names) are what the request path enforces; this holds them to the independent expectation
    above. The role is the service's own ``@requires`` declaration, which the GraphQL edge meets
    too (the next test checks each handler calls the service its route names)."""
    for route in ROUTES:
        key = (route.method, route.path)
        if key not in MATRIX:
            continue
        for principal, status in zip(PRINCIPALS, MATRIX[key], strict=True):
            if principal == "anonymous":
                allowed = False
            elif route.auth == "any":
                allowed = key not in KEY_ONLY or principal.endswith("_key")
            else:
                assert route.auth == "console" and route.role is not None, key
                allowed = ACTS_AS[principal] >= ROLE_RANK[route.role]
                if key in SESSION_ONLY and principal.endswith("_key"):
                    allowed = False
            expected = route.status if allowed else (401 if principal == "anonymous" else 403)
            assert status == expected, (key, principal, route.auth, route.role)


def _services_called(handler: Callable[..., Any]) -> list[Any]:
    """The objects the handler's body calls as ``module.function(...)``, resolved in its module."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(handler)))
    (definition,) = tree.body
    assert isinstance(definition, ast.AsyncFunctionDef)
    called = []
    for statement in definition.body:
        for node in ast.walk(statement):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id in handler.__globals__
            ):
                owner = handler.__globals__[node.func.value.id]
                called.append(getattr(owner, node.func.attr, None))
    return called


def test_each_console_route_takes_its_role_from_the_service_its_handler_calls() -> None:
    """A console route's role is its service's ``@requires`` declaration (services/access.py),
    and that service is the one with a role its handler calls: no route keeps a role of its own,
    and none names a service it does not call."""
    for route in ROUTES:
        key = (route.method, route.path)
        if route.auth != "console":
            assert route.service is None and route.role is None, key
            continue
        assert route.service is not None, key
        assert route.role == route.service.required_role, key
        gated = [fn for fn in _services_called(route.handler) if hasattr(fn, "required_role")]
        assert gated == [route.service], (key, gated)


def test_the_call_walker_resolves_module_functions() -> None:
    """The check above can fail: the walker sees the handler's service call, resolved."""
    from emban.rest_compat.billing_routes import list_plans
    from emban.rest_compat.routes import create_api_key
    from emban.services import api_keys, billing

    called = _services_called(create_api_key)
    assert api_keys.create_api_key in called and api_keys.list_api_keys not in called
    assert billing.list_plans in _services_called(list_plans)


async def test_the_role_is_enforced_before_the_body_is_read(make_client: ClientFactory) -> None:
    """The route's role (its service's) is checked first: a viewer's malformed or oversized body
    is a 403 like a valid one, not a 400 or 413."""
    world = await seed_world()
    client = await make_client()
    viewer = {**world.headers["viewer"], "Content-Type": "application/json"}
    big = b'{"label": "' + b"x" * (1024 * 1024 + 1024) + b'", "scope": "ingest"}'
    for data in (b'{"label": ', big):
        response = await client.post("/v1/api-keys", data=data, headers=viewer)
        assert response.status == 403
        assert await response.json() == {
            "error": "this action requires the admin role",
            "code": "insufficient_role",
        }
    assert await ApiKey.filter(org_id=world.org_id).count() == 3


@pytest.mark.parametrize("route", list(PUBLIC), ids=[_route_id(r) for r in PUBLIC])
async def test_public_routes_answer_without_credentials(
    make_client: ClientFactory, route: tuple[str, str]
) -> None:
    world = await seed_world()
    if route in NEEDS_DEMO:
        await Org.filter(id=world.org_id).update(is_demo=True)
        await Dashboard.filter(id=world.dashboard_id).update(is_demo=True)
    client = await make_client()
    method, path = route
    response = await client.request(method, path, json=_body(route, world))
    assert response.status == PUBLIC[route], await response.text()


# --- credentials --------------------------------------------------------------------------------


async def test_unknown_bearer_key_is_401_even_with_a_valid_cookie(
    make_client: ClientFactory,
) -> None:
    world = await seed_world()
    client = await make_client()
    response = await client.get(
        "/v1/members",
        headers={**world.headers["owner"], "Authorization": "Bearer emb_not-a-real-key"},
    )
    assert response.status == 401
    assert await response.json() == {
        "error": "API key is invalid or revoked",
        "code": "invalid_api_key",
    }


@pytest.mark.parametrize(
    "header", ["Basic b3duZXI6cGFzcw==", "Bearer", "Bearer    ", "emb_abcdefgh", "Token emb_x"]
)
async def test_malformed_authorization_header_is_401(
    make_client: ClientFactory, header: str
) -> None:
    world = await seed_world()
    client = await make_client()
    response = await client.get(
        "/v1/auth/me", headers={**world.headers["owner"], "Authorization": header}
    )
    assert response.status == 401
    assert await response.json() == {
        "error": "Authorization must be 'Bearer <key>'",
        "code": "invalid_auth_header",
    }


# --- the spec's error table ---------------------------------------------------------------------


async def test_unknown_route_is_a_json_404(make_client: ClientFactory) -> None:
    client = await make_client()
    for path in ("/v1/nope", "/v1/api-keys/key_x/extra", "/nowhere"):
        response = await client.get(path)
        assert response.status == 404, path
        assert response.content_type == "application/json"
        assert await response.json() == {"error": "no such route", "code": "route_not_found"}


async def test_wrong_method_is_a_json_405_listing_the_allowed_methods(
    make_client: ClientFactory,
) -> None:
    client = await make_client()
    response = await client.put("/v1/api-keys", json={})
    assert response.status == 405
    assert response.content_type == "application/json"
    assert await response.json() == {
        "error": "PUT is not allowed on this route",
        "code": "method_not_allowed",
    }
    assert sorted(response.headers["Allow"].split(",")) == ["GET", "POST"]
    on_public = await client.get("/v1/auth/login")
    assert on_public.status == 405
    assert await on_public.json() == {
        "error": "GET is not allowed on this route",
        "code": "method_not_allowed",
    }


async def test_malformed_json_is_400_invalid_json(make_client: ClientFactory) -> None:
    client = await make_client()
    response = await client.post(
        "/v1/auth/login",
        data=b'{"email": "a@acme.test",',
        headers={"Content-Type": "application/json"},
    )
    assert response.status == 400
    body = await response.json()
    assert body["code"] == "invalid_json"
    assert body["error"].startswith("malformed JSON: ")
    assert set(body) == {"error", "code"}
    empty = await client.post("/v1/auth/login", data=b"")
    assert empty.status == 400
    assert await empty.json() == {
        "error": "request body must be a JSON object",
        "code": "invalid_json",
    }


async def test_wrong_type_is_400_naming_the_field(make_client: ClientFactory) -> None:
    client = await make_client()
    response = await client.post(
        "/v1/auth/register",
        json={"email": 5, "password": PASSWORD, "name": "A", "org_name": "Acme"},
    )
    assert response.status == 400
    assert await response.json() == {
        "error": "email: Expected `str`, got `int`",
        "code": "invalid_field",
        "field": "email",
    }
    not_an_object = await client.post("/v1/auth/login", json=["a@acme.test", PASSWORD])
    assert not_an_object.status == 400
    assert await not_an_object.json() == {
        "error": "Expected `object`, got `array`",
        "code": "invalid_body",
    }


async def test_missing_field_is_400_naming_it(make_client: ClientFactory) -> None:
    client = await make_client()
    response = await client.post("/v1/auth/login", json={"email": "a@acme.test"})
    assert response.status == 400
    assert await response.json() == {
        "error": "password: Object missing required field `password`",
        "code": "invalid_field",
        "field": "password",
    }
    world = await seed_world()
    scope_missing = await client.post(
        "/v1/api-keys", json={"label": "x"}, headers=world.headers["owner"]
    )
    assert scope_missing.status == 400
    assert (await scope_missing.json())["field"] == "scope"


async def test_body_over_one_mib_is_a_json_413(make_client: ClientFactory) -> None:
    world = await seed_world()
    client = await make_client()
    big = b'{"label": "' + b"x" * (1024 * 1024 + 100 * 1024) + b'", "scope": "ingest"}'
    expected = {"error": "request body is larger than 1048576 bytes", "code": "payload_too_large"}
    for path, headers in (
        ("/v1/auth/register", {}),
        ("/v1/api-keys", world.headers["owner"]),
    ):
        response = await client.post(
            path, data=big, headers={**headers, "Content-Type": "application/json"}
        )
        assert response.status == 413, path
        assert response.content_type == "application/json"
        assert await response.json() == expected

    async def chunks() -> Any:
        # No Content-Length: the limit is enforced while reading.
        for _ in range(11):
            yield b"x" * (100 * 1024)

    chunked = await client.post("/v1/api-keys", data=chunks(), headers={**world.headers["owner"]})
    assert chunked.status == 413
    assert await chunked.json() == expected
    assert await ApiKey.filter(org_id=world.org_id).count() == 3


async def test_a_body_sent_in_delayed_chunks_is_read_whole(make_client: ClientFactory) -> None:
    world = await seed_world()
    client = await make_client()

    async def chunks() -> Any:
        yield b'{"label": "streamed",'
        await asyncio.sleep(0.05)
        yield b' "scope": "ingest"}'

    response = await client.post("/v1/api-keys", data=chunks(), headers=world.headers["owner"])
    assert response.status == 201, await response.text()
    assert (await response.json())["label"] == "streamed"


async def test_failed_requests_leave_no_audit_row(make_client: ClientFactory) -> None:
    world = await seed_world()
    client = await make_client()
    owner = world.headers["owner"]
    for label in ("two", "three"):
        created = await client.post(
            "/v1/api-keys", json={"label": label, "scope": "ingest"}, headers=owner
        )
        assert created.status == 201
    before = await _audit_actions(world.org_id)
    assert before == ["api_key.create", "api_key.create"]

    over_limit = await client.post(
        "/v1/api-keys", json={"label": "six", "scope": "ingest"}, headers=owner
    )
    assert over_limit.status == 402
    duplicate = await client.post(
        "/v1/members/invite", json={"email": "invitee@acme.test", "role": "viewer"}, headers=owner
    )
    assert duplicate.status == 409
    last_owner = await client.patch(
        f"/v1/members/{await _owner_member_id(world)}", json={"role": "admin"}, headers=owner
    )
    assert last_owner.status == 409
    assert await _audit_actions(world.org_id) == before
    assert await ApiKey.filter(org_id=world.org_id).count() == 5


async def _owner_member_id(world: World) -> str:
    membership = await Membership.get(org_id=world.org_id, role="owner")
    return membership.id

"""Signed embed sessions over HTTP: POST/GET /v1/embed-sessions, GET /v1/demo/embed-url, the
token's claims and signature, expired and tampered tokens, and embed tokens on console routes.

What a token may read (each permission allowed and denied, tenant and org isolation) is in
test_embed_enforcement.py.
"""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from emban.analytics.shaping import iso_bucket
from emban.auth.embed_permissions import EmbedPermissions, decode_permissions
from emban.auth.embed_tokens import mint_embed_token, verify_embed_token
from emban.auth.rate_limit import MemoryRequestBudgets
from emban.errors import BadRequest, Unauthenticated
from emban.models import AuditLog, Dashboard, Environment, Org
from emban.rest_compat.routes import ROUTES
from emban.runtime import Runtime
from tests.conftest import Client, ClientFactory, bearer, create_key, join_as
from tests.embed_scenario import (
    NO_PERMISSIONS,
    TOTAL,
    EmbedOrg,
    claims_of,
    embed_org,
    mint,
    set_plan,
)
from tests.gql_client import error_of

ADVANCED = {
    "allow_drill_down": True,
    "allowed_dimensions": ["model"],
    "allowed_periods": ["7d", "30d"],
    "max_date_range_days": 30,
}
EMBED_DASHBOARD = "{ embed { dashboard { id name widgets { id kind title viz layout text } } } }"


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


async def refused(client: Client, token: str) -> dict[str, Any]:
    """The REST answer to an embed token on a console route."""
    response = await client.get("/v1/auth/me", headers=bearer(token))
    body: dict[str, Any] = await response.json()
    return {"status": response.status, **body}


# --- POST /v1/embed-sessions ------------------------------------------------------------------


async def test_create_returns_token_url_and_expiry_with_the_documented_claims(
    make_client: ClientFactory,
) -> None:
    acme = await embed_org(make_client)
    before = int(time.time())
    response = await acme.client.post(
        "/v1/embed-sessions", json={"tenant_id": "acme", "dashboard_id": acme.dashboard_id}
    )
    after = int(time.time())
    assert response.status == 201, await response.text()
    body = await response.json()
    assert set(body) == {"token", "embed_url", "expires_at"}
    token = body["token"]
    assert body["embed_url"] == f"https://emban.test/embed/{acme.dashboard_id}?token={token}"
    claims = claims_of(token)
    assert before <= claims["iat"] <= after
    assert claims == {
        "iss": "emban",
        "org": acme.org_id,
        "env": acme.environment_id,
        "tenant": "acme",
        "dashboard": acme.dashboard_id,
        "permissions": NO_PERMISSIONS,
        "iat": claims["iat"],
        "exp": claims["iat"] + 3600,
        "jti": claims["jti"],
    }
    assert claims["jti"].startswith("es_")
    assert body["expires_at"] == iso_bucket(datetime.fromtimestamp(claims["exp"], UTC))
    assert jwt.get_unverified_header(token) == {
        "alg": "HS256",
        "typ": "JWT",
        "kid": acme.environment_id,
    }
    secret = (await Environment.get(id=acme.environment_id)).embed_secret
    assert jwt.decode(token, secret, algorithms=["HS256"], issuer="emban") == claims


async def test_create_is_audited_with_the_session_facts(make_client: ClientFactory) -> None:
    acme = await embed_org(make_client)
    permissions = {"locked_filters": {"plan": "pro"}, "hidden_widgets": ["notes"]}
    token = await mint(
        acme.client, acme.dashboard_id, "acme", expires_in=600, permissions=permissions
    )
    claims = claims_of(token)
    row = await AuditLog.get(org_id=acme.org_id, action="embed_session.create")
    assert (row.actor_type, row.actor_label, row.resource_type, row.resource_id) == (
        "session",
        "owner@acme.test",
        "embed_session",
        claims["jti"],
    )
    granted = {**NO_PERMISSIONS, **permissions}
    assert row.metadata == {
        "tenant_id": "acme",
        "dashboard_id": acme.dashboard_id,
        "jti": claims["jti"],
        "environment_id": acme.environment_id,
        "issued_at": iso_bucket(datetime.fromtimestamp(claims["iat"], UTC)),
        "expires_at": iso_bucket(datetime.fromtimestamp(claims["exp"], UTC)),
        "scope": "dashboard:read",
        "permissions": granted,
    }
    assert claims["permissions"] == granted
    assert claims["exp"] - claims["iat"] == 600


@pytest.mark.parametrize(
    ("body", "field", "error"),
    [
        ({"tenant_id": ""}, "tenant_id", "tenant_id must be a string of 1 to 200 characters"),
        (
            {"tenant_id": "t" * 201},
            "tenant_id",
            "tenant_id must be a string of 1 to 200 characters",
        ),
        (
            {"expires_in": 59},
            "expires_in",
            "expires_in must be a whole number of seconds from 60 to 86400",
        ),
        (
            {"expires_in": 86_401},
            "expires_in",
            "expires_in must be a whole number of seconds from 60 to 86400",
        ),
        (
            {"permissions": {"can_export": True}},
            "permissions.can_export",
            "permissions.can_export is not a permission (use allow_drill_down, locked_filters, "
            "hidden_widgets, allowed_dimensions, allowed_periods, max_date_range_days)",
        ),
        (
            {"permissions": {"hidden_widgets": ["notes", "internal_notes"]}},
            "permissions.hidden_widgets",
            "permissions.hidden_widgets: no widget 'internal_notes' in this dashboard",
        ),
        (
            {"permissions": {"allowed_periods": ["7d", "2d"]}},
            "permissions.allowed_periods",
            "permissions.allowed_periods: '2d' is not one of 1h, 24h, 7d, 30d, 90d",
        ),
        (
            {"permissions": {"max_date_range_days": 0}},
            "permissions.max_date_range_days",
            "permissions.max_date_range_days must be a whole number from 1 to 3650",
        ),
        (
            {"permissions": {"max_date_range_days": 3651}},
            "permissions.max_date_range_days",
            "permissions.max_date_range_days must be a whole number from 1 to 3650",
        ),
        (
            {"permissions": {"allowed_periods": ["7d", "30d"], "max_date_range_days": 7}},
            "permissions.allowed_periods",
            "permissions.allowed_periods: 30d is longer than max_date_range_days",
        ),
        (
            {"permissions": {"locked_filters": {"plan": 1}}},
            "permissions.locked_filters.plan",
            "permissions.locked_filters.plan must be a string of at most 200 characters",
        ),
        (
            {"permissions": {"locked_filters": {"bad key": "x"}}},
            "permissions.locked_filters.bad key",
            "permissions.locked_filters.bad key must be a property key of letters, digits and "
            "_ . : - / (max 64)",
        ),
        (
            {"permissions": {"allow_drill_down": "yes"}},
            "permissions.allow_drill_down",
            "permissions.allow_drill_down must be true or false",
        ),
        (
            {"permissions": {"allowed_dimensions": "model"}},
            "permissions.allowed_dimensions",
            "permissions.allowed_dimensions must be a list of at most 50 strings",
        ),
    ],
)
async def test_invalid_sessions_are_400_naming_the_field(
    make_client: ClientFactory, body: dict[str, Any], field: str, error: str
) -> None:
    acme = await embed_org(make_client)
    await set_plan(acme.org_id, "starter")  # so advanced permissions are not what fails
    response = await acme.client.post(
        "/v1/embed-sessions",
        json={"tenant_id": "acme", "dashboard_id": acme.dashboard_id, **body},
    )
    assert response.status == 400
    assert await response.json() == {"error": error, "code": "invalid_field", "field": field}
    assert not await AuditLog.exists(action="embed_session.create")


async def test_malformed_bodies_are_400(make_client: ClientFactory) -> None:
    acme = await embed_org(make_client)
    for body, field in (
        ({"dashboard_id": acme.dashboard_id}, "tenant_id"),
        ({"tenant_id": "acme"}, "dashboard_id"),
        (
            {"tenant_id": "acme", "dashboard_id": acme.dashboard_id, "expires_in": "1h"},
            "expires_in",
        ),
        (
            {"tenant_id": "acme", "dashboard_id": acme.dashboard_id, "expires_in": 60.5},
            "expires_in",
        ),
        (
            {"tenant_id": "acme", "dashboard_id": acme.dashboard_id, "permissions": []},
            "permissions",
        ),
    ):
        response = await acme.client.post("/v1/embed-sessions", json=body)
        assert response.status == 400, body
        assert (await response.json())["field"] == field


async def test_ttl_bounds_are_inclusive(make_client: ClientFactory) -> None:
    acme = await embed_org(make_client)
    for ttl in (60, 86_400):
        claims = claims_of(await mint(acme.client, acme.dashboard_id, expires_in=ttl))
        assert claims["exp"] - claims["iat"] == ttl


async def test_unknown_or_foreign_dashboard_is_404(make_client: ClientFactory) -> None:
    acme = await embed_org(make_client)
    globex = await embed_org(make_client, email="owner@globex.test", org_name="Globex")
    for dashboard_id in ("dash_missing", globex.dashboard_id, "x" * 300):
        response = await acme.client.post(
            "/v1/embed-sessions", json={"tenant_id": "acme", "dashboard_id": dashboard_id}
        )
        assert response.status == 404
        assert await response.json() == {
            "error": "dashboard not found",
            "code": "dashboard_not_found",
        }


async def test_an_unpublished_dashboard_can_get_a_session(make_client: ClientFactory) -> None:
    """Minting before publishing is allowed: the embed says "not published" until it is."""
    acme = await embed_org(make_client, publish=False)
    token = await mint(acme.client, acme.dashboard_id)
    error = await error_of(acme.client, EMBED_DASHBOARD, headers=bearer(token))
    assert error["extensions"] == {"code": "NOT_FOUND", "reason": "dashboard_not_published"}


async def test_only_admins_and_admin_keys_create_sessions(make_client: ClientFactory) -> None:
    acme = await embed_org(make_client)
    body = {"tenant_id": "acme", "dashboard_id": acme.dashboard_id}
    anonymous = await make_client()
    response = await anonymous.post("/v1/embed-sessions", json=body)
    assert response.status == 401
    assert (await response.json())["code"] == "unauthenticated"
    for role in ("viewer", "editor"):
        member, _ = await join_as(acme.client, make_client, role)
        response = await member.post("/v1/embed-sessions", json=body)
        assert response.status == 403
        assert await response.json() == {
            "error": "this action requires the admin role",
            "code": "insufficient_role",
        }
    ingest = await create_key(acme.client, "ingest")
    response = await anonymous.post("/v1/embed-sessions", json=body, headers=bearer(ingest))
    assert response.status == 403
    assert (await response.json())["code"] == "insufficient_scope"
    admin, _ = await join_as(acme.client, make_client, "admin")
    assert (await admin.post("/v1/embed-sessions", json=body)).status == 201
    admin_key = await create_key(acme.client, "admin")
    response = await anonymous.post("/v1/embed-sessions", json=body, headers=bearer(admin_key))
    assert response.status == 201
    # A key's session reads the key's environment.
    claims = claims_of((await response.json())["token"])
    assert claims["env"] == acme.environment_id


async def test_a_development_key_mints_for_the_development_environment(
    make_client: ClientFactory,
) -> None:
    acme = await embed_org(make_client)
    created = await acme.client.post(
        "/v1/api-keys", json={"label": "dev", "scope": "admin", "environment": "development"}
    )
    key = (await created.json())["key"]
    development = await Environment.get(org_id=acme.org_id, name="development")
    response = await acme.client.post(
        "/v1/embed-sessions",
        json={"tenant_id": "acme", "dashboard_id": acme.dashboard_id},
        headers=bearer(key),
    )
    token = (await response.json())["token"]
    assert claims_of(token)["env"] == development.id
    assert jwt.get_unverified_header(token)["kid"] == development.id


@pytest.mark.parametrize("permission", list(ADVANCED))
async def test_advanced_permissions_need_a_paid_plan(
    make_client: ClientFactory, permission: str
) -> None:
    acme = await embed_org(make_client)
    body = {
        "tenant_id": "acme",
        "dashboard_id": acme.dashboard_id,
        "permissions": {permission: ADVANCED[permission]},
    }
    response = await acme.client.post("/v1/embed-sessions", json=body)
    assert response.status == 402
    assert await response.json() == {
        "error": "advanced embed permissions are not included in this plan",
        "code": "advanced_embed_permissions",
        "plan": "free",
        "upgrade_to": "starter",
        "limit": None,
        "used": None,
    }
    assert not await AuditLog.exists(action="embed_session.create")
    await set_plan(acme.org_id, "starter")
    response = await acme.client.post("/v1/embed-sessions", json=body)
    assert response.status == 201
    claims = claims_of((await response.json())["token"])
    assert claims["permissions"] == {**NO_PERMISSIONS, permission: ADVANCED[permission]}


async def test_basic_permissions_and_empty_advanced_ones_are_free(
    make_client: ClientFactory,
) -> None:
    acme = await embed_org(make_client)
    permissions = {
        "allow_drill_down": False,
        "locked_filters": {"plan": "pro"},
        "hidden_widgets": ["notes", "notes"],
        "allowed_dimensions": [],
        "allowed_periods": [],
        "max_date_range_days": None,
    }
    token = await mint(acme.client, acme.dashboard_id, permissions=permissions)
    assert claims_of(token)["permissions"] == {**permissions, "hidden_widgets": ["notes"]}


# --- GET /v1/embed-sessions -------------------------------------------------------------------


async def test_list_shows_active_sessions_newest_first_with_ttl(
    make_client: ClientFactory,
) -> None:
    acme = await embed_org(make_client)
    globex = await embed_org(make_client, email="owner@globex.test", org_name="Globex")
    await mint(globex.client, globex.dashboard_id, "globex")
    first = claims_of(await mint(acme.client, acme.dashboard_id, "acme", expires_in=60))
    second = claims_of(await mint(acme.client, acme.dashboard_id, "beta", expires_in=7200))
    response = await acme.client.get("/v1/embed-sessions")
    assert response.status == 200
    sessions = (await response.json())["sessions"]
    now = time.time()
    for item, claims in zip(sessions, (second, first), strict=True):
        assert -2 < claims["exp"] - now - item["ttl_seconds"] <= 0  # whole seconds, rounded up
    owner = {"type": "session", "id": sessions[0]["actor"]["id"], "label": "owner@acme.test"}
    assert owner["id"].startswith("usr_")
    assert sessions == [
        {
            "id": claims["jti"],
            "tenant_id": claims["tenant"],
            "resource": f"dashboard:{acme.dashboard_id}",
            "scope": "dashboard:read",
            "actor": owner,
            "issued_at": iso_bucket(datetime.fromtimestamp(claims["iat"], UTC)),
            "expires_at": iso_bucket(datetime.fromtimestamp(claims["exp"], UTC)),
            "ttl_seconds": item["ttl_seconds"],
        }
        for claims, item in zip((second, first), sessions, strict=True)
    ]
    assert 7190 <= sessions[0]["ttl_seconds"] <= 7200
    assert 50 <= sessions[1]["ttl_seconds"] <= 60

    # Time passes for the first one: its expiry is now in the past (as its audit row says).
    row = await AuditLog.get(resource_id=first["jti"])
    row.metadata = {**row.metadata, "expires_at": iso_bucket(datetime.now(UTC))}
    await row.save(update_fields=["metadata"])
    listed = (await (await acme.client.get("/v1/embed-sessions")).json())["sessions"]
    assert [s["id"] for s in listed] == [second["jti"]]


async def test_list_reads_only_the_last_day_of_the_log(make_client: ClientFactory) -> None:
    acme = await embed_org(make_client)
    token = await mint(acme.client, acme.dashboard_id, expires_in=86_400)
    row = await AuditLog.get(resource_id=claims_of(token)["jti"])
    # A row older than the longest session cannot be active, whatever its metadata says.
    await AuditLog.filter(id=row.id).update(
        created_at=datetime.now(UTC) - timedelta(days=1, seconds=5)
    )
    assert (await (await acme.client.get("/v1/embed-sessions")).json()) == {"sessions": []}


async def test_list_needs_an_admin(make_client: ClientFactory) -> None:
    acme = await embed_org(make_client)
    anonymous = await make_client()
    assert (await anonymous.get("/v1/embed-sessions")).status == 401
    editor, _ = await join_as(acme.client, make_client, "editor")
    response = await editor.get("/v1/embed-sessions")
    assert response.status == 403
    assert (await response.json())["code"] == "insufficient_role"


# --- GET /v1/demo/embed-url -------------------------------------------------------------------


async def seed_demo(make_client: ClientFactory, *, publish: bool = True) -> EmbedOrg:
    demo = await embed_org(
        make_client, email="demo@emban.test", org_name="Demo Workspace", publish=publish
    )
    await Org.filter(id=demo.org_id).update(is_demo=True)
    await Dashboard.filter(id=demo.dashboard_id).update(is_demo=True)
    return demo


async def test_demo_url_is_404_until_a_demo_is_seeded(make_client: ClientFactory) -> None:
    client = await make_client()
    expected = {
        "error": "no demo dashboard is seeded (run `emban demo`)",
        "code": "demo_not_seeded",
    }
    response = await client.get("/v1/demo/embed-url")
    assert (response.status, await response.json()) == (404, expected)
    # An org that is not the demo, and a demo dashboard that is not published, do not count.
    other = await embed_org(make_client)
    await Dashboard.filter(id=other.dashboard_id).update(is_demo=True)
    response = await client.get("/v1/demo/embed-url")
    assert (response.status, await response.json()) == (404, expected)
    await seed_demo(make_client, publish=False)
    response = await client.get("/v1/demo/embed-url")
    assert (response.status, await response.json()) == (404, expected)


async def test_demo_url_is_public_and_signs_a_one_hour_session(
    make_client: ClientFactory,
) -> None:
    demo = await seed_demo(make_client)
    client = await make_client()
    response = await client.get("/v1/demo/embed-url")
    assert response.status == 200, await response.text()
    body = await response.json()
    token = body["token"]
    claims = claims_of(token)
    assert body == {
        "token": token,
        "embed_url": f"https://emban.test/embed/{demo.dashboard_id}?token={token}",
        "expires_at": iso_bucket(datetime.fromtimestamp(claims["exp"], UTC)),
        "dashboard_id": demo.dashboard_id,
        "tenant_id": "demo_workspace",
    }
    assert (claims["tenant"], claims["env"], claims["permissions"]) == (
        "demo_workspace",
        demo.environment_id,
        NO_PERMISSIONS,
    )
    assert claims["exp"] - claims["iat"] == 3600
    row = await AuditLog.get(resource_id=claims["jti"])
    assert (row.org_id, row.actor_type, row.actor_label, row.action) == (
        demo.org_id,
        "operator",
        "cli",
        "embed_session.create",
    )
    data = await client.post("/graphql", json={"query": EMBED_DASHBOARD}, headers=bearer(token))
    dashboard = (await data.json())["data"]["embed"]["dashboard"]
    assert (dashboard["id"], [w["id"] for w in dashboard["widgets"]]) == (
        demo.dashboard_id,
        ["total", "notes"],
    )

    other = await client.get("/v1/demo/embed-url", params={"tenant_id": "northwind"})
    assert (await other.json())["tenant_id"] == "northwind"
    assert claims_of((await other.json())["token"])["tenant"] == "northwind"
    empty = await client.get("/v1/demo/embed-url?tenant_id=")
    assert empty.status == 400
    assert (await empty.json())["field"] == "tenant_id"


async def test_demo_url_is_rate_limited_per_ip(make_client: ClientFactory) -> None:
    await seed_demo(make_client)
    client = await make_client()
    for _ in range(30):
        assert (await client.get("/v1/demo/embed-url")).status == 200
    response = await client.get("/v1/demo/embed-url")
    assert response.status == 429
    assert 0 < int(response.headers["Retry-After"]) <= 61
    assert (await response.json())["code"] == "rate_limited"
    assert await AuditLog.filter(action="embed_session.create").count() == 30


# --- the token: expiry, tampering, where it is accepted ---------------------------------------


async def test_expired_token_is_401_embed_token_expired(make_client: ClientFactory) -> None:
    acme = await embed_org(make_client)
    token = await mint(acme.client, acme.dashboard_id, expires_in=60)
    exp = claims_of(token)["exp"]
    principal = await verify_embed_token(token, now=exp - 1)
    assert principal.embed is not None and principal.embed.tenant_id == "acme"
    with pytest.raises(Unauthenticated) as raised:
        await verify_embed_token(token, now=exp)
    assert raised.value.code == "embed_token_expired"

    # A token signed with the environment's secret an hour ago, for one minute.
    environment = await Environment.get(id=acme.environment_id)
    old = mint_embed_token(
        environment,
        tenant_id="acme",
        dashboard_id=acme.dashboard_id,
        permissions=NO_PERMISSIONS,
        expires_in=60,
        now=int(time.time()) - 3600,
    ).token
    assert await refused(acme.client, old) == {
        "status": 401,
        "error": "embed token has expired",
        "code": "embed_token_expired",
    }
    error = await error_of(acme.client, EMBED_DASHBOARD, headers=bearer(old))
    assert error["extensions"] == {"code": "UNAUTHENTICATED", "reason": "embed_token_expired"}


async def test_tampered_tokens_are_401_embed_token_invalid(make_client: ClientFactory) -> None:
    acme = await embed_org(make_client)
    globex = await embed_org(make_client, email="owner@globex.test", org_name="Globex")
    token = await mint(acme.client, acme.dashboard_id)
    header, payload, signature = token.split(".")
    claims = claims_of(token)
    jwt_header = jwt.get_unverified_header(token)
    acme_env = await Environment.get(id=acme.environment_id)
    globex_env = await Environment.get(id=globex.environment_id)
    acme_dev = await Environment.get(org_id=acme.org_id, name="development")

    def signed(secret: str, kid: str, **changes: Any) -> str:
        return jwt.encode({**claims, **changes}, secret, algorithm="HS256", headers={"kid": kid})

    flipped = "B" if signature[0] == "A" else "A"  # the first character: 6 significant bits

    def resigned(**changes: Any) -> str:
        """The claims changed, the original signature kept."""
        return f"{header}.{_b64({**claims, **changes})}.{signature}"

    tampered = {
        "another tenant, same signature": resigned(tenant="globex"),
        "longer expiry, same signature": resigned(exp=claims["exp"] + 900_000),
        "signature changed": f"{header}.{payload}.{flipped}{signature[1:]}",
        "no signature": f"{header}.{payload}.",
        "alg none": f"{_b64({'alg': 'none', 'kid': acme.environment_id})}.{payload}.",
        "unknown kid": signed(acme_env.embed_secret, "env_unknown"),
        "no kid": jwt.encode(claims, acme_env.embed_secret, algorithm="HS256"),
        "kid of another environment": signed(acme_env.embed_secret, acme_dev.id),
        "another org's secret": signed(globex_env.embed_secret, acme.environment_id),
        "claims name another org": signed(acme_env.embed_secret, acme_env.id, org=globex.org_id),
        "claims name another env": signed(acme_env.embed_secret, acme_env.id, env=acme_dev.id),
        "another issuer": signed(acme_env.embed_secret, acme_env.id, iss="someone"),
        "permissions not an object": signed(acme_env.embed_secret, acme_env.id, permissions=[]),
        "exp not a number": signed(acme_env.embed_secret, acme_env.id, exp="tomorrow"),
        "no jti": jwt.encode(
            {k: v for k, v in claims.items() if k != "jti"},
            acme_env.embed_secret,
            algorithm="HS256",
            headers={"kid": acme_env.id},
        ),
        "not base64": "abc.def.ghi",
    }
    assert jwt_header["kid"] == acme.environment_id
    for case, bad in tampered.items():
        assert await refused(acme.client, bad) == {
            "status": 401,
            "error": "embed token is invalid",
            "code": "embed_token_invalid",
        }, case
        error = await error_of(acme.client, EMBED_DASHBOARD, headers=bearer(bad))
        assert error["extensions"] == {
            "code": "UNAUTHENTICATED",
            "reason": "embed_token_invalid",
        }, case
    # The untouched token still verifies.
    assert (await verify_embed_token(token)).embed is not None


async def test_rotating_the_environment_secret_revokes_its_tokens(
    make_client: ClientFactory,
) -> None:
    acme = await embed_org(make_client)
    token = await mint(acme.client, acme.dashboard_id)
    await Environment.filter(id=acme.environment_id).update(embed_secret="rotated" * 8)
    assert (await refused(acme.client, token))["code"] == "embed_token_invalid"


def _path(path: str) -> str:
    return path.format(id="x", widget_id="x", name="events")


# Bodies that pass each route's shape check, so what answers is the permission check.
_BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/v1/api-keys"): {"label": "k", "scope": "ingest"},
    ("POST", "/v1/members/invite"): {"email": "new@acme.test", "role": "viewer"},
    ("PATCH", "/v1/members/{id}"): {"role": "editor"},
    ("PATCH", "/v1/settings/org"): {},
    ("POST", "/v1/events"): {"events": [{"tenant_id": "acme", "event_name": "x"}]},
    ("POST", "/v1/query/adhoc"): {"sql": "SELECT 1"},
    ("POST", "/v1/saved-queries"): {"name": "n", "sql": "SELECT 1"},
    ("PATCH", "/v1/saved-queries/{id}"): {},
    ("POST", "/v1/dashboards"): {"name": "n"},
    ("PATCH", "/v1/dashboards/{id}"): {},
    ("POST", "/v1/dashboards/{id}/widgets"): TOTAL,
    ("PATCH", "/v1/dashboards/{id}/widgets/{widget_id}"): {},
    ("PATCH", "/v1/environments/{id}"): {"allowed_origins": ["*"]},
    ("POST", "/v1/widgets"): TOTAL,
    ("PATCH", "/v1/widgets/{id}"): {},
    ("POST", "/v1/widgets/preview/data"): {"widget": TOTAL},
    ("POST", "/v1/embed-sessions"): {"tenant_id": "acme", "dashboard_id": "x"},
}


async def test_every_console_route_refuses_an_embed_token(
    make_client: ClientFactory, runtime: Runtime
) -> None:
    acme = await embed_org(make_client)
    token = await mint(acme.client, acme.dashboard_id)
    client = await make_client()  # no cookie: the token is the only credential
    answers: dict[str, int] = {}
    for route in ROUTES:
        if route.auth == "public":
            continue
        key = (route.method, route.path)
        url = _path(route.path)
        if route.path == "/v1/query":
            url += "?event_name=x&tenant_id=acme&metric=count&period=7d"
        # More routes than one session's burst: each request starts with a full budget, so
        # the answer is the route's refusal, not the rate limit.
        runtime.budgets = MemoryRequestBudgets()
        response = await client.request(
            route.method, url, json=_BODIES.get(key), headers=bearer(token)
        )
        answers[f"{route.method} {route.path}"] = response.status
    assert answers == {name: 403 for name in answers}
    assert len(answers) == len([r for r in ROUTES if r.auth != "public"])


async def test_graphql_console_fields_refuse_an_embed_token(make_client: ClientFactory) -> None:
    acme = await embed_org(make_client)
    token = await mint(acme.client, acme.dashboard_id)
    client = await make_client()
    for query in (
        "{ me { role } }",
        "{ members { id } }",
        "{ dashboards { id } }",
        "{ embedSessions { id } }",
        "{ auditEntries: audit { id } }",
        "{ environments { id } }",
        "{ alerts { id } }",
        "{ reports { id } }",
        "{ webhooks { signingSecret } }",
        "{ billing { plan } }",
        "{ checkoutConfig { orgId } }",
        "{ billingPortal { url } }",
        'mutation { runReport(id: "1") }',
    ):
        error = await error_of(client, query, headers=bearer(token))
        assert error["extensions"]["code"] == "FORBIDDEN", query


async def test_permissions_are_decoded_once_into_the_principal(make_client: ClientFactory) -> None:
    """The verified principal carries the typed permissions; a signed claim the type refuses
    makes the token invalid (we only sign what the type accepted)."""
    acme = await embed_org(make_client)
    await set_plan(acme.org_id, "pro")
    token = await mint(
        acme.client,
        acme.dashboard_id,
        permissions={
            "allow_drill_down": True,
            "locked_filters": {"plan": "pro"},
            "allowed_periods": ["24h", "7d", "24h"],
            "max_date_range_days": 30,
            "hidden_widgets": None,
        },
    )
    principal = await verify_embed_token(token)
    assert principal.embed is not None
    assert principal.embed.permissions == EmbedPermissions(
        allow_drill_down=True,
        locked_filters={"plan": "pro"},
        allowed_periods=("24h", "7d"),
        max_date_range_days=30,
    )
    assert principal.embed.permissions.claims() == claims_of(token)["permissions"]
    environment = await Environment.get(id=acme.environment_id)
    for bad in ({"allowed_periods": ["2d"]}, {"max_date_range_days": 0}, {"can_export": True}):
        crafted = mint_embed_token(
            environment,
            tenant_id="acme",
            dashboard_id=acme.dashboard_id,
            permissions={**NO_PERMISSIONS, **bad},
            expires_in=600,
        ).token
        with pytest.raises(Unauthenticated) as raised:
            await verify_embed_token(crafted)
        assert raised.value.code == "embed_token_invalid", bad


@pytest.mark.parametrize(
    ("permissions", "field", "error"),
    [
        (
            {"hidden_widgets": ["notes", 5]},
            "permissions.hidden_widgets",
            "permissions.hidden_widgets must be a string of at most 200 characters",
        ),
        (
            {"allowed_dimensions": [f"d{n}" for n in range(51)]},
            "permissions.allowed_dimensions",
            "permissions.allowed_dimensions must be a list of at most 50 strings",
        ),
        (
            {"locked_filters": {f"k{n}": "v" for n in range(51)}},
            "permissions.locked_filters",
            "permissions.locked_filters: at most 50 filters",
        ),
        (
            {"locked_filters": {"plan": "p" * 201}},
            "permissions.locked_filters.plan",
            "permissions.locked_filters.plan must be a string of at most 200 characters",
        ),
        (
            {"allowed_dimensions": ["model", "a b"]},
            "permissions.allowed_dimensions",
            "permissions.allowed_dimensions must be a property key of letters, digits and "
            "_ . : - / (max 64)",
        ),
    ],
)
def test_the_permissions_type_names_the_field(
    permissions: dict[str, Any], field: str, error: str
) -> None:
    with pytest.raises(BadRequest) as raised:
        decode_permissions(permissions)
    assert (raised.value.message, raised.value.extra) == (error, {"field": field})

"""The GraphQL edge through ``POST /graphql``: auth, every query and mutation, error mapping,
transactions and the query limits."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from graphql import GraphQLError
from strawberry.extensions import MaskErrors
from strawberry.types import ExecutionContext, ExecutionResult

from emban.errors import Conflict
from emban.models import ApiKey, AuditLog, Invite, Membership, Org, User, UserSession
from emban.resolvers.schema import (
    MAX_ALIASES,
    MAX_DEPTH,
    DomainErrorExtensions,
    is_unexpected,
    schema,
)
from tests.conftest import PASSWORD, Client, ClientFactory, bearer, create_key, join_as
from tests.gql_client import data_of, error_of, gql

REGISTER = """
mutation Register($email: String!, $password: String!, $name: String!, $orgName: String!) {
  register(email: $email, password: $password, name: $name, orgName: $orgName) {
    user { id email name }
    org { id name email plan }
    environments { id name }
    apiKey { key apiKey { id label scope prefix environment lastUsedAt } }
  }
}
"""

LOGIN = """
mutation Login($email: String!, $password: String!) {
  login(email: $email, password: $password) { user { id email name } org { id name } role }
}
"""

ME = "{ me { user { id email } org { id name plan } role scope environment { name } } }"

CREATE_KEY = """
mutation CreateKey($label: String!, $scope: String!, $environment: String) {
  createApiKey(label: $label, scope: $scope, environment: $environment) {
    key apiKey { id label scope prefix environment lastUsedAt }
  }
}
"""

INVITE = """
mutation Invite($email: String!, $role: String!) {
  inviteMember(email: $email, role: $role) { token inviteUrl invite { id email role } }
}
"""

ACCEPT = """
mutation Accept($token: String!, $password: String!, $name: String!) {
  acceptInvite(token: $token, password: $password, name: $name) {
    user { email name } org { id name } role
  }
}
"""

AUDIT_ACTIONS = "{ audit { action actorType resourceType metadata } }"


async def gql_register(
    client: Client, email: str = "owner@acme.test", org_name: str = "Acme"
) -> dict[str, Any]:
    data = await data_of(
        client,
        REGISTER,
        {"email": email, "password": PASSWORD, "name": "Olive Owner", "orgName": org_name},
    )
    registration: dict[str, Any] = data["register"]
    return registration


async def audit_count() -> int:
    return await AuditLog.all().count()


# --- register, login, logout, me -------------------------------------------------------------


async def test_register_sets_session_cookie_and_returns_everything(
    make_client: ClientFactory,
) -> None:
    client = await make_client()
    response = await client.post(
        "/graphql",
        json={
            "query": REGISTER,
            "variables": {
                "email": " Owner@Acme.TEST ",
                "password": PASSWORD,
                "name": "Olive Owner",
                "orgName": "Acme",
            },
        },
    )
    assert response.status == 200
    cookie = response.cookies["emban_session"]
    assert len(cookie.value) == 43
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert cookie["path"] == "/"
    assert cookie["max-age"] == str(14 * 24 * 3600)
    reg = (await response.json())["data"]["register"]
    assert reg["user"]["email"] == "owner@acme.test"
    assert reg["user"]["name"] == "Olive Owner"
    assert reg["user"]["id"].startswith("usr_")
    assert reg["org"]["name"] == "Acme"
    assert reg["org"]["email"] == "owner@acme.test"
    assert reg["org"]["plan"] == "free"
    assert [e["name"] for e in reg["environments"]] == ["production", "development"]
    key = reg["apiKey"]
    assert key["key"].startswith("emb_")
    assert key["apiKey"]["prefix"] == key["key"][:12]
    assert key["apiKey"]["label"] == "Default admin key"
    assert key["apiKey"]["scope"] == "admin"
    assert key["apiKey"]["environment"] == "production"
    assert key["apiKey"]["lastUsedAt"] is None
    # The stored session is the cookie's digest; the cookie itself authenticates `me`.
    assert await UserSession.filter(user_id=reg["user"]["id"]).count() == 1
    me = (await data_of(client, ME))["me"]
    assert me == {
        "user": {"id": reg["user"]["id"], "email": "owner@acme.test"},
        "org": {"id": reg["org"]["id"], "name": "Acme", "plan": "free"},
        "role": "owner",
        "scope": "session",
        "environment": {"name": "production"},
    }


async def test_register_duplicate_email_is_conflict(make_client: ClientFactory) -> None:
    client = await make_client()
    await gql_register(client)
    error = await error_of(
        client,
        REGISTER,
        {"email": "owner@acme.test", "password": PASSWORD, "name": "X", "orgName": "Other"},
    )
    assert error["message"] == "this email is already registered"
    assert error["extensions"] == {"code": "CONFLICT", "reason": "email_registered"}
    assert error["path"] == ["register"]
    assert await Org.all().count() == 1


async def test_login_sets_cookie_and_bad_password_is_unauthenticated(
    make_client: ClientFactory,
) -> None:
    owner = await make_client()
    reg = await gql_register(owner)
    browser = await make_client()
    response = await browser.post(
        "/graphql",
        json={"query": LOGIN, "variables": {"email": "OWNER@acme.test", "password": PASSWORD}},
    )
    assert response.status == 200
    assert response.cookies["emban_session"]["httponly"] is True
    login = (await response.json())["data"]["login"]
    assert login == {
        "user": {"id": reg["user"]["id"], "email": "owner@acme.test", "name": "Olive Owner"},
        "org": {"id": reg["org"]["id"], "name": "Acme"},
        "role": "owner",
    }
    assert (await data_of(browser, ME))["me"]["role"] == "owner"

    stranger = await make_client()
    for email, password in (("owner@acme.test", "wrong-password"), ("nobody@acme.test", PASSWORD)):
        error = await error_of(stranger, LOGIN, {"email": email, "password": password})
        assert error["message"] == "invalid email or password"
        assert error["extensions"] == {"code": "UNAUTHENTICATED", "reason": "invalid_credentials"}
    assert "emban_session" not in {c.key for c in stranger.cookie_jar}


async def test_login_rate_limit_is_rate_limited_with_retry_after(
    make_client: ClientFactory,
) -> None:
    client = await make_client()
    await gql_register(client)
    # The session's settings allow 5 attempts per email per window.
    for _ in range(5):
        error = await error_of(client, LOGIN, {"email": "owner@acme.test", "password": "nope-nope"})
        assert error["extensions"]["reason"] == "invalid_credentials"
    error = await error_of(client, LOGIN, {"email": "owner@acme.test", "password": PASSWORD})
    assert error["message"] == "too many login attempts; try again later"
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert error["extensions"]["reason"] == "rate_limited"
    assert 0 < error["extensions"]["retry_after"] <= 901


async def test_logout_ends_the_server_side_session(make_client: ClientFactory) -> None:
    client = await make_client()
    await gql_register(client)
    token = next(c.value for c in client.cookie_jar if c.key == "emban_session")
    response = await client.post("/graphql", json={"query": "mutation { logout }"})
    assert (await response.json()) == {"data": {"logout": True}}
    assert response.cookies["emban_session"].value == ""
    assert await UserSession.all().count() == 0
    # The browser dropped the cookie ...
    error = await error_of(client, ME)
    assert error["extensions"] == {"code": "UNAUTHENTICATED", "reason": "unauthenticated"}
    # ... and replaying the old cookie value fails too: the row is gone.
    replay = await make_client()
    error = await error_of(replay, ME, headers={"Cookie": f"emban_session={token}"})
    assert error["message"] == "session is invalid or has ended"
    assert error["extensions"] == {"code": "UNAUTHENTICATED", "reason": "invalid_session"}
    actions = [a.action for a in await AuditLog.all().order_by("id")]
    assert actions == ["org.create", "api_key.create", "session.logout"]


async def test_logout_with_an_api_key_is_forbidden(make_client: ClientFactory) -> None:
    client = await make_client()
    reg = await gql_register(client)
    anonymous = await make_client()
    error = await error_of(anonymous, "mutation { logout }", headers=bearer(reg["apiKey"]["key"]))
    assert error["message"] == "logout needs a console session, not an API key"
    assert error["extensions"] == {"code": "FORBIDDEN", "reason": "not_a_session"}


# --- queries -------------------------------------------------------------------------------------


async def test_org_members_invites_api_keys_audit_and_plans(make_client: ClientFactory) -> None:
    owner = await make_client()
    reg = await gql_register(owner)
    await data_of(owner, INVITE, {"email": "pat@acme.test", "role": "editor"})
    await data_of(owner, CREATE_KEY, {"label": "Ingest", "scope": "ingest"})

    data = await data_of(
        owner,
        """{
          org { id name email plan }
          members { userId email name role }
          invites { email role }
          apiKeys { label scope environment prefix }
          audit { action actorType actorId actorLabel resourceType metadata }
        }""",
    )
    assert data["org"] == {
        "id": reg["org"]["id"],
        "name": "Acme",
        "email": "owner@acme.test",
        "plan": "free",
    }
    assert data["members"] == [
        {
            "userId": reg["user"]["id"],
            "email": "owner@acme.test",
            "name": "Olive Owner",
            "role": "owner",
        }
    ]
    assert data["invites"] == [{"email": "pat@acme.test", "role": "editor"}]
    assert [(k["label"], k["scope"], k["environment"]) for k in data["apiKeys"]] == [
        ("Default admin key", "admin", "production"),
        ("Ingest", "ingest", "production"),
    ]
    assert data["apiKeys"][0]["prefix"] == reg["apiKey"]["key"][:12]
    assert data["audit"] == [
        {
            "action": "api_key.create",
            "actorType": "session",
            "actorId": reg["user"]["id"],
            "actorLabel": "owner@acme.test",
            "resourceType": "api_key",
            "metadata": {"label": "Ingest", "scope": "ingest", "environment": "production"},
        },
        {
            "action": "invite.create",
            "actorType": "session",
            "actorId": reg["user"]["id"],
            "actorLabel": "owner@acme.test",
            "resourceType": "invite",
            "metadata": {"email": "pat@acme.test", "role": "editor"},
        },
        {
            "action": "api_key.create",
            "actorType": "session",
            "actorId": reg["user"]["id"],
            "actorLabel": "owner@acme.test",
            "resourceType": "api_key",
            "metadata": {"label": "Default admin key", "scope": "admin"},
        },
        {
            "action": "org.create",
            "actorType": "session",
            "actorId": reg["user"]["id"],
            "actorLabel": "owner@acme.test",
            "resourceType": "org",
            "metadata": {"name": "Acme"},
        },
    ]


async def test_plans_are_public(make_client: ClientFactory) -> None:
    anonymous = await make_client()
    data = await data_of(
        anonymous,
        "{ plans { name title limits { publishedDashboards apiKeys eventsPerMonth }"
        " features { advancedEmbedPermissions } } }",
    )
    assert data["plans"] == [
        {
            "name": "free",
            "title": "Free",
            "limits": {"publishedDashboards": 1, "apiKeys": 5, "eventsPerMonth": 100_000},
            "features": {"advancedEmbedPermissions": False},
        },
        {
            "name": "starter",
            "title": "Starter",
            "limits": {"publishedDashboards": 5, "apiKeys": 20, "eventsPerMonth": 1_000_000},
            "features": {"advancedEmbedPermissions": True},
        },
        {
            "name": "pro",
            "title": "Pro",
            "limits": {"publishedDashboards": 50, "apiKeys": 100, "eventsPerMonth": 20_000_000},
            "features": {"advancedEmbedPermissions": True},
        },
        {
            "name": "enterprise",
            "title": "Enterprise",
            "limits": {"publishedDashboards": None, "apiKeys": None, "eventsPerMonth": None},
            "features": {"advancedEmbedPermissions": True},
        },
    ]


async def test_plans_match_the_rest_edge(make_client: ClientFactory) -> None:
    anonymous = await make_client()
    rest = (await (await anonymous.get("/v1/billing/plans")).json())["plans"]
    data = await data_of(
        anonymous,
        "{ plans { name title limits { publishedDashboards apiKeys eventsPerMonth }"
        " features { advancedEmbedPermissions } } }",
    )
    assert [
        {
            "name": p["name"],
            "title": p["title"],
            "limits": {
                "published_dashboards": p["limits"]["publishedDashboards"],
                "api_keys": p["limits"]["apiKeys"],
                "events_per_month": p["limits"]["eventsPerMonth"],
            },
            "features": {"advanced_embed_permissions": p["features"]["advancedEmbedPermissions"]},
        }
        for p in data["plans"]
    ] == rest


# --- bearer API keys -----------------------------------------------------------------------------


async def test_bearer_admin_key_is_a_principal(make_client: ClientFactory) -> None:
    owner = await make_client()
    reg = await gql_register(owner)
    key = reg["apiKey"]["key"]
    backend = await make_client()  # no cookies: the key alone authenticates
    me = (await data_of(backend, ME, headers=bearer(key)))["me"]
    assert me == {
        "user": None,
        "org": {"id": reg["org"]["id"], "name": "Acme", "plan": "free"},
        "role": "admin",
        "scope": "admin",
        "environment": {"name": "production"},
    }
    keys = (await data_of(backend, "{ apiKeys { label lastUsedAt } }", headers=bearer(key)))[
        "apiKeys"
    ]
    assert [k["label"] for k in keys] == ["Default admin key"]
    assert keys[0]["lastUsedAt"] is not None
    created = (
        await data_of(
            backend, CREATE_KEY, {"label": "From key", "scope": "ingest"}, headers=bearer(key)
        )
    )["createApiKey"]
    assert created["apiKey"]["scope"] == "ingest"
    row = await AuditLog.filter(action="api_key.create").order_by("-id").first()
    assert row is not None
    assert row.actor_type == "api_key"
    assert row.actor_id == reg["apiKey"]["apiKey"]["id"]
    assert row.actor_label == key[:12]


async def test_bearer_wins_over_the_cookie(make_client: ClientFactory) -> None:
    owner = await make_client()
    await gql_register(owner)
    ingest = await create_key(owner, "ingest")
    me = (await data_of(owner, ME, headers=bearer(ingest)))["me"]
    assert (me["scope"], me["role"], me["user"]) == ("ingest", None, None)


async def test_bad_bearer_is_unauthenticated_from_the_resolver(
    make_client: ClientFactory,
) -> None:
    owner = await make_client()
    await gql_register(owner)
    backend = await make_client()
    error = await error_of(backend, ME, headers=bearer("emb_not-a-real-key"))
    assert error["message"] == "API key is invalid or revoked"
    assert error["extensions"] == {"code": "UNAUTHENTICATED", "reason": "invalid_api_key"}
    assert error["path"] == ["me"]
    error = await error_of(backend, ME, headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert error["message"] == "Authorization must be 'Bearer <key>'"
    assert error["extensions"] == {"code": "UNAUTHENTICATED", "reason": "invalid_auth_header"}
    # A bad bearer even beats a valid cookie, and public fields still answer.
    body = await gql(owner, "{ plans { name } me { role } }", headers=bearer("emb_nope"))
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["reason"] == "invalid_api_key"
    public = await data_of(backend, "{ plans { name } }", headers=bearer("emb_nope"))
    assert [p["name"] for p in public["plans"]] == ["free", "starter", "pro", "enterprise"]


# --- mutations -----------------------------------------------------------------------------------


async def test_create_and_delete_api_key(make_client: ClientFactory) -> None:
    owner = await make_client()
    await gql_register(owner)
    created = (
        await data_of(
            owner,
            CREATE_KEY,
            {"label": "  Dev ingest ", "scope": "ingest", "environment": "development"},
        )
    )["createApiKey"]
    assert created["apiKey"]["label"] == "Dev ingest"
    assert created["apiKey"]["scope"] == "ingest"
    assert created["apiKey"]["environment"] == "development"
    assert created["apiKey"]["prefix"] == created["key"][:12]
    assert created["apiKey"]["lastUsedAt"] is None
    backend = await make_client()
    me = (await data_of(backend, ME, headers=bearer(created["key"])))["me"]
    assert me["environment"] == {"name": "development"}

    deleted = await data_of(
        owner, "mutation D($id: ID!) { deleteApiKey(id: $id) }", {"id": created["apiKey"]["id"]}
    )
    assert deleted == {"deleteApiKey": True}
    assert not await ApiKey.exists(id=created["apiKey"]["id"])
    error = await error_of(backend, ME, headers=bearer(created["key"]))
    assert error["extensions"]["reason"] == "invalid_api_key"
    rows = await AuditLog.filter(action="api_key.delete").values_list("metadata", flat=True)
    assert rows == [{"label": "Dev ingest"}]


async def test_invite_accept_change_role_and_remove_member(make_client: ClientFactory) -> None:
    owner = await make_client()
    reg = await gql_register(owner)
    invited = (await data_of(owner, INVITE, {"email": "Pat@Acme.test", "role": "editor"}))[
        "inviteMember"
    ]
    assert invited["invite"]["email"] == "pat@acme.test"
    assert invited["invite"]["role"] == "editor"
    assert invited["inviteUrl"] == f"https://emban.test/accept-invite?token={invited['token']}"

    member = await make_client()
    response = await member.post(
        "/graphql",
        json={
            "query": ACCEPT,
            "variables": {"token": invited["token"], "password": PASSWORD, "name": "Pat"},
        },
    )
    assert response.status == 200
    assert response.cookies["emban_session"]["httponly"] is True
    accepted = (await response.json())["data"]["acceptInvite"]
    assert accepted == {
        "user": {"email": "pat@acme.test", "name": "Pat"},
        "org": {"id": reg["org"]["id"], "name": "Acme"},
        "role": "editor",
    }
    assert (await data_of(member, ME))["me"]["role"] == "editor"
    assert (await data_of(owner, "{ invites { email } }"))["invites"] == []
    error = await error_of(
        member, ACCEPT, {"token": invited["token"], "password": PASSWORD, "name": "Pat"}
    )
    assert error["extensions"] == {"code": "CONFLICT", "reason": "invite_used"}
    error = await error_of(member, ACCEPT, {"token": "nope", "password": PASSWORD, "name": "Pat"})
    assert error["extensions"] == {"code": "NOT_FOUND", "reason": "invite_not_found"}

    members = (await data_of(owner, "{ members { id email role } }"))["members"]
    assert [(m["email"], m["role"]) for m in members] == [
        ("owner@acme.test", "owner"),
        ("pat@acme.test", "editor"),
    ]
    pat_id = members[1]["id"]
    changed = (
        await data_of(
            owner,
            "mutation C($id: ID!, $role: String!) { changeMemberRole(id: $id, role: $role)"
            " { id email role } }",
            {"id": pat_id, "role": "admin"},
        )
    )["changeMemberRole"]
    assert changed == {"id": pat_id, "email": "pat@acme.test", "role": "admin"}
    assert (await data_of(member, ME))["me"]["role"] == "admin"

    removed = await data_of(owner, "mutation R($id: ID!) { removeMember(id: $id) }", {"id": pat_id})
    assert removed == {"removeMember": True}
    assert not await User.exists(email="pat@acme.test")
    error = await error_of(member, ME)
    assert error["extensions"] == {"code": "UNAUTHENTICATED", "reason": "invalid_session"}
    actions = [a["action"] for a in (await data_of(owner, AUDIT_ACTIONS))["audit"]]
    assert actions == [
        "member.remove",
        "member.update_role",
        "invite.accept",
        "invite.create",
        "api_key.create",
        "org.create",
    ]


async def test_owner_cannot_demote_or_remove_the_last_owner(make_client: ClientFactory) -> None:
    owner = await make_client()
    await gql_register(owner)
    own_id = (await data_of(owner, "{ members { id } }"))["members"][0]["id"]
    error = await error_of(
        owner,
        'mutation C($id: ID!) { changeMemberRole(id: $id, role: "admin") { role } }',
        {"id": own_id},
    )
    assert error["message"] == "the last owner cannot be demoted"
    assert error["extensions"] == {"code": "CONFLICT", "reason": "last_owner"}
    error = await error_of(owner, "mutation R($id: ID!) { removeMember(id: $id) }", {"id": own_id})
    assert error["extensions"] == {"code": "CONFLICT", "reason": "last_owner"}
    assert (await data_of(owner, ME))["me"]["role"] == "owner"


async def test_update_org(make_client: ClientFactory) -> None:
    owner = await make_client()
    reg = await gql_register(owner)
    updated = (
        await data_of(
            owner,
            'mutation { updateOrg(name: " Acme Corp ", email: "Billing@Acme.test")'
            " { id name email plan } }",
        )
    )["updateOrg"]
    assert updated == {
        "id": reg["org"]["id"],
        "name": "Acme Corp",
        "email": "billing@acme.test",
        "plan": "free",
    }
    assert (await data_of(owner, "{ org { name } }"))["org"] == {"name": "Acme Corp"}
    # Nothing to change: no audit row.
    await data_of(owner, "mutation { updateOrg { name } }")
    rows = await AuditLog.filter(action="org.update").values_list("metadata", flat=True)
    assert rows == [{"name": "Acme Corp", "email": "billing@acme.test"}]
    error = await error_of(owner, 'mutation { updateOrg(email: "not-an-email") { name } }')
    assert error["message"] == "email is not a valid email address"
    assert error["extensions"] == {
        "code": "BAD_REQUEST",
        "reason": "invalid_field",
        "field": "email",
    }


async def test_delete_org_is_owner_only_and_removes_everything(
    make_client: ClientFactory,
) -> None:
    owner = await make_client()
    reg = await gql_register(owner)
    admin, _ = await join_as(owner, make_client, "admin")
    error = await error_of(admin, "mutation { deleteOrg }")
    assert error["message"] == "this action requires the owner role"
    assert error["extensions"] == {"code": "FORBIDDEN", "reason": "owner_required"}
    assert await Org.exists(id=reg["org"]["id"])

    response = await owner.post("/graphql", json={"query": "mutation { deleteOrg }"})
    assert (await response.json()) == {"data": {"deleteOrg": True}}
    assert response.cookies["emban_session"].value == ""
    assert not await Org.exists(id=reg["org"]["id"])
    assert await User.all().count() == 0
    assert await Membership.all().count() == 0
    assert await ApiKey.all().count() == 0
    assert await AuditLog.all().count() == 0
    anonymous = await make_client()
    error = await error_of(anonymous, LOGIN, {"email": "owner@acme.test", "password": PASSWORD})
    assert error["extensions"]["reason"] == "invalid_credentials"
    error = await error_of(anonymous, ME, headers=bearer(reg["apiKey"]["key"]))
    assert error["extensions"]["reason"] == "invalid_api_key"


# --- error mapping -------------------------------------------------------------------------------


async def test_no_auth_is_unauthenticated_on_every_protected_field(
    make_client: ClientFactory,
) -> None:
    anonymous = await make_client()
    for field in (
        "me { role }",
        "org { id }",
        "members { id }",
        "invites { id }",
        "apiKeys { id }",
        "audit { id }",
    ):
        error = await error_of(anonymous, f"{{ {field} }}")
        assert error["message"] == "authentication required"
        assert error["extensions"] == {"code": "UNAUTHENTICATED", "reason": "unauthenticated"}
    for mutation in (
        'createApiKey(label: "x", scope: "admin") { key }',
        'deleteApiKey(id: "key_x")',
        'inviteMember(email: "a@b.co", role: "viewer") { token }',
        'changeMemberRole(id: "mem_x", role: "viewer") { id }',
        'removeMember(id: "mem_x")',
        'updateOrg(name: "x") { id }',
        "deleteOrg",
        "logout",
    ):
        error = await error_of(anonymous, f"mutation {{ {mutation} }}")
        assert error["extensions"] == {"code": "UNAUTHENTICATED", "reason": "unauthenticated"}


async def test_viewer_creating_a_key_is_forbidden(make_client: ClientFactory) -> None:
    owner = await make_client()
    await gql_register(owner)
    viewer, _ = await join_as(owner, make_client, "viewer")
    before = await audit_count()
    error = await error_of(viewer, CREATE_KEY, {"label": "mine", "scope": "admin"})
    assert error["message"] == "this action requires the admin role"
    assert error["extensions"] == {"code": "FORBIDDEN", "reason": "insufficient_role"}
    assert error["path"] == ["createApiKey"]
    assert await audit_count() == before
    assert await ApiKey.all().count() == 1
    # Viewers still read what viewers may read.
    members = (await data_of(viewer, "{ members { role } }"))["members"]
    assert [m["role"] for m in members] == ["owner", "viewer"]


async def test_ingest_key_reading_members_is_forbidden(make_client: ClientFactory) -> None:
    owner = await make_client()
    await gql_register(owner)
    ingest = await create_key(owner, "ingest")
    backend = await make_client()
    error = await error_of(backend, "{ members { id } }", headers=bearer(ingest))
    assert error["message"] == "ingest keys can only send events"
    assert error["extensions"] == {"code": "FORBIDDEN", "reason": "insufficient_scope"}
    me = (await data_of(backend, "{ me { scope role } }", headers=bearer(ingest)))["me"]
    assert me == {"scope": "ingest", "role": None}


async def test_sixth_key_on_free_plan_is_plan_limit(make_client: ClientFactory) -> None:
    owner = await make_client()
    await gql_register(owner)
    for n in range(4):
        await data_of(owner, CREATE_KEY, {"label": f"k{n}", "scope": "ingest"})
    assert await ApiKey.all().count() == 5
    before = await audit_count()
    error = await error_of(owner, CREATE_KEY, {"label": "k5", "scope": "ingest"})
    assert error["message"] == "API key limit reached for this plan"
    assert error["extensions"] == {
        "code": "PLAN_LIMIT",
        "reason": "api_keys_limit",
        "plan": "free",
        "upgrade_to": "starter",
        "limit": 5,
        "used": 5,
    }
    assert await ApiKey.all().count() == 5
    assert await audit_count() == before


async def test_duplicate_invite_is_conflict(make_client: ClientFactory) -> None:
    owner = await make_client()
    await gql_register(owner)
    await data_of(owner, INVITE, {"email": "pat@acme.test", "role": "viewer"})
    before = await audit_count()
    error = await error_of(owner, INVITE, {"email": "PAT@acme.test", "role": "admin"})
    assert error["message"] == "an invite for this email is already pending"
    assert error["extensions"] == {"code": "CONFLICT", "reason": "invite_pending"}
    assert await Invite.all().count() == 1
    assert await audit_count() == before
    error = await error_of(owner, INVITE, {"email": "owner@acme.test", "role": "admin"})
    assert error["extensions"] == {"code": "CONFLICT", "reason": "already_member"}


async def test_delete_unknown_key_is_not_found(make_client: ClientFactory) -> None:
    owner = await make_client()
    await gql_register(owner)
    before = await audit_count()
    error = await error_of(owner, 'mutation { deleteApiKey(id: "key_doesnotexist") }')
    assert error["message"] == "API key not found"
    assert error["extensions"] == {"code": "NOT_FOUND", "reason": "api_key_not_found"}
    assert await audit_count() == before


async def test_other_orgs_key_is_not_found(make_client: ClientFactory) -> None:
    acme = await make_client()
    await gql_register(acme)
    globex = await make_client()
    other = await gql_register(globex, email="owner@globex.test", org_name="Globex")
    error = await error_of(
        acme,
        "mutation D($id: ID!) { deleteApiKey(id: $id) }",
        {"id": other["apiKey"]["apiKey"]["id"]},
    )
    assert error["extensions"] == {"code": "NOT_FOUND", "reason": "api_key_not_found"}
    assert await ApiKey.exists(id=other["apiKey"]["apiKey"]["id"])


async def test_bad_scope_is_bad_request_naming_the_field(make_client: ClientFactory) -> None:
    owner = await make_client()
    await gql_register(owner)
    before = await audit_count()
    error = await error_of(owner, CREATE_KEY, {"label": "x", "scope": "superuser"})
    assert error["message"] == "scope must be admin or ingest"
    assert error["extensions"] == {
        "code": "BAD_REQUEST",
        "reason": "invalid_field",
        "field": "scope",
    }
    error = await error_of(
        owner, CREATE_KEY, {"label": "x", "scope": "admin", "environment": "staging"}
    )
    assert error["message"] == "unknown environment 'staging'"
    assert error["extensions"] == {
        "code": "BAD_REQUEST",
        "reason": "invalid_field",
        "field": "environment",
    }
    assert await audit_count() == before


async def test_failed_mutation_writes_nothing(make_client: ClientFactory) -> None:
    """Each mutation field is one transaction: a field that succeeded keeps its writes, the field
    that failed leaves none, and (its result being non-null) the fields after it do not run."""
    owner = await make_client()
    await gql_register(owner)
    audit_before = await audit_count()
    body = await gql(
        owner,
        """mutation {
          ok: createApiKey(label: "kept", scope: "ingest") { apiKey { label } }
          bad: inviteMember(email: "owner@acme.test", role: "viewer") { token }
          later: inviteMember(email: "new@acme.test", role: "viewer") { invite { email } }
        }""",
    )
    assert body["data"] is None
    assert [e["path"] for e in body["errors"]] == [["bad"]]
    assert body["errors"][0]["extensions"] == {"code": "CONFLICT", "reason": "already_member"}
    assert await ApiKey.filter(label="kept").count() == 1
    assert await Invite.all().count() == 0
    assert await audit_count() == audit_before + 1
    actions = [a["action"] for a in (await data_of(owner, AUDIT_ACTIONS))["audit"]]
    assert actions == ["api_key.create", "api_key.create", "org.create"]


# --- limits, masking, GraphiQL -------------------------------------------------------------------


def _nested(depth: int) -> str:
    """A selection ``depth`` levels deep under ``me { org { ... } } }``.

    The schema has no recursive types (its deepest real path is 3 levels), so levels past the real
    ones name fields that do not exist; the depth rule runs with the other validation rules and
    reports on its own.
    """
    inner = "id"
    for level in range(depth - 2):
        inner = f"f{level} {{ {inner} }}"
    return f"{{ me {{ org {{ {inner} }} }} }}"


async def test_query_depth_limit(make_client: ClientFactory) -> None:
    client = await make_client()
    depth_error = f"'anonymous' exceeds maximum operation depth of {MAX_DEPTH}"
    body = await gql(client, _nested(MAX_DEPTH + 1))
    messages = [e["message"] for e in body["errors"]]
    assert depth_error in messages
    assert body["data"] is None
    body = await gql(client, _nested(MAX_DEPTH))
    assert depth_error not in [e["message"] for e in body["errors"]]
    # The deepest real selection is well within the limit.
    owner = await make_client()
    reg = await gql_register(owner)
    assert reg["apiKey"]["apiKey"]["label"] == "Default admin key"


async def test_alias_limit(make_client: ClientFactory) -> None:
    client = await make_client()
    allowed = " ".join(f"p{n}: plans {{ name }}" for n in range(MAX_ALIASES))
    data = await data_of(client, f"{{ {allowed} }}")
    assert len(data) == MAX_ALIASES
    assert data["p0"] == data[f"p{MAX_ALIASES - 1}"]
    over = " ".join(f"p{n}: plans {{ name }}" for n in range(MAX_ALIASES + 1))
    body = await gql(client, f"{{ {over} }}")
    assert body["data"] is None
    assert [e["message"] for e in body["errors"]] == [
        f"{MAX_ALIASES + 1} aliases found. Allowed: {MAX_ALIASES}"
    ]


async def test_syntax_and_validation_errors_reach_the_client(make_client: ClientFactory) -> None:
    client = await make_client()
    body = await gql(client, "{ plans { nope } }")
    assert body["data"] is None
    assert [e["message"] for e in body["errors"]] == [
        "Cannot query field 'nope' on type 'Plan'. Did you mean 'name'?"
    ]
    response = await client.post("/graphql", json={"query": "{ plans { "})
    assert response.status == 200
    body = await response.json()
    assert body["errors"][0]["message"] == "Syntax Error: Expected Name, found <EOF>."


def _answer_errors(errors: list[GraphQLError]) -> list[GraphQLError]:
    """What the schema does with a finished operation's errors, through its public hooks:
    ``process_errors`` (logging), then the operation hooks of the two error extensions."""
    result = ExecutionResult(data=None, errors=errors)
    context = ExecutionContext(query=None, schema=schema, allowed_operations=())
    context.result = result
    schema.process_errors(errors, context)
    for extension in (MaskErrors(should_mask_error=is_unexpected), DomainErrorExtensions()):
        extension.execution_context = context
        hook = extension.on_operation()
        next(hook)
        next(hook, None)
    assert result.errors is not None
    return result.errors


def test_unexpected_errors_are_masked(caplog: pytest.LogCaptureFixture) -> None:
    secret = ValueError("password hash for owner@acme.test is abc")
    raw = GraphQLError(
        "password hash for owner@acme.test is abc", path=["me"], original_error=secret
    )
    raw.extensions = {"leak": "yes"}
    domain = GraphQLError(
        "pending",
        path=["inviteMember"],
        original_error=Conflict(
            "an invite for this email is already pending", code="invite_pending"
        ),
    )
    validation = GraphQLError("Cannot query field 'x' on type 'Query'.")
    with caplog.at_level(logging.ERROR, logger="emban.graphql"):
        masked, mapped, kept = _answer_errors([raw, domain, validation])
    assert masked.message == "Unexpected error."
    assert masked.extensions == {}
    assert masked.original_error is None
    assert masked.path == ["me"]
    assert masked.formatted == {"message": "Unexpected error.", "path": ["me"]}
    assert mapped.formatted == {
        "message": "an invite for this email is already pending",
        "path": ["inviteMember"],
        "extensions": {"code": "CONFLICT", "reason": "invite_pending"},
    }
    # A request error keeps graphql-core's message and is marked the client's (issue 12).
    assert kept.formatted == {
        "message": "Cannot query field 'x' on type 'Query'.",
        "extensions": {"code": "BAD_REQUEST"},
    }
    assert [r.exc_info[1] for r in caplog.records if r.exc_info] == [secret]


async def test_graphiql_page(make_client: ClientFactory) -> None:
    client = await make_client()
    response = await client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status == 200
    assert response.content_type == "text/html"
    page = await response.text()
    # Issue 9: our own bundle, not Strawberry's CDN page (tests/test_browser_graphiql.py).
    assert "<title>Emban GraphiQL</title>" in page
    assert "graphiql" in page.lower()


async def test_nul_characters_are_answers_not_crashes(make_client: ClientFactory) -> None:
    """PostgreSQL cannot store or compare text holding NUL: such input is a 400/404/401 answer.

    (It used to reach the database and come back as a masked "Unexpected error.".)
    """
    client = await make_client()
    error = await error_of(
        client,
        REGISTER,
        {"email": "nul@acme.test", "password": PASSWORD, "name": "N", "orgName": "Ac\u0000me"},
    )
    assert error["message"] == "org_name must not contain control characters"
    assert error["extensions"] == {
        "code": "BAD_REQUEST",
        "reason": "invalid_field",
        "field": "org_name",
    }
    assert await User.all().count() == 0
    error = await error_of(
        client,
        REGISTER,
        {"email": "n\u0000ul@acme.test", "password": PASSWORD, "name": "N", "orgName": "Acme"},
    )
    assert error["extensions"]["field"] == "email"
    error = await error_of(client, LOGIN, {"email": "n\u0000ul@acme.test", "password": PASSWORD})
    assert error["extensions"] == {"code": "UNAUTHENTICATED", "reason": "invalid_credentials"}

    await gql_register(client, email="nul@acme.test")
    error = await error_of(client, CREATE_KEY, {"label": "x\u0000", "scope": "admin"})
    assert error["extensions"]["field"] == "label"
    error = await error_of(
        client, CREATE_KEY, {"label": "x", "scope": "admin", "environment": "prod\u0000"}
    )
    assert error["extensions"]["field"] == "environment"
    error = await error_of(
        client, "mutation D($id: ID!) { deleteApiKey(id: $id) }", {"id": "key_\u0000"}
    )
    assert error["extensions"] == {"code": "NOT_FOUND", "reason": "api_key_not_found"}
    error = await error_of(
        client, "mutation R($id: ID!) { removeMember(id: $id) }", {"id": "mem_\u0000"}
    )
    assert error["extensions"] == {"code": "NOT_FOUND", "reason": "member_not_found"}
    error = await error_of(client, INVITE, {"email": "a\u0000@acme.test", "role": "viewer"})
    assert error["extensions"]["field"] == "email"
    error = await error_of(client, ACCEPT, {"token": "t\u0000", "password": PASSWORD, "name": "x"})
    assert error["extensions"]["reason"] == "invite_not_found"

"""REST API keys, team, org settings, audit log and billing plans."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from emban.models import ApiKey, AuditLog, Invite, Membership, Org, User, UserSession
from emban.runtime import Runtime
from emban.services import billing
from tests.conftest import (
    PASSWORD,
    ClientFactory,
    bearer,
    create_key,
    jobs_done,
    join_as,
    register,
)

KEY_FIELDS = {"id", "label", "scope", "prefix", "environment", "created_at", "last_used_at"}
MEMBER_FIELDS = {"id", "user_id", "email", "name", "role", "created_at"}
IP = "127.0.0.1"


async def _json(response: aiohttp.ClientResponse, status: int) -> Any:
    assert response.status == status, await response.text()
    return await response.json()


async def _members(client: aiohttp.ClientSession) -> list[dict[str, Any]]:
    members: list[dict[str, Any]] = (await _json(await client.get("/v1/members"), 200))["members"]
    return members


async def _member_id(client: aiohttp.ClientSession, email: str) -> str:
    member_id: str = next(m["id"] for m in await _members(client) if m["email"] == email)
    return member_id


# --- API keys ----------------------------------------------------------------------------------


async def test_key_list_shows_prefixes_never_keys(make_client: ClientFactory) -> None:
    owner = await make_client()
    registered = await register(owner)
    default = registered["api_key"]
    created = await _json(
        await owner.post("/v1/api-keys", json={"label": "ci", "scope": "ingest"}), 201
    )

    response = await owner.get("/v1/api-keys")
    text = await response.text()
    listed = (await _json(response, 200))["api_keys"]
    assert [set(k) for k in listed] == [KEY_FIELDS, KEY_FIELDS]
    assert default["key"] not in text
    assert created["key"] not in text
    assert listed[0] == {
        "id": default["id"],
        "label": "Default admin key",
        "scope": "admin",
        "prefix": default["prefix"],
        "environment": "production",
        "created_at": listed[0]["created_at"],
        "last_used_at": None,
    }
    assert listed[1] == {k: v for k, v in created.items() if k != "key"}

    # Using a key records when it was last used; the list still never carries the key.
    assert (await owner.get("/v1/auth/me", headers=bearer(created["key"]))).status == 200
    relisted = (await _json(await owner.get("/v1/api-keys"), 200))["api_keys"]
    assert relisted[1]["last_used_at"] is not None
    assert relisted[0]["last_used_at"] is None


async def test_create_key_returns_the_key_once_bound_to_its_environment(
    make_client: ClientFactory,
) -> None:
    owner = await make_client()
    registered = await register(owner)
    production, development = registered["environments"]
    response = await owner.post(
        "/v1/api-keys",
        json={"label": "  Dev ingest ", "scope": "ingest", "environment": "development"},
    )
    body = await _json(response, 201)
    assert set(body) == KEY_FIELDS | {"key"}
    assert body["label"] == "Dev ingest"
    assert body["scope"] == "ingest"
    assert body["environment"] == "development"
    assert body["last_used_at"] is None
    assert body["key"].startswith("emb_")
    assert body["prefix"] == body["key"][:12]
    row = await ApiKey.get(id=body["id"])
    assert (row.org_id, row.environment_id, row.created_by) == (
        registered["org"]["id"],
        development["id"],
        registered["user"]["id"],
    )

    me = await _json(await owner.get("/v1/auth/me", headers=bearer(body["key"])), 200)
    assert (me["scope"], me["role"], me["environment"]) == ("ingest", None, development)

    # By environment id, and by default the caller's own environment (production for a session).
    by_id = await owner.post(
        "/v1/api-keys",
        json={"label": "by id", "scope": "admin", "environment": development["id"]},
    )
    assert (await _json(by_id, 201))["environment"] == "development"
    default = await owner.post("/v1/api-keys", json={"label": "default", "scope": "admin"})
    assert (await _json(default, 201))["environment"] == "production"
    assert production["name"] == "production"


async def test_create_key_validation(make_client: ClientFactory) -> None:
    owner = await make_client()
    registered = await register(owner)
    other = await make_client()
    other_org = await register(other, email="other@other.test", org_name="Other")
    cases: list[tuple[dict[str, Any], dict[str, Any]]] = [
        (
            {"label": "x", "scope": "superuser"},
            {"error": "scope must be admin or ingest", "code": "invalid_field", "field": "scope"},
        ),
        (
            {"label": "x", "scope": "ingest", "environment": "staging"},
            {
                "error": "unknown environment 'staging'",
                "code": "invalid_field",
                "field": "environment",
            },
        ),
        (
            # Another org's environment id is unknown here.
            {"label": "x", "scope": "ingest", "environment": other_org["environments"][0]["id"]},
            {
                "error": f"unknown environment {other_org['environments'][0]['id']!r}",
                "code": "invalid_field",
                "field": "environment",
            },
        ),
        (
            {"label": "  ", "scope": "ingest"},
            {"error": "label must not be empty", "code": "invalid_field", "field": "label"},
        ),
    ]
    for body, expected in cases:
        response = await owner.post("/v1/api-keys", json=body)
        assert await _json(response, 400) == expected, body
    assert await ApiKey.filter(org_id=registered["org"]["id"]).count() == 1


async def test_deleted_key_is_refused_at_once(make_client: ClientFactory) -> None:
    owner = await make_client()
    registered = await register(owner)
    key = await create_key(owner, "ingest", label="doomed")
    key_id = (await ApiKey.get(org_id=registered["org"]["id"], label="doomed")).id
    assert (await owner.get("/v1/auth/me", headers=bearer(key))).status == 200

    deleted = await owner.delete(f"/v1/api-keys/{key_id}")
    assert deleted.status == 204
    assert await deleted.read() == b""
    refused = await owner.get("/v1/auth/me", headers=bearer(key))
    assert await _json(refused, 401) == {
        "error": "API key is invalid or revoked",
        "code": "invalid_api_key",
    }
    again = await owner.delete(f"/v1/api-keys/{key_id}")
    assert await _json(again, 404) == {"error": "API key not found", "code": "api_key_not_found"}
    unknown = await owner.delete("/v1/api-keys/key_doesnotexist")
    assert await _json(unknown, 404) == {
        "error": "API key not found",
        "code": "api_key_not_found",
    }


async def test_another_orgs_key_is_not_found(make_client: ClientFactory) -> None:
    owner = await make_client()
    await register(owner)
    other = await make_client()
    other_org = await register(other, email="other@other.test", org_name="Other")
    response = await owner.delete(f"/v1/api-keys/{other_org['api_key']['id']}")
    assert response.status == 404
    assert await ApiKey.filter(id=other_org["api_key"]["id"]).exists()
    listed = (await _json(await owner.get("/v1/api-keys"), 200))["api_keys"]
    assert other_org["api_key"]["id"] not in [k["id"] for k in listed]


async def test_api_key_plan_limit_is_a_402_until_the_plan_changes(
    make_client: ClientFactory,
) -> None:
    owner = await make_client()
    registered = await register(owner)
    org_id = registered["org"]["id"]
    for n in range(2, 6):  # the default key is the first of five
        await create_key(owner, "ingest", label=f"key {n}")
    assert await ApiKey.filter(org_id=org_id).count() == 5
    audit_before = await AuditLog.filter(org_id=org_id).count()

    sixth = await owner.post("/v1/api-keys", json={"label": "key 6", "scope": "ingest"})
    assert await _json(sixth, 402) == {
        "error": "API key limit reached for this plan",
        "code": "api_keys_limit",
        "plan": "free",
        "upgrade_to": "starter",
        "limit": 5,
        "used": 5,
    }
    assert await ApiKey.filter(org_id=org_id).count() == 5
    assert await AuditLog.filter(org_id=org_id).count() == audit_before

    await billing.set_plan(org_id, "starter")
    assert await _json(
        await owner.post("/v1/api-keys", json={"label": "key 6", "scope": "ingest"}), 201
    )
    assert await ApiKey.filter(org_id=org_id).count() == 6
    settings = await _json(await owner.get("/v1/settings/org"), 200)
    assert settings["plan"] == "starter"
    plan_row = await AuditLog.get(org_id=org_id, action="org.set_plan")
    assert (plan_row.actor_type, plan_row.actor_label, plan_row.resource_id) == (
        "operator",
        "cli",
        org_id,
    )
    assert plan_row.metadata == {"from": "free", "to": "starter"}


# --- team --------------------------------------------------------------------------------------


async def test_members_list(make_client: ClientFactory) -> None:
    owner = await make_client()
    registered = await register(owner)
    members = await _members(owner)
    assert members == [
        {
            "id": members[0]["id"],
            "user_id": registered["user"]["id"],
            "email": "owner@acme.test",
            "name": "Olive Owner",
            "role": "owner",
            "created_at": members[0]["created_at"],
        }
    ]
    viewer, accepted = await join_as(owner, make_client, "viewer", email="vic@acme.test")
    seen_by_viewer = await _members(viewer)
    assert [(m["email"], m["role"], m["user_id"]) for m in seen_by_viewer] == [
        ("owner@acme.test", "owner", registered["user"]["id"]),
        ("vic@acme.test", "viewer", accepted["user"]["id"]),
    ]
    assert all(set(m) == MEMBER_FIELDS for m in seen_by_viewer)


async def test_invite_returns_a_token_and_link_and_refuses_conflicts(
    make_client: ClientFactory,
) -> None:
    owner = await make_client()
    registered = await register(owner)
    response = await owner.post(
        "/v1/members/invite", json={"email": " Nina@Acme.test ", "role": "editor"}
    )
    body = await _json(response, 201)
    assert set(body) == {"id", "email", "role", "created_at", "expires_at", "token", "invite_url"}
    assert (body["email"], body["role"]) == ("nina@acme.test", "editor")
    assert body["invite_url"] == f"https://emban.test/accept-invite?token={body['token']}"
    created = datetime.fromisoformat(body["created_at"])
    expires = datetime.fromisoformat(body["expires_at"])
    assert abs((expires - created) - timedelta(days=7)) < timedelta(seconds=1)

    refusals: list[tuple[dict[str, Any], int, dict[str, Any]]] = [
        (
            {"email": "NINA@acme.test", "role": "viewer"},
            409,
            {"error": "an invite for this email is already pending", "code": "invite_pending"},
        ),
        (
            {"email": "owner@acme.test", "role": "admin"},
            409,
            {"error": "this email is already a member of the org", "code": "already_member"},
        ),
        (
            {"email": "x@acme.test", "role": "owner"},
            400,
            {
                "error": "role must be viewer, editor or admin",
                "code": "invalid_field",
                "field": "role",
            },
        ),
        (
            {"email": "x@acme.test", "role": "root"},
            400,
            {
                "error": "role must be viewer, editor or admin",
                "code": "invalid_field",
                "field": "role",
            },
        ),
        (
            {"email": "x@", "role": "viewer"},
            400,
            {
                "error": "email is not a valid email address",
                "code": "invalid_field",
                "field": "email",
            },
        ),
    ]
    for payload, status, expected in refusals:
        refused = await owner.post("/v1/members/invite", json=payload)
        assert await _json(refused, status) == expected, payload
    assert await Invite.filter(org_id=registered["org"]["id"]).count() == 1


async def test_invites_list_shows_pending_invites_only(make_client: ClientFactory) -> None:
    owner = await make_client()
    await register(owner)
    await join_as(owner, make_client, "viewer", email="accepted@acme.test")
    expired = await _json(
        await owner.post("/v1/members/invite", json={"email": "late@acme.test", "role": "viewer"}),
        201,
    )
    await Invite.filter(id=expired["id"]).update(expires_at=datetime.now(UTC) - timedelta(1))
    pending = await _json(
        await owner.post("/v1/members/invite", json={"email": "soon@acme.test", "role": "admin"}),
        201,
    )
    listed = await _json(await owner.get("/v1/members/invites"), 200)
    assert listed == {
        "invites": [
            {
                "id": pending["id"],
                "email": "soon@acme.test",
                "role": "admin",
                "created_at": pending["created_at"],
                "expires_at": pending["expires_at"],
            }
        ]
    }
    # An expired invite no longer blocks a new one for the same email.
    again = await owner.post(
        "/v1/members/invite", json={"email": "late@acme.test", "role": "viewer"}
    )
    assert again.status == 201


async def test_change_role_is_owner_only_and_keeps_an_owner(make_client: ClientFactory) -> None:
    owner = await make_client()
    registered = await register(owner)
    admin, admin_body = await join_as(owner, make_client, "admin", email="ada@acme.test")
    _, editor_body = await join_as(owner, make_client, "editor", email="ed@acme.test")
    owner_member = await _member_id(owner, "owner@acme.test")
    admin_member = await _member_id(owner, "ada@acme.test")
    editor_member = await _member_id(owner, "ed@acme.test")

    promoted = await owner.patch(f"/v1/members/{editor_member}", json={"role": "admin"})
    body = await _json(promoted, 200)
    assert body == {
        "id": editor_member,
        "user_id": editor_body["user"]["id"],
        "email": "ed@acme.test",
        "name": "Editor",
        "role": "admin",
        "created_at": body["created_at"],
    }

    by_admin = await admin.patch(f"/v1/members/{editor_member}", json={"role": "viewer"})
    assert await _json(by_admin, 403) == {
        "error": "this action requires the owner role",
        "code": "owner_required",
    }
    admin_key = registered["api_key"]["key"]
    by_key = await owner.patch(
        f"/v1/members/{editor_member}", json={"role": "viewer"}, headers=bearer(admin_key)
    )
    assert await _json(by_key, 403) == {
        "error": "this action requires the owner role",
        "code": "owner_required",
    }

    bad_role = await owner.patch(f"/v1/members/{editor_member}", json={"role": "king"})
    assert (await _json(bad_role, 400))["field"] == "role"
    unknown = await owner.patch("/v1/members/mem_nope", json={"role": "viewer"})
    assert await _json(unknown, 404) == {"error": "member not found", "code": "member_not_found"}

    last = await owner.patch(f"/v1/members/{owner_member}", json={"role": "admin"})
    assert await _json(last, 409) == {
        "error": "the last owner cannot be demoted",
        "code": "last_owner",
    }
    assert (await Membership.get(id=owner_member)).role == "owner"

    # With a second owner the first may step down.
    assert (await owner.patch(f"/v1/members/{admin_member}", json={"role": "owner"})).status == 200
    stepped = await owner.patch(f"/v1/members/{owner_member}", json={"role": "admin"})
    assert (await _json(stepped, 200))["role"] == "admin"
    assert (await _json(await owner.get("/v1/auth/me"), 200))["role"] == "admin"
    assert (await _json(await admin.get("/v1/auth/me"), 200))["role"] == "owner"
    assert admin_body["role"] == "admin"
    roles = {m["email"]: m["role"] for m in await _members(admin)}
    assert roles == {"owner@acme.test": "admin", "ada@acme.test": "owner", "ed@acme.test": "admin"}


async def test_remove_member(make_client: ClientFactory) -> None:
    owner = await make_client()
    registered = await register(owner)
    admin, _ = await join_as(owner, make_client, "admin", email="ada@acme.test")
    viewer, viewer_body = await join_as(owner, make_client, "viewer", email="vic@acme.test")
    owner_member = await _member_id(owner, "owner@acme.test")
    viewer_member = await _member_id(owner, "vic@acme.test")

    assert (await viewer.get("/v1/auth/me")).status == 200
    removed = await admin.delete(f"/v1/members/{viewer_member}")
    assert removed.status == 204
    refused = await viewer.get("/v1/auth/me")
    assert await _json(refused, 401) == {
        "error": "session is invalid or has ended",
        "code": "invalid_session",
    }
    assert not await User.filter(id=viewer_body["user"]["id"]).exists()
    assert not await UserSession.filter(user_id=viewer_body["user"]["id"]).exists()
    assert [m["email"] for m in await _members(owner)] == ["owner@acme.test", "ada@acme.test"]

    by_admin = await admin.delete(f"/v1/members/{owner_member}")
    assert await _json(by_admin, 403) == {
        "error": "only an owner can remove an owner",
        "code": "owner_required",
    }
    by_key = await owner.delete(
        f"/v1/members/{owner_member}", headers=bearer(registered["api_key"]["key"])
    )
    assert (await _json(by_key, 403))["code"] == "owner_required"
    itself = await owner.delete(f"/v1/members/{owner_member}")
    assert await _json(itself, 409) == {
        "error": "the last owner cannot be removed",
        "code": "last_owner",
    }
    unknown = await owner.delete("/v1/members/mem_nope")
    assert await _json(unknown, 404) == {"error": "member not found", "code": "member_not_found"}
    gone = await owner.delete(f"/v1/members/{viewer_member}")
    assert gone.status == 404
    assert (await owner.get("/v1/auth/me")).status == 200


# --- settings ----------------------------------------------------------------------------------


async def test_get_and_patch_org_settings(make_client: ClientFactory) -> None:
    owner = await make_client()
    registered = await register(owner)
    org = await _json(await owner.get("/v1/settings/org"), 200)
    assert org == registered["org"]

    patched = await _json(
        await owner.patch(
            "/v1/settings/org", json={"name": " Acme Labs ", "email": "Billing@Acme.test"}
        ),
        200,
    )
    assert patched == {
        **registered["org"],
        "name": "Acme Labs",
        "email": "billing@acme.test",
        "updated_at": patched["updated_at"],
    }
    assert patched["updated_at"] > registered["org"]["updated_at"]
    assert await _json(await owner.get("/v1/settings/org"), 200) == patched

    only_name = await _json(await owner.patch("/v1/settings/org", json={"name": "Acme"}), 200)
    assert (only_name["name"], only_name["email"]) == ("Acme", "billing@acme.test")

    bad_email = await owner.patch("/v1/settings/org", json={"email": "billing"})
    assert await _json(bad_email, 400) == {
        "error": "email is not a valid email address",
        "code": "invalid_field",
        "field": "email",
    }
    empty_name = await owner.patch("/v1/settings/org", json={"name": " "})
    assert await _json(empty_name, 400) == {
        "error": "name must not be empty",
        "code": "invalid_field",
        "field": "name",
    }
    row = await Org.get(id=registered["org"]["id"])
    assert (row.name, row.email) == ("Acme", "billing@acme.test")

    # An empty patch changes nothing and writes no audit row.
    updates = await AuditLog.filter(action="org.update").count()
    assert await _json(await owner.patch("/v1/settings/org", json={}), 200) == only_name
    assert await AuditLog.filter(action="org.update").count() == updates == 2


async def _insert_event(runtime: Runtime, org_id: str, event_id: str) -> None:
    await runtime.events.execute(
        "INSERT INTO events (org_id, environment_id, tenant_id, event_name, timestamp, event_id) "
        "VALUES ({o:String}, 'e', 't', 'x', now64(3), {i:String})",
        {"o": org_id, "i": event_id},
    )


async def _event_counts(runtime: Runtime) -> dict[str, int]:
    result = await runtime.events.query(
        "SELECT org_id, toUInt32(count()) FROM events GROUP BY org_id"
    )
    return {row[0]: int(row[1]) for row in result.rows}


async def test_delete_org_removes_accounts_sessions_and_events(
    make_client: ClientFactory, runtime: Runtime
) -> None:
    owner = await make_client()
    registered = await register(owner)
    org_id = registered["org"]["id"]
    admin, _ = await join_as(owner, make_client, "admin", email="ada@acme.test")
    other = await make_client()
    other_org = await register(other, email="other@other.test", org_name="Other")
    other_id = other_org["org"]["id"]
    for n in range(3):
        await _insert_event(runtime, org_id, f"a{n}")
    await _insert_event(runtime, other_id, "b0")
    assert await _event_counts(runtime) == {org_id: 3, other_id: 1}

    by_admin = await admin.delete("/v1/settings/org")
    assert await _json(by_admin, 403) == {
        "error": "this action requires the owner role",
        "code": "owner_required",
    }
    by_key = await owner.delete("/v1/settings/org", headers=bearer(registered["api_key"]["key"]))
    assert (await _json(by_key, 403))["code"] == "owner_required"
    assert await _event_counts(runtime) == {org_id: 3, other_id: 1}

    owner_token = next(c.value for c in owner.cookie_jar if c.key == "emban_session")
    deleted = await owner.delete("/v1/settings/org")
    assert deleted.status == 204
    # The events go in a job after the commit (no engine work inside the transaction).
    await jobs_done(runtime)
    assert await _event_counts(runtime) == {other_id: 1}
    # The response cleared the owner's cookie; the server-side rows are gone for every member.
    assert not any(c.key == "emban_session" and c.value for c in owner.cookie_jar)
    replay = await make_client()
    replayed = await replay.get("/v1/auth/me", headers={"Cookie": f"emban_session={owner_token}"})
    assert (await _json(replayed, 401))["code"] == "invalid_session"
    refused = await admin.get("/v1/auth/me")
    assert (await _json(refused, 401))["code"] == "invalid_session"
    assert await UserSession.all().count() == 1  # the other org's owner
    key_refused = await other.get("/v1/auth/me", headers=bearer(registered["api_key"]["key"]))
    assert (await _json(key_refused, 401))["code"] == "invalid_api_key"
    login = await (await make_client()).post(
        "/v1/auth/login", json={"email": "owner@acme.test", "password": PASSWORD}
    )
    assert await _json(login, 401) == {
        "error": "invalid email or password",
        "code": "invalid_credentials",
    }
    assert not await Org.filter(id=org_id).exists()
    assert await User.filter(email__in=["owner@acme.test", "ada@acme.test"]).count() == 0
    assert await AuditLog.filter(org_id=org_id).count() == 0

    # The other org is untouched.
    assert (await _json(await other.get("/v1/settings/org"), 200))["id"] == other_id
    assert await AuditLog.filter(org_id=other_id).count() == 2


# --- audit -------------------------------------------------------------------------------------


def _audit_tuple(row: AuditLog) -> tuple[Any, ...]:
    return (
        row.action,
        row.actor_type,
        row.actor_id,
        row.actor_label,
        row.resource_type,
        row.resource_id,
        row.ip,
        row.metadata,
    )


async def test_every_mutation_writes_one_audit_row(make_client: ClientFactory) -> None:
    owner = await make_client()
    registered = await register(owner)
    org_id = registered["org"]["id"]
    owner_id = registered["user"]["id"]
    default_key = registered["api_key"]

    created = await _json(
        await owner.post("/v1/api-keys", json={"label": "ci", "scope": "ingest"}), 201
    )
    # Deleted with the default admin key: the actor is the key.
    deleted = await owner.delete(
        f"/v1/api-keys/{created['id']}", headers=bearer(default_key["key"])
    )
    assert deleted.status == 204
    invite = await _json(
        await owner.post("/v1/members/invite", json={"email": "ed@acme.test", "role": "editor"}),
        201,
    )
    editor = await make_client()
    accepted = await _json(
        await editor.post(
            "/v1/auth/accept-invite",
            json={"token": invite["token"], "password": PASSWORD, "name": "Ed"},
        ),
        201,
    )
    editor_id = accepted["user"]["id"]
    editor_member = await _member_id(owner, "ed@acme.test")
    assert (await owner.patch(f"/v1/members/{editor_member}", json={"role": "admin"})).status == 200
    assert (await owner.patch("/v1/settings/org", json={"name": "Acme 2"})).status == 200
    second = await make_client()
    login = await second.post(
        "/v1/auth/login", json={"email": "owner@acme.test", "password": PASSWORD}
    )
    assert login.status == 200
    assert (await second.post("/v1/auth/logout")).status == 204
    assert (await owner.delete(f"/v1/members/{editor_member}")).status == 204

    rows = await AuditLog.filter(org_id=org_id).order_by("id")
    owner_actor = ("session", owner_id, "owner@acme.test")
    key_actor = ("api_key", default_key["id"], default_key["prefix"])
    assert [_audit_tuple(r) for r in rows] == [
        ("org.create", *owner_actor, "org", org_id, IP, {"name": "Acme"}),
        (
            "api_key.create",
            *owner_actor,
            "api_key",
            default_key["id"],
            IP,
            {"label": "Default admin key", "scope": "admin"},
        ),
        (
            "api_key.create",
            *owner_actor,
            "api_key",
            created["id"],
            IP,
            {"label": "ci", "scope": "ingest", "environment": "production"},
        ),
        ("api_key.delete", *key_actor, "api_key", created["id"], IP, {"label": "ci"}),
        (
            "invite.create",
            *owner_actor,
            "invite",
            invite["id"],
            IP,
            {"email": "ed@acme.test", "role": "editor"},
        ),
        (
            "invite.accept",
            "session",
            editor_id,
            "ed@acme.test",
            "invite",
            invite["id"],
            IP,
            {"role": "editor"},
        ),
        (
            "member.update_role",
            *owner_actor,
            "member",
            editor_member,
            IP,
            {"from": "editor", "to": "admin"},
        ),
        ("org.update", *owner_actor, "org", org_id, IP, {"name": "Acme 2"}),
        ("session.login", *owner_actor, "user", owner_id, IP, {}),
        ("session.logout", *owner_actor, "user", owner_id, IP, {}),
        ("member.remove", *owner_actor, "member", editor_member, IP, {"user_id": editor_id}),
    ]


async def test_audit_list_is_newest_first_and_capped_at_100(make_client: ClientFactory) -> None:
    owner = await make_client()
    registered = await register(owner)
    org_id = registered["org"]["id"]
    start = datetime.now(UTC) + timedelta(minutes=1)
    await AuditLog.bulk_create(
        [
            AuditLog(
                org_id=org_id,
                actor_type="session",
                actor_id=registered["user"]["id"],
                actor_label="owner@acme.test",
                action=f"test.{n}",
                resource_type="org",
                resource_id=org_id,
                ip="10.0.0.1",
                metadata={"n": n},
                created_at=start + timedelta(seconds=n),
            )
            for n in range(120)
        ]
    )
    assert await AuditLog.filter(org_id=org_id).count() == 122

    entries = (await _json(await owner.get("/v1/audit"), 200))["entries"]
    assert [e["action"] for e in entries] == [f"test.{n}" for n in range(119, 19, -1)]
    newest = await AuditLog.get(org_id=org_id, action="test.119")
    assert entries[0] == {
        "id": newest.id,
        "actor_type": "session",
        "actor_id": registered["user"]["id"],
        "actor_label": "owner@acme.test",
        "action": "test.119",
        "resource_type": "org",
        "resource_id": org_id,
        "ip": "10.0.0.1",
        "metadata": {"n": 119},
        "created_at": (start + timedelta(seconds=119))
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
    }


async def test_audit_list_shows_only_the_callers_org_to_admins(
    make_client: ClientFactory,
) -> None:
    owner = await make_client()
    await register(owner)
    other = await make_client()
    await register(other, email="other@other.test", org_name="Other")
    editor, _ = await join_as(owner, make_client, "editor", email="ed@acme.test")
    refused = await editor.get("/v1/audit")
    assert await _json(refused, 403) == {
        "error": "this action requires the admin role",
        "code": "insufficient_role",
    }
    entries = (await _json(await owner.get("/v1/audit"), 200))["entries"]
    assert [(e["action"], e["actor_label"]) for e in entries] == [
        ("invite.accept", "ed@acme.test"),
        ("invite.create", "owner@acme.test"),
        ("api_key.create", "owner@acme.test"),
        ("org.create", "owner@acme.test"),
    ]


# --- billing plans -----------------------------------------------------------------------------


async def test_billing_plans_are_public(make_client: ClientFactory) -> None:
    client = await make_client()
    response = await client.get("/v1/billing/plans")
    assert await _json(response, 200) == {
        "plans": [
            {
                "name": "free",
                "title": "Free",
                "limits": {"published_dashboards": 1, "api_keys": 5, "events_per_month": 100_000},
                "features": {"advanced_embed_permissions": False},
            },
            {
                "name": "starter",
                "title": "Starter",
                "limits": {
                    "published_dashboards": 5,
                    "api_keys": 20,
                    "events_per_month": 1_000_000,
                },
                "features": {"advanced_embed_permissions": True},
            },
            {
                "name": "pro",
                "title": "Pro",
                "limits": {
                    "published_dashboards": 50,
                    "api_keys": 100,
                    "events_per_month": 20_000_000,
                },
                "features": {"advanced_embed_permissions": True},
            },
            {
                "name": "enterprise",
                "title": "Enterprise",
                "limits": {
                    "published_dashboards": None,
                    "api_keys": None,
                    "events_per_month": None,
                },
                "features": {"advanced_embed_permissions": True},
            },
        ]
    }

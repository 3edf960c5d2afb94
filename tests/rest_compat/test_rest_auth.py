"""REST auth: register, login, logout, sessions, /v1/auth/me, invites, login limits, storage."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie
from typing import Any

import aiohttp

from emban.models import ApiKey, Invite, Membership, Org, User, UserSession
from tests.conftest import PASSWORD, ClientFactory, bearer, create_key, register

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
SESSION_TTL = 14 * 24 * 3600
BAD_LOGIN = {"error": "invalid email or password", "code": "invalid_credentials"}


def _id(prefix: str) -> re.Pattern[str]:
    return re.compile(rf"^{prefix}_[a-z2-7]{{20}}$")


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def session_cookie(response: aiohttp.ClientResponse) -> Any:
    """The ``emban_session`` morsel of the response's one Set-Cookie header."""
    headers = response.headers.getall("Set-Cookie")
    assert len(headers) == 1, headers
    jar: SimpleCookie = SimpleCookie()
    jar.load(headers[0])
    return jar["emban_session"]


async def _login(
    client: aiohttp.ClientSession, email: str, password: str = PASSWORD
) -> aiohttp.ClientResponse:
    return await client.post("/v1/auth/login", json={"email": email, "password": password})


async def _cookie_client(make_client: ClientFactory, token: str) -> aiohttp.ClientSession:
    """A fresh client that sends exactly this session token, as a stolen cookie would be sent."""
    client = await make_client()
    client.headers["Cookie"] = f"emban_session={token}"
    return client


# --- register ----------------------------------------------------------------------------------


async def test_register_returns_the_created_account_and_sets_the_session_cookie(
    make_client: ClientFactory,
) -> None:
    client = await make_client()
    response = await client.post(
        "/v1/auth/register",
        json={
            "email": " Owner@Acme.TEST ",
            "password": PASSWORD,
            "name": "  Olive Owner ",
            "org_name": "Acme",
        },
    )
    assert response.status == 201
    body = await response.json()
    assert set(body) == {"user", "org", "environments", "api_key"}

    user = body["user"]
    assert set(user) == {"id", "email", "name", "created_at"}
    assert _id("usr").match(user["id"])
    assert user["email"] == "owner@acme.test"
    assert user["name"] == "Olive Owner"
    assert ISO_MS.match(user["created_at"])

    org = body["org"]
    assert set(org) == {"id", "name", "email", "plan", "created_at", "updated_at"}
    assert _id("org").match(org["id"])
    assert (org["name"], org["email"], org["plan"]) == ("Acme", "owner@acme.test", "free")

    assert [e["name"] for e in body["environments"]] == ["production", "development"]
    assert all(set(e) == {"id", "name"} and _id("env").match(e["id"]) for e in body["environments"])

    key = body["api_key"]
    assert set(key) == {"id", "label", "scope", "prefix", "environment", "key"}
    assert _id("key").match(key["id"])
    assert key["label"] == "Default admin key"
    assert key["scope"] == "admin"
    assert key["environment"] == "production"
    assert len(key["prefix"]) == 12
    assert key["prefix"].startswith("emb_")
    assert key["key"].startswith(key["prefix"])
    assert len(key["key"]) == 44

    cookie = session_cookie(response)
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert cookie["path"] == "/"
    assert cookie["max-age"] == str(SESSION_TTL)
    assert cookie["secure"] == ""
    assert len(cookie.value) == 43

    # The cookie just set is a working console session for the owner.
    me = await client.get("/v1/auth/me")
    assert me.status == 200
    assert (await me.json())["user"]["id"] == user["id"]

    # The rows behind the answer: one owner membership, two environments, one key.
    assert await Membership.filter(org_id=org["id"]).values_list("user_id", "role") == [
        (user["id"], "owner")
    ]
    assert await ApiKey.filter(org_id=org["id"]).count() == 1


async def test_register_refuses_an_email_already_registered_in_any_case(
    make_client: ClientFactory,
) -> None:
    client = await make_client()
    await register(client, email="owner@acme.test")
    again = await client.post(
        "/v1/auth/register",
        json={"email": "OWNER@acme.Test", "password": PASSWORD, "name": "X", "org_name": "Y"},
    )
    assert again.status == 409
    assert await again.json() == {
        "error": "this email is already registered",
        "code": "email_registered",
    }
    assert "Set-Cookie" not in again.headers
    assert await Org.all().count() == 1
    assert await User.all().count() == 1


async def test_register_validates_email_and_password_length(make_client: ClientFactory) -> None:
    client = await make_client()
    base = {"email": "a@acme.test", "password": PASSWORD, "name": "A", "org_name": "Acme"}
    cases: list[tuple[dict[str, str], dict[str, str]]] = [
        (
            {"email": "not-an-email"},
            {
                "error": "email is not a valid email address",
                "code": "invalid_field",
                "field": "email",
            },
        ),
        (
            {"email": "a@acme"},
            {
                "error": "email is not a valid email address",
                "code": "invalid_field",
                "field": "email",
            },
        ),
        (
            {"password": "seven77"},
            {
                "error": "password must be at least 8 characters",
                "code": "invalid_field",
                "field": "password",
            },
        ),
        (
            {"org_name": "   "},
            {"error": "org_name must not be empty", "code": "invalid_field", "field": "org_name"},
        ),
    ]
    for change, expected in cases:
        response = await client.post("/v1/auth/register", json={**base, **change})
        assert response.status == 400, change
        assert await response.json() == expected
    assert await User.all().count() == 0
    assert await Org.all().count() == 0


async def test_password_of_exactly_eight_characters_is_accepted(
    make_client: ClientFactory,
) -> None:
    client = await make_client()
    response = await client.post(
        "/v1/auth/register",
        json={"email": "a@acme.test", "password": "12345678", "name": "A", "org_name": "Acme"},
    )
    assert response.status == 201


# --- login / logout / sessions -----------------------------------------------------------------


async def test_login_sets_a_new_session_cookie(make_client: ClientFactory) -> None:
    owner = await make_client()
    registered = await register(owner)
    browser = await make_client()
    response = await _login(browser, "  OWNER@acme.test")
    assert response.status == 200
    body = await response.json()
    assert body == {"user": registered["user"], "org": registered["org"], "role": "owner"}
    cookie = session_cookie(response)
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    me = await browser.get("/v1/auth/me")
    assert me.status == 200
    assert (await me.json())["user"]["email"] == "owner@acme.test"
    # Two independent sessions: the registration's and the login's.
    assert await UserSession.filter(user_id=registered["user"]["id"]).count() == 2


async def test_wrong_password_and_unknown_email_get_the_identical_401(
    make_client: ClientFactory,
) -> None:
    client = await make_client()
    await register(client)
    wrong = await _login(client, "owner@acme.test", "wrong-password")
    unknown = await _login(client, "nobody@acme.test", PASSWORD)
    assert wrong.status == unknown.status == 401
    wrong_body, unknown_body = await wrong.read(), await unknown.read()
    assert wrong_body == unknown_body
    assert await wrong.json() == BAD_LOGIN
    assert "Set-Cookie" not in wrong.headers
    assert "Set-Cookie" not in unknown.headers


async def test_logout_deletes_the_server_side_session(make_client: ClientFactory) -> None:
    client = await make_client()
    response = await client.post(
        "/v1/auth/register",
        json={"email": "owner@acme.test", "password": PASSWORD, "name": "O", "org_name": "Acme"},
    )
    token = session_cookie(response).value
    assert await UserSession.filter(token_hash=sha256(token)).count() == 1

    logout = await client.post("/v1/auth/logout")
    assert logout.status == 204
    assert await logout.read() == b""
    cleared = session_cookie(logout)
    assert cleared.value == ""
    assert cleared["max-age"] == "0"
    assert await UserSession.filter(token_hash=sha256(token)).count() == 0

    # Replaying the old cookie value from another client: the row is gone, so 401.
    replay = await _cookie_client(make_client, token)
    me = await replay.get("/v1/auth/me")
    assert me.status == 401
    assert await me.json() == {
        "error": "session is invalid or has ended",
        "code": "invalid_session",
    }


async def test_expired_session_is_refused_and_removed(make_client: ClientFactory) -> None:
    client = await make_client()
    response = await client.post(
        "/v1/auth/register",
        json={"email": "owner@acme.test", "password": PASSWORD, "name": "O", "org_name": "Acme"},
    )
    token = session_cookie(response).value
    updated = await UserSession.filter(token_hash=sha256(token)).update(
        expires_at=datetime.now(UTC) - timedelta(seconds=1)
    )
    assert updated == 1
    me = await client.get("/v1/auth/me")
    assert me.status == 401
    assert await me.json() == {"error": "session has expired", "code": "session_expired"}
    assert await UserSession.filter(token_hash=sha256(token)).count() == 0
    again = await client.get("/v1/auth/me")
    assert again.status == 401
    assert (await again.json())["code"] == "invalid_session"


async def test_unknown_session_cookie_is_401(make_client: ClientFactory) -> None:
    client = await _cookie_client(make_client, "not-a-session-token")
    me = await client.get("/v1/auth/me")
    assert me.status == 401
    assert (await me.json())["code"] == "invalid_session"


async def test_me_without_credentials_is_401(make_client: ClientFactory) -> None:
    client = await make_client()
    me = await client.get("/v1/auth/me")
    assert me.status == 401
    assert await me.json() == {"error": "authentication required", "code": "unauthenticated"}


# --- /v1/auth/me ------------------------------------------------------------------------------


async def test_me_for_a_session_an_admin_key_and_an_ingest_key(
    make_client: ClientFactory,
) -> None:
    owner = await make_client()
    registered = await register(owner)
    production, development = registered["environments"]
    admin_key = registered["api_key"]["key"]
    ingest = await owner.post(
        "/v1/api-keys", json={"label": "ingest", "scope": "ingest", "environment": "development"}
    )
    assert ingest.status == 201
    ingest_key = (await ingest.json())["key"]

    # The org as /me shows it now (creating keys does not change it).
    org = registered["org"]

    me = await (await owner.get("/v1/auth/me")).json()
    assert me == {
        "user": registered["user"],
        "org": org,
        "role": "owner",
        "scope": "session",
        "environment": production,
    }

    anonymous = await make_client()
    as_admin = await anonymous.get("/v1/auth/me", headers=bearer(admin_key))
    assert as_admin.status == 200
    assert await as_admin.json() == {
        "user": None,
        "org": org,
        "role": "admin",
        "scope": "admin",
        "environment": production,
    }

    as_ingest = await anonymous.get("/v1/auth/me", headers=bearer(ingest_key))
    assert as_ingest.status == 200
    assert await as_ingest.json() == {
        "user": None,
        "org": org,
        "role": None,
        "scope": "ingest",
        "environment": development,
    }


async def test_bearer_wins_over_the_session_cookie(make_client: ClientFactory) -> None:
    owner = await make_client()
    await register(owner)
    ingest_key = await create_key(owner, "ingest")
    me = await owner.get("/v1/auth/me", headers=bearer(ingest_key))
    assert (await me.json())["scope"] == "ingest"
    bad = await owner.get("/v1/auth/me", headers=bearer("emb_nope"))
    assert bad.status == 401
    assert await bad.json() == {
        "error": "API key is invalid or revoked",
        "code": "invalid_api_key",
    }


# --- accept-invite -----------------------------------------------------------------------------


async def _invite(owner: aiohttp.ClientSession, email: str, role: str = "editor") -> str:
    response = await owner.post("/v1/members/invite", json={"email": email, "role": role})
    assert response.status == 201, await response.text()
    token: str = (await response.json())["token"]
    return token


async def test_accept_invite_creates_the_member_and_a_working_session(
    make_client: ClientFactory,
) -> None:
    owner = await make_client()
    registered = await register(owner)
    token = await _invite(owner, "Eddie@Acme.test", "editor")
    member = await make_client()
    response = await member.post(
        "/v1/auth/accept-invite", json={"token": token, "password": PASSWORD, "name": " Eddie "}
    )
    assert response.status == 201
    body = await response.json()
    assert set(body) == {"user", "org", "role"}
    assert body["org"] == registered["org"]
    assert body["role"] == "editor"
    assert body["user"]["email"] == "eddie@acme.test"
    assert body["user"]["name"] == "Eddie"
    cookie = session_cookie(response)
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"

    me = await member.get("/v1/auth/me")
    assert me.status == 200
    me_body = await me.json()
    assert (me_body["user"]["id"], me_body["role"], me_body["scope"]) == (
        body["user"]["id"],
        "editor",
        "session",
    )
    invite = await Invite.get(org_id=registered["org"]["id"])
    assert invite.accepted_at is not None
    # The new account can log in with its password.
    assert (await _login(await make_client(), "eddie@acme.test")).status == 200


async def test_accept_invite_refusals(make_client: ClientFactory) -> None:
    owner = await make_client()
    await register(owner)
    stranger = await make_client()

    async def accept(token: str) -> aiohttp.ClientResponse:
        return await stranger.post(
            "/v1/auth/accept-invite", json={"token": token, "password": PASSWORD, "name": "N"}
        )

    unknown = await accept("no-such-token")
    assert unknown.status == 404
    assert await unknown.json() == {
        "error": "this invite does not exist",
        "code": "invite_not_found",
    }

    used_token = await _invite(owner, "used@acme.test")
    assert (await accept(used_token)).status == 201
    used = await accept(used_token)
    assert used.status == 409  # the spec's table: a conflict with existing state
    assert await used.json() == {
        "error": "this invite has already been used",
        "code": "invite_used",
    }

    expired_token = await _invite(owner, "late@acme.test")
    assert (
        await Invite.filter(token_hash=sha256(expired_token)).update(
            expires_at=datetime.now(UTC) - timedelta(seconds=1)
        )
        == 1
    )
    expired = await accept(expired_token)
    assert expired.status == 400
    assert await expired.json() == {"error": "this invite has expired", "code": "invite_expired"}

    # An email that registered on its own after being invited.
    taken_token = await _invite(owner, "taken@acme.test")
    await register(await make_client(), email="taken@acme.test", org_name="Taken Inc")
    taken = await accept(taken_token)
    assert taken.status == 409
    assert await taken.json() == {
        "error": "this email is already registered",
        "code": "email_registered",
    }
    assert await Invite.filter(token_hash=sha256(taken_token), accepted_at__isnull=True).exists()

    short = await stranger.post(
        "/v1/auth/accept-invite",
        json={"token": await _invite(owner, "short@acme.test"), "password": "short", "name": "S"},
    )
    assert short.status == 400
    assert (await short.json())["field"] == "password"
    assert not await User.filter(email="short@acme.test").exists()


# --- login rate limits -------------------------------------------------------------------------


async def test_login_is_limited_per_email_then_per_ip(make_client: ClientFactory) -> None:
    owner = await make_client()
    await register(owner, email="owner@acme.test")
    await register(await make_client(), email="other@acme.test", org_name="Other")
    client = await make_client()

    # Five wrong attempts on one email (IP attempts 1-5).
    for _ in range(5):
        response = await _login(client, "owner@acme.test", "wrong-password")
        assert response.status == 401
    # The sixth is refused before the password is looked at, even the right one (IP attempt 6).
    limited = await _login(client, "OWNER@acme.test", PASSWORD)
    assert limited.status == 429
    retry_after = limited.headers["Retry-After"]
    assert retry_after.isdigit()
    assert 0 < int(retry_after) <= 901
    body = await limited.json()
    assert body == {
        "error": "too many login attempts; try again later",
        "code": "rate_limited",
        "retry_after": int(retry_after),
    }
    assert "Set-Cookie" not in limited.headers

    # Another email from the same IP still works (IP attempt 7) ...
    assert (await _login(client, "other@acme.test")).status == 200
    # ... up to the IP's limit of 20 attempts (attempts 8-20).
    for n in range(13):
        assert (await _login(client, f"nobody{n}@acme.test")).status == 401
    blocked = await _login(client, "other@acme.test")
    assert blocked.status == 429
    assert blocked.headers["Retry-After"].isdigit()


async def test_successful_login_resets_the_email_counter(make_client: ClientFactory) -> None:
    client = await make_client()
    await register(client)
    for _ in range(4):
        assert (await _login(client, "owner@acme.test", "wrong-password")).status == 401
    assert (await _login(client, "owner@acme.test")).status == 200
    # The sixth attempt on this email would be refused without the reset.
    assert (await _login(client, "owner@acme.test", "wrong-password")).status == 401


# --- what is stored ----------------------------------------------------------------------------


async def test_passwords_keys_and_tokens_are_stored_only_as_hashes(
    make_client: ClientFactory,
) -> None:
    client = await make_client()
    response = await client.post(
        "/v1/auth/register",
        json={"email": "owner@acme.test", "password": PASSWORD, "name": "O", "org_name": "Acme"},
    )
    body = await response.json()
    session_token = session_cookie(response).value
    clear_key = body["api_key"]["key"]
    invite_token = await _invite(client, "new@acme.test")

    user = await User.get(id=body["user"]["id"])
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash

    key_rows = await ApiKey.filter(org_id=body["org"]["id"]).values()
    assert len(key_rows) == 1
    assert key_rows[0]["key_hash"] == sha256(clear_key)
    assert key_rows[0]["prefix"] == clear_key[:12]
    assert all(clear_key not in str(value) for value in key_rows[0].values())

    session_rows = await UserSession.filter(user_id=user.id).values()
    assert len(session_rows) == 1
    assert session_rows[0]["token_hash"] == sha256(session_token)
    assert all(session_token not in str(value) for value in session_rows[0].values())

    invite_rows = await Invite.filter(org_id=body["org"]["id"]).values()
    assert len(invite_rows) == 1
    assert invite_rows[0]["token_hash"] == sha256(invite_token)
    assert all(invite_token not in str(value) for value in invite_rows[0].values())

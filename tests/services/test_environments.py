"""Environments and their ``allowed_origins``: ``GET /v1/environments``,
``PATCH /v1/environments/{id}``, GraphQL ``environments`` / ``updateEnvironment``, and the embed
page's CSP ``frame-ancestors`` built from them. Who may call each route is also in the role matrix
(test_rest_matrix.py); the browser side (framing refused, messages to explicit origins) is in
test_browser_embed.py."""

from __future__ import annotations

import re
import time
from typing import Any

import jwt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emban.auth.embed_tokens import mint_embed_token
from emban.errors import BadRequest
from emban.models import AuditLog, Environment
from emban.services.environments import MAX_ORIGINS, clean_allowed_origins
from tests.conftest import Client, ClientFactory, bearer, create_key, join_as, register
from tests.embed_scenario import NO_PERMISSIONS, embed_org, mint
from tests.gql_client import data_of, error_of

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
ORIGINS = ["https://app.example.com", "http://localhost:3000"]

ENVIRONMENTS = "{ environments { id name allowedOrigins createdAt } }"
UPDATE = """
mutation Update($id: ID!, $origins: [String!]!) {
  updateEnvironment(id: $id, allowedOrigins: $origins) { id name allowedOrigins }
}
"""


async def _environments(client: Client, headers: dict[str, str] | None = None) -> Any:
    response = await client.get("/v1/environments", headers=headers)
    assert response.status == 200, await response.text()
    return (await response.json())["environments"]


async def _patch(client: Client, env_id: str, origins: Any) -> tuple[int, Any]:
    response = await client.patch(f"/v1/environments/{env_id}", json={"allowed_origins": origins})
    return response.status, await response.json()


# --- REST -----------------------------------------------------------------------------------------


async def test_list_shows_every_environment_with_any_origin_by_default(
    make_client: ClientFactory,
) -> None:
    owner = await make_client()
    reg = await register(owner)
    found = await _environments(owner)
    assert [(e["id"], e["name"], e["allowed_origins"]) for e in found] == [
        (reg["environments"][0]["id"], "production", ["*"]),
        (reg["environments"][1]["id"], "development", ["*"]),
    ]
    assert all(set(e) == {"id", "name", "allowed_origins", "created_at"} for e in found)
    assert all(ISO.match(e["created_at"]) for e in found)
    # Any console member and admin keys read the same list; an ingest key may not.
    viewer, _ = await join_as(owner, make_client, "viewer")
    assert await _environments(viewer) == found
    admin_key = await create_key(owner, "admin")
    assert await _environments(await make_client(), bearer(admin_key)) == found
    ingest = await (await make_client()).get(
        "/v1/environments", headers=bearer(await create_key(owner, "ingest"))
    )
    assert ingest.status == 403
    assert (await ingest.json())["code"] == "insufficient_scope"


async def test_patch_sets_normalized_origins_and_is_audited(make_client: ClientFactory) -> None:
    owner = await make_client()
    reg = await register(owner)
    production, development = (e["id"] for e in reg["environments"])
    status, body = await _patch(
        owner,
        production,
        [
            " HTTPS://App.Example.COM:443/ ",
            "http://localhost:3000",
            "https://app.example.com",  # the same origin as the first: dropped
            "http://127.0.0.1:80",
            "https://[0:0:0:0:0:0:0:1]:8443",
            "https://xn--bcher-kva.example",
        ],
    )
    assert status == 200, body
    expected = [
        "https://app.example.com",
        "http://localhost:3000",
        "http://127.0.0.1",
        "https://[::1]:8443",
        "https://xn--bcher-kva.example",
    ]
    assert body["allowed_origins"] == expected
    assert (body["id"], body["name"]) == (production, "production")
    assert [e["allowed_origins"] for e in await _environments(owner)] == [expected, ["*"]]
    assert (await Environment.get(id=development)).allowed_origins == ["*"]
    rows = await AuditLog.filter(action="environment.update").order_by("id")
    assert [(r.resource_type, r.resource_id, r.metadata) for r in rows] == [
        (
            "environment",
            production,
            {"name": "production", "allowed_origins": expected, "previous": ["*"]},
        )
    ]
    # The same list again changes nothing and writes no audit row; "*" and [] are lists too.
    assert (await _patch(owner, production, expected))[0] == 200
    assert await AuditLog.filter(action="environment.update").count() == 1
    assert await _patch(owner, production, []) == (200, {**body, "allowed_origins": []})
    assert (await _patch(owner, production, [" * "]))[1]["allowed_origins"] == ["*"]
    assert await AuditLog.filter(action="environment.update").count() == 3


BAD_ORIGINS: list[tuple[Any, str]] = [
    (["*", "https://app.example.com"], '"*" must be the only entry'),
    (["https://*.example.com"], "wildcards are not allowed inside an origin"),
    (["*.example.com"], "wildcards are not allowed inside an origin"),
    (["https://app.example.com/path"], "no path, query or fragment"),
    (["https://app.example.com/?x=1"], "no path, query or fragment"),
    (["https://app.example.com#top"], "no path, query or fragment"),
    (["https://app.example.com https://b.example.com"], "no spaces or control characters"),
    (["https://app.example.com\nX-Evil: 1"], "no spaces or control characters"),
    (["https://app.example.com;script-src:*"], "wildcards are not allowed"),
    (["https://app.example.com;frame-src'"], "the host must be a DNS name"),
    (["ftp://app.example.com"], "the scheme must be http or https"),
    (["javascript:alert(1)"], "expected an origin scheme://host[:port]"),
    (["app.example.com"], "expected an origin scheme://host[:port]"),
    (["null"], "expected an origin scheme://host[:port]"),
    (["https://"], "the host must be a DNS name"),
    (["https://user:pw@app.example.com"], "no user name or password"),
    (["https://ex_ample.com"], "the host must be a DNS name"),
    (["https://bücher.example"], "the host must be a DNS name (punycode for IDNs)"),
    (["https://-bad.example.com"], "the host must be a DNS name"),
    (["https://[::g]"], "the host must be a DNS name"),
    (["https://app.example.com:0"], "the port must be a number from 1 to 65535"),
    (["https://app.example.com:65536"], "the port must be a number from 1 to 65535"),
    (["https://app.example.com:"], "the port must be a number from 1 to 65535"),
    (["https://app.example.com:x"], "the port must be a number from 1 to 65535"),
    (["https://" + "a" * 300 + ".com"], "an origin has at most 300 characters"),
    ([5], "allowed_origins[0] must be a string"),
    ([f"https://h{i}.example.com" for i in range(MAX_ORIGINS + 1)], "at most 50 entries"),
]


@pytest.mark.parametrize(
    "origins,reason", BAD_ORIGINS, ids=[str(i) for i, _ in enumerate(BAD_ORIGINS)]
)
async def test_bad_origins_are_400_naming_allowed_origins(
    make_client: ClientFactory, origins: Any, reason: str
) -> None:
    owner = await make_client()
    production = (await register(owner))["environments"][0]["id"]
    status, body = await _patch(owner, production, origins)
    assert status == 400, body
    assert (body["code"], body["field"]) == ("invalid_field", "allowed_origins")
    assert reason in body["error"], body["error"]
    assert (await Environment.get(id=production)).allowed_origins == ["*"]
    assert await AuditLog.filter(action="environment.update").count() == 0


async def test_bad_origin_error_names_the_entry(make_client: ClientFactory) -> None:
    owner = await make_client()
    production = (await register(owner))["environments"][0]["id"]
    assert await _patch(owner, production, ["https://ok.example", "https://a.example/x"]) == (
        400,
        {
            "error": "allowed_origins[1] 'https://a.example/x': an origin has no path, query or "
            "fragment",
            "code": "invalid_field",
            "field": "allowed_origins",
        },
    )
    for body in ({}, {"allowed_origins": "https://a.example"}, {"allowed_origins": None}):
        response = await owner.patch(f"/v1/environments/{production}", json=body)
        assert response.status == 400
        assert (await response.json())["field"] == "allowed_origins", body


async def test_foreign_or_unknown_environment_is_404(make_client: ClientFactory) -> None:
    owner = await make_client()
    await register(owner)
    other = await make_client()
    foreign = (await register(other, email="o@globex.test", org_name="Globex"))["environments"]
    for env_id in (foreign[0]["id"], "env_nope", "x" * 40, "env%00"):
        status, body = await _patch(owner, env_id, ORIGINS)
        assert (status, body) == (
            404,
            {"error": "environment not found", "code": "environment_not_found"},
        ), env_id
    assert (await Environment.get(id=foreign[0]["id"])).allowed_origins == ["*"]
    # A 400 for the body does not tell a stranger whether the id exists: 404 comes first.
    assert (await _patch(owner, foreign[0]["id"], ["bad"]))[0] == 404


def test_clean_allowed_origins_is_idempotent() -> None:
    once = clean_allowed_origins(["HTTPS://A.example:443", "http://b.example:8080/"])
    assert once == ["https://a.example", "http://b.example:8080"]
    assert clean_allowed_origins(once) == once


# --- GraphQL --------------------------------------------------------------------------------------


async def test_graphql_environments_and_update_environment(make_client: ClientFactory) -> None:
    owner = await make_client()
    reg = await register(owner)
    production = reg["environments"][0]["id"]
    listed = (await data_of(owner, ENVIRONMENTS))["environments"]
    assert [(e["id"], e["name"], e["allowedOrigins"]) for e in listed] == [
        (production, "production", ["*"]),
        (reg["environments"][1]["id"], "development", ["*"]),
    ]
    updated = await data_of(owner, UPDATE, {"id": production, "origins": ["https://A.example/"]})
    assert updated["updateEnvironment"] == {
        "id": production,
        "name": "production",
        "allowedOrigins": ["https://a.example"],
    }
    assert (await _environments(owner))[0]["allowed_origins"] == ["https://a.example"]
    assert await AuditLog.filter(action="environment.update").count() == 1

    invalid = await error_of(owner, UPDATE, {"id": production, "origins": ["https://*.a.example"]})
    assert invalid["extensions"] == {
        "code": "BAD_REQUEST",
        "reason": "invalid_field",
        "field": "allowed_origins",
    }
    foreign = (await register(await make_client(), email="o@globex.test", org_name="Globex"))[
        "environments"
    ][0]["id"]
    missing = await error_of(owner, UPDATE, {"id": foreign, "origins": ORIGINS})
    assert missing["extensions"] == {"code": "NOT_FOUND", "reason": "environment_not_found"}

    viewer, _ = await join_as(owner, make_client, "viewer")
    assert (await data_of(viewer, ENVIRONMENTS))["environments"][0]["allowedOrigins"] == [
        "https://a.example"
    ]
    denied = await error_of(viewer, UPDATE, {"id": production, "origins": ["*"]})
    assert denied["extensions"] == {"code": "FORBIDDEN", "reason": "insufficient_role"}
    ingest = bearer(await create_key(owner, "ingest"))
    refused = await error_of(await make_client(), ENVIRONMENTS, headers=ingest)
    assert refused["extensions"] == {"code": "FORBIDDEN", "reason": "insufficient_scope"}
    anonymous = await error_of(await make_client(), ENVIRONMENTS)
    assert anonymous["extensions"]["code"] == "UNAUTHENTICATED"
    assert (await Environment.get(id=production)).allowed_origins == ["https://a.example"]


# --- the embed page's frame-ancestors -------------------------------------------------------------


def _frame_ancestors(csp: str) -> str:
    directives = dict(d.split(" ", 1) for d in csp.split("; "))
    return directives["frame-ancestors"]


async def _page(client: Client, dashboard_id: str, token: str | None) -> tuple[str, str]:
    """(frame-ancestors, data-allowed-origins) of the embed page opened with ``token``."""
    query = "" if token is None else f"?token={token}"
    response = await client.get(f"/embed/{dashboard_id}{query}")
    assert response.status == 200
    found = re.search(r'data-allowed-origins="([^"]*)"', await response.text())
    assert found is not None
    return _frame_ancestors(response.headers["Content-Security-Policy"]), found[1]


async def test_frame_ancestors_lists_the_token_environments_origins(
    make_client: ClientFactory,
) -> None:
    acme = await embed_org(make_client)
    browser = await make_client()
    token = await mint(acme.client, acme.dashboard_id)
    assert await _page(browser, acme.dashboard_id, token) == ("*", "*")

    assert (await _patch(acme.client, acme.environment_id, ORIGINS))[0] == 200
    # The list applies at once, to tokens minted before the change too.
    assert await _page(browser, acme.dashboard_id, token) == (
        "https://app.example.com http://localhost:3000",
        "https://app.example.com http://localhost:3000",
    )
    assert (await _patch(acme.client, acme.environment_id, []))[0] == 200
    assert await _page(browser, acme.dashboard_id, token) == ("'none'", "")


async def test_each_environment_frames_with_its_own_list(make_client: ClientFactory) -> None:
    acme = await embed_org(make_client)
    development = await Environment.get(org_id=acme.org_id, name="development")
    assert (await _patch(acme.client, development.id, ORIGINS))[0] == 200
    browser = await make_client()
    production_token = await mint(acme.client, acme.dashboard_id)
    assert await _page(browser, acme.dashboard_id, production_token) == ("*", "*")
    development_token = mint_embed_token(
        development,
        tenant_id="acme",
        dashboard_id=acme.dashboard_id,
        permissions=NO_PERMISSIONS,
        expires_in=600,
    ).token
    assert (await _page(browser, acme.dashboard_id, development_token))[0] == " ".join(ORIGINS)


async def test_an_expired_but_signed_token_keeps_its_environments_origins(
    make_client: ClientFactory,
) -> None:
    acme = await embed_org(make_client)
    assert (await _patch(acme.client, acme.environment_id, ORIGINS[:1]))[0] == 200
    environment = await Environment.get(id=acme.environment_id)
    expired = mint_embed_token(
        environment,
        tenant_id="acme",
        dashboard_id=acme.dashboard_id,
        permissions=NO_PERMISSIONS,
        expires_in=60,
        now=int(time.time()) - 3600,
    ).token
    # The runtime must be able to say "expired" inside the customer's page.
    assert await _page(await make_client(), acme.dashboard_id, expired) == (ORIGINS[0], ORIGINS[0])


async def test_no_token_or_an_unsigned_one_may_not_be_framed(make_client: ClientFactory) -> None:
    acme = await embed_org(make_client)
    browser = await make_client()
    token = await mint(acme.client, acme.dashboard_id)
    claims = jwt.decode(token, options={"verify_signature": False})
    header = {"kid": jwt.get_unverified_header(token)["kid"]}
    forged = jwt.encode(
        claims, "not-the-environment-secret-but-long-enough", algorithm="HS256", headers=header
    )
    unsigned = jwt.encode(claims, None, algorithm="none", headers=header)
    head, body, signature = token.split(".")
    for bad in (None, "", "x.y.z", forged, unsigned, f"{head}.{body}.{signature[::-1]}"):
        assert await _page(browser, acme.dashboard_id, bad) == ("'none'", ""), bad


async def test_a_hand_edited_row_cannot_inject_directives(make_client: ClientFactory) -> None:
    acme = await embed_org(make_client)
    await Environment.filter(id=acme.environment_id).update(
        allowed_origins=["https://ok.example", "https://x.example; script-src *", "HTTPS://UP.X"]
    )
    token = await mint(acme.client, acme.dashboard_id)
    assert await _page(await make_client(), acme.dashboard_id, token) == (
        "https://ok.example",
        "https://ok.example",
    )


# --- property: whatever is accepted is a plain origin (safe to print in a CSP header) ----------

_PLAIN_ORIGIN = re.compile(
    r"^https?://(?:[a-z0-9-]+(?:\.[a-z0-9-]+)*|\[[0-9a-f:.]+\])(?::[1-9][0-9]{0,4})?$"
)
_ORIGIN_LIKE = st.builds(
    lambda scheme, host, port, tail: f"{scheme}://{host}{port}{tail}",
    st.sampled_from(["http", "https", "HTTPS", "ftp", "javascript", ""]),
    st.one_of(
        st.from_regex(r"[A-Za-z0-9-]{1,12}(\.[A-Za-z0-9-]{1,12}){0,3}", fullmatch=True),
        st.text(min_size=0, max_size=20),
        st.sampled_from(["[::1]", "[::g]", "127.0.0.1", "*.a.example", "a.example;x"]),
    ),
    st.one_of(st.just(""), st.integers(-1, 70000).map(lambda p: f":{p}"), st.text(max_size=4)),
    st.sampled_from(["", "/", "/x", "?q", "#f", " ", "\n", "; script-src *"]),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(_ORIGIN_LIKE, st.text(max_size=40)), max_size=4))
def test_accepted_origins_are_plain_normalized_and_stable(values: list[str]) -> None:
    try:
        cleaned = clean_allowed_origins(values)
    except BadRequest as refused:
        assert refused.extra == {"field": "allowed_origins"}
        return
    if cleaned == ["*"]:
        return
    for origin in cleaned:
        assert _PLAIN_ORIGIN.match(origin), origin
        assert not re.search(r"^http://.*:80$|^https://.*:443$", origin), origin  # defaults go
    assert len(set(cleaned)) == len(cleaned)
    assert clean_allowed_origins(cleaned) == cleaned

"""One scenario through both edges: REST builds one org, GraphQL another, and the results match.

Both edges call the same services, so the same steps must leave the same members, keys, org
and audit trail; reading one org through both edges must give the same data too.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from tests.conftest import PASSWORD, Client, ClientFactory
from tests.gql_client import data_of, error_of

ORG_FIELDS = "id name email plan createdAt updatedAt"
MEMBER_FIELDS = "id userId email name role createdAt"
KEY_FIELDS = "id label scope prefix environment createdAt lastUsedAt"
INVITE_FIELDS = "id email role createdAt expiresAt"
AUDIT_FIELDS = (
    "id actorType actorId actorLabel action resourceType resourceId ip metadata createdAt"
)


async def rest(
    client: Client, method: str, path: str, status: int, json: dict[str, Any] | None = None
) -> Any:
    response = await client.request(method, path, json=json)
    assert response.status == status, await response.text()
    return await response.json() if status != 204 else None


def snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def as_rest(value: Any) -> Any:
    """A GraphQL result in REST's spelling: snake_case keys, timestamps to the millisecond."""
    if isinstance(value, dict):
        return {snake(k): as_rest(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_rest(v) for v in value]
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+(Z|[+-]\d\d:\d\d)", value):
        instant = _instant(value)
        return instant.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return value


def scrub(value: Any, domain: str, ids: dict[str, str]) -> Any:
    """Drop what differs between two orgs by construction: ids, times, key prefixes, domains."""
    if isinstance(value, dict):
        return {
            k: scrub(v, domain, ids)
            for k, v in value.items()
            if k not in ("created_at", "updated_at", "expires_at", "last_used_at", "prefix")
        }
    if isinstance(value, list):
        return [scrub(v, domain, ids) for v in value]
    if isinstance(value, str):
        if value in ids:
            return ids[value]
        if re.fullmatch(r"emb_.{8}", value):
            return "<key prefix>"
        return value.replace(f"@{domain}", "@example.test")
    return value


class Scenario:
    """The scenario's results on one edge, in REST's spelling."""

    def __init__(self) -> None:
        self.registration: dict[str, Any] = {}
        self.ingest_key: dict[str, Any] = {}
        self.invite: dict[str, Any] = {}
        self.accepted: dict[str, Any] = {}
        self.changed: dict[str, Any] = {}
        self.org: dict[str, Any] = {}
        self.members: list[dict[str, Any]] = []
        self.api_keys: list[dict[str, Any]] = []
        self.invites: list[dict[str, Any]] = []
        self.audit: list[dict[str, Any]] = []
        self.errors: dict[str, Any] = {}

    def ids(self) -> dict[str, str]:
        """Name every id the scenario produced, so two orgs compare by role, not by value."""
        names = {
            self.registration["user"]["id"]: "<owner user>",
            self.registration["org"]["id"]: "<org>",
            self.registration["api_key"]["id"]: "<default key>",
            self.ingest_key["id"]: "<ingest key>",
            self.invite["id"]: "<invite>",
            self.accepted["user"]["id"]: "<editor user>",
            self.changed["id"]: "<editor member>",
        }
        names.update(
            {e["id"]: f"<environment {e['name']}>" for e in self.registration["environments"]}
        )
        owner = next(m for m in self.members if m["role"] == "owner")
        names[owner["id"]] = "<owner member>"
        return names

    def comparable(self, domain: str) -> dict[str, Any]:
        ids = self.ids()
        data = {
            name: getattr(self, name)
            for name in (
                "registration",
                "ingest_key",
                "invite",
                "accepted",
                "changed",
                "org",
                "members",
                "api_keys",
                "invites",
                "errors",
            )
        }
        data["audit"] = [{k: v for k, v in row.items() if k != "id"} for row in self.audit]
        scrubbed: dict[str, Any] = scrub(data, domain, ids)
        scrubbed["registration"]["api_key"].pop("key")
        scrubbed["ingest_key"].pop("key")
        scrubbed["invite"].pop("token")
        scrubbed["invite"].pop("invite_url")
        return scrubbed


async def run_rest(make_client: ClientFactory, domain: str) -> Scenario:
    s = Scenario()
    owner = await make_client()
    s.registration = await rest(
        owner,
        "POST",
        "/v1/auth/register",
        201,
        {"email": f"owner@{domain}", "password": PASSWORD, "name": "Olive", "org_name": "Acme"},
    )
    s.ingest_key = await rest(
        owner, "POST", "/v1/api-keys", 201, {"label": "Events", "scope": "ingest"}
    )
    s.invite = await rest(
        owner, "POST", "/v1/members/invite", 201, {"email": f"eddie@{domain}", "role": "editor"}
    )
    editor = await make_client()
    s.accepted = await rest(
        editor,
        "POST",
        "/v1/auth/accept-invite",
        201,
        {"token": s.invite["token"], "password": PASSWORD, "name": "Eddie"},
    )
    members = (await rest(owner, "GET", "/v1/members", 200))["members"]
    editor_id = next(m["id"] for m in members if m["role"] == "editor")
    s.changed = await rest(owner, "PATCH", f"/v1/members/{editor_id}", 200, {"role": "admin"})
    s.org = await rest(owner, "PATCH", "/v1/settings/org", 200, {"name": "Acme Analytics"})
    s.members = (await rest(owner, "GET", "/v1/members", 200))["members"]
    s.api_keys = (await rest(owner, "GET", "/v1/api-keys", 200))["api_keys"]
    s.invites = (await rest(owner, "GET", "/v1/members/invites", 200))["invites"]
    s.audit = (await rest(owner, "GET", "/v1/audit", 200))["entries"]
    conflict = await rest(
        owner, "POST", "/v1/members/invite", 409, {"email": f"eddie@{domain}", "role": "viewer"}
    )
    bad_scope = await rest(owner, "POST", "/v1/api-keys", 400, {"label": "x", "scope": "root"})
    s.errors = {"already_member": conflict, "bad_scope": bad_scope}
    return s


async def run_graphql(make_client: ClientFactory, domain: str) -> Scenario:
    s = Scenario()
    owner = await make_client()
    registration = await data_of(
        owner,
        f"""mutation R($email: String!) {{
          register(email: $email, password: "{PASSWORD}", name: "Olive", orgName: "Acme") {{
            user {{ id email name createdAt }}
            org {{ {ORG_FIELDS} }}
            environments {{ id name }}
            apiKey {{ key apiKey {{ id label scope prefix environment }} }}
          }}
        }}""",
        {"email": f"owner@{domain}"},
    )
    reg = as_rest(registration["register"])
    reg["api_key"] = {**reg["api_key"]["api_key"], "key": reg["api_key"]["key"]}
    s.registration = reg
    created = await data_of(
        owner,
        f'mutation {{ createApiKey(label: "Events", scope: "ingest")'
        f" {{ key apiKey {{ {KEY_FIELDS} }} }} }}",
    )
    key = as_rest(created["createApiKey"])
    s.ingest_key = {**key["api_key"], "key": key["key"]}
    invited = await data_of(
        owner,
        f"""mutation I($email: String!) {{
          inviteMember(email: $email, role: "editor") {{
            token inviteUrl invite {{ {INVITE_FIELDS} }}
          }}
        }}""",
        {"email": f"eddie@{domain}"},
    )
    invite = as_rest(invited["inviteMember"])
    s.invite = {**invite["invite"], "token": invite["token"], "invite_url": invite["invite_url"]}
    editor = await make_client()
    accepted = await data_of(
        editor,
        f"""mutation A($token: String!) {{
          acceptInvite(token: $token, password: "{PASSWORD}", name: "Eddie") {{
            user {{ id email name createdAt }} org {{ {ORG_FIELDS} }} role
          }}
        }}""",
        {"token": s.invite["token"]},
    )
    s.accepted = as_rest(accepted["acceptInvite"])
    members = (await data_of(owner, "{ members { id role } }"))["members"]
    editor_id = next(m["id"] for m in members if m["role"] == "editor")
    changed = await data_of(
        owner,
        "mutation C($id: ID!) {"
        f' changeMemberRole(id: $id, role: "admin") {{ {MEMBER_FIELDS} }} }}',
        {"id": editor_id},
    )
    s.changed = as_rest(changed["changeMemberRole"])
    org = await data_of(
        owner, f'mutation {{ updateOrg(name: "Acme Analytics") {{ {ORG_FIELDS} }} }}'
    )
    s.org = as_rest(org["updateOrg"])
    reads = as_rest(
        await data_of(
            owner,
            f"""{{
              members {{ {MEMBER_FIELDS} }}
              apiKeys {{ {KEY_FIELDS} }}
              invites {{ {INVITE_FIELDS} }}
              audit {{ {AUDIT_FIELDS} }}
            }}""",
        )
    )
    s.members, s.api_keys, s.invites, s.audit = (
        reads["members"],
        reads["api_keys"],
        reads["invites"],
        reads["audit"],
    )
    conflict = await error_of(
        owner,
        'mutation I($email: String!) { inviteMember(email: $email, role: "viewer") { token } }',
        {"email": f"eddie@{domain}"},
    )
    bad_scope = await error_of(
        owner, 'mutation { createApiKey(label: "x", scope: "root") { key } }', {}
    )
    s.errors = {
        name: {
            "error": e["message"],
            **{
                ("code" if k == "reason" else k): v
                for k, v in e["extensions"].items()
                if k != "code"
            },
        }
        for name, e in (("already_member", conflict), ("bad_scope", bad_scope))
    }
    return s


async def test_rest_and_graphql_run_the_same_scenario_alike(make_client: ClientFactory) -> None:
    by_rest = await run_rest(make_client, "rest.test")
    by_graphql = await run_graphql(make_client, "gql.test")

    # The facts the scenario is about, spelled out once.
    for s, domain in ((by_rest, "rest.test"), (by_graphql, "gql.test")):
        assert [(m["email"], m["name"], m["role"]) for m in s.members] == [
            (f"owner@{domain}", "Olive", "owner"),
            (f"eddie@{domain}", "Eddie", "admin"),
        ]
        assert [(k["label"], k["scope"], k["environment"]) for k in s.api_keys] == [
            ("Default admin key", "admin", "production"),
            ("Events", "ingest", "production"),
        ]
        assert [row["action"] for row in s.audit] == [
            "org.update",
            "member.update_role",
            "invite.accept",
            "invite.create",
            "api_key.create",
            "api_key.create",
            "org.create",
        ]
        assert s.org["name"] == "Acme Analytics"
        assert s.invites == []
        assert s.errors["already_member"] == {
            "error": "this email is already a member of the org",
            "code": "already_member",
        }
        assert s.errors["bad_scope"] == {
            "error": "scope must be admin or ingest",
            "code": "invalid_field",
            "field": "scope",
        }

    # Everything else matches too, field for field (ids named by role, times dropped).
    assert by_graphql.comparable("gql.test") == by_rest.comparable("rest.test")


async def test_one_org_reads_the_same_through_both_edges(make_client: ClientFactory) -> None:
    """Read the REST-built org through GraphQL: identical values, timestamps included."""
    scenario = await run_rest(make_client, "rest.test")
    owner = await make_client()
    await rest(
        owner,
        "POST",
        "/v1/auth/login",
        200,
        {"email": "owner@rest.test", "password": PASSWORD},
    )
    rest_view = {
        "org": await rest(owner, "GET", "/v1/settings/org", 200),
        "members": (await rest(owner, "GET", "/v1/members", 200))["members"],
        "api_keys": (await rest(owner, "GET", "/v1/api-keys", 200))["api_keys"],
        "invites": (await rest(owner, "GET", "/v1/members/invites", 200))["invites"],
        "audit": (await rest(owner, "GET", "/v1/audit", 200))["entries"],
        "me": await rest(owner, "GET", "/v1/auth/me", 200),
    }
    graphql_view = as_rest(
        await data_of(
            owner,
            f"""{{
              org {{ {ORG_FIELDS} }}
              members {{ {MEMBER_FIELDS} }}
              apiKeys {{ {KEY_FIELDS} }}
              invites {{ {INVITE_FIELDS} }}
              audit {{ {AUDIT_FIELDS} }}
              me {{
                user {{ id email name createdAt }} org {{ {ORG_FIELDS} }} role scope
                environment {{ id name }}
              }}
            }}""",
        )
    )
    # GraphQL ids are strings; the audit id is an integer in REST.
    for row in rest_view["audit"]:
        row["id"] = str(row["id"])
    assert graphql_view == rest_view
    assert [row["action"] for row in rest_view["audit"]][:2] == ["session.login", "org.update"]
    assert len(rest_view["audit"]) == len(scenario.audit) + 1

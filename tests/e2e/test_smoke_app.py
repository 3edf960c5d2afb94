from __future__ import annotations

from tests.conftest import ClientFactory, register


async def test_healthz_ok(make_client: ClientFactory) -> None:
    client = await make_client()
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}


async def test_register_then_me(make_client: ClientFactory) -> None:
    client = await make_client()
    body = await register(client)
    assert body["user"]["email"] == "owner@acme.test"
    assert [e["name"] for e in body["environments"]] == ["production", "development"]
    me = await client.get("/v1/auth/me")
    assert me.status == 200
    data = await me.json()
    assert data["role"] == "owner"
    assert data["scope"] == "session"
    assert data["environment"]["name"] == "production"


async def test_join_as_viewer_has_viewer_role(make_client: ClientFactory) -> None:
    from tests.conftest import join_as

    owner = await make_client()
    await register(owner)
    viewer, body = await join_as(owner, make_client, "viewer")
    assert body["role"] == "viewer"
    me = await (await viewer.get("/v1/auth/me")).json()
    assert me["role"] == "viewer"


async def test_over_long_ids_are_404_not_500(make_client: ClientFactory) -> None:
    owner = await make_client()
    await register(owner)
    long_id = "x" * 300
    assert (await owner.delete(f"/v1/api-keys/{long_id}")).status == 404
    assert (await owner.patch(f"/v1/members/{long_id}", json={"role": "admin"})).status == 404
    assert (await owner.delete(f"/v1/members/{long_id}")).status == 404
    created = await owner.post(
        "/v1/api-keys", json={"label": "k", "scope": "ingest", "environment": "e" * 300}
    )
    assert created.status == 400
    assert (await created.json())["field"] == "environment"

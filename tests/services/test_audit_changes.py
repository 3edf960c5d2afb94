"""``audit.save_changes``: set the changed fields, save only those, one audit row; nothing on
no change."""

from __future__ import annotations

from aiohttp.test_utils import TestServer

from emban.auth.principal import Principal
from emban.models import AuditLog, Environment, Org
from emban.services import audit


async def test_changes_are_saved_and_audited_once(app_server: TestServer) -> None:
    org = await Org.create(id="org_audit", name="Before", email="a@acme.test")
    stamp = org.updated_at
    actor = Principal.operator(org.id)
    saved = await audit.save_changes(actor, org, {"name": "After"}, "org.update", {"name": "After"})
    assert saved is True
    assert org.name == "After"
    fresh = await Org.get(id=org.id)
    assert (fresh.name, fresh.email) == ("After", "a@acme.test")
    assert fresh.updated_at > stamp  # models with updated_at: it moves with the change
    rows = await AuditLog.filter(org_id=org.id).values(
        "action", "resource_type", "resource_id", "actor_type", "actor_label", "metadata"
    )
    assert rows == [
        {
            "action": "org.update",
            "resource_type": "org",
            "resource_id": org.id,
            "actor_type": "operator",
            "actor_label": "cli",
            "metadata": {"name": "After"},
        }
    ]


async def test_only_the_changed_fields_are_written(app_server: TestServer) -> None:
    org = await Org.create(id="org_fields", name="Kept")
    stale = await Org.get(id=org.id)
    await Org.filter(id=org.id).update(name="Changed elsewhere")
    await audit.save_changes(Principal.operator(org.id), stale, {"plan": "pro"}, "org.set_plan")
    fresh = await Org.get(id=org.id)
    assert (fresh.name, fresh.plan) == ("Changed elsewhere", "pro")
    row = await AuditLog.get(org_id=org.id)
    assert (row.action, row.resource_type, row.metadata) == ("org.set_plan", "org", {})


async def test_a_model_without_updated_at_saves_just_the_field(app_server: TestServer) -> None:
    org = await Org.create(id="org_env", name="Env")
    environment = await Environment.create(org_id=org.id, name="production", embed_secret="s")
    await audit.save_changes(
        Principal.operator(org.id),
        environment,
        {"allowed_origins": ["https://a.test"]},
        "environment.update",
    )
    fresh = await Environment.get(id=environment.id)
    assert fresh.allowed_origins == ["https://a.test"]
    row = await AuditLog.get(org_id=org.id)
    assert (row.resource_type, row.resource_id) == ("environment", environment.id)


async def test_no_change_writes_nothing(app_server: TestServer) -> None:
    org = await Org.create(id="org_same", name="Same")
    assert await audit.save_changes(Principal.operator(org.id), org, {}, "org.update") is False
    assert await AuditLog.filter(org_id=org.id).count() == 0

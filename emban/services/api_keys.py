"""API keys: bound to one org + environment, scope admin or ingest, shown once, stored hashed."""

from __future__ import annotations

from dataclasses import dataclass

from emban.auth import credentials
from emban.auth.principal import Principal
from emban.error_codes import OrgErrorCode
from emban.errors import BadRequest, NotFound
from emban.models import KEY_SCOPES, ApiKey, Environment, Org
from emban.runtime import Runtime
from emban.services import api_key_cache, audit, billing
from emban.services.access import requires
from emban.services.scope import in_org
from emban.services.validation import clean_name, lookupable


@dataclass(frozen=True)
class CreatedKey:
    api_key: ApiKey
    environment: Environment
    clear_key: str


@requires("admin")
async def list_api_keys(*, actor: Principal) -> list[tuple[ApiKey, Environment]]:
    keys = await in_org(ApiKey, actor).order_by("created_at")
    environments = {env.id: env for env in await in_org(Environment, actor)}
    return [(key, environments[key.environment_id]) for key in keys]


async def resolve_environment(actor: Principal, name_or_id: str | None) -> Environment:
    """The environment named (by name or id) in the actor's org; the actor's own when absent."""
    if name_or_id is None:
        return await in_org(Environment, actor).get(id=actor.environment_id)
    if not lookupable(name_or_id, 64):
        raise BadRequest(f"unknown environment {name_or_id!r}", field="environment")
    env = await in_org(Environment, actor).filter(name=name_or_id).first()
    if env is None:
        env = await in_org(Environment, actor).filter(id=name_or_id).first()
    if env is None:
        raise BadRequest(f"unknown environment {name_or_id!r}", field="environment")
    return env


@requires("admin")
async def create_api_key(
    *, actor: Principal, label: str, scope: str, environment: str | None = None
) -> CreatedKey:
    label = clean_name(label, "label")
    if scope not in KEY_SCOPES:
        raise BadRequest("scope must be admin or ingest", field="scope")
    env = await resolve_environment(actor, environment)
    org = await Org.get(id=actor.org_id)
    billing.check_limit(org, "api_keys", await in_org(ApiKey, actor).count())
    clear = credentials.new_api_key()
    api_key = await ApiKey.create(
        org_id=actor.org_id,
        environment_id=env.id,
        label=label,
        scope=scope,
        prefix=credentials.key_prefix(clear),
        key_hash=credentials.token_digest(clear),
        created_by=actor.actor_id,
    )
    await audit.record(
        actor,
        "api_key.create",
        "api_key",
        api_key.id,
        {"label": label, "scope": scope, "environment": env.name},
    )
    return CreatedKey(api_key, env, clear)


@requires("admin")
async def delete_api_key(rt: Runtime, *, actor: Principal, key_id: str) -> None:
    """Revoke at once: the row goes and, once that commits, every process forgets the key (the
    live bus), so the next request with it gets 401 wherever it lands."""
    api_key = await in_org(ApiKey, actor).get_or_none(id=key_id) if lookupable(key_id) else None
    if api_key is None:
        raise NotFound("API key not found", code=OrgErrorCode.api_key_not_found)
    await api_key.delete()
    await audit.record(actor, "api_key.delete", "api_key", key_id, {"label": api_key.label})
    api_key_cache.announce_revoked(rt, key_ids=[api_key.id])

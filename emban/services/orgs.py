"""Org settings and deletion (owner only, irreversible: metadata and events)."""

from __future__ import annotations

import logging

from emban.auth.principal import Principal
from emban.models import Membership, Org, User
from emban.runtime import Runtime
from emban.services import api_key_cache, audit
from emban.services.access import requires
from emban.services.boundary import after_commit
from emban.services.validation import clean_email, clean_name

log = logging.getLogger(__name__)


@requires("viewer")
async def get_org(*, actor: Principal) -> Org:
    return await Org.get(id=actor.org_id)


@requires("admin")
async def update_org(*, actor: Principal, name: str | None, email: str | None) -> Org:
    org = await Org.get(id=actor.org_id)
    changes: dict[str, str] = {}
    if name is not None:
        changes["name"] = clean_name(name, "name")
    if email is not None:
        changes["email"] = clean_email(email)
    await audit.save_changes(actor, org, changes, "org.update", dict(changes))
    return org


@requires("owner")
async def delete_org(rt: Runtime, *, actor: Principal) -> None:
    """Remove the org's metadata (cascades) and users left without an org; its events are
    deleted by the ``purge_org_events`` job once this has committed.

    ClickHouse deletes are mutations that take seconds; run inside the request's transaction they
    held it open meanwhile (on SQLite: every org's requests waited). After the commit no
    credential can reach the org, so its events are unreachable until the job removes them.
    """
    org = await Org.get(id=actor.org_id)
    user_ids = list(await Membership.filter(org_id=org.id).values_list("user_id", flat=True))
    org_id = org.id

    async def purge_events() -> None:
        await rt.jobs.enqueue("purge_org_events", org_id)

    after_commit(purge_events)
    api_key_cache.announce_revoked(rt, org_id=org_id)  # its keys go with it (cascade)
    await org.delete()
    orphans = [uid for uid in user_ids if not await Membership.filter(user_id=uid).exists()]
    await User.filter(id__in=orphans).delete()
    # The org's own audit rows go with it; the server log keeps the trace.
    log.info("org.delete org=%s by=%s", org.id, actor.actor_id)

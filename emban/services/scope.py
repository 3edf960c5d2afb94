"""The one place org scoping is written: every org-owned read or write starts here."""

from __future__ import annotations

from typing import TypeVar

from tortoise.models import Model
from tortoise.queryset import QuerySet

from emban.auth.principal import Principal

M = TypeVar("M", bound=Model)


def in_org(model: type[M], actor: Principal) -> QuerySet[M]:
    """Rows of ``model`` that belong to the actor's org (the model must have ``org_id``)."""
    return model.filter(org_id=actor.org_id)


async def lock_org(actor: Principal) -> None:
    """Serialize membership changes of one org (``SELECT … FOR UPDATE`` on its row).

    Checks such as "the last owner stays" or "one pending invite per email" read, then write;
    two concurrent requests could both pass the check without this lock. SQLite has no row
    locks, but it runs one write transaction at a time anyway.
    """
    from emban.models import Org

    await Org.filter(id=actor.org_id).select_for_update().first()

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

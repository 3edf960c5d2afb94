"""A new embed session's ``permissions``: the type (:mod:`emban.auth.embed_permissions`) plus
the rules that need the dashboard (every error a 400 naming the field)."""

from __future__ import annotations

from emban.auth.embed_permissions import (
    MAX_ITEMS,
    MAX_RANGE_DAYS,
    PERMISSION_KEYS,
    EmbedPermissions,
    decode_permissions,
)
from emban.errors import BadRequest
from emban.models import Dashboard
from emban.services.dashboards import draft_widgets, published_widgets
from emban.services.validation import require_storable

ADVANCED = "advanced_embed_permissions"

__all__ = [
    "ADVANCED",
    "MAX_ITEMS",
    "MAX_RANGE_DAYS",
    "PERMISSION_KEYS",
    "EmbedPermissions",
    "validate_permissions",
]


def validate_permissions(raw: object, dashboard: Dashboard) -> EmbedPermissions:
    """The ``permissions`` object of a new session; every error is a 400 naming the field."""
    if raw is None:
        return EmbedPermissions()
    if not isinstance(raw, dict):
        raise BadRequest("permissions must be an object", field="permissions")
    require_storable(raw, "permissions")  # the mint's audit row keeps them
    permissions = decode_permissions(raw)
    known = {w.id for w in (*draft_widgets(dashboard), *published_widgets(dashboard))}
    for widget_id in permissions.hidden_widgets:
        if widget_id not in known:
            raise BadRequest(
                f"permissions.hidden_widgets: no widget {widget_id!r} in this dashboard",
                field="permissions.hidden_widgets",
            )
    return permissions

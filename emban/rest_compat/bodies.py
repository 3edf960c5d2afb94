"""Request bodies of the ``/v1`` routes as typed structs: validation and OpenAPI, one source.

Every body refuses fields it does not know (400 naming the field): a misspelt optional field
would otherwise be dropped in silence, e.g. ``"permisions"`` minting an unrestricted embed
session.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

# The ingest event is declared once, by the events service (re-exported for the routes table).
from emban.services.events import IngestBody as IngestBody
from emban.services.events import IngestEvent as IngestEvent


class Body(msgspec.Struct, forbid_unknown_fields=True):
    """Base of every request body."""


class RegisterBody(Body):
    email: str
    password: str
    name: str
    org_name: str


class LoginBody(Body):
    email: str
    password: str


class AcceptInviteBody(Body):
    token: str
    password: str
    name: str


class CreateApiKeyBody(Body):
    label: str
    scope: str
    environment: str | None = None


class InviteBody(Body):
    email: str
    role: str


class RoleBody(Body):
    role: str


class OrgPatchBody(Body):
    name: str | None = None
    email: str | None = None


class AdhocBody(Body):
    sql: str


class SavedQueryBody(Body):
    name: str
    sql: str
    dataset: str = "events"
    starred: bool = False


class SavedQueryPatchBody(Body):
    name: str | None = None
    sql: str | None = None
    dataset: str | None = None
    starred: bool | None = None


class WidgetLayout(Body):
    x: int
    y: int
    w: int
    h: int


class WidgetBody(Body):
    """A widget config: services/widget_config.py decodes and checks it, naming the bad field
    (``widget.title``...), so the handlers read it as a JSON object and pass it on; this type
    documents it. A standalone widget's ``id`` is assigned by the server."""

    kind: Literal["metric", "timeseries", "breakdown", "table", "text"]
    title: str
    layout: WidgetLayout
    id: str | UnsetType = UNSET
    description: str | UnsetType = UNSET
    text: str | UnsetType = UNSET  # text widgets only (markdown)
    query: dict[str, Any] | UnsetType | None = UNSET  # every kind but text
    viz: dict[str, Any] | UnsetType = UNSET  # every kind but text


class WidgetPatchBody(Body):
    """The fields of a widget a patch may change (checked by the service like ``WidgetBody``)."""

    title: str | UnsetType = UNSET
    description: str | UnsetType = UNSET
    text: str | UnsetType = UNSET
    query: dict[str, Any] | UnsetType | None = UNSET
    viz: dict[str, Any] | UnsetType = UNSET
    layout: WidgetLayout | UnsetType = UNSET


class StandaloneWidgetPatchBody(WidgetPatchBody):
    """A standalone widget's patch may also change its kind (the merged config is checked)."""

    kind: Literal["metric", "timeseries", "breakdown", "table", "text"] | UnsetType = UNSET


class DashboardBody(Body):
    name: str
    description: str | None = None
    widgets: list[dict[str, Any]] = []


class DashboardPatchBody(Body):
    name: str | None = None
    description: str | None = None
    widgets: list[dict[str, Any]] | None = None


class PreviewBody(Body):
    widget: dict[str, Any]
    tenant_id: str | None = None


class EmbedSessionBody(Body):
    tenant_id: str
    dashboard_id: str
    expires_in: int = 3600
    permissions: dict[str, Any] | None = None


class RevokeEmbedSessionsBody(Body):
    dashboard_id: str | None = None
    tenant_id: str | None = None


class EnvironmentPatchBody(Body):
    """``["*"]`` or up to 50 origins ``scheme://host[:port]``; checked by the service (400 naming
    ``allowed_origins``)."""

    allowed_origins: list[Any]

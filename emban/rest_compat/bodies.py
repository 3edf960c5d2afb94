"""Request bodies of the ``/v1`` routes as typed structs: validation and OpenAPI, one source."""

from __future__ import annotations

from typing import Any

import msgspec

# The ingest event is declared once, by the events service (re-exported for the routes table).
from emban.services.events import IngestBody as IngestBody
from emban.services.events import IngestEvent as IngestEvent


class RegisterBody(msgspec.Struct):
    email: str
    password: str
    name: str
    org_name: str


class LoginBody(msgspec.Struct):
    email: str
    password: str


class AcceptInviteBody(msgspec.Struct):
    token: str
    password: str
    name: str


class CreateApiKeyBody(msgspec.Struct):
    label: str
    scope: str
    environment: str | None = None


class InviteBody(msgspec.Struct):
    email: str
    role: str


class RoleBody(msgspec.Struct):
    role: str


class OrgPatchBody(msgspec.Struct):
    name: str | None = None
    email: str | None = None


class AdhocBody(msgspec.Struct):
    sql: str


class SavedQueryBody(msgspec.Struct):
    name: str
    sql: str
    dataset: str = "events"
    starred: bool = False


class SavedQueryPatchBody(msgspec.Struct):
    name: str | None = None
    sql: str | None = None
    dataset: str | None = None
    starred: bool | None = None


class DashboardBody(msgspec.Struct):
    name: str
    description: str | None = None
    widgets: list[dict[str, Any]] = []


class DashboardPatchBody(msgspec.Struct):
    name: str | None = None
    description: str | None = None
    widgets: list[dict[str, Any]] | None = None


class PreviewBody(msgspec.Struct):
    widget: dict[str, Any]
    tenant_id: str | None = None


class EmbedSessionBody(msgspec.Struct):
    tenant_id: str
    dashboard_id: str
    expires_in: int = 3600
    permissions: dict[str, Any] | None = None


class RevokeEmbedSessionsBody(msgspec.Struct):
    dashboard_id: str | None = None
    tenant_id: str | None = None


class EnvironmentPatchBody(msgspec.Struct):
    """``["*"]`` or up to 50 origins ``scheme://host[:port]``; checked by the service (400 naming
    ``allowed_origins``)."""

    allowed_origins: list[Any]

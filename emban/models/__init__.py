"""Tortoise models: the metadata store. Only models live here; rules live in ``emban.services``."""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.models import Model

from emban.ids import new_id

ROLES = ("viewer", "editor", "admin", "owner")
KEY_SCOPES = ("admin", "ingest")


def _org_id() -> str:
    return new_id("org")


def _env_id() -> str:
    return new_id("env")


def _user_id() -> str:
    return new_id("usr")


def _member_id() -> str:
    return new_id("mem")


def _key_id() -> str:
    return new_id("key")


def _invite_id() -> str:
    return new_id("inv")


def _any_origin() -> list[str]:
    """A new environment may be framed from anywhere, so embedding works out of the box."""
    return ["*"]


class Org(Model):
    id = fields.CharField(max_length=32, primary_key=True, default=_org_id)
    name = fields.CharField(max_length=200)
    email = fields.CharField(max_length=320, null=True)
    plan = fields.CharField(max_length=20, default="free")
    is_demo = fields.BooleanField(default=False)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "orgs"


class Environment(Model):
    id = fields.CharField(max_length=32, primary_key=True, default=_env_id)
    org: fields.ForeignKeyRelation[Org] = fields.ForeignKeyField(
        "emban.Org", related_name="environments", on_delete=fields.CASCADE
    )
    org_id: str
    name = fields.CharField(max_length=64)
    embed_secret = fields.CharField(max_length=128)
    # Origins that may frame this environment's embeds and receive their messages.
    allowed_origins: fields.Field[list[str]] = fields.JSONField(default=_any_origin)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "environments"
        unique_together = (("org", "name"),)


class User(Model):
    id = fields.CharField(max_length=32, primary_key=True, default=_user_id)
    email = fields.CharField(max_length=320, unique=True)
    name = fields.CharField(max_length=200)
    password_hash = fields.CharField(max_length=255)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "users"


class Membership(Model):
    id = fields.CharField(max_length=32, primary_key=True, default=_member_id)
    org: fields.ForeignKeyRelation[Org] = fields.ForeignKeyField(
        "emban.Org", related_name="memberships", on_delete=fields.CASCADE
    )
    org_id: str
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "emban.User", related_name="memberships", on_delete=fields.CASCADE
    )
    user_id: str
    role = fields.CharField(max_length=16)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "memberships"
        unique_together = (("org", "user"),)


class UserSession(Model):
    """A console login. Only the SHA-256 of the cookie value is stored."""

    id = fields.BigIntField(primary_key=True)
    token_hash = fields.CharField(max_length=64, unique=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "emban.User", related_name="sessions", on_delete=fields.CASCADE
    )
    user_id: str
    org: fields.ForeignKeyRelation[Org] = fields.ForeignKeyField(
        "emban.Org", related_name="sessions", on_delete=fields.CASCADE
    )
    org_id: str
    environment_id = fields.CharField(max_length=32)
    ip = fields.CharField(max_length=64, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    expires_at = fields.DatetimeField(db_index=True)

    class Meta:
        table = "user_sessions"


class ApiKey(Model):
    """An org + environment bound key. The clear key is shown once, only its hash is kept."""

    id = fields.CharField(max_length=32, primary_key=True, default=_key_id)
    org: fields.ForeignKeyRelation[Org] = fields.ForeignKeyField(
        "emban.Org", related_name="api_keys", on_delete=fields.CASCADE
    )
    org_id: str
    environment: fields.ForeignKeyRelation[Environment] = fields.ForeignKeyField(
        "emban.Environment", related_name="api_keys", on_delete=fields.CASCADE
    )
    environment_id: str
    label = fields.CharField(max_length=200)
    scope = fields.CharField(max_length=16)
    prefix = fields.CharField(max_length=16)
    key_hash = fields.CharField(max_length=64, unique=True)
    created_by = fields.CharField(max_length=32, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    last_used_at = fields.DatetimeField(null=True)

    class Meta:
        table = "api_keys"


class Invite(Model):
    id = fields.CharField(max_length=32, primary_key=True, default=_invite_id)
    org: fields.ForeignKeyRelation[Org] = fields.ForeignKeyField(
        "emban.Org", related_name="invites", on_delete=fields.CASCADE
    )
    org_id: str
    email = fields.CharField(max_length=320)
    role = fields.CharField(max_length=16)
    token_hash = fields.CharField(max_length=64, unique=True)
    invited_by = fields.CharField(max_length=32, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    expires_at = fields.DatetimeField()
    accepted_at = fields.DatetimeField(null=True)

    class Meta:
        table = "invites"


class AuditLog(Model):
    id = fields.BigIntField(primary_key=True)
    org: fields.ForeignKeyRelation[Org] = fields.ForeignKeyField(
        "emban.Org", related_name="audit_rows", on_delete=fields.CASCADE
    )
    org_id: str
    actor_type = fields.CharField(max_length=16)
    actor_id = fields.CharField(max_length=64, null=True)
    actor_label = fields.CharField(max_length=320, null=True)
    action = fields.CharField(max_length=64, db_index=True)
    resource_type = fields.CharField(max_length=64)
    resource_id = fields.CharField(max_length=64, null=True)
    ip = fields.CharField(max_length=64, null=True)
    metadata: fields.Field[dict[str, Any]] = fields.JSONField(default=dict)
    created_at = fields.DatetimeField(auto_now_add=True, db_index=True)

    class Meta:
        table = "audit_log"


def _saved_query_id() -> str:
    return new_id("sq")


class SavedQuery(Model):
    """A saved ad-hoc SQL snippet of the org (the Query Builder's list)."""

    id = fields.CharField(max_length=32, primary_key=True, default=_saved_query_id)
    org: fields.ForeignKeyRelation[Org] = fields.ForeignKeyField(
        "emban.Org", related_name="saved_queries", on_delete=fields.CASCADE
    )
    org_id: str
    name = fields.CharField(max_length=200)
    sql = fields.TextField()
    dataset = fields.CharField(max_length=64, default="events")
    starred = fields.BooleanField(default=False)
    created_by = fields.CharField(max_length=32, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "saved_queries"


class UsageDaily(Model):
    """Per org and UTC day: events accepted through ingest and analytics queries run."""

    id = fields.BigIntField(primary_key=True)
    org: fields.ForeignKeyRelation[Org] = fields.ForeignKeyField(
        "emban.Org", related_name="usage_days", on_delete=fields.CASCADE
    )
    org_id: str
    day = fields.DateField()
    events = fields.BigIntField(default=0)
    queries = fields.BigIntField(default=0)

    class Meta:
        table = "usage_daily"
        unique_together = (("org", "day"),)


def _dashboard_id() -> str:
    return new_id("dash")


def _widget_id() -> str:
    return new_id("wid")


class Dashboard(Model):
    """A dashboard: the editable draft and the published snapshot that embeds show."""

    id = fields.CharField(max_length=32, primary_key=True, default=_dashboard_id)
    org: fields.ForeignKeyRelation[Org] = fields.ForeignKeyField(
        "emban.Org", related_name="dashboards", on_delete=fields.CASCADE
    )
    org_id: str
    name = fields.CharField(max_length=200)
    description = fields.TextField(default="")
    draft: fields.Field[dict[str, Any]] = fields.JSONField(default=dict)
    published: fields.Field[dict[str, Any] | None] = fields.JSONField(null=True)
    is_published = fields.BooleanField(default=False, db_index=True)
    published_at = fields.DatetimeField(null=True)
    is_demo = fields.BooleanField(default=False)
    created_by = fields.CharField(max_length=32, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "dashboards"


class Widget(Model):
    """A standalone widget (outside any dashboard), with a draft and a published snapshot."""

    id = fields.CharField(max_length=32, primary_key=True, default=_widget_id)
    org: fields.ForeignKeyRelation[Org] = fields.ForeignKeyField(
        "emban.Org", related_name="widgets", on_delete=fields.CASCADE
    )
    org_id: str
    draft: fields.Field[dict[str, Any]] = fields.JSONField(default=dict)
    published: fields.Field[dict[str, Any] | None] = fields.JSONField(null=True)
    published_at = fields.DatetimeField(null=True)
    created_by = fields.CharField(max_length=32, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "widgets"


class EmbedRevocation(Model):
    """A revoked embed session, or a revocation of many sessions of one environment.

    A row matches a token of its environment issued at or before ``issued_before`` whose session
    id, dashboard and tenant equal the ones the row sets (a ``None`` column matches any)."""

    id = fields.BigIntField(primary_key=True)
    org: fields.ForeignKeyRelation[Org] = fields.ForeignKeyField(
        "emban.Org", related_name="embed_revocations", on_delete=fields.CASCADE
    )
    org_id: str
    environment_id = fields.CharField(max_length=32, db_index=True)
    session_id = fields.CharField(max_length=32, null=True)
    dashboard_id = fields.CharField(max_length=32, null=True)
    tenant_id = fields.CharField(max_length=256, null=True)
    issued_before = fields.BigIntField()  # unix seconds: tokens with iat <= this are revoked
    expires_at = fields.BigIntField()  # unix seconds: no token it can match lives longer
    created_by = fields.CharField(max_length=64, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "embed_revocations"


__all__ = [
    "KEY_SCOPES",
    "ROLES",
    "ApiKey",
    "AuditLog",
    "Dashboard",
    "EmbedRevocation",
    "Environment",
    "Invite",
    "Membership",
    "Org",
    "SavedQuery",
    "UsageDaily",
    "User",
    "UserSession",
    "Widget",
]

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


class AlertRule(Model):
    """An alert on one dashboard widget's metric, for one tenant or every tenant."""

    id = fields.BigIntField(primary_key=True)
    org: fields.ForeignKeyRelation[Org] = fields.ForeignKeyField(
        "emban.Org", related_name="alert_rules", on_delete=fields.CASCADE
    )
    org_id: str
    environment_id = fields.CharField(max_length=32)
    dashboard_id = fields.CharField(max_length=32)
    widget_id = fields.CharField(max_length=64)
    name = fields.CharField(max_length=200)
    condition_type = fields.CharField(max_length=16)
    operator = fields.CharField(max_length=8)
    threshold_value = fields.FloatField()
    lookback_minutes = fields.IntField()
    email_to: fields.Field[list[str]] = fields.JSONField(default=list)
    webhook_url = fields.CharField(max_length=2048, null=True)
    enabled = fields.BooleanField(default=True, db_index=True)
    tenant_id = fields.CharField(max_length=256, null=True)
    per_tenant = fields.BooleanField(default=False)
    created_by = fields.CharField(max_length=64, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "alert_rules"


class AlertState(Model):
    """The state of one rule for one tenant (an empty tenant key: the whole scope of the rule).

    Transitions are conditional writes (a row exists only for a state other than ok), so of two
    workers evaluating the same rule only the one whose write matched records the transition."""

    id = fields.BigIntField(primary_key=True)
    rule: fields.ForeignKeyRelation[AlertRule] = fields.ForeignKeyField(
        "emban.AlertRule", related_name="states", on_delete=fields.CASCADE
    )
    rule_id: int
    tenant_key = fields.CharField(max_length=256, default="")
    state = fields.CharField(max_length=16, default="ok")
    value = fields.FloatField(null=True)
    evaluated_at = fields.DatetimeField(null=True)

    class Meta:
        table = "alert_states"
        unique_together = (("rule", "tenant_key"),)


class AlertEvent(Model):
    id = fields.BigIntField(primary_key=True)
    rule: fields.ForeignKeyRelation[AlertRule] = fields.ForeignKeyField(
        "emban.AlertRule", related_name="events", on_delete=fields.CASCADE
    )
    rule_id: int
    org_id = fields.CharField(max_length=32, db_index=True)
    kind = fields.CharField(max_length=16)
    value = fields.FloatField(null=True)
    threshold_value = fields.FloatField(null=True)
    tenant_id = fields.CharField(max_length=256, null=True)
    message = fields.TextField(default="")
    at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "alert_events"


class Report(Model):
    """A scheduled export of one published dashboard (csv or pdf) by e-mail and/or webhook."""

    id = fields.BigIntField(primary_key=True)
    org: fields.ForeignKeyRelation[Org] = fields.ForeignKeyField(
        "emban.Org", related_name="reports", on_delete=fields.CASCADE
    )
    org_id: str
    environment_id = fields.CharField(max_length=32)
    dashboard_id = fields.CharField(max_length=32)
    name = fields.CharField(max_length=200)
    schedule = fields.CharField(max_length=200)
    timezone = fields.CharField(max_length=64, default="UTC")
    format = fields.CharField(max_length=8, default="csv")
    recipients: fields.Field[list[str]] = fields.JSONField(default=list)
    webhook_url = fields.CharField(max_length=2048, null=True)
    enabled = fields.BooleanField(default=True, db_index=True)
    tenant_id = fields.CharField(max_length=256, null=True)
    tenant_recipients: fields.Field[dict[str, list[str]]] = fields.JSONField(default=dict)
    next_run_at = fields.DatetimeField(null=True, db_index=True)
    last_run_at = fields.DatetimeField(null=True)
    created_by = fields.CharField(max_length=64, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "reports"


class ReportRun(Model):
    id = fields.BigIntField(primary_key=True)
    report: fields.ForeignKeyRelation[Report] = fields.ForeignKeyField(
        "emban.Report", related_name="runs", on_delete=fields.CASCADE
    )
    report_id: int
    org_id = fields.CharField(max_length=32, db_index=True)
    trigger = fields.CharField(max_length=16)
    status = fields.CharField(max_length=16, default="running")
    # The scheduled instant this run is for (None for manual runs): unique per report, so two
    # workers picking the same due report start one run.
    scheduled_for = fields.DatetimeField(null=True)
    format = fields.CharField(max_length=8)
    bytes = fields.BigIntField(default=0)
    error = fields.TextField(null=True)
    started_at = fields.DatetimeField(auto_now_add=True)
    finished_at = fields.DatetimeField(null=True)
    duration_ms = fields.IntField(null=True)

    class Meta:
        table = "report_runs"
        unique_together = (("report", "scheduled_for"),)


class Delivery(Model):
    """One notification to one target: an e-mail or a webhook POST, with its attempts."""

    id = fields.BigIntField(primary_key=True)
    org_id = fields.CharField(max_length=32, db_index=True)
    uid = fields.CharField(max_length=40, unique=True)  # Emban-Delivery, same on every retry
    alert_event: fields.ForeignKeyNullableRelation[AlertEvent] = fields.ForeignKeyField(
        "emban.AlertEvent", related_name="deliveries", null=True, on_delete=fields.CASCADE
    )
    alert_event_id: int | None
    report_run: fields.ForeignKeyNullableRelation[ReportRun] = fields.ForeignKeyField(
        "emban.ReportRun", related_name="deliveries", null=True, on_delete=fields.CASCADE
    )
    report_run_id: int | None
    channel = fields.CharField(max_length=8)  # email | webhook
    event_type = fields.CharField(max_length=32)  # alert.fired, report.run ...
    target = fields.CharField(max_length=2048)
    tenant_id = fields.CharField(max_length=256, null=True)
    status = fields.CharField(max_length=16, default="pending")  # pending|succeeded|failed
    status_code = fields.IntField(null=True)
    error = fields.TextField(null=True)
    attempts = fields.IntField(default=0)
    payload = fields.BinaryField(null=True)  # the webhook body, sent byte-identical on retries
    response_excerpt = fields.CharField(max_length=512, null=True)
    duration_ms = fields.IntField(null=True)
    last_attempt_at = fields.DatetimeField(null=True, db_index=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "deliveries"


class WebhookSecret(Model):
    """The org's webhook signing secret. After a rotation the previous one signs for 24 h."""

    id = fields.BigIntField(primary_key=True)
    org: fields.OneToOneRelation[Org] = fields.OneToOneField(
        "emban.Org", related_name="webhook_secret", on_delete=fields.CASCADE
    )
    org_id: str
    secret = fields.CharField(max_length=80)
    previous = fields.CharField(max_length=80, null=True)
    rotated_at = fields.DatetimeField(null=True)

    class Meta:
        table = "webhook_secrets"


__all__ = [
    "KEY_SCOPES",
    "ROLES",
    "AlertEvent",
    "AlertRule",
    "AlertState",
    "ApiKey",
    "AuditLog",
    "Dashboard",
    "Delivery",
    "EmbedRevocation",
    "Environment",
    "Invite",
    "Membership",
    "Org",
    "Report",
    "ReportRun",
    "SavedQuery",
    "UsageDaily",
    "User",
    "UserSession",
    "WebhookSecret",
    "Widget",
]


class BillingAccount(Model):
    """An org's Paddle customer and subscription, as the last applied webhook left them.

    ``last_event_at`` is the occurred_at of the newest subscription event applied: an older one
    (Paddle retries and reorders deliveries) changes nothing."""

    id = fields.BigIntField(primary_key=True)
    org: fields.OneToOneRelation[Org] = fields.OneToOneField(
        "emban.Org", related_name="billing_account", on_delete=fields.CASCADE
    )
    org_id: str
    # Not unique: one Paddle customer (one e-mail) may pay for several orgs.
    customer_id = fields.CharField(max_length=64, null=True, db_index=True)
    customer_email = fields.CharField(max_length=320, null=True)
    subscription_id = fields.CharField(max_length=64, null=True, db_index=True)
    status = fields.CharField(max_length=16, default="none")
    next_billed_at = fields.DatetimeField(null=True)
    cancel_at = fields.DatetimeField(null=True)
    last_event_at = fields.DatetimeField(null=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "billing_accounts"


class BillingEvent(Model):
    """One Paddle notification received, kept once per event id.

    The unique event id is what makes the webhook idempotent, also for two copies arriving at
    once.
    ``outcome`` says what it did: applied, stale, ignored (a type not handled) or no_org."""

    id = fields.BigIntField(primary_key=True)
    event_id = fields.CharField(max_length=64, unique=True)
    event_type = fields.CharField(max_length=64)
    org_id = fields.CharField(max_length=32, null=True, db_index=True)
    occurred_at = fields.DatetimeField(null=True)
    outcome = fields.CharField(max_length=16)
    received_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "billing_events"

"""Every error ``code`` the service emits, one ``StrEnum`` per domain.

The codes are part of the public contract: REST sends one as ``code`` in the error body,
GraphQL as ``extensions.reason`` (``extensions.code`` is the GraphQL category), and a live
socket refused or closed by the server names one as its close reason. They are exported as
GraphQL enums in ``schema/schema.graphql`` (``AuthErrorCode``, ``EmbedErrorCode`` ...) and as the
``enum`` of the error body's ``code`` in ``schema/openapi.json``; ``tests/test_error_codes.py``
fails when a code is raised that the schema files do not list, or the other way round.

Members are spelt exactly as their wire value (``email_registered = "email_registered"``, not
``EMAIL_REGISTERED``): a GraphQL enum serializes its member *names*, so this keeps the SDL's
enum values identical to what clients receive, and the TypeScript union generated from the SDL
matches the strings the browser runtime switches on.

A code is never reused across domains: ``all_error_codes()`` checks that.
"""

from __future__ import annotations

from enum import StrEnum


class RequestErrorCode(StrEnum):
    """The request itself: its shape, route, size or pace, unexpected failures, and a dependency
    (ClickHouse, the metadata database, Redis) that is down for now (``unavailable``)."""

    bad_request = "bad_request"
    invalid_field = "invalid_field"
    invalid_json = "invalid_json"
    invalid_body = "invalid_body"
    invalid_text = "invalid_text"
    not_found = "not_found"
    route_not_found = "route_not_found"
    method_not_allowed = "method_not_allowed"
    conflict = "conflict"
    forbidden = "forbidden"
    cross_site_request = "cross_site_request"
    payload_too_large = "payload_too_large"
    rate_limited = "rate_limited"
    internal_error = "internal_error"
    unavailable = "unavailable"


class AuthErrorCode(StrEnum):
    """Who is calling and what they may do: credentials, sessions, roles and scopes."""

    unauthenticated = "unauthenticated"
    invalid_auth_header = "invalid_auth_header"
    invalid_api_key = "invalid_api_key"
    invalid_session = "invalid_session"
    session_expired = "session_expired"
    invalid_credentials = "invalid_credentials"
    not_a_session = "not_a_session"
    email_registered = "email_registered"
    insufficient_scope = "insufficient_scope"
    insufficient_role = "insufficient_role"
    owner_required = "owner_required"


class TeamErrorCode(StrEnum):
    """Members and invites of an org."""

    already_member = "already_member"
    invite_pending = "invite_pending"
    invite_not_found = "invite_not_found"
    invite_used = "invite_used"
    invite_expired = "invite_expired"
    member_not_found = "member_not_found"
    last_owner = "last_owner"


class OrgErrorCode(StrEnum):
    """The org's own resources: the org, its environments and API keys."""

    org_not_found = "org_not_found"
    environment_not_found = "environment_not_found"
    api_key_not_found = "api_key_not_found"


class PlanErrorCode(StrEnum):
    """402s: a plan limit reached or a feature the plan lacks (the body names plan and upgrade)."""

    plan_limit = "plan_limit"
    published_dashboards_limit = "published_dashboards_limit"
    api_keys_limit = "api_keys_limit"
    events_limit = "events_limit"
    advanced_embed_permissions = "advanced_embed_permissions"


class DashboardErrorCode(StrEnum):
    """Dashboards and their widgets."""

    dashboard_not_found = "dashboard_not_found"
    never_published = "never_published"
    widget_exists = "widget_exists"
    widget_not_found = "widget_not_found"


class QueryErrorCode(StrEnum):
    """Analytics queries, ad-hoc SQL, saved queries, datasets and discovery."""

    query_failed = "query_failed"
    too_many_points = "too_many_points"
    no_events = "no_events"
    adhoc_rejected = "adhoc_rejected"
    adhoc_failed = "adhoc_failed"
    adhoc_result_too_large = "adhoc_result_too_large"
    saved_query_not_found = "saved_query_not_found"
    dataset_not_found = "dataset_not_found"


class IngestErrorCode(StrEnum):
    """Sending events."""

    invalid_events = "invalid_events"
    ingest_backlog = "ingest_backlog"


class EmbedErrorCode(StrEnum):
    """Embed tokens and sessions, and what an embed may read. ``embed_token_invalid``,
    ``embed_token_expired``, ``embed_token_revoked`` and ``embed_token_required`` are also the
    close reasons of a live socket closed with 4403."""

    embed_token_invalid = "embed_token_invalid"  # noqa: S105 (a code, not a secret)
    embed_token_expired = "embed_token_expired"  # noqa: S105 (a code, not a secret)
    embed_token_revoked = "embed_token_revoked"  # noqa: S105 (a code, not a secret)
    embed_token_required = "embed_token_required"  # noqa: S105 (a code, not a secret)
    embed_session_not_found = "embed_session_not_found"
    dashboard_not_published = "dashboard_not_published"
    demo_not_seeded = "demo_not_seeded"
    embed_filter_forbidden = "embed_filter_forbidden"
    embed_drill_forbidden = "embed_drill_forbidden"


class LiveErrorCode(StrEnum):
    """Live embeds' caps: ``too_many_sockets`` (4429) and ``viewer_too_slow`` (1013) are close
    reasons, the others are the ``extensions.code`` of a refused subscription."""

    too_many_sockets = "too_many_sockets"
    viewer_too_slow = "viewer_too_slow"
    too_many_subscriptions = "too_many_subscriptions"
    too_many_cohorts = "too_many_cohorts"


class AlertErrorCode(StrEnum):
    """Alert rules, scheduled reports and their webhooks."""

    alert_not_found = "alert_not_found"
    report_not_found = "report_not_found"


class BillingErrorCode(StrEnum):
    """Paddle billing: its configuration, the org's Paddle customer, Paddle's answers and the
    webhook's signature."""

    billing_not_configured = "billing_not_configured"
    no_billing_customer = "no_billing_customer"
    billing_provider_error = "billing_provider_error"
    invalid_signature = "invalid_signature"


class ErrorCategory(StrEnum):
    """A GraphQL error's ``extensions.code``: the kind of refusal (its HTTP status on REST).
    The two live caps use their own code there instead (:class:`LiveErrorCode`)."""

    BAD_REQUEST = "BAD_REQUEST"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"
    CONFLICT = "CONFLICT"
    PLAN_LIMIT = "PLAN_LIMIT"
    RATE_LIMITED = "RATE_LIMITED"
    BAD_GATEWAY = "BAD_GATEWAY"
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"


ErrorCode = (
    RequestErrorCode
    | AuthErrorCode
    | TeamErrorCode
    | OrgErrorCode
    | PlanErrorCode
    | DashboardErrorCode
    | QueryErrorCode
    | IngestErrorCode
    | EmbedErrorCode
    | LiveErrorCode
    | AlertErrorCode
    | BillingErrorCode
)
"""Any error code: what :attr:`emban.errors.EmbanError.code` holds."""

ERROR_CODE_ENUMS: tuple[type[StrEnum], ...] = (
    RequestErrorCode,
    AuthErrorCode,
    TeamErrorCode,
    OrgErrorCode,
    PlanErrorCode,
    DashboardErrorCode,
    QueryErrorCode,
    IngestErrorCode,
    EmbedErrorCode,
    LiveErrorCode,
    AlertErrorCode,
    BillingErrorCode,
)
"""The per-domain enums, in the order the schemas list them."""


def all_error_codes() -> list[str]:
    """Every code the service emits, sorted (the ``enum`` of ``code`` in OpenAPI's error body).

    Raises ``ValueError`` if two domains declare the same code: a code names one condition.
    """
    codes = [member.value for enum in ERROR_CODE_ENUMS for member in enum]
    duplicated = sorted({code for code in codes if codes.count(code) > 1})
    if duplicated:
        raise ValueError(f"error codes declared in two domains: {', '.join(duplicated)}")
    return sorted(codes)

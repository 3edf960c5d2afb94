"""Signed embed sessions, and what an embed token may read.

An admin mints a session for one tenant and one dashboard (``POST /v1/embed-sessions``); the
token (:mod:`emban.auth.embed_tokens`) carries the permissions below, and every data request made
with it (``embed.widgetData`` and ``embedLive``) goes through :func:`embed_spec` /
:func:`check_embed_filters`, which is where they are enforced (the table: docs/embedding-api.md):

- the tenant is always the token's tenant, the org and environment the token's (never a filter);
- ``locked_filters`` are ANDed to every query; a request filtering a locked dimension with another
  value is refused (403 ``embed_filter_forbidden``), with the same value it is a no-op;
- ``hidden_widgets`` are never listed and answer 404 ``widget_not_found``; a property key only
  hidden widgets use is never filterable, rangeable or drillable (:class:`Exposure`);
- ``numericRanges`` only on a property a visible widget measures or ``allowed_dimensions`` lists;
- ``allowed_dimensions`` (when non-empty) bounds the dimension filters, the widget's ``group_by``
  and the drill dimension (403 ``embed_filter_forbidden``);
- ``allowed_periods`` (when non-empty) bounds the requested period and keeps date ranges inside
  the longest allowed period's window (403); a widget whose own period is not allowed shows the
  first allowed period instead;
- ``max_date_range_days`` bounds periods, the length of date ranges and how far back they reach
  (403); a widget whose own period is longer shows the longest period that fits (the first
  allowed one when periods are listed);
- ``allow_drill_down`` gates ``drill`` (403 ``embed_drill_forbidden``); a drill adds one
  dimension filter.

Sessions are not stored: the list of active ones is derived from the ``embed_session.create``
audit rows (the spec's wording), which is also why every mint is audited.
"""

from emban.services.embeds.data import (
    EmbedDashboard,
    EmbedView,
    check_live_filters,
    embed_dashboard,
    embed_grant,
    embed_widget_data,
    embed_widget_result,
    embed_widget_results,
)
from emban.services.embeds.enforcement import (
    MAX_BUCKETS,
    Exposure,
    check_embed_filters,
    date_range_bounds,
    embed_spec,
    exposure_of,
)
from emban.services.embeds.filters import Drill, EmbedFilters, parse_embed_filters
from emban.services.embeds.permissions import (
    ADVANCED,
    MAX_ITEMS,
    MAX_RANGE_DAYS,
    EmbedPermissions,
    validate_permissions,
)
from emban.services.embeds.sessions import (
    DEFAULT_TTL,
    DEMO_MINTS_PER_MINUTE,
    DEMO_TENANT,
    DEMO_TTL,
    MAX_LISTED_SESSIONS,
    MAX_TENANT,
    MAX_TTL,
    MIN_TTL,
    SESSION_ACTION,
    SESSION_SCOPE,
    ActiveEmbedSession,
    EmbedSession,
    create_embed_session,
    demo_embed_url,
    list_embed_sessions,
)

__all__ = [
    "ADVANCED",
    "DEFAULT_TTL",
    "DEMO_MINTS_PER_MINUTE",
    "DEMO_TENANT",
    "DEMO_TTL",
    "MAX_BUCKETS",
    "MAX_ITEMS",
    "MAX_LISTED_SESSIONS",
    "MAX_RANGE_DAYS",
    "MAX_TENANT",
    "MAX_TTL",
    "MIN_TTL",
    "SESSION_ACTION",
    "SESSION_SCOPE",
    "ActiveEmbedSession",
    "Drill",
    "EmbedDashboard",
    "EmbedFilters",
    "EmbedPermissions",
    "EmbedSession",
    "EmbedView",
    "Exposure",
    "check_embed_filters",
    "check_live_filters",
    "create_embed_session",
    "date_range_bounds",
    "demo_embed_url",
    "embed_dashboard",
    "embed_grant",
    "embed_spec",
    "embed_widget_data",
    "embed_widget_result",
    "embed_widget_results",
    "exposure_of",
    "list_embed_sessions",
    "parse_embed_filters",
    "validate_permissions",
]

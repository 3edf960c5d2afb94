"""What an embed session allows, as a type: decoded once, when its token is verified
(:func:`emban.auth.embed_tokens.verify_embed_token`), and carried on the embed principal.

The same type validates a new session's ``permissions`` object
(:func:`emban.services.embeds.permissions.validate_permissions` adds the rules that need the
dashboard); every refusal is a 400 naming the field (:data:`RULES`). Empty lists and ``None``
mean "no restriction". Where each permission is enforced: :mod:`emban.services.embeds`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

import msgspec
from msgspec import Meta
from msgspec.structs import force_setattr

from emban.analytics.query_spec import MAX_NAME, PERIOD_LENGTH, PERIODS, is_property_key
from emban.wire import FieldRule, Rules, decode

MAX_ITEMS = 50  # per permission list / filter object: tokens travel in URLs
MAX_RANGE_DAYS = 3_650
KEY_RULE = " must be a property key of letters, digits and _ . : - / (max 64)"

Item = Annotated[str, Meta(max_length=MAX_NAME)]
Items = Annotated[tuple[Item, ...], Meta(max_length=MAX_ITEMS)]


class EmbedPermissions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a session allows; empty lists and ``None`` mean "no restriction". Lists keep their
    first occurrence of each item."""

    allow_drill_down: bool = False
    locked_filters: Annotated[dict[str, Item], Meta(max_length=MAX_ITEMS)] = {}
    hidden_widgets: Items = ()
    allowed_dimensions: Items = ()
    allowed_periods: Items = ()  # each one of PERIODS (checked below, naming the period)
    max_date_range_days: Annotated[int, Meta(ge=1, le=MAX_RANGE_DAYS)] | None = None

    def __post_init__(self) -> None:
        for key in self.locked_filters:
            if not is_property_key(key):
                raise FieldRule(f"locked_filters.{key}", KEY_RULE)
        for name in ("hidden_widgets", "allowed_dimensions", "allowed_periods"):
            force_setattr(self, name, tuple(dict.fromkeys(getattr(self, name))))
        for key in self.allowed_dimensions:
            if not is_property_key(key):
                raise FieldRule("allowed_dimensions", KEY_RULE)
        for period in self.allowed_periods:
            if period not in PERIODS:
                raise FieldRule(
                    "allowed_periods", f": {period!r} is not one of {', '.join(PERIODS)}"
                )
        for period in self.allowed_periods:  # the fallback period must itself be usable
            if not self.allows_period(period):
                raise FieldRule("allowed_periods", f": {period} is longer than max_date_range_days")

    @property
    def advanced(self) -> tuple[str, ...]:
        """The permissions in use that need a plan with advanced embed permissions."""
        used = (
            ("allow_drill_down", self.allow_drill_down),
            ("allowed_dimensions", bool(self.allowed_dimensions)),
            ("allowed_periods", bool(self.allowed_periods)),
            ("max_date_range_days", self.max_date_range_days is not None),
        )
        return tuple(name for name, on in used if on)

    def allows_period(self, period: str) -> bool:
        if self.allowed_periods and period not in self.allowed_periods:
            return False
        return self.max_date_range_days is None or PERIOD_LENGTH[period] <= timedelta(
            days=self.max_date_range_days
        )

    def claims(self) -> dict[str, Any]:
        """The token's (and the audit row's) ``permissions`` claim: every key, as JSON."""
        claims: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(self))  # every field
        return claims

    @property
    def cohort_key(self) -> str:
        """Canonical JSON: equal permissions give equal keys (live cohorts share one query)."""
        return msgspec.json.encode(self.claims(), order="sorted").decode()


PERMISSION_KEYS: tuple[str, ...] = EmbedPermissions.__struct_fields__
_LIST = " must be a list of at most 50 strings"
_STRING = f" must be a string of at most {MAX_NAME} characters"
RULES = Rules(
    messages={
        "": " must be an object",
        "allow_drill_down": " must be true or false",
        "locked_filters": {
            "type": " must be an object",
            "default": f": at most {MAX_ITEMS} filters",
        },
        "locked_filters.*": _STRING,
        "hidden_widgets": _LIST,
        "hidden_widgets[]": _STRING,
        "allowed_dimensions": _LIST,
        "allowed_dimensions[]": _STRING,
        "allowed_periods": _LIST,
        "allowed_periods[]": _STRING,
        "max_date_range_days": f" must be a whole number from 1 to {MAX_RANGE_DAYS}",
    },
    unknown={"": f" is not a permission (use {', '.join(PERMISSION_KEYS)})"},
    maps={"locked_filters": Item},
)


def decode_permissions(raw: object, field: str = "permissions") -> EmbedPermissions:
    """A ``permissions`` object from the wire (``None`` or a null permission: no restriction)."""
    if isinstance(raw, dict):
        raw = {key: value for key, value in raw.items() if value is not None}
    permissions: EmbedPermissions = decode(
        {} if raw is None else raw, EmbedPermissions, field, RULES
    )
    return permissions


def permissions_of_claims(claims: object) -> EmbedPermissions | None:
    """A verified token's ``permissions`` claim, or None when it does not decode (the token is
    then refused as invalid: we only sign what :func:`decode_permissions` accepted)."""
    try:
        permissions: EmbedPermissions = msgspec.convert(claims, EmbedPermissions, strict=True)
    except (msgspec.ValidationError, FieldRule):
        return None
    return permissions

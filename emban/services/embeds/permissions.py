"""Embed session permissions: the type a token carries and the validation of a new session's
``permissions`` object (every error a 400 naming the field)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from emban.analytics.query_spec import MAX_NAME, PERIOD_LENGTH, PERIODS, property_key
from emban.errors import BadRequest
from emban.models import Dashboard
from emban.services.dashboards import draft_widgets, published_widgets
from emban.services.validation import require_storable

MAX_ITEMS = 50  # per permission list / filter object: tokens travel in URLs
MAX_RANGE_DAYS = 3_650
ADVANCED = "advanced_embed_permissions"

_PERMISSION_KEYS = (
    "allow_drill_down",
    "locked_filters",
    "hidden_widgets",
    "allowed_dimensions",
    "allowed_periods",
    "max_date_range_days",
)


@dataclass(frozen=True)
class EmbedPermissions:
    """What a session allows; empty lists and ``None`` mean "no restriction"."""

    allow_drill_down: bool = False
    locked_filters: Mapping[str, str] = field(default_factory=dict)
    hidden_widgets: tuple[str, ...] = ()
    allowed_dimensions: tuple[str, ...] = ()
    allowed_periods: tuple[str, ...] = ()
    max_date_range_days: int | None = None

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

    def claims(self) -> dict[str, Any]:
        return {
            "allow_drill_down": self.allow_drill_down,
            "locked_filters": dict(self.locked_filters),
            "hidden_widgets": list(self.hidden_widgets),
            "allowed_dimensions": list(self.allowed_dimensions),
            "allowed_periods": list(self.allowed_periods),
            "max_date_range_days": self.max_date_range_days,
        }

    @classmethod
    def of_claims(cls, claims: Mapping[str, Any]) -> EmbedPermissions:
        """From a verified token (signed by us after :func:`validate_permissions`)."""
        return cls(
            allow_drill_down=claims.get("allow_drill_down") is True,
            locked_filters=dict(claims.get("locked_filters") or {}),
            hidden_widgets=tuple(claims.get("hidden_widgets") or ()),
            allowed_dimensions=tuple(claims.get("allowed_dimensions") or ()),
            allowed_periods=tuple(claims.get("allowed_periods") or ()),
            max_date_range_days=claims.get("max_date_range_days"),
        )

    def allows_period(self, period: str) -> bool:
        if self.allowed_periods and period not in self.allowed_periods:
            return False
        return self.max_date_range_days is None or PERIOD_LENGTH[period] <= timedelta(
            days=self.max_date_range_days
        )


def _object(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRequest(f"{name} must be an object", field=name)
    return value


def _string(value: Any, name: str, max_length: int = MAX_NAME) -> str:
    if not isinstance(value, str) or len(value) > max_length:
        raise BadRequest(f"{name} must be a string of at most {max_length} characters", field=name)
    return value


def _strings(value: Any, name: str) -> list[str]:
    """A list of strings, duplicates dropped (order kept); ``None`` is the empty list."""
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_ITEMS:
        raise BadRequest(f"{name} must be a list of at most {MAX_ITEMS} strings", field=name)
    return list(dict.fromkeys(_string(item, name) for item in value))


def validate_permissions(raw: Any, dashboard: Dashboard) -> EmbedPermissions:
    """The ``permissions`` object of a new session; every error is a 400 naming the field."""
    if raw is None:
        return EmbedPermissions()
    given = _object(raw, "permissions")
    require_storable(given, "permissions")  # the mint's audit row keeps them
    for key in given:
        if key not in _PERMISSION_KEYS:
            raise BadRequest(
                f"permissions.{key} is not a permission (use {', '.join(_PERMISSION_KEYS)})",
                field=f"permissions.{key}",
            )
    drill = given.get("allow_drill_down", False)
    if drill is None:
        drill = False
    if not isinstance(drill, bool):
        raise BadRequest(
            "permissions.allow_drill_down must be true or false",
            field="permissions.allow_drill_down",
        )
    locked_raw = given.get("locked_filters") or {}
    locked = _object(locked_raw, "permissions.locked_filters")
    if len(locked) > MAX_ITEMS:
        raise BadRequest(
            f"permissions.locked_filters: at most {MAX_ITEMS} filters",
            field="permissions.locked_filters",
        )
    for key, value in locked.items():
        name = f"permissions.locked_filters.{key}"
        property_key(key, name)
        _string(value, name)
    hidden = _strings(given.get("hidden_widgets"), "permissions.hidden_widgets")
    known = {w.id for w in (*draft_widgets(dashboard), *published_widgets(dashboard))}
    for widget_id in hidden:
        if widget_id not in known:
            raise BadRequest(
                f"permissions.hidden_widgets: no widget {widget_id!r} in this dashboard",
                field="permissions.hidden_widgets",
            )
    dimensions = _strings(given.get("allowed_dimensions"), "permissions.allowed_dimensions")
    for key in dimensions:
        property_key(key, "permissions.allowed_dimensions")
    periods = _strings(given.get("allowed_periods"), "permissions.allowed_periods")
    for period in periods:
        if period not in PERIODS:
            raise BadRequest(
                f"permissions.allowed_periods: {period!r} is not one of {', '.join(PERIODS)}",
                field="permissions.allowed_periods",
            )
    max_days = given.get("max_date_range_days")
    if max_days is not None and (
        isinstance(max_days, bool)
        or not isinstance(max_days, int)
        or not 1 <= max_days <= MAX_RANGE_DAYS
    ):
        raise BadRequest(
            f"permissions.max_date_range_days must be a whole number from 1 to {MAX_RANGE_DAYS}",
            field="permissions.max_date_range_days",
        )
    permissions = EmbedPermissions(
        allow_drill_down=drill,
        locked_filters=dict(locked),
        hidden_widgets=tuple(hidden),
        allowed_dimensions=tuple(dimensions),
        allowed_periods=tuple(periods),
        max_date_range_days=max_days,
    )
    for period in periods:  # the fallback period must itself be usable
        if not permissions.allows_period(period):
            raise BadRequest(
                f"permissions.allowed_periods: {period} is longer than max_date_range_days",
                field="permissions.allowed_periods",
            )
    return permissions

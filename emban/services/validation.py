"""Small value checks shared by services (each raises a 400 naming the field)."""

from __future__ import annotations

import re
from typing import Any

from emban.errors import BadRequest
from emban.ids import ID_LENGTH, lookupable, storable

__all__ = [
    "ID_LENGTH",
    "clean_email",
    "clean_name",
    "clean_password",
    "lookupable",
    "require_storable",
    "storable",
]

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s.]{2,}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MIN_PASSWORD = 8


def require_storable(value: Any, field: str) -> None:
    """400 naming the place when a text anywhere in ``value`` (a JSON document headed for a
    metadata column: strings, keys, nested lists and objects) holds a NUL character, which
    PostgreSQL cannot store. Events may hold NUL (ClickHouse stores it); configs may not."""
    if isinstance(value, str):
        if not storable(value):
            raise BadRequest(f"{field} must not contain a NUL character", field=field)
    elif isinstance(value, dict):
        for key, item in value.items():
            require_storable(key, f"{field} (a key)")
            require_storable(item, f"{field}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            require_storable(item, f"{field}[{index}]")


def clean_email(value: str, field: str = "email") -> str:
    email = value.strip().lower()
    if len(email) > 320 or _CONTROL.search(email) or not _EMAIL.match(email):
        raise BadRequest(f"{field} is not a valid email address", field=field)
    return email


def clean_password(value: str, field: str = "password") -> str:
    if len(value) < MIN_PASSWORD:
        raise BadRequest(f"{field} must be at least {MIN_PASSWORD} characters", field=field)
    if len(value) > 1024:
        raise BadRequest(f"{field} must be at most 1024 characters", field=field)
    return value


def clean_name(value: str, field: str, max_length: int = 200) -> str:
    name = value.strip()
    if not name:
        raise BadRequest(f"{field} must not be empty", field=field)
    if len(name) > max_length:
        raise BadRequest(f"{field} must be at most {max_length} characters", field=field)
    if _CONTROL.search(name):
        raise BadRequest(f"{field} must not contain control characters", field=field)
    return name

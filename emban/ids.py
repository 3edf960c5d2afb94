"""Public identifiers and their rules: a type prefix and 20 random base32 characters
(``org_…``, ``key_…``), and which strings can possibly name a stored row.

These rules live here, below both ``auth`` and ``services``, so that auth (which looks up an
embed token's signing key by id) never imports the service layer.
"""

from __future__ import annotations

import base64
import secrets

ID_LENGTH = 32  # every public id (org_…, key_…, mem_…, sq_…) fits in 32 characters


def new_id(prefix: str) -> str:
    raw = base64.b32encode(secrets.token_bytes(15)).decode().lower()
    return f"{prefix}_{raw[:20]}"


def storable(value: str) -> bool:
    """False for text PostgreSQL cannot store or compare (a NUL character): look nothing up."""
    return "\x00" not in value


def lookupable(value: str, max_length: int = ID_LENGTH) -> bool:
    """False when no stored row can match: a NUL, or longer than the column (the ORM refuses
    such a lookup value instead of finding nothing)."""
    return storable(value) and len(value) <= max_length

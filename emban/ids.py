"""Public identifiers: a type prefix and 20 random base32 characters (``org_…``, ``key_…``)."""

from __future__ import annotations

import base64
import secrets


def new_id(prefix: str) -> str:
    raw = base64.b32encode(secrets.token_bytes(15)).decode().lower()
    return f"{prefix}_{raw[:20]}"

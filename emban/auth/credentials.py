"""Password hashing (argon2id) and opaque tokens stored only as SHA-256 digests."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
# Verifying against this when the email is unknown keeps login timing independent of the email.
_DUMMY_HASH = _hasher.hash("emban-dummy-password-for-timing")

API_KEY_PREFIX = "emb_"
PREFIX_LENGTH = 12


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def digests_match(stored: str, token: str) -> bool:
    return hmac.compare_digest(stored, token_digest(token))


def new_session_token() -> str:
    return secrets.token_urlsafe(32)


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(30)


def key_prefix(key: str) -> str:
    return key[:PREFIX_LENGTH]

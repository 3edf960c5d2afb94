"""Password hashing (argon2id) and opaque tokens stored only as SHA-256 digests.

An argon2 hash or verify is ~50 ms of CPU and 64 MiB of memory by design. Run on the event loop,
four clients registering in a loop took ``/healthz`` from 3 ms to ~460 ms, so every hash and verify
runs in a small dedicated thread pool (argon2-cffi releases the GIL): the loop keeps serving, and
the pool's size bounds how many cores and how much memory concurrent hashing can take. Requests
beyond it queue in the pool; the per-IP limits on login, registration and invites bound the queue.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import secrets
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
# Verifying against this when the email is unknown keeps login timing independent of the email.
_DUMMY_HASH = _hasher.hash("emban-dummy-password-for-timing")
# Half the cores (at least one) so hashing never takes every core from the event loop.
HASH_THREADS = max(1, (os.cpu_count() or 2) // 2)
HASH_THREAD_PREFIX = "emban-argon2"
_pool = ThreadPoolExecutor(max_workers=HASH_THREADS, thread_name_prefix=HASH_THREAD_PREFIX)

API_KEY_PREFIX = "emb_"
PREFIX_LENGTH = 12


def _verify(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


async def hash_password(password: str) -> str:
    """The argon2id hash of ``password``, computed off the event loop."""
    return await asyncio.get_running_loop().run_in_executor(_pool, _hasher.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; an unknown user (None) costs the same and is False."""
    return await asyncio.get_running_loop().run_in_executor(_pool, _verify, password_hash, password)


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

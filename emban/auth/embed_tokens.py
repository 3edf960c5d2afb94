"""Signed embed sessions: HS256 JWTs minted with the environment's ``embed_secret``.

The header's ``kid`` is the environment id, so verification finds the one secret that can have
signed the token (rotating an environment's secret revokes every token it signed). Claims:
``iss`` ("emban"), ``org``, ``env``, ``tenant``, ``dashboard``, ``permissions``, ``iat``, ``exp``,
``jti``. The permissions claim is decoded here, once, into
:class:`~emban.auth.embed_permissions.EmbedPermissions` on the principal; what they mean is
:mod:`emban.services.embeds`' business.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from emban.auth.credentials import API_KEY_PREFIX
from emban.auth.embed_permissions import permissions_of_claims
from emban.auth.principal import EmbedGrant, Principal
from emban.error_codes import EmbedErrorCode
from emban.errors import Unauthenticated
from emban.ids import lookupable, new_id
from emban.models import Environment

ISSUER = "emban"
ALGORITHM = "HS256"
_REQUIRED = ("iss", "org", "env", "tenant", "dashboard", "permissions", "iat", "exp", "jti")


@dataclass(frozen=True)
class MintedToken:
    token: str
    jti: str
    issued_at: int  # unix seconds
    expires_at: int  # unix seconds


def mint_embed_token(
    environment: Environment,
    *,
    tenant_id: str,
    dashboard_id: str,
    permissions: Mapping[str, object],
    expires_in: int,
    now: int | None = None,
) -> MintedToken:
    """Sign a session for one tenant and one dashboard (callers have validated the inputs;
    ``permissions`` is the claim, :meth:`EmbedPermissions.claims`)."""
    issued_at = int(time.time()) if now is None else now
    jti = new_id("es")
    claims = {
        "iss": ISSUER,
        "org": environment.org_id,
        "env": environment.id,
        "tenant": tenant_id,
        "dashboard": dashboard_id,
        "permissions": permissions,
        "iat": issued_at,
        "exp": issued_at + expires_in,
        "jti": jti,
    }
    token = jwt.encode(
        claims, environment.embed_secret, algorithm=ALGORITHM, headers={"kid": environment.id}
    )
    return MintedToken(token, jti, issued_at, issued_at + expires_in)


def looks_like_embed_token(value: str) -> bool:
    """A JWT (three dot-separated parts), not an API key: what ``Bearer`` values to verify here."""
    return not value.startswith(API_KEY_PREFIX) and value.count(".") == 2


def _invalid() -> Unauthenticated:
    return Unauthenticated("embed token is invalid", code=EmbedErrorCode.embed_token_invalid)


def _int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


async def _signed_claims(token: str) -> tuple[Environment, dict[str, Any]]:
    """The environment whose secret signed ``token`` and the token's claims, expiry unchecked;
    401 ``embed_token_invalid`` when no environment's secret did or a claim is malformed."""
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError:
        raise _invalid() from None
    if not isinstance(kid, str) or not lookupable(kid):
        raise _invalid()
    environment = await Environment.get_or_none(id=kid)
    if environment is None:
        raise _invalid()
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            environment.embed_secret,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": list(_REQUIRED), "verify_exp": False, "verify_iat": False},
        )
    except jwt.PyJWTError:
        raise _invalid() from None
    if (
        claims["org"] != environment.org_id
        or claims["env"] != environment.id
        or not isinstance(claims["tenant"], str)
        or not isinstance(claims["dashboard"], str)
        or not isinstance(claims["jti"], str)
        or not isinstance(claims["permissions"], dict)
        or not _int(claims["iat"])
        or not _int(claims["exp"])
    ):
        raise _invalid()
    return environment, claims


async def signed_environment(token: str) -> Environment | None:
    """The environment that signed ``token`` (expired or not), or None: what the embed page needs
    to choose its ``frame-ancestors`` before the runtime has made any request."""
    try:
        environment, _ = await _signed_claims(token)
    except Unauthenticated:
        return None
    return environment


async def verify_embed_token(
    token: str, *, ip: str | None = None, now: float | None = None
) -> Principal:
    """The embed principal a token grants, or 401 ``embed_token_expired`` / ``embed_token_invalid``.

    The signature is checked before anything the claims say is believed. Expiry is compared with
    ``now`` (default: the clock) here rather than inside pyjwt, so a test can verify "later"
    without waiting; an expired token answers ``embed_token_expired`` only once its signature holds.
    """
    environment, claims = await _signed_claims(token)
    if claims["exp"] <= (time.time() if now is None else now):
        raise Unauthenticated("embed token has expired", code=EmbedErrorCode.embed_token_expired)
    permissions = permissions_of_claims(claims["permissions"])
    if permissions is None:
        raise _invalid()
    return Principal(
        kind="embed",
        org_id=environment.org_id,
        environment_id=environment.id,
        role=None,
        scope="embed",
        ip=ip,
        embed=EmbedGrant(
            tenant_id=claims["tenant"],
            dashboard_id=claims["dashboard"],
            permissions=permissions,
            jti=claims["jti"],
            expires_at=claims["exp"],
            issued_at=claims["iat"],
        ),
    )

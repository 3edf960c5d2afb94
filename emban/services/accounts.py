"""Registration, login, logout, invites acceptance and resolving credentials to a principal."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from tortoise.exceptions import IntegrityError

from emban.auth import credentials, embed_tokens
from emban.auth.principal import Principal
from emban.error_codes import AuthErrorCode, TeamErrorCode
from emban.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    TooManyAttempts,
    Unauthenticated,
)
from emban.models import ApiKey, Environment, Invite, Membership, Org, User, UserSession
from emban.runtime import Runtime
from emban.services import audit, embed_revocations
from emban.services.access import requires
from emban.services.api_key_cache import ApiKeyCache, VerifiedKey
from emban.services.boundary import transaction
from emban.services.validation import clean_email, clean_name, clean_password, storable

DEFAULT_ENVIRONMENTS = ("production", "development")
BAD_LOGIN = "invalid email or password"
API_KEY_TOUCH_SECONDS = 60


@dataclass(frozen=True)
class Registration:
    user: User
    org: Org
    environments: list[Environment]
    api_key: ApiKey
    clear_key: str
    session_token: str


@dataclass(frozen=True)
class LoginResult:
    user: User
    org: Org
    role: str
    session_token: str


def _now() -> datetime:
    return datetime.now(UTC)


async def _start_session(rt: Runtime, user: User, org: Org, ip: str | None) -> str:
    token = credentials.new_session_token()
    production = await Environment.get(org_id=org.id, name="production")
    await UserSession.create(
        token_hash=credentials.token_digest(token),
        user_id=user.id,
        org_id=org.id,
        environment_id=production.id,
        ip=ip,
        expires_at=_now() + timedelta(seconds=rt.settings.session_ttl_seconds),
    )
    return token


def session_principal(
    user: User,
    membership: Membership,
    environment_id: str,
    ip: str | None,
    session_id: int | None = None,
) -> Principal:
    return Principal(
        kind="session",
        org_id=membership.org_id,
        environment_id=environment_id,
        role=membership.role,
        scope="session",
        user_id=user.id,
        session_id=session_id,
        ip=ip,
        label=user.email,
    )


async def create_org_with_owner(
    rt: Runtime,
    *,
    email: str,
    password_hash: str,
    name: str,
    org_name: str,
    ip: str | None,
    is_demo: bool = False,
) -> Registration:
    """Create the user, org, owner membership, default environments and default admin key.

    Takes the password already hashed: the caller hashes before its transaction opens."""
    email = clean_email(email)
    name = clean_name(name, "name")
    org_name = clean_name(org_name, "org_name")
    if await User.exists(email=email):
        raise Conflict("this email is already registered", code=AuthErrorCode.email_registered)
    try:
        user = await User.create(email=email, name=name, password_hash=password_hash)
    except IntegrityError:
        raise Conflict(
            "this email is already registered", code=AuthErrorCode.email_registered
        ) from None
    org = await Org.create(
        name=org_name, email=email, plan=rt.settings.default_plan, is_demo=is_demo
    )
    membership = await Membership.create(org_id=org.id, user_id=user.id, role="owner")
    environments = [
        await Environment.create(org_id=org.id, name=env, embed_secret=secrets.token_urlsafe(48))
        for env in DEFAULT_ENVIRONMENTS
    ]
    actor = session_principal(user, membership, environments[0].id, ip)
    clear_key = credentials.new_api_key()
    api_key = await ApiKey.create(
        org_id=org.id,
        environment_id=environments[0].id,
        label="Default admin key",
        scope="admin",
        prefix=credentials.key_prefix(clear_key),
        key_hash=credentials.token_digest(clear_key),
        created_by=user.id,
    )
    await audit.record(actor, "org.create", "org", org.id, {"name": org.name})
    await audit.record(
        actor, "api_key.create", "api_key", api_key.id, {"label": api_key.label, "scope": "admin"}
    )
    token = await _start_session(rt, user, org, ip)
    return Registration(user, org, environments, api_key, clear_key, token)


AttemptAction = Literal["register", "accept-invite", "login"]
LOGIN_REFUSED = "too many login attempts; try again later"
SOURCE_REFUSED = "too many attempts from this address; try again later"


@dataclass(frozen=True)
class Attempt:
    """One attempt of ``action`` from ``ip``, counted by that action's per-address limit and let
    through: the service doing the work requires it. The edges take it before they decode the
    request, so a refusal costs neither a body decode nor a password hash."""

    action: AttemptAction
    ip: str | None


async def admit(rt: Runtime, action: AttemptAction, ip: str | None) -> Attempt:
    """Count one attempt of ``action`` from ``ip``; 429 (:class:`TooManyAttempts`, answered
    after the tarpit's delay) once the address is over its limit for the window."""
    settings = rt.settings
    if action == "login":
        limit, window, refused = (
            settings.login_max_per_ip,
            settings.login_window_seconds,
            LOGIN_REFUSED,
        )
    else:
        limit = (
            settings.register_max_per_ip
            if action == "register"
            else settings.accept_invite_max_per_ip
        )
        window, refused = settings.signup_window_seconds, SOURCE_REFUSED
    wait = await rt.limiter.hit(f"{action}:ip:{ip}", limit, window)
    if wait is not None:
        raise TooManyAttempts(refused, retry_after=wait)
    return Attempt(action, ip)


def _admitted(attempt: Attempt, action: AttemptAction) -> str | None:
    """The attempt's source address, once it is checked to be an attempt of ``action``."""
    if attempt.action != action:
        raise ValueError(f"a {attempt.action} attempt cannot be spent on {action}")
    return attempt.ip


# Registration, login and invite acceptance are the three entry points that hash or verify a
# password. Each is admitted by its per-address limit first (``admit``, called by the edge before
# it decodes the request), does the argon2 work with no transaction open (the work takes ~50 ms;
# on SQLite an open transaction holds the one connection, on PostgreSQL a pooled one), and only
# then writes, in its own short transaction. The edges therefore do not wrap them.


async def register(
    rt: Runtime, attempt: Attempt, *, email: str, password: str, name: str, org_name: str
) -> Registration:
    """Self-service sign-up: a new org with its owner; ``attempt`` is the admitted sign-up
    (limited per source address)."""
    ip = _admitted(attempt, "register")
    email = clean_email(email)
    password = clean_password(password)
    clean_name(name, "name")
    clean_name(org_name, "org_name")
    if await User.exists(email=email):  # answer a taken email without spending a hash on it
        raise Conflict("this email is already registered", code=AuthErrorCode.email_registered)
    password_hash = await credentials.hash_password(password)
    async with transaction():
        return await create_org_with_owner(
            rt,
            email=email,
            password_hash=password_hash,
            name=name,
            org_name=org_name,
            ip=ip,
        )


def login_source_key(email: str, ip: str | None) -> str:
    """The counter of login attempts on one email from one source address."""
    return f"login:email-ip:{ip}:{email}"


async def login(rt: Runtime, attempt: Attempt, *, email: str, password: str) -> LoginResult:
    """Same 401 for an unknown email and a wrong password.

    Attempts are limited per source address (``attempt``, admitted before the body was read) and
    per (email, source address), here, never per email alone: a stranger guessing from elsewhere
    exhausts only his own counters and cannot lock the owner out. A success resets the (email,
    source) counter.
    """
    ip = _admitted(attempt, "login")
    settings = rt.settings
    normalized = email.strip().lower()
    source_key = login_source_key(normalized, ip)
    wait = await rt.limiter.hit(
        source_key, settings.login_max_per_email, settings.login_window_seconds
    )
    if wait is not None:
        raise TooManyAttempts(LOGIN_REFUSED, retry_after=wait)
    user = await User.get_or_none(email=normalized) if storable(normalized) else None
    if not await credentials.verify_password(user.password_hash if user else None, password):
        raise Unauthenticated(BAD_LOGIN, code=AuthErrorCode.invalid_credentials)
    assert user is not None
    membership = await Membership.filter(user_id=user.id).order_by("created_at").first()
    if membership is None:
        raise Unauthenticated(BAD_LOGIN, code=AuthErrorCode.invalid_credentials)
    await rt.limiter.reset(source_key)
    async with transaction():
        org = await Org.get(id=membership.org_id)
        token = await _start_session(rt, user, org, ip)
        production = await Environment.get(org_id=org.id, name="production")
        await audit.record(
            session_principal(user, membership, production.id, ip),
            "session.login",
            "user",
            user.id,
        )
    return LoginResult(user, org, membership.role, token)


@requires("viewer")
async def logout(*, actor: Principal) -> None:
    """Delete the server-side session row; the old cookie then fails with 401."""
    if actor.kind != "session" or actor.session_id is None:
        # 403 like every scope violation in the spec's table: the caller is known, the
        # credential is the wrong kind.
        raise Forbidden(
            "logout needs a console session, not an API key", code=AuthErrorCode.not_a_session
        )
    await UserSession.filter(id=actor.session_id).delete()
    await audit.record(actor, "session.logout", "user", actor.user_id)


async def accept_invite(
    rt: Runtime, attempt: Attempt, *, token: str, password: str, name: str
) -> LoginResult:
    """Join an org through an invite; ``attempt`` is the admitted acceptance (limited per source
    address like registration)."""
    ip = _admitted(attempt, "accept-invite")
    invite = await _usable_invite(token)
    password = clean_password(password)
    name = clean_name(name, "name")
    if await User.exists(email=invite.email):
        raise Conflict("this email is already registered", code=AuthErrorCode.email_registered)
    password_hash = await credentials.hash_password(password)
    async with transaction():
        # Read again inside the transaction: the invite may have been used while we hashed.
        invite = await _usable_invite(token)
        if await User.exists(email=invite.email):
            raise Conflict("this email is already registered", code=AuthErrorCode.email_registered)
        try:
            user = await User.create(email=invite.email, name=name, password_hash=password_hash)
        except IntegrityError:
            raise Conflict(
                "this email is already registered", code=AuthErrorCode.email_registered
            ) from None
        membership = await Membership.create(
            org_id=invite.org_id, user_id=user.id, role=invite.role
        )
        org = await Org.get(id=invite.org_id)
        production = await Environment.get(org_id=org.id, name="production")
        await audit.save_changes(
            session_principal(user, membership, production.id, ip),
            invite,
            {"accepted_at": _now()},
            "invite.accept",
            {"role": invite.role},
        )
        session_token = await _start_session(rt, user, org, ip)
    return LoginResult(user, org, membership.role, session_token)


async def _usable_invite(token: str) -> Invite:
    invite = await Invite.get_or_none(token_hash=credentials.token_digest(token))
    if invite is None:
        raise NotFound("this invite does not exist", code=TeamErrorCode.invite_not_found)
    if invite.accepted_at is not None:
        raise Conflict("this invite has already been used", code=TeamErrorCode.invite_used)
    if invite.expires_at <= _now():
        raise BadRequest("this invite has expired", code=TeamErrorCode.invite_expired)
    return invite


async def principal_from_session(token: str, ip: str | None) -> Principal:
    session = await UserSession.get_or_none(token_hash=credentials.token_digest(token))
    if session is None or not credentials.digests_match(session.token_hash, token):
        raise Unauthenticated("session is invalid or has ended", code=AuthErrorCode.invalid_session)
    if session.expires_at <= _now():
        await session.delete()
        raise Unauthenticated("session has expired", code=AuthErrorCode.session_expired)
    membership = await Membership.get_or_none(org_id=session.org_id, user_id=session.user_id)
    user = await User.get_or_none(id=session.user_id)
    if membership is None or user is None:
        raise Unauthenticated("session is invalid or has ended", code=AuthErrorCode.invalid_session)
    return session_principal(user, membership, session.environment_id, ip, session.id)


def _key_principal(key: VerifiedKey, ip: str | None) -> Principal:
    return Principal(
        kind="api_key",
        org_id=key.org_id,
        environment_id=key.environment_id,
        role="admin" if key.scope == "admin" else None,
        scope=key.scope,
        api_key_id=key.api_key_id,
        ip=ip,
        label=key.prefix,
    )


async def principal_from_api_key(
    key: str, ip: str | None, cache: ApiKeyCache | None = None
) -> Principal:
    """The principal of an API key: from ``cache`` when it holds the key's digest (no database
    round trip), else from its row, which is then cached (services/api_key_cache.py)."""
    digest = credentials.token_digest(key)
    if cache is not None:
        cached = cache.get(digest)
        if cached is not None:
            if cache.due_for_touch(digest):
                await ApiKey.filter(id=cached.api_key_id).update(last_used_at=_now())
            return _key_principal(cached, ip)
    generation = cache.generation if cache is not None else 0
    api_key = await ApiKey.get_or_none(key_hash=digest)
    if api_key is None or not credentials.digests_match(api_key.key_hash, key):
        raise Unauthenticated("API key is invalid or revoked", code=AuthErrorCode.invalid_api_key)
    now = _now()
    last = api_key.last_used_at
    stale = last is None or (now - last).total_seconds() > API_KEY_TOUCH_SECONDS
    if stale:
        await ApiKey.filter(id=api_key.id).update(last_used_at=now)
    verified = VerifiedKey(
        api_key_id=api_key.id,
        org_id=api_key.org_id,
        environment_id=api_key.environment_id,
        scope=api_key.scope,
        prefix=api_key.prefix,
    )
    if cache is not None:
        # A row read before an invalidation committed is not stored (the generation moved).
        cache.store(digest, verified, generation, touched=stale)
    return _key_principal(verified, ip)


async def authenticate(
    *,
    authorization: str | None,
    session_cookie: str | None,
    ip: str | None,
    api_keys: ApiKeyCache | None = None,
) -> Principal | None:
    """Resolve the caller once: a Bearer API key or embed token (a JWT) wins over the cookie;
    bad credentials are 401. ``api_keys``: the process's cache of verified keys (the runtime's)."""
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthenticated(
                "Authorization must be 'Bearer <key>'", code=AuthErrorCode.invalid_auth_header
            )
        value = value.strip()
        if embed_tokens.looks_like_embed_token(value):
            embed = await embed_tokens.verify_embed_token(value, ip=ip)
            await embed_revocations.check_not_revoked(embed)
            return embed
        return await principal_from_api_key(value, ip, api_keys)
    if session_cookie:
        return await principal_from_session(session_cookie, ip)
    return None


def require_principal(principal: Principal | None) -> Principal:
    if principal is None:
        raise Unauthenticated("authentication required", code=AuthErrorCode.unauthenticated)
    return principal


@dataclass(frozen=True)
class Me:
    user: User | None
    org: Org
    role: str | None
    scope: str
    environment: Environment


async def whoami(*, actor: Principal) -> Me:
    """Identity is readable by API keys (ingest keys included: they can check themselves) and
    sessions, not by embed tokens: the browser holding one must not learn the org's details."""
    if actor.kind == "embed":
        raise Forbidden(
            "embed tokens can only read their dashboard", code=AuthErrorCode.insufficient_scope
        )
    user = await User.get_or_none(id=actor.user_id) if actor.user_id else None
    org = await Org.get(id=actor.org_id)
    environment = await Environment.get(id=actor.environment_id)
    return Me(user=user, org=org, role=actor.role, scope=actor.scope, environment=environment)

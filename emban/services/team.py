"""Members and invites. Only the owner changes roles; the last owner always stays an owner."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from emban.auth import credentials
from emban.auth.principal import ROLE_RANK, Principal
from emban.error_codes import AuthErrorCode, TeamErrorCode
from emban.errors import BadRequest, Conflict, Forbidden, NotFound
from emban.models import Invite, Membership, User, UserSession
from emban.runtime import Runtime
from emban.services import audit
from emban.services.access import requires
from emban.services.scope import in_org, lock_org
from emban.services.validation import clean_email, lookupable

INVITE_ROLES = ("viewer", "editor", "admin")
MEMBER_ROLES = ("viewer", "editor", "admin", "owner")


@dataclass(frozen=True)
class CreatedInvite:
    invite: Invite
    token: str
    url: str


@requires("viewer")
async def list_members(*, actor: Principal) -> list[tuple[Membership, User]]:
    memberships = await in_org(Membership, actor).order_by("created_at")
    users = {u.id: u for u in await User.filter(id__in=[m.user_id for m in memberships])}
    return [(m, users[m.user_id]) for m in memberships]


@requires("admin")
async def list_invites(*, actor: Principal) -> list[Invite]:
    """Pending invites: not accepted and not expired."""
    return (
        await in_org(Invite, actor)
        .filter(accepted_at__isnull=True, expires_at__gt=datetime.now(UTC))
        .order_by("created_at")
    )


@requires("admin")
async def invite_member(rt: Runtime, *, actor: Principal, email: str, role: str) -> CreatedInvite:
    await lock_org(actor)
    email = clean_email(email)
    if role not in INVITE_ROLES:
        raise BadRequest("role must be viewer, editor or admin", field="role")
    member_ids = await in_org(Membership, actor).values_list("user_id", flat=True)
    if await User.filter(email=email, id__in=list(member_ids)).exists():
        raise Conflict(
            "this email is already a member of the org", code=TeamErrorCode.already_member
        )
    now = datetime.now(UTC)
    if (
        await in_org(Invite, actor)
        .filter(email=email, accepted_at__isnull=True, expires_at__gt=now)
        .exists()
    ):
        raise Conflict(
            "an invite for this email is already pending", code=TeamErrorCode.invite_pending
        )
    token = credentials.new_session_token()
    invite = await Invite.create(
        org_id=actor.org_id,
        email=email,
        role=role,
        token_hash=credentials.token_digest(token),
        invited_by=actor.actor_id,
        expires_at=now + timedelta(seconds=rt.settings.invite_ttl_seconds),
    )
    await audit.record(actor, "invite.create", "invite", invite.id, {"email": email, "role": role})
    url = f"{rt.settings.base_url}/accept-invite?token={token}"
    return CreatedInvite(invite, token, url)


async def _member(actor: Principal, member_id: str) -> Membership:
    membership = (
        await in_org(Membership, actor).get_or_none(id=member_id) if lookupable(member_id) else None
    )
    if membership is None:
        raise NotFound("member not found", code=TeamErrorCode.member_not_found)
    return membership


async def _owner_count(actor: Principal) -> int:
    return await in_org(Membership, actor).filter(role="owner").count()


@requires("owner")
async def change_role(*, actor: Principal, member_id: str, role: str) -> tuple[Membership, User]:
    if role not in MEMBER_ROLES:
        raise BadRequest("role must be viewer, editor, admin or owner", field="role")
    await lock_org(actor)
    membership = await _member(actor, member_id)
    if membership.role == "owner" and role != "owner" and await _owner_count(actor) <= 1:
        raise Conflict("the last owner cannot be demoted", code=TeamErrorCode.last_owner)
    previous = membership.role
    await audit.save_changes(
        actor, membership, {"role": role}, "member.update_role", {"from": previous, "to": role}
    )
    return membership, await User.get(id=membership.user_id)


@requires("admin")
async def remove_member(*, actor: Principal, member_id: str) -> None:
    """Admins remove members; only an owner removes an owner; the last owner cannot leave."""
    await lock_org(actor)
    membership = await _member(actor, member_id)
    if ROLE_RANK[membership.role] > ROLE_RANK[actor.role or "viewer"]:
        raise Forbidden("only an owner can remove an owner", code=AuthErrorCode.owner_required)
    if membership.role == "owner" and await _owner_count(actor) <= 1:
        raise Conflict("the last owner cannot be removed", code=TeamErrorCode.last_owner)
    user_id = membership.user_id
    await membership.delete()
    await UserSession.filter(user_id=user_id, org_id=actor.org_id).delete()
    # A console user belongs to one org; without a membership the account has no use left.
    if not await Membership.filter(user_id=user_id).exists():
        await User.filter(id=user_id).delete()
    await audit.record(actor, "member.remove", "member", member_id, {"user_id": user_id})

"""GraphQL mutations: one transaction each, one service call each."""

from __future__ import annotations

import strawberry

from emban.auth.cookies import clear_session_cookie, set_session_cookie
from emban.resolvers.context import GqlInfo, OwnTransaction, ctx
from emban.resolvers.types import (
    ApiKey,
    CreatedApiKey,
    CreatedInvite,
    Environment,
    Invite,
    LoginResult,
    Member,
    Org,
    Registration,
    User,
)
from emban.services import accounts, api_keys, environments, orgs, team


def _set_cookie(info: GqlInfo, token: str) -> None:
    context = ctx(info)
    if context.response is not None:
        set_session_cookie(context.response, context.runtime.settings, token)


ARGON2_FIRST = "argon2 first, then the service's own transaction"


@strawberry.type
class Mutation:
    @strawberry.mutation(extensions=[OwnTransaction(ARGON2_FIRST)])
    async def register(
        self, info: GqlInfo, email: str, password: str, name: str, org_name: str
    ) -> Registration:
        context = ctx(info)
        attempt = await accounts.admit(context.runtime, "register", context.ip)
        reg = await accounts.register(
            context.runtime,
            attempt,
            email=email,
            password=password,
            name=name,
            org_name=org_name,
        )
        _set_cookie(info, reg.session_token)
        env = reg.environments[0]
        return Registration(
            user=User.of(reg.user),
            org=Org.of(reg.org),
            environments=[Environment.of(e) for e in reg.environments],
            api_key=CreatedApiKey(api_key=ApiKey.of(reg.api_key, env), key=reg.clear_key),
        )

    @strawberry.mutation(extensions=[OwnTransaction(ARGON2_FIRST)])
    async def login(self, info: GqlInfo, email: str, password: str) -> LoginResult:
        context = ctx(info)
        attempt = await accounts.admit(context.runtime, "login", context.ip)
        result = await accounts.login(context.runtime, attempt, email=email, password=password)
        _set_cookie(info, result.session_token)
        return LoginResult(user=User.of(result.user), org=Org.of(result.org), role=result.role)

    @strawberry.mutation
    async def logout(self, info: GqlInfo) -> bool:
        await accounts.logout(actor=ctx(info).actor())
        response = ctx(info).response
        if response is not None:
            clear_session_cookie(response)
        return True

    @strawberry.mutation(extensions=[OwnTransaction(ARGON2_FIRST)])
    async def accept_invite(
        self, info: GqlInfo, token: str, password: str, name: str
    ) -> LoginResult:
        context = ctx(info)
        attempt = await accounts.admit(context.runtime, "accept-invite", context.ip)
        result = await accounts.accept_invite(
            context.runtime, attempt, token=token, password=password, name=name
        )
        _set_cookie(info, result.session_token)
        return LoginResult(user=User.of(result.user), org=Org.of(result.org), role=result.role)

    @strawberry.mutation
    async def create_api_key(
        self, info: GqlInfo, label: str, scope: str, environment: str | None = None
    ) -> CreatedApiKey:
        created = await api_keys.create_api_key(
            actor=ctx(info).actor(), label=label, scope=scope, environment=environment
        )
        return CreatedApiKey(
            api_key=ApiKey.of(created.api_key, created.environment), key=created.clear_key
        )

    @strawberry.mutation
    async def delete_api_key(self, info: GqlInfo, id: strawberry.ID) -> bool:
        context = ctx(info)
        await api_keys.delete_api_key(context.runtime, actor=context.actor(), key_id=str(id))
        return True

    @strawberry.mutation
    async def invite_member(self, info: GqlInfo, email: str, role: str) -> CreatedInvite:
        context = ctx(info)
        created = await team.invite_member(
            context.runtime, actor=context.actor(), email=email, role=role
        )
        return CreatedInvite(
            invite=Invite.of(created.invite), token=created.token, invite_url=created.url
        )

    @strawberry.mutation
    async def change_member_role(self, info: GqlInfo, id: strawberry.ID, role: str) -> Member:
        membership, user = await team.change_role(
            actor=ctx(info).actor(), member_id=str(id), role=role
        )
        return Member.of(membership, user)

    @strawberry.mutation
    async def remove_member(self, info: GqlInfo, id: strawberry.ID) -> bool:
        await team.remove_member(actor=ctx(info).actor(), member_id=str(id))
        return True

    @strawberry.mutation
    async def update_org(
        self, info: GqlInfo, name: str | None = None, email: str | None = None
    ) -> Org:
        return Org.of(await orgs.update_org(actor=ctx(info).actor(), name=name, email=email))

    @strawberry.mutation(
        description='Set who may frame the environment\'s embeds: ["*"] or origins (admin).'
    )
    async def update_environment(
        self, info: GqlInfo, id: strawberry.ID, allowed_origins: list[str]
    ) -> Environment:
        environment = await environments.update_environment(
            actor=ctx(info).actor(), environment_id=str(id), allowed_origins=allowed_origins
        )
        return Environment.of(environment)

    @strawberry.mutation
    async def delete_org(self, info: GqlInfo) -> bool:
        context = ctx(info)
        await orgs.delete_org(context.runtime, actor=context.actor())
        if context.response is not None:
            clear_session_cookie(context.response)
        return True

"""``/v1/environments``: list the org's environments and set who may frame their embeds."""

from __future__ import annotations

from aiohttp import web

from emban.models import Environment
from emban.rest_compat import responses as out
from emban.rest_compat.bodies import EnvironmentPatchBody
from emban.rest_compat.http import parse_body
from emban.rest_compat.route import caller, route
from emban.rest_compat.shapes import iso
from emban.services import environments


def environment_json(e: Environment) -> out.Environment:
    return out.Environment(
        id=e.id,
        name=e.name,
        allowed_origins=list(e.allowed_origins),
        created_at=iso(e.created_at),
    )


@route(
    "GET",
    "/v1/environments",
    response=out.EnvironmentList,
    service=environments.list_environments,
    tag="environments",
)
async def list_environments(request: web.Request) -> out.EnvironmentList:
    """The org's environments with their allowed_origins (any console user, admin keys)."""
    found = await environments.list_environments(actor=caller(request))
    return out.EnvironmentList(environments=[environment_json(e) for e in found])


@route(
    "PATCH",
    "/v1/environments/{id}",
    response=out.Environment,
    body=EnvironmentPatchBody,
    service=environments.update_environment,
    tag="environments",
    errors=(400, 404),
)
async def update_environment(request: web.Request) -> out.Environment:
    """Set allowed_origins: ["*"] or the origins that may frame the embeds (admin)."""
    body = await parse_body(request, EnvironmentPatchBody)
    environment = await environments.update_environment(
        actor=caller(request),
        environment_id=request.match_info["id"],
        allowed_origins=body.allowed_origins,
    )
    return environment_json(environment)

"""``/v1/environments``: list the org's environments and set who may frame their embeds."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from emban.models import Environment
from emban.rest_compat.bodies import EnvironmentPatchBody
from emban.rest_compat.http import actor, json_response, parse_body
from emban.rest_compat.route import RestRoute
from emban.rest_compat.shapes import iso
from emban.services import environments


def environment_json(e: Environment) -> dict[str, Any]:
    return {
        "id": e.id,
        "name": e.name,
        "allowed_origins": list(e.allowed_origins),
        "created_at": iso(e.created_at),
    }


async def list_environments(request: web.Request) -> web.StreamResponse:
    found = await environments.list_environments(actor=await actor(request))
    return json_response({"environments": [environment_json(e) for e in found]})


async def update_environment(request: web.Request) -> web.StreamResponse:
    principal = await actor(request)
    body = await parse_body(request, EnvironmentPatchBody)
    environment = await environments.update_environment(
        actor=principal,
        environment_id=request.match_info["id"],
        allowed_origins=body.allowed_origins,
    )
    return json_response(environment_json(environment))


ENVIRONMENT_ROUTES: tuple[RestRoute, ...] = (
    RestRoute(
        "GET",
        "/v1/environments",
        list_environments,
        "The org's environments with their allowed_origins (any console user, admin keys).",
        200,
        None,
        "console",
        "environments",
        (401, 403),
    ),
    RestRoute(
        "PATCH",
        "/v1/environments/{id}",
        update_environment,
        'Set allowed_origins: ["*"] or the origins that may frame the embeds (admin).',
        200,
        EnvironmentPatchBody,
        "console",
        "environments",
        (400, 401, 403, 404),
    ),
)

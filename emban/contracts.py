"""The public contracts written to ``schema/``: GraphQL SDL and OpenAPI 3.1 for ``/v1``."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import msgspec
from strawberry.printer import print_schema

from emban.auth.cross_site import SAFE_METHODS
from emban.error_codes import PlanErrorCode, all_error_codes
from emban.resolvers.schema import schema
from emban.rest_compat.routes import ROUTES

_STATUS_TEXT = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No content",
    400: "Invalid parameter or payload",
    401: "Missing or invalid auth",
    402: "Plan limit exceeded",
    403: "Scope or role violation",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    429: "Too many attempts or requests (Retry-After says when to retry)",
    502: "A provider (Paddle) answered an error or did not answer",
    503: "Not configured here, or a dependency (ClickHouse, metadata database, Redis) is "
    "unavailable (Retry-After says when to retry)",
}


def _error_description(method: str, auth: str, status: int) -> str:
    """The spec's text for the status; a state-changing route's 403 also names the cross-site
    refusal (the only 403 a public route answers)."""
    if status != 403 or method in SAFE_METHODS:
        return _STATUS_TEXT[status]
    if auth == "public":
        return "A cross-site browser request (`cross_site_request`)"
    return f"{_STATUS_TEXT[status]}, or a cross-site browser request (`cross_site_request`)"


def graphql_sdl() -> str:
    return print_schema(schema).rstrip() + "\n"


def error_code_schema(codes: list[str] | None = None) -> dict[str, Any]:
    """The JSON Schema of an error body's ``code``: the one place that says what a code is, an
    ``enum`` of every code the service emits (``emban/error_codes.py``), or of ``codes``."""
    return {"type": "string", "enum": all_error_codes() if codes is None else codes}


def error_components() -> dict[str, dict[str, Any]]:
    """The error bodies every route can answer: ``Error`` (``field`` names the offending input
    when there is one, ``request_id`` is on 5xx answers) and ``PlanLimitError`` (402)."""
    code = error_code_schema()
    plan_code = error_code_schema(sorted(c.value for c in PlanErrorCode))
    return {
        "Error": {
            "type": "object",
            "required": ["error", "code"],
            "properties": {
                "error": {"type": "string"},
                "code": code,
                "field": {"type": "string"},
                "request_id": {
                    "type": "string",
                    "description": "on 5xx answers: the X-Request-Id of the request, also in "
                    "the server's log line",
                },
            },
        },
        "PlanLimitError": {
            "type": "object",
            "required": ["error", "code", "plan", "upgrade_to", "limit", "used"],
            "properties": {
                "error": {"type": "string"},
                "code": plan_code,
                "plan": {"type": "string"},
                "upgrade_to": {"type": ["string", "null"]},
                "limit": {"type": ["integer", "null"]},
                "used": {"type": ["integer", "null"]},
            },
        },
    }


def openapi_document() -> dict[str, Any]:
    """OpenAPI 3.1 for every declared route: request and response bodies are the routes' own
    types (their JSON Schema under components/schemas, referenced by $ref)."""
    types: list[type] = []
    for route in ROUTES:
        for declared in (route.body, route.response):
            if declared is not None and declared not in types:
                types.append(declared)
    type_schemas, components = msgspec.json.schema_components(
        types, ref_template="#/components/schemas/{name}"
    )
    refs = dict(zip(types, type_schemas, strict=True))
    components.update(error_components())
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        path = route.path
        operation: dict[str, Any] = {
            "summary": route.summary,
            "operationId": route.name,
            "tags": [route.tag],
            "x-emban-auth": route.auth,
        }
        if route.role is not None:
            operation["x-emban-role"] = route.role
        operation["responses"] = {}
        params = re.findall(r"{(\w+)}", path)
        if params:
            operation["parameters"] = [
                {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                for p in params
            ]
        if route.auth == "public":
            operation["security"] = []
        if route.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": refs[route.body]}},
            }
        success: dict[str, Any] = {"description": _STATUS_TEXT[route.status]}
        if route.response is not None:
            success["content"] = {"application/json": {"schema": refs[route.response]}}
        operation["responses"][str(route.status)] = success
        for status in route.error_statuses:
            ref = "PlanLimitError" if status == 402 else "Error"
            operation["responses"][str(status)] = {
                "description": _error_description(route.method, route.auth, status),
                "content": {
                    "application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}
                },
            }
        paths.setdefault(path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Emban API",
            "version": "1",
            "description": "The documented /v1 REST surface of Emban (embedded analytics). "
            "x-emban-auth says who may call an operation (public, any API key or session, "
            "console sessions and admin keys) and x-emban-role the least member role it needs "
            "(an admin key acts as admin).",
        },
        "servers": [{"url": "/"}],
        "components": {
            "schemas": dict(sorted(components.items())),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "API key"},
                "session": {"type": "apiKey", "in": "cookie", "name": "emban_session"},
            },
        },
        "security": [{"bearer": []}, {"session": []}],
        "paths": paths,
    }


def openapi_json() -> str:
    return json.dumps(openapi_document(), indent=2, sort_keys=False) + "\n"


def write_contracts(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    sdl = out / "schema.graphql"
    sdl.write_text(graphql_sdl())
    api = out / "openapi.json"
    api.write_text(openapi_json())
    return [sdl, api]

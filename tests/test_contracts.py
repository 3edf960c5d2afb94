"""Contract drift: the committed schema/ files, the OpenAPI document, the migrations."""

from __future__ import annotations

import inspect
import json
import re
import subprocess
import sys
from pathlib import Path

from tortoise.models import Model

from emban import models
from emban.contracts import (
    error_code_schema,
    graphql_sdl,
    openapi_document,
    openapi_json,
    write_contracts,
)
from emban.error_codes import PlanErrorCode
from emban.rest_compat.routes import ROUTES

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_DIR = ROOT / "schema"
DRIFT = "is out of date: run `make schema` and commit schema/"


def test_committed_graphql_schema_is_current() -> None:
    committed = (SCHEMA_DIR / "schema.graphql").read_text()
    assert committed == graphql_sdl(), f"schema/schema.graphql {DRIFT}"


def test_committed_openapi_is_current() -> None:
    committed = (SCHEMA_DIR / "openapi.json").read_text()
    assert committed == openapi_json(), f"schema/openapi.json {DRIFT}"


def test_write_contracts_writes_exactly_the_generated_text(tmp_path: Path) -> None:
    written = write_contracts(tmp_path / "out")
    assert written == [tmp_path / "out" / "schema.graphql", tmp_path / "out" / "openapi.json"]
    assert written[0].read_text() == graphql_sdl()
    assert written[1].read_text() == openapi_json()


def test_openapi_document_lists_every_route() -> None:
    document = json.loads(openapi_json())
    assert document == openapi_document()
    assert document["openapi"] == "3.1.0"
    assert document["info"]["title"] == "Emban API"
    listed = {
        (method.upper(), path, status)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        for status in operation["responses"]
        if status.startswith("2")
    }
    assert listed == {(r.method, r.path, str(r.status)) for r in ROUTES}
    assert len(ROUTES) == len({(r.method, r.path) for r in ROUTES})
    for route in ROUTES:
        operation = document["paths"][route.path][route.method.lower()]
        assert operation["operationId"] == route.name == route.handler.__name__
        assert operation["summary"] == route.summary
        assert operation["tags"] == [route.tag]
        responses = operation["responses"]
        assert set(responses) == {str(route.status), *(str(s) for s in route.error_statuses)}
        assert set(route.errors) <= set(route.error_statuses)
        assert (429 in route.error_statuses) == (route.auth != "public" or 429 in route.errors)
        if route.status == 204:
            assert route.response is None
            assert "content" not in responses["204"]
        else:
            assert route.response is not None
            content = responses[str(route.status)]["content"]
            assert set(content) == {"application/json"}
            # The success answer is the route's response type, not a bare object.
            name = route.response.__name__
            assert content["application/json"]["schema"] == {"$ref": f"#/components/schemas/{name}"}
            component = document["components"]["schemas"][name]
            assert component["type"] == "object"
            assert set(component["required"]) <= set(component["properties"])
            assert list(component["properties"]) == list(route.response.__struct_fields__)
        for status in route.error_statuses:
            ref = responses[str(status)]["content"]["application/json"]["schema"]["$ref"]
            name = "PlanLimitError" if status == 402 else "Error"
            assert ref == f"#/components/schemas/{name}"
        if route.auth == "public":
            assert operation["security"] == []
        else:
            assert "security" not in operation
        if route.body is None:
            assert "requestBody" not in operation
        else:
            ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            assert ref == f"#/components/schemas/{route.body.__name__}"
            assert route.body.__name__ in document["components"]["schemas"]
        placeholders = re.findall(r"{(\w+)}", route.path)
        if placeholders:
            assert operation["parameters"] == [
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                for name in placeholders
            ]
        else:
            assert "parameters" not in operation


def test_response_schemas_describe_what_is_sent() -> None:
    """A few response components spelled out: nested $refs, nullable and left-out fields."""
    schemas = openapi_document()["components"]["schemas"]
    assert schemas["ApiKeyList"]["properties"] == {
        "api_keys": {"type": "array", "items": {"$ref": "#/components/schemas/ApiKey"}}
    }
    assert schemas["CreatedApiKey"]["required"] == [
        "id",
        "label",
        "scope",
        "prefix",
        "environment",
        "created_at",
        "last_used_at",
        "key",
    ]
    assert schemas["Org"]["properties"]["email"] == {
        "anyOf": [{"type": "string"}, {"type": "null"}]
    }
    # group is sent only for grouped queries: a property, not a required one.
    assert schemas["Point"]["required"] == ["bucket", "value"]
    assert schemas["Point"]["properties"]["group"] == {"type": "string"}
    assert schemas["Dataset"]["properties"]["kind"] == {"enum": ["materialized_view", "table"]}
    assert "ddl" in schemas["Dataset"]["required"]
    me = openapi_document()["paths"]["/v1/auth/me"]["get"]
    assert me["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Me"
    }


def test_error_bodies_share_one_code_schema() -> None:
    schemas = openapi_document()["components"]["schemas"]
    assert schemas["Error"]["properties"]["code"] == error_code_schema()
    # A 402 carries one of the plan codes: the same schema, narrowed to that domain.
    assert schemas["PlanLimitError"]["properties"]["code"] == error_code_schema(
        sorted(c.value for c in PlanErrorCode)
    )
    assert set(error_code_schema()["enum"]) >= {c.value for c in PlanErrorCode}


def test_routes_declare_auth_and_role_in_the_document() -> None:
    document = openapi_document()
    for route in ROUTES:
        operation = document["paths"][route.path][route.method.lower()]
        assert operation["x-emban-auth"] == route.auth
        assert operation.get("x-emban-role") == route.role
        assert (route.auth == "console") == (route.role is not None)
    assert document["paths"]["/v1/settings/org"]["delete"]["x-emban-role"] == "owner"
    assert document["paths"]["/v1/events"]["post"]["x-emban-auth"] == "any"


def test_openapi_documents_the_error_bodies_and_auth() -> None:
    document = openapi_document()
    schemas = document["components"]["schemas"]
    assert schemas["PlanLimitError"]["required"] == [
        "error",
        "code",
        "plan",
        "upgrade_to",
        "limit",
        "used",
    ]
    assert schemas["Error"]["required"] == ["error", "code"]
    assert document["components"]["securitySchemes"]["session"] == {
        "type": "apiKey",
        "in": "cookie",
        "name": "emban_session",
    }
    assert document["security"] == [{"bearer": []}, {"session": []}]
    register = document["paths"]["/v1/auth/register"]["post"]
    # A state-changing public route answers 403 only to a cross-site browser request.
    assert sorted(register["responses"]) == ["201", "400", "403", "409", "413", "429", "503"]
    assert register["responses"]["403"]["description"] == (
        "A cross-site browser request (`cross_site_request`)"
    )
    patch_org = document["paths"]["/v1/settings/org"]["patch"]["responses"]["403"]
    assert patch_org["description"] == (
        "Scope or role violation, or a cross-site browser request (`cross_site_request`)"
    )
    members = document["paths"]["/v1/members"]["get"]["responses"]["403"]
    assert members["description"] == "Scope or role violation"
    me = document["paths"]["/v1/auth/me"]["get"]  # any authenticated route: request budget
    assert sorted(me["responses"]) == ["200", "401", "429", "503"]  # 503: a dependency down


_DETECT = """
import asyncio, json, sys
from tortoise.context import TortoiseContext
from tortoise.migrations.autodetector import MigrationAutodetector
from emban.metadata import tortoise_config
from emban.settings import Settings


async def main(migrations):
    config = tortoise_config(Settings(database_url="sqlite://:memory:", secret_key="x" * 32))
    config["apps"]["emban"]["migrations"] = migrations
    apps_dict = {label: dict(app) for label, app in config["apps"].items()}
    async with TortoiseContext() as ctx:
        await ctx.init(config=config)
        writers = await MigrationAutodetector(ctx.apps, apps_dict).changes()
    print(json.dumps([
        [w.name, [[type(o).__name__, getattr(o, "name", None)] for o in w.operations]]
        for w in writers
    ]))


asyncio.run(main(sys.argv[1]))
"""


def _detect(migrations: str, extra_path: Path | None = None) -> list[list[object]]:
    """Run Tortoise's autodetector (what `tortoise makemigrations` runs) in a fresh process:
    a SQLite context cannot share a process with the session's PostgreSQL one."""
    env_path = [str(ROOT)] + ([str(extra_path)] if extra_path else [])
    result = subprocess.run(
        [sys.executable, "-c", _DETECT, migrations],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={"PYTHONPATH": ":".join(env_path), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    changes: list[list[object]] = json.loads(result.stdout)
    return changes


def test_models_have_no_changes_missing_from_migrations() -> None:
    changes = _detect("emban.models.migrations")
    assert changes == [], (
        f"models changed without a migration: {changes}; "
        "run `python -m tortoise makemigrations` and commit emban/models/migrations"
    )


def test_the_autodetector_sees_every_model(tmp_path: Path) -> None:
    """Against an empty migrations package the detector proposes every model, so the empty
    answer above means "no drift", not "nothing looked at"."""
    package = tmp_path / "empty_migrations"
    package.mkdir()
    (package / "__init__.py").write_text("")
    changes = _detect("empty_migrations", extra_path=tmp_path)
    assert len(changes) == 1
    name, operations = changes[0]
    assert name == "0001_initial"
    assert isinstance(operations, list)
    created = {op[1] for op in operations if op[0] == "CreateModel"}
    defined = {
        cls.__name__
        for _, cls in inspect.getmembers(models, inspect.isclass)
        if issubclass(cls, Model) and cls is not Model and cls.__module__ == models.__name__
    }
    assert created == defined
    assert {"Org", "User", "Membership", "ApiKey", "AuditLog"} <= created

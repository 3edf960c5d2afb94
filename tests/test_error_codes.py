"""Error codes are part of the contract: the per-domain enums, the schema files and the code
that raises them agree (a drift check in both directions)."""

from __future__ import annotations

import ast
import json
from enum import StrEnum
from pathlib import Path

import pytest
from graphql import GraphQLEnumType, build_schema

import emban
from emban import error_codes
from emban.contracts import graphql_sdl, openapi_json
from emban.error_codes import (
    ERROR_CODE_ENUMS,
    AuthErrorCode,
    ErrorCategory,
    LiveErrorCode,
    PlanErrorCode,
    all_error_codes,
)
from emban.errors import BadRequest, Conflict, EmbanError, PlanLimitExceeded

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = Path(emban.__file__).resolve().parent
EXPECTED_ENUMS = [
    "RequestErrorCode",
    "AuthErrorCode",
    "TeamErrorCode",
    "OrgErrorCode",
    "PlanErrorCode",
    "DashboardErrorCode",
    "QueryErrorCode",
    "IngestErrorCode",
    "EmbedErrorCode",
    "LiveErrorCode",
    "AlertErrorCode",
    "BillingErrorCode",
]


def _committed_sdl_enums() -> dict[str, list[str]]:
    sdl = build_schema((ROOT / "schema" / "schema.graphql").read_text())
    return {
        name: list(t.values)
        for name, t in sdl.type_map.items()
        if isinstance(t, GraphQLEnumType) and name.endswith("ErrorCode")
    }


def test_the_domains_and_their_names() -> None:
    assert [e.__name__ for e in ERROR_CODE_ENUMS] == EXPECTED_ENUMS
    for enum in ERROR_CODE_ENUMS:
        for member in enum:
            # The GraphQL enum serializes names: they must be the wire values themselves.
            assert member.name == member.value


def test_every_code_is_in_the_graphql_schema_and_nothing_else() -> None:
    assert _committed_sdl_enums() == {e.__name__: [m.value for m in e] for e in ERROR_CODE_ENUMS}


def test_the_categories_are_in_the_graphql_schema() -> None:
    sdl = build_schema((ROOT / "schema" / "schema.graphql").read_text())
    category = sdl.type_map["ErrorCategory"]
    assert isinstance(category, GraphQLEnumType)
    assert list(category.values) == [m.value for m in ErrorCategory]
    assert [m.name for m in ErrorCategory] == [m.value for m in ErrorCategory]
    # Every error class's extensions.code is a category or one of the live caps' own codes.
    classes = [EmbanError]
    for cls in classes:
        classes.extend(cls.__subclasses__())
    codes = {cls.graphql_code for cls in classes}
    assert codes == {
        *ErrorCategory,
        LiveErrorCode.too_many_cohorts,
        LiveErrorCode.too_many_subscriptions,
    }


def test_every_code_is_in_the_openapi_error_bodies_and_nothing_else() -> None:
    schemas = json.loads((ROOT / "schema" / "openapi.json").read_text())["components"]["schemas"]
    listed = schemas["Error"]["properties"]["code"]["enum"]
    assert listed == all_error_codes()
    assert set(listed) == {m.value for e in ERROR_CODE_ENUMS for m in e}
    assert schemas["PlanLimitError"]["properties"]["code"]["enum"] == sorted(
        m.value for m in PlanErrorCode
    )


def test_the_schema_files_regenerate_identically() -> None:
    assert (ROOT / "schema" / "schema.graphql").read_text() == graphql_sdl()
    assert (ROOT / "schema" / "openapi.json").read_text() == openapi_json()


def test_a_code_belongs_to_one_domain(monkeypatch: pytest.MonkeyPatch) -> None:
    codes = all_error_codes()
    assert len(codes) == len(set(codes)) == 74
    assert codes == sorted(codes)

    class Twin(StrEnum):
        invalid_json = "invalid_json"

    monkeypatch.setattr(error_codes, "ERROR_CODE_ENUMS", (*ERROR_CODE_ENUMS, Twin))
    with pytest.raises(ValueError, match="declared in two domains: invalid_json"):
        error_codes.all_error_codes()


def _referenced_codes() -> dict[str, set[str]]:
    """``<Domain>ErrorCode.member`` references anywhere in emban/ except the enums' module."""
    names = {e.__name__ for e in ERROR_CODE_ENUMS}
    found: dict[str, set[str]] = {name: set() for name in names}
    for path in PACKAGE.rglob("*.py"):
        if path.name == "error_codes.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in names
            ):
                found[node.value.id].add(node.attr)
    return found


def test_every_declared_code_is_raised_somewhere_and_every_raised_code_is_declared() -> None:
    referenced = _referenced_codes()
    declared = {e.__name__: {m.value for m in e} for e in ERROR_CODE_ENUMS}
    assert referenced == declared


def test_no_raise_site_passes_a_string_code() -> None:
    """mypy refuses a ``str`` where ``ErrorCode`` is expected; this keeps the same promise for
    anything mypy cannot see (a ``code=`` keyword given a string literal)."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Call):
                for keyword in node.keywords:
                    if (
                        keyword.arg == "code"
                        and isinstance(keyword.value, ast.Constant)
                        and isinstance(keyword.value.value, str)
                    ):
                        offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert offenders == []


def test_errors_carry_enum_codes_and_render_strings() -> None:
    error = BadRequest("bad", field="name")
    assert error.code is error_codes.RequestErrorCode.invalid_field
    body = error.body()
    assert body == {"error": "bad", "code": "invalid_field", "field": "name"}
    assert type(body["code"]) is str
    assert Conflict("x").code is error_codes.RequestErrorCode.conflict
    assert EmbanError("x", code=AuthErrorCode.not_a_session).body() == {
        "error": "x",
        "code": "not_a_session",
    }
    plan = PlanLimitExceeded(
        "limit",
        code=PlanErrorCode.api_keys_limit,
        plan="free",
        upgrade_to="starter",
        limit=1,
        used=1,
    )
    assert plan.body()["code"] == "api_keys_limit"

"""``@route``'s declaration rules: a console route names a ``@requires`` service, others none."""

from __future__ import annotations

from typing import Any

import pytest

from emban.auth.principal import Principal
from emban.rest_compat import responses as out
from emban.rest_compat.route import registered, route
from emban.rest_compat.routes import ROUTES
from emban.services import orgs


async def _undeclared(*, actor: Principal) -> None: ...


@pytest.mark.parametrize(
    ("declaration", "message"),
    [
        ({}, "GET /x: console routes name their service, others do not"),
        (
            {"auth": "public", "service": orgs.get_org},
            "GET /x: console routes name their service, others do not",
        ),
        (
            {"auth": "any", "service": orgs.get_org},
            "GET /x: console routes name their service, others do not",
        ),
        ({"service": _undeclared}, "declares no role (@requires)"),
    ],
)
def test_a_declaration_that_breaks_the_rules_is_refused(
    declaration: dict[str, Any], message: str
) -> None:
    before = registered()
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        route("GET", "/x", response=out.Org, tag="x", **declaration)
    assert registered() == before


def test_the_route_role_is_the_service_declaration() -> None:
    (declared,) = [r for r in ROUTES if (r.method, r.path) == ("DELETE", "/v1/settings/org")]
    assert declared.service is orgs.delete_org
    assert declared.role == orgs.delete_org.required_role == "owner"

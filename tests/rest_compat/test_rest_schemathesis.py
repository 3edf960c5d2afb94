"""schemathesis against the app's own contract: every operation of ``/openapi.json`` (served by
the app; the same document as schema/openapi.json, which test_contracts keeps current) called
as an admin API key (the owner-only routes with the owner's cookie session, logout with a session
of its own) with a known-good request and with generated valid and invalid ones; each
answer must use a documented status code and content type and match the documented schema, and
none may be a 5xx.

schemathesis is synchronous (requests + Hypothesis), so it runs in a worker thread while the
event loop keeps serving the app it calls. Examples are few and seed-stable (derandomize): this
is a conformance check of every route, well under a minute, not a fuzzing campaign.
"""

from __future__ import annotations

import asyncio
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from yarl import URL

from emban.models import BillingAccount
from emban.rest_compat.routes import ROUTES
from tests.conftest import PASSWORD, ClientFactory, bearer, register
from tests.paddle_server import PaddleStandIn
from tests.rest_compat.test_rest_matrix import BODIES

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
GENERATED_EXAMPLES = 3  # per operation and generation mode


class Run:
    """One pass over the schema's operations against one server."""

    def __init__(
        self,
        base_url: str,
        headers: dict[str, dict[str, str]],
        ids: dict[str, str],
    ) -> None:
        self.base_url = base_url
        self.headers = headers  # by label; "*": every other operation
        self.ids = ids
        self.session = requests.Session()
        self.seen: dict[str, set[int]] = {}
        self.failures: list[str] = []

    def operation(self, operation: APIOperation) -> None:
        label = f"{operation.method.upper()} {operation.path}"
        # Real ids in the path: random ones only ever reach the 404 branch.
        params = {
            name: self.ids[f"{operation.path}:{name}"]
            for name in ("id", "widget_id", "name")
            if f"{operation.path}:{name}" in self.ids
        }
        known_body = BODIES.get((operation.method.upper(), operation.path))
        if known_body is not None:
            good = operation.as_strategy(path_parameters=params or None, body=known_body)
            self._check(label, good, 1)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(mode, path_parameters=params or None)
            self._check(label, strategy, GENERATED_EXAMPLES, mode)

    def _check(
        self,
        label: str,
        strategy: Any,
        examples: int,
        mode: GenerationMode = GenerationMode.POSITIVE,
    ) -> None:
        headers = self.headers.get(label, self.headers["*"])

        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy)
        def call(case: Case) -> None:
            response = case.call(base_url=self.base_url, session=self.session, headers=headers)
            self.seen.setdefault(label, set()).add(response.status_code)
            case.validate_response(response, checks=CHECKS)

        try:
            call()
        except Unsatisfiable:
            # Nothing in the request can be made invalid (no parameters, body or credentials).
            if mode is not GenerationMode.NEGATIVE:
                raise
        except (Exception, ExceptionGroup) as failure:  # schemathesis raises a group
            self.failures.append(f"{label}: {failure}")


def _order(operation: APIOperation) -> tuple[bool, bool]:
    # Deletions last, so the other operations find the seeded resources; the org's own deletion
    # after every other one.
    method = operation.method.upper()
    return method == "DELETE", (method, operation.path) == ("DELETE", "/v1/settings/org")


def _run(
    base_url: str, headers: dict[str, dict[str, str]], ids: dict[str, str]
) -> dict[str, set[int]]:
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    run = Run(base_url, headers, ids)
    for operation in sorted(operations, key=_order):
        run.operation(operation)
    assert not run.failures, "\n\n".join(run.failures)
    return run.seen


async def test_every_operation_conforms_to_the_schema(
    make_client: ClientFactory, billing_on: PaddleStandIn
) -> None:
    client = await make_client()
    reg = await register(client)
    # A Paddle customer, so the portal answers (from the local stand-in) instead of a 404.
    await BillingAccount.create(org_id=reg["org"]["id"], customer_id="ctm_schema")
    headers = bearer(reg["api_key"]["key"])
    # Who calls what: an admin API key, except the owner-only routes (the owner's session from
    # registering) and logout, which needs a session of its own (it ends it).
    session = client.cookie_jar.filter_cookies(URL(app_url(client)))["emban_session"].value
    owner = {"Cookie": f"emban_session={session}"}
    logged_in = await client.post(
        "/v1/auth/login", json={"email": "owner@acme.test", "password": PASSWORD}
    )
    assert logged_in.status == 200, await logged_in.text()
    second = {"Cookie": f"emban_session={logged_in.cookies['emban_session'].value}"}
    callers: dict[str, dict[str, str]] = {"*": headers, "POST /v1/auth/logout": second}
    for route in ROUTES:
        if route.role == "owner":
            callers[f"{route.method} {route.path}"] = owner

    async def create(path: str) -> dict[str, Any]:
        response = await client.post(path, json=BODIES[("POST", path)], headers=headers)
        assert response.status == 201, await response.text()
        created: dict[str, Any] = await response.json()
        return created

    dashboard_id = (await create("/v1/dashboards"))["id"]
    widget_id = (await create("/v1/widgets"))["id"]
    saved_query_id = (await create("/v1/saved-queries"))["id"]
    listed = await (await client.get("/v1/environments", headers=headers)).json()
    ids = {
        **{
            f"{route.path}:id": dashboard_id
            for route in ROUTES
            if route.path.startswith("/v1/dashboards/{id}")
        },
        "/v1/dashboards/{id}/widgets/{widget_id}:widget_id": "calls",
        "/v1/widgets/{id}:id": widget_id,
        "/v1/widgets/{id}/publish:id": widget_id,
        "/v1/saved-queries/{id}:id": saved_query_id,
        "/v1/environments/{id}:id": listed["environments"][0]["id"],
        "/v1/members/{id}:id": reg["user"]["id"],
        "/v1/datasets/{name}/ddl:name": "events_hourly_rollup_mv",
    }
    base_url = str(app_url(client))
    seen = await asyncio.to_thread(_run, base_url, callers, ids)

    assert set(seen) == {f"{r.method} {r.path}" for r in ROUTES}  # every operation was called
    succeeded = {label for label, statuses in seen.items() if any(s < 300 for s in statuses)}
    # The owner-only routes and logout, called with a session, get past the role check.
    assert {"DELETE /v1/settings/org", "POST /v1/auth/logout"} <= succeeded
    assert seen["PATCH /v1/members/{id}"] - {401, 403}, seen["PATCH /v1/members/{id}"]
    # The known-good requests reach the success branch (and its response schema) of most routes.
    assert len(succeeded) >= 40, sorted(set(seen) - succeeded)


def app_url(client: Any) -> str:
    return str(client._base_url).rstrip("/")

"""``@requires``: the one place a service's role is written (services/access.py).

The role x route matrix (tests/rest_compat/test_rest_matrix.py) tests what the routes built from
these declarations answer; here: the decorator itself, that no service checks a role by hand,
and the roles of the alert and report services that routes will name.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import emban.services
from emban.auth.principal import Principal
from emban.error_codes import AuthErrorCode
from emban.errors import Forbidden
from emban.services import alert_rules, reports
from emban.services.access import requires

SERVICES_DIR = Path(emban.services.__file__).resolve().parent


def _principal(role: str | None, scope: str = "console") -> Principal:
    return Principal(kind="session", org_id="org", environment_id="env", role=role, scope=scope)


@requires("admin")
async def _admin_only(*, actor: Principal, value: int) -> int:
    return value * 2


async def test_the_service_runs_for_the_role_and_above() -> None:
    for role in ("admin", "owner"):
        assert await _admin_only(actor=_principal(role), value=21) == 42
    admin_key = Principal(
        kind="api_key", org_id="org", environment_id="env", role="admin", scope="admin"
    )
    assert await _admin_only(actor=admin_key, value=1) == 2


@pytest.mark.parametrize(
    ("role", "scope", "code", "message"),
    [
        (
            "viewer",
            "console",
            AuthErrorCode.insufficient_role,
            "this action requires the admin role",
        ),
        (
            "editor",
            "console",
            AuthErrorCode.insufficient_role,
            "this action requires the admin role",
        ),
        (None, "ingest", AuthErrorCode.insufficient_scope, "ingest keys can only send events"),
        (None, "embed", AuthErrorCode.insufficient_role, "this action requires the admin role"),
    ],
)
async def test_a_caller_below_the_role_is_refused_before_the_body_runs(
    role: str | None, scope: str, code: AuthErrorCode, message: str
) -> None:
    ran: list[str] = []

    @requires("admin")
    async def service(*, actor: Principal) -> None:
        ran.append(actor.org_id)

    with pytest.raises(Forbidden) as refused:
        await service(actor=_principal(role, scope))
    assert (refused.value.code, str(refused.value)) == (code, message)
    assert ran == []


async def test_owner_role_is_refused_with_owner_required() -> None:
    @requires("owner")
    async def service(*, actor: Principal) -> str:
        return "done"

    with pytest.raises(Forbidden) as refused:
        await service(actor=_principal("admin"))
    assert refused.value.code == AuthErrorCode.owner_required
    assert await service(actor=_principal("owner")) == "done"


def test_the_role_and_the_function_are_recorded() -> None:
    assert _admin_only.required_role == "admin"
    assert _admin_only.__name__ == "_admin_only"
    assert "value" in inspect.signature(_admin_only).parameters


def test_only_coroutines_taking_a_keyword_actor_can_be_declared() -> None:
    async def positional(actor: Principal) -> None: ...

    async def no_actor(*, principal: Principal) -> None: ...

    def not_async(*, actor: Principal) -> None: ...

    with pytest.raises(TypeError, match="keyword-only actor="):
        requires("viewer")(positional)
    with pytest.raises(TypeError, match="keyword-only actor="):
        requires("viewer")(no_actor)
    with pytest.raises(TypeError, match="declares coroutines"):
        requires("viewer")(not_async)  # type: ignore[arg-type]


async def test_a_call_without_a_principal_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="needs actor=<Principal>"):
        await _admin_only(actor=None, value=1)  # type: ignore[arg-type]


# --- no second copy -----------------------------------------------------------------------------


def _role_checks(source: str) -> list[int]:
    """The lines that call ``require_role``/``require_console`` on anything."""
    return [
        node.lineno
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in {"require_role", "require_console"}
    ]


def test_no_service_checks_a_role_by_hand() -> None:
    """Every role a service needs is declared with ``@requires``, where routes read it; the only
    ``require_role`` call in emban/services is the decorator's own."""
    files = sorted(SERVICES_DIR.rglob("*.py"))
    assert len(files) > 20
    found = {
        str(f.relative_to(SERVICES_DIR)): lines
        for f in files
        if (lines := _role_checks(f.read_text()))
    }
    assert list(found) == ["access.py"]
    (line,) = found["access.py"]
    assert (
        "caller.require_role(role)"
        in (SERVICES_DIR / "access.py").read_text().splitlines()[line - 1]
    )


def test_the_walker_sees_a_hand_written_check() -> None:
    """The check above can fail: it finds both spellings."""
    probe = "async def f(*, actor):\n    actor.require_role('admin')\n    actor.require_console()\n"
    assert _role_checks(probe) == [2, 3]


# --- the roles routes will name -------------------------------------------------------------------


def test_alert_and_report_services_declare_the_documented_roles() -> None:
    """docs/alerts-reports.md: reads are for any console member and admin keys, writes (and
    acting on one rule or report now, through ``find_for_admin``) for admins."""
    declared = {
        f"{fn.__module__.rsplit('.', 1)[-1]}.{fn.__name__}": fn.required_role
        for fn in (
            alert_rules.list_rules,
            alert_rules.get_rule,
            alert_rules.list_events,
            alert_rules.create_rule,
            alert_rules.update_rule,
            alert_rules.delete_rule,
            alert_rules.find_for_admin,
            reports.list_reports,
            reports.get_report,
            reports.list_runs,
            reports.create_report,
            reports.update_report,
            reports.delete_report,
            reports.find_for_admin,
        )
    }
    assert declared == {
        "alert_rules.list_rules": "viewer",
        "alert_rules.get_rule": "viewer",
        "alert_rules.list_events": "viewer",
        "alert_rules.create_rule": "admin",
        "alert_rules.update_rule": "admin",
        "alert_rules.delete_rule": "admin",
        "alert_rules.find_for_admin": "admin",
        "reports.list_reports": "viewer",
        "reports.get_report": "viewer",
        "reports.list_runs": "viewer",
        "reports.create_report": "admin",
        "reports.update_report": "admin",
        "reports.delete_report": "admin",
        "reports.find_for_admin": "admin",
    }

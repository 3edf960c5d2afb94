"""Field rules alert rules and scheduled reports share: required fields of a partial body,
tenant ids, recipient lists, webhook URLs and numeric-id lookups."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
from tortoise.models import Model

from emban.auth.principal import Principal
from emban.error_codes import AlertErrorCode
from emban.errors import BadRequest, NotFound
from emban.notify.ssrf import UnsafeURL, check_url
from emban.services.scope import in_org
from emban.services.validation import clean_email, storable

MAX_RECIPIENTS = 50
MAX_TENANT_ID = 256
MAX_NUMERIC_ID = 18  # digits: every BIGINT id fits
M = TypeVar("M", bound=Model)


def required(body: msgspec.Struct, name: str) -> Any:
    """A field a create needs: 400 naming it when it is unset or null."""
    value = getattr(body, name)
    if value is msgspec.UNSET or value is None:
        raise BadRequest(f"{name} is required", field=name)
    return value


def clean_tenant(value: str | None, field: str = "tenant_id") -> str | None:
    if value is None:
        return None
    if not value or len(value) > MAX_TENANT_ID or not storable(value):
        raise BadRequest(
            f"{field} must be 1 to {MAX_TENANT_ID} characters without NUL", field=field
        )
    return value


def clean_emails(values: list[str], field: str) -> list[str]:
    if len(values) > MAX_RECIPIENTS:
        raise BadRequest(f"{field}: at most {MAX_RECIPIENTS} addresses", field=field)
    cleaned: list[str] = []
    for index, value in enumerate(values):
        email = clean_email(value, f"{field}[{index}]")
        if email not in cleaned:
            cleaned.append(email)
    return cleaned


def clean_webhook_url(value: str | None, allow_hosts: tuple[str, ...]) -> str | None:
    if value is None or value == "":
        return None
    try:
        return str(check_url(value, allow_hosts=allow_hosts))
    except UnsafeURL as exc:
        raise BadRequest(f"webhook_url {exc}", field="webhook_url") from None


def differing(row: Model, values: dict[str, Any]) -> dict[str, Any]:
    """The given field values that differ from the row's (what an update really changes)."""
    return {name: value for name, value in values.items() if getattr(row, name) != value}


async def find_numeric(
    model: type[M], actor: Principal, raw_id: str, what: str, code: AlertErrorCode
) -> M:
    """The actor's org's row ``raw_id`` (digits only); 404 ``code`` for anything else."""
    row = None
    if raw_id.isdigit() and len(raw_id) <= MAX_NUMERIC_ID:
        row = await in_org(model, actor).get_or_none(id=int(raw_id))
    if row is None:
        raise NotFound(f"{what} not found", code=code)
    return row

"""Saved ad-hoc SQL snippets: any console user reads them, admins write them."""

from __future__ import annotations

from emban.analytics.adhoc import validate_adhoc
from emban.analytics.tables import VISIBLE_DATASETS
from emban.auth.principal import Principal
from emban.error_codes import QueryErrorCode
from emban.errors import BadRequest, NotFound
from emban.models import SavedQuery
from emban.services import audit
from emban.services.access import requires
from emban.services.scope import in_org
from emban.services.validation import clean_name, lookupable, storable

MAX_SQL = 100_000


def _clean_sql(sql: str) -> str:
    if not sql.strip():
        raise BadRequest("sql must not be empty", field="sql")
    if len(sql) > MAX_SQL:
        raise BadRequest(f"sql must be at most {MAX_SQL} characters", field="sql")
    if not storable(sql):
        raise BadRequest("sql must not contain NUL characters", field="sql")
    validate_adhoc(sql)  # a saved query must be one that would run
    return sql


def _clean_dataset(dataset: str) -> str:
    if dataset not in VISIBLE_DATASETS:
        raise BadRequest(f"dataset must be one of {', '.join(VISIBLE_DATASETS)}", field="dataset")
    return dataset


async def _find(actor: Principal, query_id: str) -> SavedQuery:
    """The org's saved query ``query_id``; 404 also for ids no row can have (too long, NUL)."""
    saved = None
    if lookupable(query_id):
        saved = await in_org(SavedQuery, actor).get_or_none(id=query_id)
    if saved is None:
        raise NotFound("saved query not found", code=QueryErrorCode.saved_query_not_found)
    return saved


@requires("viewer")
async def list_saved_queries(*, actor: Principal) -> list[SavedQuery]:
    return await in_org(SavedQuery, actor).order_by("-starred", "name", "created_at")


@requires("admin")
async def create_saved_query(
    *, actor: Principal, name: str, sql: str, dataset: str = "events", starred: bool = False
) -> SavedQuery:
    saved = await SavedQuery.create(
        org_id=actor.org_id,
        name=clean_name(name, "name"),
        sql=_clean_sql(sql),
        dataset=_clean_dataset(dataset),
        starred=starred,
        created_by=actor.actor_id,
    )
    await audit.record(actor, "saved_query.create", "saved_query", saved.id, {"name": saved.name})
    return saved


@requires("admin")
async def update_saved_query(
    *,
    actor: Principal,
    query_id: str,
    name: str | None = None,
    sql: str | None = None,
    dataset: str | None = None,
    starred: bool | None = None,
) -> SavedQuery:
    saved = await _find(actor, query_id)
    changes: dict[str, object] = {}
    if name is not None:
        changes["name"] = clean_name(name, "name")
    if sql is not None:
        changes["sql"] = _clean_sql(sql)
    if dataset is not None:
        changes["dataset"] = _clean_dataset(dataset)
    if starred is not None:
        changes["starred"] = starred
    await audit.save_changes(actor, saved, changes, "saved_query.update", {"fields": list(changes)})
    return saved


@requires("admin")
async def delete_saved_query(*, actor: Principal, query_id: str) -> None:
    saved = await _find(actor, query_id)
    await saved.delete()
    await audit.record(actor, "saved_query.delete", "saved_query", query_id, {"name": saved.name})

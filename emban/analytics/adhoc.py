"""The ad-hoc SQL guard: validate one read-only query, then run it pinned to one org/environment.

Two independent layers, so isolation holds even if one of them is fooled:

1. ``validate_adhoc`` parses the text with sqlglot (ClickHouse dialect) and accepts exactly one
   ``SELECT`` / ``WITH … SELECT`` (``UNION`` / ``INTERSECT`` / ``EXCEPT`` of selects included).
   It refuses, with ``BadRequest(code="adhoc_rejected")``:

   - parse errors, empty input, more than one statement, and every statement that is not a query
     (INSERT, ALTER, DROP, TRUNCATE, CREATE, SYSTEM, SET, KILL, OPTIMIZE, ATTACH, GRANT, USE, …);
   - ``SETTINGS`` at any depth (a SETTINGS clause inside a subquery overrides
     ``additional_table_filters`` when the query is not readonly=1), ``FORMAT`` and ``INTO``;
   - every FROM/JOIN source that is not a plain table or a subquery: all table functions
     (``url``, ``file``, ``remote``, ``s3``, ``cluster``, ``merge`` — which reads around the table
     filter —, ``numbers``, ``view``, ``loop``, ``input``, ``dictionary``, chDB's ``Python`` …);
   - any table that is neither one of ``VISIBLE_DATASETS`` nor a CTE visible at that point: no
     database-qualified names (``default.events``, ``system.*``, ``information_schema.*``), no other
     tables (``event_ids``, ``emban_schema_versions``, the ``*_mv`` views). Names compare
     case-sensitively, as ClickHouse does. A CTE name is in scope in the CTEs after it, in the
     query it heads and in all of that query's subqueries, lambdas and scalar expressions — the
     scoping ClickHouse 26.9 applies (measured, also for a WITH heading a UNION). ``WITH
     RECURSIVE`` is refused: ClickHouse reads the *real* table of the CTE's name in the anchor
     and in a non-UNION body (measured), so a self-named recursive CTE would read around the
     allowlist;
   - ``x IN t`` / ``x IN (t)`` / ``x IN (db.t)``: a lone identifier on the right of IN reads that
     table in ClickHouse (measured: ``0 IN (system.one)`` is 1) while sqlglot sees a column —
     write ``IN (SELECT …)`` or list literals;
   - every function that is not on the allowlist of data functions in ``adhoc_functions``
     (aggregates with their combinators, arithmetic, comparison, logic, conditionals, strings,
     dates, type conversion, arrays, maps, tuples, JSON, URL, hashing, rounding, maths): the 400
     names the function. Server and environment introspection (``version``, ``hostName``,
     ``currentUser``, ``currentDatabase``, ``getSetting``, ``uptime``, ``buildId``, ``serverUUID``,
     ``getMacro`` …), the function forms of IN (they take a table name), dictionaries, files,
     models and every function a later ClickHouse adds are refused because they are not listed.
     sqlglot parses many calls into typed nodes (``Count``, ``If``, ``StrPosition`` …) and may
     rename them when it renders; the name checked is the one in the rendered text the engine runs
     (``POSITION``, ``CURRENT_DATABASE``), so a typed node cannot smuggle a call past the list.
     ``sleep`` stays allowed (bounded by ``max_execution_time`` and the per-org concurrency cap);
   - virtual columns: any column whose name starts with ``_`` (``_part``, ``_part_offset``,
     ``_block_number``, ``_part_uuid``, ``_partition_id``, ``_row_exists``, ``_sample_factor`` …).
     No column of a visible dataset starts with ``_``, and virtual columns describe the shared
     parts other orgs' rows live in; ``* APPLY(f)`` is refused (it names a function indirectly);
   - query parameters (``{x:String}``) and LATERAL.

   Comments never reach the engine: the accepted statement is re-rendered from the AST
   (``comments=False``) and that text — never the raw input — is what runs. The rendering is
   re-parsed and re-validated and must render identically, so the engine sees what was checked.

2. ``run_adhoc`` appends its own ``SETTINGS`` clause to the rendered text (measured on chDB 26.9):
   ``additional_table_filters`` pinning ``org_id`` and ``environment_id`` on every visible
   dataset (plus ``event_ids`` and the rollup views, should the parser ever let one through),
   ``max_execution_time`` with ``timeout_overflow_mode='throw'``, ``max_memory_usage`` (the
   embedded engine shares the service process), ``allow_introspection_functions=0``, ``limit``
   (the top-level result only: exact, unlike ``max_result_rows`` + ``result_overflow_mode='break'``
   which stops at a block boundary) and ``readonly=1``. A query-level ``readonly=1`` is accepted
   together with the other settings of the same clause, refuses writes and the url/file/remote
   table functions, and neutralises SETTINGS clauses nested in subqueries (silently ignored or
   refused); ``readonly=2`` would let a nested ``additional_table_filters`` override the pin.
   ``max_result_bytes`` with ``result_overflow_mode='throw'`` stops a big answer inside the
   engine; it undercounts constant columns (measured: ``repeat('x', 1000)`` over 100k rows
   passes a 1 MB cap), so the store also refuses an answer whose real size is over the cap,
   before decoding it. Either way the caller gets ``BadRequest(code="adhoc_result_too_large")``
   naming the cap. The query runs on the store's ad-hoc connections (``query_adhoc``), never on
   the pool ingest, embeds and ``/healthz`` use.
   Engine errors become ``BadRequest(code="adhoc_failed")`` with the first line of the message.

The per-org concurrency cap (429 beyond ``EMBAN_ADHOC_MAX_CONCURRENT_PER_ORG``) is a service
rule: ``emban/services/adhoc.py``.
"""

from __future__ import annotations

import functools
import re
import time
from dataclasses import dataclass, field
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, SqlglotError

from emban.analytics.adhoc_functions import is_allowed_function
from emban.analytics.store import ClickHouseError, EventStore, ResultTooLarge
from emban.analytics.tables import EVENT_IDS, EVENTS, VISIBLE_DATASETS
from emban.error_codes import QueryErrorCode
from emban.errors import BadRequest

DIALECT = "clickhouse"
MAX_SQL_LENGTH = 100_000
CACHED_SQL_LENGTH = 4_096  # accepted statements this short are remembered (validate_adhoc)
VALIDATED_CACHE = 512  # how many: at most 2 MiB of text
DEFAULT_MAX_ROWS = 10_000
DEFAULT_TIMEOUT_S = 10
DEFAULT_MAX_MEMORY_BYTES = 1 << 30
DEFAULT_MAX_RESULT_BYTES = 16 << 20
TOO_MANY_ROWS_OR_BYTES = 396  # ClickHouse's code when max_result_bytes is exceeded

# Tables the engine-level pin covers: the visible datasets, plus org-scoped tables the parser
# never lets through (defence in depth). Reading a materialized view does not apply the filter of
# its target table, so the views get their own entry (names as in ddl.py).
GUARDED_TABLES: tuple[str, ...] = (
    *VISIBLE_DATASETS,
    EVENT_IDS,
    *(f"{table}_mv" for table in VISIBLE_DATASETS if table != EVENTS),
)

# Typed sqlglot nodes that render as SQL syntax, not as a call of a named function.
_SYNTAX_NODES: tuple[type[exp.Expr], ...] = (
    exp.Case,  # CASE … END
    exp.If,  # if(a, b, c) and a ? b : c render as CASE WHEN
    exp.Array,  # [1, 2]
    exp.CurrentTimestamp,  # CURRENT_TIMESTAMP
)
_CALL = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*\(")
# Statement kinds that must not appear anywhere in the tree.
_REFUSED_NODES: tuple[type[exp.Expr], ...] = (
    exp.DML,
    exp.DDL,
    exp.Command,
    exp.Set,
    exp.Use,
    exp.Describe,
    exp.Show,
    exp.Transaction,
    exp.Commit,
    exp.Rollback,
    exp.Kill,
    exp.TruncateTable,
    exp.Drop,
    exp.Alter,
    exp.Attach,
    exp.Detach,
    exp.Grant,
    exp.Revoke,
    exp.Pragma,
    exp.Analyze,
)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class ValidatedSql:
    """An accepted statement: ``sql`` is rendered from the AST (the only text ever executed)."""

    sql: str
    tables: frozenset[str]


@dataclass(frozen=True)
class AdhocResult:
    columns: list[dict[str, str]]
    rows: list[list[Any]]
    stats: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"columns": self.columns, "rows": self.rows, "stats": self.stats}


def _reject(reason: str) -> BadRequest:
    return BadRequest(reason, code=QueryErrorCode.adhoc_rejected)


def validate_adhoc(sql: str) -> ValidatedSql:
    """Accept one read-only query over the visible datasets, or raise ``BadRequest``.

    Accepted statements up to ``CACHED_SQL_LENGTH`` characters are remembered (the last
    ``VALIDATED_CACHE`` of them): a dashboard or a client retrying sends the same text again,
    and parsing it twice over costs the event loop milliseconds each time. Refusals are not
    remembered (they raise again)."""
    if len(sql) <= CACHED_SQL_LENGTH:
        return _validate_remembered(sql)
    return _validate(sql)


@functools.lru_cache(maxsize=VALIDATED_CACHE)
def _validate_remembered(sql: str) -> ValidatedSql:
    return _validate(sql)


def _validate(sql: str) -> ValidatedSql:
    if not sql or not sql.strip():
        raise _reject("The query is empty.")
    if len(sql) > MAX_SQL_LENGTH:
        raise _reject(f"The query is longer than {MAX_SQL_LENGTH} characters.")
    try:
        first = _validate_text(sql)
        # The engine runs the rendering, so the rendering itself must pass and be a fixed point.
        second = _validate_text(first.sql)
    except RecursionError as exc:
        raise _reject("The query is nested too deeply.") from exc
    if second.sql != first.sql:
        raise _reject("The query could not be normalised safely; simplify it.")
    return first


def _validate_text(sql: str) -> ValidatedSql:
    try:
        statements = [s for s in sqlglot.parse(sql, read=DIALECT) if s is not None]
    except ParseError as exc:
        raise _reject(_parse_reason(sql, exc)) from exc
    except SqlglotError as exc:
        raise _reject(f"The query could not be parsed: {_first_line(str(exc))}") from exc
    if not statements:
        raise _reject("The query is empty.")
    if len(statements) > 1:
        raise _reject("Only one statement is allowed; remove the ';' and what follows it.")
    statement = statements[0]
    while isinstance(statement, exp.Subquery) and not any(
        value for key, value in statement.args.items() if key != "this"
    ):
        statement = statement.this  # (SELECT …)
    if not isinstance(statement, (exp.Select, exp.SetOperation)):
        kind = statement.key.upper() if isinstance(statement, exp.Expr) else "?"
        if isinstance(statement, exp.Command):
            kind = str(statement.this).upper()
        raise _reject(f"Only SELECT and WITH … SELECT queries are allowed, not {kind}.")
    tables: set[str] = set()
    _walk(statement, frozenset(), tables)
    return ValidatedSql(
        sql=statement.sql(dialect=DIALECT, comments=False), tables=frozenset(tables)
    )


def _parse_reason(sql: str, exc: ParseError) -> str:
    if re.search(r"\bINTO\s+OUTFILE\b", sql, re.IGNORECASE):
        return "INTO OUTFILE is not allowed."
    if exc.errors:
        error = exc.errors[0]
        description = _first_line(str(error.get("description") or "syntax error"))
        return (
            f"The query could not be parsed: {description} "
            f"(line {error.get('line')}, column {error.get('col')})."
        )
    return f"The query could not be parsed: {_first_line(str(exc))}"


def _first_line(text: str) -> str:
    lines = _ANSI.sub("", text).strip().splitlines()
    return lines[0].strip() if lines else ""


def _walk(node: exp.Expr, ctes: frozenset[str], tables: set[str]) -> None:
    """Check ``node`` and everything below it; ``ctes`` are the CTE names in scope here."""
    _check(node, ctes, tables)
    with_ = node.args.get("with_")
    if isinstance(with_, exp.With):
        ctes = _walk_with(with_, ctes, tables)
    for key, value in node.args.items():
        if key == "with_":
            continue
        for child in value if isinstance(value, list) else [value]:
            if isinstance(child, exp.Expr):
                _walk(child, ctes, tables)


def _walk_with(with_: exp.With, ctes: frozenset[str], tables: set[str]) -> frozenset[str]:
    if with_.args.get("recursive"):
        # ClickHouse resolves a recursive CTE's own name to the real table in its anchor and in
        # a body that is not a UNION (measured), so its scope cannot be checked reliably.
        raise _reject("WITH RECURSIVE is not allowed.")
    names = ctes
    for cte in with_.expressions:
        if not isinstance(cte, exp.CTE):
            raise _reject("Unsupported WITH clause.")
        body = cte.this
        if cte.args.get("scalar"):
            # WITH <expr> AS name: a scalar alias, not a table source.
            _walk(body, names, tables)
            continue
        name = cte.alias
        if not name:
            raise _reject("Every common table expression needs a name.")
        inner = body
        while isinstance(inner, exp.Subquery):
            inner = inner.this
        if not isinstance(inner, (exp.Select, exp.SetOperation)):
            raise _reject(f"The common table expression {name} must be a SELECT query.")
        _walk(body, names, tables)  # a CTE does not see itself
        names = names | {name}
    return names


def _check(node: exp.Expr, ctes: frozenset[str], tables: set[str]) -> None:
    if isinstance(node, _REFUSED_NODES):
        raise _reject(f"{node.key.upper()} is not allowed; only SELECT queries can run.")
    if node.args.get("settings"):
        raise _reject("SETTINGS clauses are not allowed (at any level of the query).")
    if isinstance(node, exp.Query) and node.args.get("format"):
        raise _reject("FORMAT clauses are not allowed.")
    if node.args.get("into") or isinstance(node, exp.Into):
        raise _reject("INTO is not allowed.")
    if isinstance(node, (exp.Placeholder, exp.Parameter)):
        raise _reject("Query parameters are not supported in ad-hoc SQL.")
    if isinstance(node, exp.Lateral):
        raise _reject("LATERAL is not allowed.")
    if isinstance(node, (exp.From, exp.Join)):
        _check_source(node)
    elif isinstance(node, exp.Table):
        _check_table(node, ctes, tables)
    elif isinstance(node, exp.In) and _in_names_a_table(node):
        raise _reject("IN <table> is not allowed; write IN (SELECT … FROM <table>).")
    elif isinstance(node, exp.Apply):
        raise _reject("APPLY is not allowed; call the function on each column instead.")
    elif isinstance(node, exp.Func):
        _check_function(node)
    elif isinstance(node, (exp.Identifier, exp.Var)) and node.name.startswith("_"):
        # Every name, not only columns: USING (_part) and lambda parameters are identifiers too.
        raise _reject(
            f"The column {node.name} is not available: names starting with '_' are the "
            "engine's virtual columns (rename an alias that starts with '_')."
        )


def _in_names_a_table(node: exp.In) -> bool:
    """``x IN t``, ``x IN (t)`` and ``x IN (db.t)`` read table ``t`` in ClickHouse (measured:
    ``0 IN (system.one)`` is 1), and sqlglot sees a column there, not a table."""
    if node.args.get("field") is not None:
        return True
    values = node.expressions
    if len(values) != 1:
        return False
    value = values[0]
    while isinstance(value, exp.Paren):
        value = value.this
    return isinstance(value, (exp.Column, exp.Dot, exp.Identifier))


def _check_source(node: exp.From | exp.Join) -> None:
    if isinstance(node, exp.Join) and str(node.args.get("kind") or "").upper() == "ARRAY":
        return  # ARRAY JOIN takes an expression, not a table
    source = node.this
    while isinstance(source, exp.Final):
        source = source.this
    if isinstance(source, exp.Table) and isinstance(source.this, exp.Func):
        name = _function_name(source.this)
        raise _reject(f"Table functions are not allowed: {name}().")
    if not isinstance(source, (exp.Table, exp.Subquery)):
        raise _reject(
            "Only tables and subqueries can be read; table functions and other sources are not "
            "allowed."
        )


def _check_table(node: exp.Table, ctes: frozenset[str], tables: set[str]) -> None:
    if isinstance(node.this, exp.Func):
        raise _reject(f"Table functions are not allowed: {_function_name(node.this)}().")
    if not isinstance(node.this, exp.Identifier):
        raise _reject("Unsupported table reference.")
    name = node.this.name
    if node.args.get("db") is not None or node.args.get("catalog") is not None:
        qualified = ".".join(part.name for part in node.parts)
        raise _reject(
            f"Table {qualified} is not available; use the unqualified dataset names: "
            f"{', '.join(VISIBLE_DATASETS)}."
        )
    if name in ctes:
        return
    if name not in VISIBLE_DATASETS:
        raise _reject(
            f"Table {name} is not available; the datasets are: {', '.join(VISIBLE_DATASETS)}."
        )
    tables.add(name)


def _check_function(node: exp.Func) -> None:
    name = _engine_function_name(node)
    if name is None:
        if isinstance(node, _SYNTAX_NODES):
            return
        name = node.sql_name()
    if not is_allowed_function(name):
        raise _reject(
            f"The function {name}() is not allowed in ad-hoc SQL; only data functions are "
            "(see the ad-hoc SQL section of the docs)."
        )


def _engine_function_name(node: exp.Func) -> str | None:
    """The name ClickHouse will call for ``node``: the name as written for calls sqlglot keeps
    as they are, else the name in the rendered text (the text that runs), or None for syntax."""
    this = node.args.get("this")
    if isinstance(this, str):
        return this  # Anonymous, AnonymousAggFunc, CombinedAggFunc, ParameterizedAgg, …
    if isinstance(node, (exp.Anonymous, exp.AnonymousAggFunc)) and isinstance(this, exp.Identifier):
        return this.name  # a quoted name: `file`('…')
    match = _CALL.match(node.sql(dialect=DIALECT, comments=False))
    return match.group(1) if match else None


def _function_name(node: exp.Expr) -> str:
    this = node.args.get("this")
    if isinstance(this, str):
        return this
    if isinstance(node, (exp.Anonymous, exp.AnonymousAggFunc)) and isinstance(this, exp.Identifier):
        return this.name
    if isinstance(node, exp.Func):
        return node.sql_name()
    return node.key


def _quote(value: str) -> str:
    """A ClickHouse string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def adhoc_settings(
    *,
    org_id: str,
    environment_id: str,
    limit: int,
    timeout_s: int,
    max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES,
    max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES,
) -> str:
    """The SETTINGS clause ``run_adhoc`` appends (without the ``SETTINGS`` keyword)."""
    pin = f"org_id = {_quote(org_id)} AND environment_id = {_quote(environment_id)}"
    filters = ", ".join(f"{_quote(table)}: {_quote(pin)}" for table in GUARDED_TABLES)
    return ", ".join(
        [
            f"additional_table_filters = {{{filters}}}",
            f"max_execution_time = {int(timeout_s)}",
            "timeout_overflow_mode = 'throw'",
            f"max_memory_usage = {int(max_memory_bytes)}",
            # The engine stops a result as soon as its blocks pass the cap (it undercounts
            # constant columns, so run_adhoc checks the answer's real size again).
            f"max_result_bytes = {int(max_result_bytes)}",
            "result_overflow_mode = 'throw'",
            "allow_introspection_functions = 0",
            # The engine's threads for ad-hoc work run at a lower CPU priority (with
            # CAP_SYS_NICE; a no-op without): other orgs' requests get the cores first.
            "os_thread_priority = 10",
            f"limit = {int(limit)}",
            "readonly = 1",
        ]
    )


def _too_large(max_result_bytes: int) -> BadRequest:
    return BadRequest(
        f"The result is larger than the ad-hoc result cap of {max_result_bytes} bytes "
        "(EMBAN_ADHOC_MAX_RESULT_BYTES); aggregate, select fewer columns or add a LIMIT.",
        code=QueryErrorCode.adhoc_result_too_large,
    )


async def run_adhoc(
    store: EventStore,
    *,
    org_id: str,
    environment_id: str,
    sql: str | ValidatedSql,
    max_rows: int = DEFAULT_MAX_ROWS,
    timeout_s: int = DEFAULT_TIMEOUT_S,
    max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES,
    max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES,
) -> AdhocResult:
    """Validate ``sql`` (unless already validated) and run it over ``org_id``/``environment_id``'s
    rows only, on the store's ad-hoc connections, within the row and byte caps."""
    if not org_id or not environment_id:
        raise ValueError("run_adhoc needs an org_id and an environment_id")
    if max_rows < 1 or timeout_s < 1 or max_result_bytes < 1:
        raise ValueError("max_rows, timeout_s and max_result_bytes must be at least 1")
    validated = sql if isinstance(sql, ValidatedSql) else validate_adhoc(sql)
    settings = adhoc_settings(
        org_id=org_id,
        environment_id=environment_id,
        limit=max_rows + 1,
        timeout_s=timeout_s,
        max_memory_bytes=max_memory_bytes,
        max_result_bytes=max_result_bytes,
    )
    started = time.perf_counter()
    try:
        result = await store.query_adhoc(
            f"{validated.sql}\nSETTINGS {settings}", max_result_bytes=max_result_bytes
        )
    except ResultTooLarge as exc:
        raise _too_large(max_result_bytes) from exc
    except ClickHouseError as exc:
        if exc.code == TOO_MANY_ROWS_OR_BYTES:
            raise _too_large(max_result_bytes) from exc
        message = _first_line(str(exc)) or "The query failed."
        raise BadRequest(message[:1000], code=QueryErrorCode.adhoc_failed) from exc
    wall_ms = round((time.perf_counter() - started) * 1000.0)
    rows = result.rows
    truncated = len(rows) > max_rows
    if truncated:
        rows = rows[:max_rows]
    return AdhocResult(
        columns=[{"name": name, "type": type_} for name, type_ in result.columns],
        rows=rows,
        stats={"wall_ms": wall_ms, "rows_returned": len(rows), "truncated": truncated},
    )

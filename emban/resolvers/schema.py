"""The Strawberry schema: errors mapped to ``extensions.code``, caches and query limits on."""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Iterator
from enum import StrEnum
from typing import Any

import strawberry
from aiohttp import web
from graphql.error import GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext
from strawberry.types.execution import StreamExecutionResult

from emban.dependencies import dependency_failure
from emban.error_codes import ERROR_CODE_ENUMS, ErrorCategory
from emban.errors import EmbanError
from emban.metadata import refused_text
from emban.metrics_http import METRICS_KEY
from emban.request_ids import current_request_id
from emban.resolvers.alerts import AlertMutations, AlertQueries
from emban.resolvers.analytics import AnalyticsMutations, AnalyticsQueries, DataPoint
from emban.resolvers.billing import BillingQueries
from emban.resolvers.context import same_site_only, transactional_by_default
from emban.resolvers.dashboards import DashboardMutations, DashboardQueries
from emban.resolvers.discovery import DiscoveryMutations, DiscoveryQueries
from emban.resolvers.embed import EmbedMutations, EmbedQueries
from emban.resolvers.execution import FlatObjectsExecutionContext, register_flat
from emban.resolvers.live import Subscription
from emban.resolvers.mutations import Mutation
from emban.resolvers.queries import Query
from emban.resolvers.scalars import SCALAR_MAP

log = logging.getLogger("emban.graphql")

MAX_DEPTH = 10
MAX_ALIASES = 20
MAX_TOKENS = 2000

# The depth and alias limits as validation rules, built once. ``QueryDepthLimiter`` and
# ``MaxAliasesLimiter`` each create a new rule class per instance, and ``ValidationCache`` keys
# its LRU on the rule tuple: built per request (extension factories), every request missed the
# cache and re-validated its document — ~3 ms of the analytics query over /graphql (measured
# with cProfile, issue 13). One set of classes for the process makes a known document a hit.
LIMIT_RULES = (
    *QueryDepthLimiter(max_depth=MAX_DEPTH).validation_rules,
    *MaxAliasesLimiter(max_alias_count=MAX_ALIASES).validation_rules,
)


def error_extensions(error: EmbanError) -> dict[str, Any]:
    """``extensions`` of a domain error: the GraphQL category, the REST code, the REST extras."""
    return {"code": str(error.graphql_code), "reason": str(error.code), **error.extra}


def domain_error(error: GraphQLError) -> EmbanError | None:
    """The domain error behind a GraphQL error: what a resolver raised, or PostgreSQL's refusal
    of a NUL character mapped to its 400, a dependency that cannot be reached mapped to its 503
    ``unavailable``; None for anything else."""
    original = error.original_error
    if isinstance(original, EmbanError):
        return original
    if original is None:
        return None
    return refused_text(original) or dependency_failure(original)


def is_request_error(error: GraphQLError) -> bool:
    """A parse, validation or variable-coercion error: about the request, before any field ran
    (no ``path``). graphql-core's own message is for the client."""
    return not error.path


def is_unexpected(error: GraphQLError) -> bool:
    """``MaskErrors``' predicate: mask what a resolver raised that is not a domain error. Request
    errors (syntax, validation, variable coercion) are for the client to see."""
    return (
        error.original_error is not None
        and not is_request_error(error)
        and domain_error(error) is None
    )


def with_extensions(error: GraphQLError) -> GraphQLError:
    """A domain error as the client sees it: its own message, with ``extensions`` carrying the
    category (``code``), the REST code (``reason``) and the REST extras (``field`` ...)."""
    domain = domain_error(error)
    if domain is None:
        if is_request_error(error) and "code" not in (error.extensions or {}):
            return GraphQLError(
                error.message,
                nodes=error.nodes,
                source=error.source,
                positions=error.positions,
                extensions={**(error.extensions or {}), "code": ErrorCategory.BAD_REQUEST.value},
            )
        return error
    extensions = error_extensions(domain)
    request_id = current_request_id.get()
    if domain.status >= 500 and request_id is not None:
        extensions["request_id"] = request_id  # as in a REST 5xx body
    return GraphQLError(
        domain.message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        # Kept for the view, which tarpits a refused attempt (TooManyAttempts); never rendered.
        original_error=domain,
        extensions=extensions,
    )


def _fill_extensions(result: object) -> None:
    errors: list[GraphQLError] | None = getattr(result, "errors", None)
    if errors:
        result.errors = [with_extensions(e) for e in errors]  # type: ignore[attr-defined]


class DomainErrorExtensions(SchemaExtension):
    """Gives domain errors their ``extensions`` once the operation (or each streamed result of a
    subscription) is done; ``MaskErrors(should_mask_error=is_unexpected)`` masks the rest. The
    two touch disjoint errors, so their order does not matter."""

    def on_operation(self) -> Iterator[None]:
        yield
        _fill_extensions(self.execution_context.result)

    def on_stream_result(self, result: StreamExecutionResult) -> Iterator[None]:
        _fill_extensions(result)
        yield None


class MaskUnexpectedErrors(MaskErrors):
    """``MaskErrors`` whose "Unexpected error." carries ``extensions.request_id`` (when served
    in a request), the id of the log line that holds the real error."""

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        masked = super().anonymise_error(error)
        request_id = current_request_id.get()
        if request_id is not None:
            masked.extensions = {"request_id": request_id}
        return masked


class OperationMetrics(SchemaExtension):
    """Counts each operation by name, type and outcome, and times queries and mutations (a
    subscription's duration would be its lifetime). See :mod:`emban.metrics` for the name cap."""

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:  # a subscription ends by the client leaving: the hook is closed, not resumed
            self._record(started)

    def _record(self, started: float) -> None:
        execution = self.execution_context
        context = execution.context
        request = getattr(context, "request", None)
        metrics = request.app.get(METRICS_KEY) if isinstance(request, web.Request) else None
        if metrics is None:
            return
        try:
            kind = execution.operation_type.value
        except RuntimeError:  # the document did not parse, or names no such operation
            kind = "unknown"
        name = metrics.operation_label(execution.operation_name)
        result = execution.result
        outcome = "error" if result is not None and getattr(result, "errors", None) else "ok"
        metrics.graphql_operations.labels(name, kind, outcome).inc()
        if kind != "subscription":
            metrics.graphql_duration.labels(name, kind).observe(time.perf_counter() - started)


class EmbanSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Log what is unexpected, once, before it is masked; domain errors are answers, not
        incidents."""
        for error in errors:
            if is_unexpected(error):
                log.error(
                    "unexpected GraphQL error at %s request_id=%s",
                    error.path,
                    current_request_id.get(),
                    exc_info=error.original_error,
                )


def _exported_enum(codes: type[StrEnum], carried_in: str) -> type[StrEnum]:
    doc = inspect.cleandoc(codes.__doc__ or "")
    return strawberry.enum(codes, description=f"{doc}\n\nSent as a GraphQL error's {carried_in}.")


# The error codes, exported as enums so clients can generate unions from the SDL. No field
# returns them (a code travels in extensions, which the schema does not type).
ERROR_CODE_TYPES = [
    *(
        _exported_enum(codes, "`extensions.reason` (REST: the error body's `code`)")
        for codes in ERROR_CODE_ENUMS
    ),
    _exported_enum(ErrorCategory, "`extensions.code`"),
]

schema = EmbanSchema(
    query=merge_types(
        "Query",
        (
            Query,
            AnalyticsQueries,
            DashboardQueries,
            EmbedQueries,
            DiscoveryQueries,
            AlertQueries,
            BillingQueries,
        ),
    ),
    mutation=same_site_only(
        transactional_by_default(
            merge_types(
                "Mutation",
                (
                    Mutation,
                    AnalyticsMutations,
                    DashboardMutations,
                    EmbedMutations,
                    DiscoveryMutations,
                    AlertMutations,
                ),
            )
        )
    ),
    subscription=Subscription,
    types=ERROR_CODE_TYPES,
    config=StrawberryConfig(scalar_map=SCALAR_MAP),
    execution_context_class=FlatObjectsExecutionContext,
    extensions=[
        lambda: ParserCache(maxsize=256),
        lambda: ValidationCache(maxsize=256),
        lambda: AddValidationRules(list(LIMIT_RULES)),
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        lambda: MaskUnexpectedErrors(should_mask_error=is_unexpected),
        DomainErrorExtensions,
        OperationMetrics,
    ],
)
# An analytics answer's points are completed in one loop each (resolvers/execution.py).
register_flat(schema, DataPoint)

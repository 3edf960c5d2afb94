"""The Strawberry schema: errors mapped to ``extensions.code``, caches and query limits on."""

from __future__ import annotations

import logging
from typing import Any

import strawberry
from graphql.error import GraphQLError
from strawberry.extensions import (
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from emban.errors import EmbanError
from emban.metadata import refused_text
from emban.resolvers.analytics import AnalyticsMutations, AnalyticsQueries
from emban.resolvers.dashboards import DashboardMutations, DashboardQueries
from emban.resolvers.discovery import DiscoveryMutations, DiscoveryQueries
from emban.resolvers.embed import EmbedMutations, EmbedQueries
from emban.resolvers.live import Subscription
from emban.resolvers.mutations import Mutation
from emban.resolvers.queries import Query

log = logging.getLogger("emban.graphql")

MAX_DEPTH = 10
MAX_ALIASES = 20
MAX_TOKENS = 2000


def error_extensions(error: EmbanError) -> dict[str, Any]:
    """``extensions`` of a domain error: the GraphQL category, the REST code, the REST extras."""
    return {"code": error.graphql_code, "reason": error.code, **error.extra}


class EmbanErrors(MaskErrors):
    """Domain errors keep their message and carry ``extensions.code`` plus the REST fields;
    anything unexpected is logged and masked."""

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        processed: list[GraphQLError] = []
        for error in errors:
            original = error.original_error
            if isinstance(original, EmbanError):
                extensions = error_extensions(original)
                processed.append(
                    GraphQLError(
                        original.message,
                        nodes=error.nodes,
                        source=error.source,
                        positions=error.positions,
                        path=error.path,
                        extensions=extensions,
                    )
                )
            elif original is None:
                processed.append(error)  # syntax / validation errors are for the client to see
            elif (refused := refused_text(original)) is not None:
                processed.append(
                    GraphQLError(
                        refused.message,
                        nodes=error.nodes,
                        source=error.source,
                        positions=error.positions,
                        path=error.path,
                        extensions=error_extensions(refused),
                    )
                )
            else:
                log.error("unexpected GraphQL error at %s", error.path, exc_info=original)
                processed.append(self.anonymise_error(error))
        return processed


class EmbanSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Log only what is unexpected; domain errors are answers, not incidents."""
        unexpected = [
            e
            for e in errors
            if e.original_error is not None and not isinstance(e.original_error, EmbanError)
        ]
        if unexpected:
            super().process_errors(unexpected, execution_context)


schema = EmbanSchema(
    query=merge_types(
        "Query", (Query, AnalyticsQueries, DashboardQueries, EmbedQueries, DiscoveryQueries)
    ),
    mutation=merge_types(
        "Mutation",
        (Mutation, AnalyticsMutations, DashboardMutations, EmbedMutations, DiscoveryMutations),
    ),
    subscription=Subscription,
    extensions=[
        lambda: ParserCache(maxsize=256),
        lambda: ValidationCache(maxsize=256),
        lambda: QueryDepthLimiter(max_depth=MAX_DEPTH),
        lambda: MaxAliasesLimiter(max_alias_count=MAX_ALIASES),
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        lambda: EmbanErrors(),
    ],
)

"""GraphQL over HTTP media types: which one a request accepts, and the status it gets.

The GraphQL-over-HTTP spec defines two response media types:

- ``application/json`` (the legacy one, and what every Emban client gets unless it asks): a
  request error (the document does not parse or validate, a variable does not coerce) is
  ``200`` with ``{"data": null, "errors": [...]}``, as before;
- ``application/graphql-response+json``, chosen when ``Accept`` prefers it: a request error is
  ``400`` and the body has no ``data`` entry; a response whose execution started (``data``
  present, even ``null`` after a field error) stays ``200``.

A request error is told from a field error by its errors: graphql-core gives every error raised
while resolving a ``path``, and none of the errors raised before execution (parsing, validation,
variable coercion) has one. Emban's domain errors are always raised from resolvers, so a refused
token or a forbidden filter is a field error (``200`` in both media types, as the spec asks).

The npm ``graphql-http`` audit (``tests/resolvers/test_graphql_over_http.py``) checks both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from graphql import GraphQLError

JSON = "application/json"
GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"


@dataclass
class Negotiated:
    """The media type chosen for one request, and whether its result was a request error."""

    media_type: str
    request_error: bool = False
    # Set when a field failed because a dependency is down: the answer is 503 with this
    # Retry-After whatever the media type, so clients and proxies see it is worth retrying.
    unavailable_retry_after: int | None = None
    # Set when an attempt limit's refusal found too many refusals already waiting for this
    # client address (auth/tarpit.py): it is answered at once and the connection closes.
    close_connection: bool = False

    @property
    def status(self) -> int:
        """The status of a result: 503 when a dependency was unavailable; else only the
        graphql-response media type says 400."""
        if self.unavailable_retry_after is not None:
            return 503
        return 400 if self.request_error and self.media_type == GRAPHQL_RESPONSE_JSON else 200


def _quality(params: Sequence[str]) -> float:
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                return max(0.0, min(1.0, float(value.strip())))
            except ValueError:
                return 0.0
    return 1.0


def negotiate(accept: str | None) -> str:
    """The response media type for an ``Accept`` header.

    ``application/graphql-response+json`` when it is listed with a quality at least that of
    ``application/json`` (or of a wildcard that stands for it); ``application/json`` otherwise,
    also for a missing header, ``*/*`` and an ``Accept`` that names neither (the spec lets the
    server answer with application/json rather than 406)."""
    best_response = 0.0
    best_json = 0.0
    for item in (accept or "").split(","):
        media, *params = item.split(";")
        media = media.strip().lower()
        quality = _quality(params)
        if media == GRAPHQL_RESPONSE_JSON:
            best_response = max(best_response, quality)
        elif media in (JSON, "application/*", "*/*"):
            best_json = max(best_json, quality)
    if best_response > 0 and best_response >= best_json:
        return GRAPHQL_RESPONSE_JSON
    return JSON


def is_request_error(data: object, errors: Sequence[GraphQLError] | None) -> bool:
    """Whether a result failed before execution (no ``data`` entry belongs in the response)."""
    return data is None and bool(errors) and all(error.path is None for error in errors or ())

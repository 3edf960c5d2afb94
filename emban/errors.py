"""The one error hierarchy: every domain error carries a stable ``code`` and its HTTP status.

REST renders it as ``{"error": message, "code": code, ...extra}``; GraphQL puts the same fields in
``extensions`` with ``extensions.code`` set to the GraphQL category (``UNAUTHENTICATED`` ...)
and ``extensions.reason`` set to the code. Codes are members of the per-domain enums in
:mod:`emban.error_codes` (typed as their union, so a raise site cannot invent a string).
"""

from __future__ import annotations

from typing import Any, ClassVar

from emban.error_codes import (
    AuthErrorCode,
    BillingErrorCode,
    ErrorCategory,
    ErrorCode,
    IngestErrorCode,
    LiveErrorCode,
    PlanErrorCode,
    QueryErrorCode,
    RequestErrorCode,
)


class EmbanError(Exception):
    status: ClassVar[int] = 400
    graphql_code: ClassVar[ErrorCategory | LiveErrorCode] = ErrorCategory.BAD_REQUEST
    default_code: ClassVar[ErrorCode] = RequestErrorCode.bad_request

    def __init__(self, message: str, *, code: ErrorCode | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.code: ErrorCode = code or self.default_code
        self.extra: dict[str, Any] = extra

    def body(self) -> dict[str, Any]:
        return {"error": self.message, "code": str(self.code), **self.extra}

    def headers(self) -> dict[str, str]:
        return {}


class BadRequest(EmbanError):
    """A payload or parameter is invalid; ``field`` names it when there is one."""

    def __init__(
        self, message: str, *, field: str | None = None, code: ErrorCode | None = None
    ) -> None:
        if field is None:
            super().__init__(message, code=code or RequestErrorCode.bad_request)
        else:
            super().__init__(message, code=code or RequestErrorCode.invalid_field, field=field)


class AnswerTooLarge(BadRequest):
    """400: the answer would exceed a size cap; ``limit`` is the cap, ``field`` what to change."""

    def __init__(self, message: str, *, field: str, limit: int) -> None:
        super().__init__(message, field=field, code=QueryErrorCode.too_many_points)
        self.extra["limit"] = limit


class InvalidEvents(EmbanError):
    """400 listing every bad event: ``errors`` is ``[{"index", "field", "message"}]``."""

    def __init__(self, errors: list[dict[str, object]], total: int) -> None:
        super().__init__(
            f"{total} invalid event field(s); nothing was stored",
            code=IngestErrorCode.invalid_events,
            errors=errors,
        )


class Unauthenticated(EmbanError):
    status = 401
    graphql_code = ErrorCategory.UNAUTHENTICATED
    default_code = AuthErrorCode.unauthenticated


class Forbidden(EmbanError):
    status = 403
    graphql_code = ErrorCategory.FORBIDDEN
    default_code = RequestErrorCode.forbidden


class NotFound(EmbanError):
    status = 404
    graphql_code = ErrorCategory.NOT_FOUND
    default_code = RequestErrorCode.not_found


class MethodNotAllowed(EmbanError):
    status = 405
    graphql_code = ErrorCategory.BAD_REQUEST
    default_code = RequestErrorCode.method_not_allowed


class Conflict(EmbanError):
    status = 409
    graphql_code = ErrorCategory.CONFLICT
    default_code = RequestErrorCode.conflict


class PayloadTooLarge(EmbanError):
    status = 413
    graphql_code = ErrorCategory.BAD_REQUEST
    default_code = RequestErrorCode.payload_too_large


class PlanLimitExceeded(EmbanError):
    """402 with exactly the spec's body: error, code, plan, upgrade_to, limit, used."""

    status = 402
    graphql_code = ErrorCategory.PLAN_LIMIT
    default_code = PlanErrorCode.plan_limit

    def __init__(
        self,
        message: str,
        *,
        code: PlanErrorCode,
        plan: str,
        upgrade_to: str | None,
        limit: int | None,
        used: int | None,
    ) -> None:
        super().__init__(
            message, code=code, plan=plan, upgrade_to=upgrade_to, limit=limit, used=used
        )


class RateLimited(EmbanError):
    status = 429
    graphql_code = ErrorCategory.RATE_LIMITED
    default_code = RequestErrorCode.rate_limited

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, retry_after=retry_after)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class TooManyAttempts(RateLimited):
    """429 from an anonymous attempt limit (login, registration, invite acceptance): the same
    answer as :class:`RateLimited`, which the edges send only after the tarpit's delay
    (:mod:`emban.auth.tarpit`)."""


class BadGateway(EmbanError):
    """502: a provider this service relies on (Paddle) answered an error or did not answer."""

    status = 502
    graphql_code = ErrorCategory.BAD_GATEWAY
    default_code = BillingErrorCode.billing_provider_error


class ServiceUnavailable(EmbanError):
    """503: a feature is switched off or not configured here; ``Retry-After`` when it is worth
    retrying."""

    status = 503
    graphql_code = ErrorCategory.SERVICE_UNAVAILABLE
    default_code = BillingErrorCode.billing_not_configured

    def __init__(
        self, message: str, *, code: ErrorCode | None = None, retry_after: int | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}


class Unavailable(ServiceUnavailable):
    """503 ``unavailable`` with ``Retry-After``: a dependency this request needs (``dependency``:
    ``clickhouse``, ``metadata`` or ``redis``) cannot be reached right now. Nothing was
    acknowledged; the same request succeeds once the dependency is back (no restart needed)."""

    def __init__(self, dependency: str, *, retry_after: int) -> None:
        super().__init__(
            f"{dependency} is unavailable; retry later",
            code=RequestErrorCode.unavailable,
            retry_after=retry_after,
        )
        self.dependency = dependency
        self.extra.update(dependency=dependency, retry_after=retry_after)


class LiveLimitExceeded(EmbanError):
    """A live-embed cap refused a subscription. Unlike the other errors, GraphQL's
    ``extensions.code`` is the cap's own code (the live contract names it), not a category."""

    status = 429


class TooManyCohorts(LiveLimitExceeded):
    graphql_code = LiveErrorCode.too_many_cohorts
    default_code = LiveErrorCode.too_many_cohorts


class TooManySubscriptions(LiveLimitExceeded):
    graphql_code = LiveErrorCode.too_many_subscriptions
    default_code = LiveErrorCode.too_many_subscriptions

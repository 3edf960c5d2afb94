"""The request/job transaction boundary, with work deferred until after the commit.

Services never commit; the edge wraps each mutation in :func:`transaction`. A service that must
tell the outside world about a change (live embeds, jobs) calls :func:`after_commit`: the call
runs only once the transaction has committed, and never when it rolled back. A call that fails
is logged, unless it raises an :class:`~emban.errors.EmbanError`: that one is the request's answer
(the change itself stays committed).

No engine I/O happens inside :func:`transaction` (the store refuses it, see
``emban.metadata.refuse_inside_transaction``): a service that needs ClickHouse reads first and
then writes in a short transaction of its own (its edges declare no transaction), and engine
writes that follow a change (deleting an org's events) go to a job via :func:`after_commit`.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from tortoise.transactions import in_transaction

from emban.errors import EmbanError
from emban.metadata import marked_transaction

log = logging.getLogger("emban.boundary")

Deferred = Callable[[], Awaitable[None]]
_pending: contextvars.ContextVar[list[Deferred] | None] = contextvars.ContextVar(
    "emban_after_commit", default=None
)


def after_commit(call: Deferred) -> None:
    """Run ``call`` after the current transaction commits (at once when there is none)."""
    pending = _pending.get()
    if pending is None:
        raise RuntimeError("after_commit() outside a transaction boundary")
    pending.append(call)


@asynccontextmanager
async def transaction() -> AsyncIterator[None]:
    calls: list[Deferred] = []
    token = _pending.set(calls)
    try:
        with marked_transaction():
            async with in_transaction("default"):
                yield
    finally:
        _pending.reset(token)
    refused: EmbanError | None = None
    for call in calls:  # only reached when the transaction committed
        try:
            await call()
        except EmbanError as error:
            # A call that decided the caller must hear of its failure (a job that could not be
            # queued because Redis is down: 503 unavailable); the other calls still run.
            refused = refused or error
        except Exception:
            log.exception("after-commit call failed")
    if refused is not None:
        raise refused

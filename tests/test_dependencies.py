"""Which failures mean "a dependency is down" (503 unavailable naming it), logged once per
outage; and the Redis limiters' fall-back to this process while Redis is down.

The outages themselves, under a running ``emban serve``, are in
``tests/e2e/test_dependency_outages.py``."""

from __future__ import annotations

import logging
import socket

import asyncpg
import pytest
import redis.exceptions
from arq.worker import Worker
from redis.asyncio import Redis
from tortoise.exceptions import DBConnectionError, IntegrityError, OperationalError

from emban.auth.rate_limit import RedisOrLocalBudgets, RedisOrLocalLimiter
from emban.dependencies import (
    Outages,
    dependency_failure,
    dependency_failure_part,
    quiet_reconnect_tracebacks,
    redis_gone,
)
from emban.errors import Unavailable
from emban.jobs import worker as worker_module
from emban.jobs.worker import ResilientWorker


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _raised_from_module(module: str, error: BaseException) -> BaseException:
    """``error`` raised by a function whose module is ``module`` (as a client library's frame)."""
    namespace: dict[str, object] = {"__name__": module}
    exec("def fail(error):\n    raise error\n", namespace)  # noqa: S102 - a frame named module
    try:
        namespace["fail"](error)  # type: ignore[operator]
    except BaseException as raised:
        return raised
    raise AssertionError("not raised")


def _wrapped(outer: BaseException, cause: BaseException) -> BaseException:
    try:
        raise outer from cause
    except BaseException as raised:
        return raised


@pytest.mark.parametrize(
    ("error", "part"),
    [
        (asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"), "metadata"),
        (
            asyncpg.exceptions.CannotConnectNowError("starting up"),
            "metadata",
        ),
        (asyncpg.exceptions.AdminShutdownError("terminating connection"), "metadata"),
        (asyncpg.exceptions.InterfaceError("connection is closed"), "metadata"),
        (DBConnectionError("cannot connect"), "metadata"),
        (
            _wrapped(OperationalError("x"), asyncpg.exceptions.CannotConnectNowError("x")),
            "metadata",
        ),
        (
            _raised_from_module("asyncpg.connect_utils", ConnectionRefusedError(111, "x")),
            "metadata",
        ),
        (_raised_from_module("redis.asyncio.connection", TimeoutError()), "redis"),
        (redis.exceptions.ConnectionError("Error 111 connecting"), "redis"),
        (redis.exceptions.TimeoutError("Timeout reading"), "redis"),
        (_raised_from_module("aiochclient.http_clients", ConnectionResetError()), "clickhouse"),
        (Unavailable("clickhouse", retry_after=5), "clickhouse"),
        # Not a dependency being down: a bug or a refusal, answered as before.
        (asyncpg.exceptions.InterfaceError("cannot call Connection.fetch(): misuse"), None),
        (_wrapped(IntegrityError("x"), asyncpg.exceptions.UniqueViolationError("x")), None),
        (redis.exceptions.ResponseError("WRONGTYPE"), None),
        (ConnectionRefusedError(111, "raised by emban's own code"), None),
        (_raised_from_module("aiohttp.web_protocol", ConnectionResetError()), None),
        (ValueError("x"), None),
    ],
)
def test_which_failures_are_a_dependency_down(error: BaseException, part: str | None) -> None:
    assert dependency_failure_part(error) == part
    answer = dependency_failure(error)
    if part is None:
        assert answer is None
    else:
        assert answer is not None
        assert (answer.status, answer.body(), answer.headers()) == (
            503,
            {
                "error": f"{part} is unavailable; retry later",
                "code": "unavailable",
                "dependency": part,
                "retry_after": 5,
            },
            {"Retry-After": "5"},
        )


def test_an_outage_is_logged_once_and_its_end_once(caplog: pytest.LogCaptureFixture) -> None:
    outages = Outages()
    with caplog.at_level(logging.INFO, logger="emban.dependencies"):
        for _ in range(3):
            outages.down("redis")
        assert outages.is_down("redis")
        outages.up("redis")
        outages.up("redis")
        outages.up("metadata")  # never down: nothing to say
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "redis is unavailable: requests that need it answer 503 unavailable"),
        ("INFO", "redis is available again"),
    ]


def test_asyncpg_pool_refill_warnings_lose_their_traceback() -> None:
    quiet_reconnect_tracebacks()
    quiet_reconnect_tracebacks()  # idempotent
    logger = logging.getLogger("asyncpg.pool")
    assert len([f for f in logger.filters if type(f).__name__ == "_WithoutTraceback"]) == 1
    down = _raised_from_module("asyncpg.connect_utils", ConnectionRefusedError(111, "refused"))
    record = logger.makeRecord(
        "asyncpg.pool", logging.WARNING, __file__, 1, "refill failed", (), (type(down), down, None)
    )
    assert logger.filter(record) and record.exc_info is None
    bug = ValueError("a bug keeps its traceback")
    other = logger.makeRecord(
        "asyncpg.pool", logging.WARNING, __file__, 1, "other", (), (ValueError, bug, None)
    )
    assert logger.filter(other) and other.exc_info == (ValueError, bug, None)


async def test_redis_limiters_count_in_this_process_while_redis_is_down() -> None:
    down = Redis(port=_closed_port(), socket_connect_timeout=1, socket_timeout=1)
    noticed: list[str] = []
    try:
        limiter = RedisOrLocalLimiter(down, lambda: noticed.append("down"))
        answers = [await limiter.hit("login:k", 2, 60) for _ in range(3)]
        assert answers[:2] == [None, None]
        assert answers[2] is not None and 1 <= answers[2] <= 61
        await limiter.reset("login:k")
        assert await limiter.hit("login:k", 2, 60) is None
        budgets = RedisOrLocalBudgets(down, lambda: noticed.append("down"))
        taken = [await budgets.take("caller", rate=1.0, burst=2) for _ in range(3)]
        assert taken == [None, None, 1]
        assert noticed == ["down"] * 8
    finally:
        await down.aclose()


def _raised_while_handling(outer: BaseException, inner: BaseException) -> BaseException:
    """``outer`` as redis-py raises it: inside the ``except`` that caught ``inner``."""
    try:
        try:
            raise inner
        except type(inner):
            raise outer  # noqa: B904 (the implicit context is the point)
    except type(outer) as raised:
        return raised


@pytest.mark.parametrize(
    ("error", "gone"),
    [
        (redis.exceptions.ConnectionError("refused"), True),
        (redis.exceptions.TimeoutError("slow"), True),
        # What arq's job pickup got when Redis died during WATCH (the CI failure):
        (
            _raised_while_handling(
                redis.exceptions.WatchError("A ConnectionError occurred on while watching"),
                redis.exceptions.ConnectionError("Connection closed by server."),
            ),
            True,
        ),
        (redis.exceptions.WatchError("a watched key changed"), False),  # a lost race, not down
        (redis.exceptions.ResponseError("WRONGTYPE"), False),
        (ValueError("x"), False),
    ],
)
def test_redis_gone_looks_through_what_redis_py_wraps(error: BaseException, gone: bool) -> None:
    assert redis_gone(error) is gone


async def test_the_worker_keeps_polling_when_redis_dies_during_a_watch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A poll that fails with the WATCH-wrapped connection error is an outage (polled again),
    not a crash of ``emban worker``; any other error still ends the poll loop."""
    failure: list[BaseException] = []

    async def poll(self: object) -> None:
        raise failure[0]

    async def no_wait(seconds: float) -> None:
        return None

    monkeypatch.setattr(Worker, "_poll_iteration", poll)
    monkeypatch.setattr(worker_module.asyncio, "sleep", no_wait)
    worker = ResilientWorker.__new__(ResilientWorker)
    failure.append(
        _raised_while_handling(
            redis.exceptions.WatchError("A ConnectionError occurred on while watching"),
            redis.exceptions.ConnectionError("Connection closed by server."),
        )
    )
    await worker._poll_iteration()
    assert worker._redis_lost is True
    failure[0] = RuntimeError("a bug")
    with pytest.raises(RuntimeError, match="a bug"):
        await worker._poll_iteration()

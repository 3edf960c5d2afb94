"""Housekeeping jobs, the login attempt limiters (memory and real Redis), and /healthz failing."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from emban.auth.rate_limit import AttemptLimiter, MemoryLimiter, RedisLimiter
from emban.jobs.alerts import cron_fields, evaluate_alerts
from emban.jobs.deliveries import deliver_email, deliver_webhook
from emban.jobs.maintenance import purge_expired
from emban.jobs.org_data import purge_org_events
from emban.jobs.reports import run_report, start_due_reports
from emban.jobs.worker import periodic_jobs, worker_settings
from emban.models import Invite, UserSession
from emban.settings import Settings
from tests.conftest import EMBAN, PASSWORD, REDIS_URL, ClientFactory, free_port, register

# --- purge_expired -------------------------------------------------------------------------------


async def test_purge_expired_deletes_only_what_has_expired(make_client: ClientFactory) -> None:
    owner = await make_client()
    reg = await register(owner)
    org_id = reg["org"]["id"]
    browser = await make_client()
    login = await browser.post(
        "/v1/auth/login", json={"email": "owner@acme.test", "password": PASSWORD}
    )
    assert login.status == 200
    sessions = await UserSession.all().order_by("id")
    assert len(sessions) == 2
    now = datetime.now(UTC)
    # The second browser's session has expired; the owner's (the first) is live.
    await UserSession.filter(id=sessions[1].id).update(expires_at=now - timedelta(seconds=1))

    invites = {}
    for email in ("expired@acme.test", "live@acme.test", "accepted@acme.test"):
        response = await owner.post("/v1/members/invite", json={"email": email, "role": "viewer"})
        assert response.status == 201
        invites[email] = (await response.json())["id"]
    await Invite.filter(id=invites["expired@acme.test"]).update(expires_at=now - timedelta(hours=1))
    await Invite.filter(id=invites["accepted@acme.test"]).update(
        expires_at=now - timedelta(hours=1), accepted_at=now - timedelta(hours=2)
    )

    assert await purge_expired({}) == {"sessions": 1, "invites": 1}
    assert [s.id for s in await UserSession.all().order_by("id")] == [sessions[0].id]
    kept = await Invite.filter(org_id=org_id).order_by("email").values_list("email", flat=True)
    assert kept == ["accepted@acme.test", "live@acme.test"]
    assert (await owner.get("/v1/auth/me")).status == 200
    assert (await browser.get("/v1/auth/me")).status == 401
    # Safe to run twice: nothing left to delete, nothing else touched.
    assert await purge_expired({}) == {"sessions": 0, "invites": 0}
    assert await UserSession.all().count() == 1
    assert await Invite.all().count() == 2


async def test_expired_session_is_refused_before_the_purge(make_client: ClientFactory) -> None:
    client = await make_client()
    await register(client)
    await UserSession.all().update(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    response = await client.get("/v1/auth/me")
    assert response.status == 401
    assert await response.json() == {"error": "session has expired", "code": "session_expired"}
    # Refusing it deleted the row already, so the purge finds nothing.
    assert await purge_expired({}) == {"sessions": 0, "invites": 0}


def test_purge_and_alerts_are_scheduled_in_both_modes() -> None:
    embedded = Settings(secret_key="x" * 32, alert_interval_seconds=30)
    assert periodic_jobs(embedded, redis=False) == [
        (purge_expired, 3600.0),
        (evaluate_alerts, 30.0),
        (start_due_reports, 60.0),
    ]
    # With Redis the worker purges; chDB belongs to the serving process, which evaluates alerts
    # and runs reports (both query the engine).
    assert periodic_jobs(embedded, redis=True) == [
        (evaluate_alerts, 30.0),
        (start_due_reports, 60.0),
    ]
    server = replace(embedded, clickhouse_url="http://127.0.0.1:8123/db")
    assert periodic_jobs(server, redis=True) == []
    settings = Settings(redis_url=REDIS_URL, secret_key="x" * 32)
    worker = worker_settings(settings)
    assert worker["functions"] == [
        purge_expired,
        purge_org_events,
        deliver_webhook,
        deliver_email,
        evaluate_alerts,
        start_due_reports,
        run_report,
    ]
    assert [c.coroutine for c in worker["cron_jobs"]] == [purge_expired]
    on_server = worker_settings(replace(settings, clickhouse_url="http://127.0.0.1:8123/db"))
    alert_cron = on_server["cron_jobs"][1]
    assert (alert_cron.coroutine, alert_cron.second, alert_cron.minute) == (
        evaluate_alerts,
        {0},
        None,
    )
    assert cron_fields(15) == {"second": {0, 15, 30, 45}}
    assert cron_fields(7) == {"second": set(range(0, 60, 6))}
    assert cron_fields(300) == {"minute": set(range(0, 60, 5)), "second": {0}}
    assert worker["redis_settings"].host == "127.0.0.1"
    assert worker["redis_settings"].database == 15
    assert worker["max_tries"] == 5


# --- attempt limiters ----------------------------------------------------------------------------


def _key() -> str:
    return f"test-{secrets.token_hex(6)}"


async def _limit_three(limiter: AttemptLimiter) -> tuple[list[int | None], str]:
    key = _key()
    results = [await limiter.hit(key, 3, 60) for _ in range(5)]
    return results, key


async def test_memory_limiter_counts_and_resets() -> None:
    limiter = MemoryLimiter()
    results, key = await _limit_three(limiter)
    assert results == [None, None, None, 60, 60]
    other = _key()
    assert await limiter.hit(other, 3, 60) is None  # keys are independent
    await limiter.reset(key)
    assert await limiter.hit(key, 3, 60) is None
    await limiter.reset("never-seen")  # resetting an unknown key is fine


async def test_memory_limiter_window_expires() -> None:
    limiter = MemoryLimiter()
    key = _key()
    assert await limiter.hit(key, 1, 1) is None
    assert await limiter.hit(key, 1, 1) == 1  # int(1 - elapsed) + 1 with elapsed < 1 s
    await asyncio.sleep(1.05)
    assert await limiter.hit(key, 1, 1) is None


async def test_redis_limiter_counts_and_resets(redis: Redis) -> None:
    limiter = RedisLimiter(redis)
    results, key = await _limit_three(limiter)
    assert results[:3] == [None, None, None]
    assert results[3] is not None and results[4] is not None
    assert 59 <= results[3] <= 60
    assert 59 <= results[4] <= 60
    assert int(await redis.get(f"emban:ratelimit:{key}")) == 5
    assert 59 <= await redis.ttl(f"emban:ratelimit:{key}") <= 60
    other = _key()
    assert await limiter.hit(other, 3, 60) is None
    await limiter.reset(key)
    assert await redis.exists(f"emban:ratelimit:{key}") == 0
    assert await limiter.hit(key, 3, 60) is None


async def test_redis_limiter_window_expires_and_is_shared(redis: Redis) -> None:
    first = RedisLimiter(redis)
    second_client = Redis.from_url(REDIS_URL)
    try:
        second = RedisLimiter(second_client)  # another API process, same Redis
        key = _key()
        assert await first.hit(key, 2, 1) is None
        assert await second.hit(key, 2, 1) is None
        assert await first.hit(key, 2, 1) == 1
        # Hits inside the window do not extend it (EXPIRE NX).
        await asyncio.sleep(1.1)
        assert await second.hit(key, 2, 1) is None
    finally:
        await second_client.aclose()


# --- /healthz when ClickHouse is down ------------------------------------------------------------


async def test_healthz_names_clickhouse_when_the_events_store_fails(
    app_server: TestServer, database_url: str, tmp_path: Path
) -> None:
    """A second `emban serve` on the session's PostgreSQL (tables exist since app_server
    started), with EMBAN_CLICKHOUSE_URL pointing at a port nobody listens on."""
    port, dead = free_port(), free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        "EMBAN_DATA_DIR": str(tmp_path / "data"),
        "EMBAN_DATABASE_URL": database_url,
        "EMBAN_SECRET_KEY": secrets.token_urlsafe(40),
        "EMBAN_CLICKHOUSE_URL": f"http://127.0.0.1:{dead}/db",
    }
    if "PYTHONPATH" in os.environ:  # the checkout under test, not the installed package
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    process = await asyncio.create_subprocess_exec(
        str(EMBAN),
        "serve",
        "--port",
        str(port),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with aiohttp.ClientSession() as http:
            deadline = time.monotonic() + 30
            while True:
                assert process.returncode is None, (await process.communicate())[1].decode()
                try:
                    response = await http.get(f"http://127.0.0.1:{port}/healthz")
                    break
                except aiohttp.ClientConnectionError:
                    assert time.monotonic() < deadline, "emban serve did not start in 30 s"
                    await asyncio.sleep(0.1)
            assert response.status == 503
            assert await response.json() == {
                "status": "unavailable",
                "failed": {"clickhouse": "Unavailable"},
                "request_id": response.headers["X-Request-Id"],  # a 5xx body carries it
            }
            # The failed ping is counted as a ClickHouse error (loopback scrape, no token).
            metrics = await http.get(f"http://127.0.0.1:{port}/metrics")
            lines = (await metrics.text()).splitlines()
            assert 'emban_clickhouse_errors_total{kind="ping"} 1.0' in lines
            assert 'emban_clickhouse_query_duration_seconds_count{kind="ping"} 1.0' in lines
            # Metadata still answers: a console route that needs only PostgreSQL works.
            plans = await http.get(f"http://127.0.0.1:{port}/v1/billing/plans")
            assert plans.status == 200
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        _, raw_stderr = await asyncio.wait_for(process.communicate(), timeout=10)
    stderr = raw_stderr.decode()
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr

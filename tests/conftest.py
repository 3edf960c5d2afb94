"""Shared fixtures: one real PostgreSQL database per run (dropped at the end), chDB in a temp dir,
one app for the session, and the tables emptied before each test."""

from __future__ import annotations

import os
import secrets
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import settings as hypothesis_settings
from redis.asyncio import Redis
from tortoise import connections

from emban.analytics.tables import EVENT_IDS, VISIBLE_DATASETS
from emban.app import create_app
from emban.auth.rate_limit import MemoryLimiter, MemoryRequestBudgets
from emban.jobs.inprocess import InProcessJobs
from emban.runtime import RUNTIME_KEY, Runtime
from emban.settings import Settings
from tests.paddle_server import billing_on, paddle_api  # noqa: F401 - fixtures (Paddle stand-in)
from tests.smtp import mailbox  # noqa: F401 - a fixture (a real SMTP server) for every module

# CI runs every property test on the same examples (seed-stable, like the fuzz's CI sample);
# a developer's `make test` explores new ones each run, which is where new defects show up.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")

TEST_DATABASE_URL = os.environ.get(
    "EMBAN_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test"
)
METADATA_TABLES = (
    "billing_events",
    "billing_accounts",
    "deliveries",
    "webhook_secrets",
    "alert_events",
    "alert_states",
    "alert_rules",
    "report_runs",
    "reports",
    "embed_revocations",
    "dashboards",
    "widgets",
    "saved_queries",
    "usage_daily",
    "audit_log",
    "api_keys",
    "invites",
    "user_sessions",
    "memberships",
    "environments",
    "users",
    "orgs",
)
PASSWORD = "correct-horse-1"
# Tests that use Redis directly use this database; their keys start with a test prefix.
REDIS_URL = "redis://127.0.0.1:6379/15"
REDIS_TEST_KEYS = ("emban:ratelimit:test-*", "emban:test-budget:*")
# The `emban` command of this virtualenv (tests that start server processes).
EMBAN = Path(sys.executable).parent / "emban"


def _with_db(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    name = f"emban_test_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(TEST_DATABASE_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield _with_db(TEST_DATABASE_URL, name)
    admin = await asyncpg.connect(TEST_DATABASE_URL)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    data_dir: Path = tmp_path_factory.mktemp("emban-data")
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        secret_key=secrets.token_urlsafe(40),
        public_url="https://emban.test",
        login_max_per_email=5,
        login_max_per_ip=20,
        # Refusals of the attempt limits are answered at once; tests/auth/test_tarpit.py sets
        # a delay where it is the behaviour under test.
        auth_refusal_delay=0.0,
        # Tests evaluate alerts when they choose; the periodic cycle stays out of their way.
        alert_interval_seconds=24 * 3600,
    )


@pytest.fixture(scope="session")
async def app_server(settings: Settings) -> AsyncIterator[TestServer]:
    app: web.Application = create_app(settings, apply_migrations=True)
    server = TestServer(app)
    await server.start_server()
    yield server
    await server.close()


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    """A client of the test Redis database; the test's keys are deleted afterwards."""
    client = Redis.from_url(REDIS_URL)
    yield client
    for pattern in REDIS_TEST_KEYS:
        keys = await client.keys(pattern)
        if keys:
            await client.delete(*keys)
    await client.aclose()


@pytest.fixture
def runtime(app_server: TestServer) -> Runtime:
    return app_server.app[RUNTIME_KEY]


@pytest.fixture(autouse=True)
async def clean_state(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """Empty the metadata tables and the events table before each test that uses the app."""
    if "app_server" not in request.fixturenames:
        yield
        return
    server: TestServer = request.getfixturevalue("app_server")
    runtime = server.app[RUNTIME_KEY]
    await connections.get("default").execute_script(
        f"TRUNCATE {', '.join(METADATA_TABLES)} RESTART IDENTITY CASCADE"
    )
    for table in (*VISIBLE_DATASETS, EVENT_IDS):
        await runtime.events.execute(f"TRUNCATE TABLE IF EXISTS {table}")
    runtime.limiter = MemoryLimiter()
    runtime.budgets = MemoryRequestBudgets()
    yield


Client = aiohttp.ClientSession
ClientFactory = Callable[[], Awaitable[Client]]


@pytest.fixture
async def make_client(app_server: TestServer) -> AsyncIterator[ClientFactory]:
    """A factory of HTTP clients, each with its own cookie jar (one per simulated browser)."""
    clients: list[Client] = []

    async def factory() -> Client:
        client = aiohttp.ClientSession(
            base_url=str(app_server.make_url("/")), cookie_jar=aiohttp.CookieJar(unsafe=True)
        )
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await client.close()


async def register(
    client: Client,
    email: str = "owner@acme.test",
    org_name: str = "Acme",
    name: str = "Olive Owner",
) -> dict[str, Any]:
    response = await client.post(
        "/v1/auth/register",
        json={"email": email, "password": PASSWORD, "name": name, "org_name": org_name},
    )
    assert response.status == 201, await response.text()
    body: dict[str, Any] = await response.json()
    return body


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def join_as(
    owner: Client, make_client: ClientFactory, role: str, email: str | None = None
) -> tuple[Client, dict[str, Any]]:
    """Invite ``email`` with ``role`` through ``owner``'s session, accept it in a new client.

    Returns the new member's logged-in client and the accept-invite response body.
    """
    email = email or f"{role}-{secrets.token_hex(3)}@acme.test"
    invited = await owner.post("/v1/members/invite", json={"email": email, "role": role})
    assert invited.status == 201, await invited.text()
    token = (await invited.json())["token"]
    member = await make_client()
    accepted = await member.post(
        "/v1/auth/accept-invite", json={"token": token, "password": PASSWORD, "name": role.title()}
    )
    assert accepted.status == 201, await accepted.text()
    body: dict[str, Any] = await accepted.json()
    return member, body


async def create_key(owner: Client, scope: str, label: str = "k") -> str:
    response = await owner.post("/v1/api-keys", json={"label": label, "scope": scope})
    assert response.status == 201, await response.text()
    key: str = (await response.json())["key"]
    return key


async def jobs_done(runtime: Runtime) -> None:
    """Wait for the one-off jobs enqueued so far (tests run them in-process: no Redis)."""
    assert isinstance(runtime.jobs, InProcessJobs)
    await runtime.jobs.drain()


def free_port() -> int:
    """A TCP port nobody listens on now (for a server process a test starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port

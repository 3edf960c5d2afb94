"""Observability through the real commands: ``emban serve`` with ``EMBAN_LOG_FORMAT=json`` and a
metrics token, the same without a token on a non-loopback address, and ``emban worker`` serving
its own ``/metrics`` (``EMBAN_WORKER_METRICS_PORT``) after running a job from Redis."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from arq.connections import ArqRedis

from tests.conftest import EMBAN, PASSWORD, free_port

TOKEN = "scrape-token-0123456789abcdef"
# The servers listen on every interface so that a non-loopback peer can be tested.
ALL_INTERFACES = "0.0.0.0"  # noqa: S104
TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00")
HEX16 = re.compile(r"[0-9a-f]{16}")
WORKER_REDIS = "redis://127.0.0.1:6379/13"


def _non_loopback_address() -> str:
    """This machine's IPv4 address on its default route (not loopback)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.254", 9))  # UDP connect sends nothing; it picks the source
        address: str = probe.getsockname()[0]
    assert not address.startswith("127."), "this test needs a non-loopback IPv4 address"
    return address


def clean_env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMBAN_")}
    env.update(values)
    return env


def _read(log: Path) -> str:
    return log.read_text()


@asynccontextmanager
async def serving(data_dir: Path, log: Path, **env: str) -> AsyncIterator[str]:
    """``emban serve`` on all interfaces, stderr into ``log``; yields its loopback base URL.
    Stopped with SIGTERM."""
    port = free_port()
    with log.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            str(EMBAN),
            "serve",
            "--host",
            ALL_INTERFACES,
            "--port",
            str(port),
            env=clean_env(EMBAN_DATA_DIR=str(data_dir), **env),
            cwd=data_dir.parent,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as http:
            deadline = time.monotonic() + 60
            while True:
                assert process.returncode is None, _read(log)
                try:
                    if (await http.get(f"{base}/healthz")).status == 200:
                        break
                except aiohttp.ClientConnectionError:
                    pass
                assert time.monotonic() < deadline, "emban serve was not healthy within 60 s"
                await asyncio.sleep(0.1)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), timeout=30)


async def _register_and_delete_org(http: aiohttp.ClientSession, base: str, request_id: str) -> None:
    """Deleting an org writes an INFO log line (``org.delete ...``) inside the request."""
    registered = await http.post(
        f"{base}/v1/auth/register",
        json={
            "email": "owner@acme.test",
            "password": PASSWORD,
            "name": "Olive",
            "org_name": "Acme",
        },
    )
    assert registered.status == 201
    deleted = await http.delete(f"{base}/v1/settings/org", headers={"X-Request-Id": request_id})
    assert deleted.status == 204
    assert deleted.headers["X-Request-Id"] == request_id


async def test_json_logs_request_ids_and_token_protected_metrics(tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    other = _non_loopback_address()
    env = {"EMBAN_LOG_FORMAT": "json", "EMBAN_METRICS_TOKEN": TOKEN}
    async with (
        serving(tmp_path / "data", log, **env) as base,
        aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http,
    ):
        await _register_and_delete_org(http, base, "e2e-delete-org")
        refused = await http.get(f"{base}/metrics")  # loopback, but a token is set
        assert refused.status == 401
        assert HEX16.fullmatch(refused.headers["X-Request-Id"])
        assert await refused.json() == {
            "error": "GET /metrics requires Authorization: Bearer <EMBAN_METRICS_TOKEN>",
            "code": "unauthenticated",
        }
        authorized = {"Authorization": f"Bearer {TOKEN}"}
        scraped = await http.get(f"{base}/metrics", headers=authorized)
        assert scraped.status == 200
        assert scraped.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        lines = (await scraped.text()).splitlines()
        for expected in (
            'emban_http_requests_total{method="DELETE",route="/v1/settings/org",status="204"} 1.0',
            'emban_http_requests_total{method="POST",route="/v1/auth/register",status="201"} 1.0',
            'emban_http_requests_total{method="GET",route="/metrics",status="401"} 1.0',
            "emban_live_sockets 0.0",
            "emban_ingest_queue_rows 0.0",
        ):
            assert expected in lines, expected
        assert any(line.startswith("process_resident_memory_bytes ") for line in lines)
        # The token works from any address.
        port = base.rsplit(":", 1)[1]
        remote = await http.get(f"http://{other}:{port}/metrics", headers=authorized)
        assert remote.status == 200

    entries = [json.loads(line) for line in _read(log).splitlines()]
    assert entries, "no log lines"
    allowed = {"ts", "level", "logger", "message", "request_id", "exception"}
    for entry in entries:
        assert {"ts", "level", "logger", "message"} <= entry.keys() <= allowed, entry
        assert TS.fullmatch(entry["ts"]), entry
    [deletion] = [e for e in entries if e["message"].startswith("org.delete ")]
    assert deletion["request_id"] == "e2e-delete-org"
    assert (deletion["level"], deletion["logger"]) == ("INFO", "emban.services.orgs")
    # Lines written outside a request (startup, shutdown) have no request_id.
    assert any("request_id" not in e for e in entries)


async def test_without_a_token_only_loopback_is_answered(tmp_path: Path) -> None:
    other = _non_loopback_address()
    log = tmp_path / "serve.log"
    async with serving(tmp_path / "data", log) as base:
        port = base.rsplit(":", 1)[1]
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            await _register_and_delete_org(http, base, "text-delete-org")
            local = await http.get(f"{base}/metrics")
            assert local.status == 200
            remote = await http.get(f"http://{other}:{port}/metrics")
            assert remote.status == 403
            assert await remote.json() == {
                "error": "metrics are served to loopback clients only; set EMBAN_METRICS_TOKEN "
                "to scrape from elsewhere",
                "code": "forbidden",
            }
            # A forwarded-for header from an untrusted peer changes nothing.
            forged = await http.get(
                f"http://{other}:{port}/metrics", headers={"X-Forwarded-For": "127.0.0.1"}
            )
            assert forged.status == 403
    # The default text format: "<asctime> <level> <logger> <message>".
    [line] = [line for line in _read(log).splitlines() if " org.delete " in line]
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO emban.services.orgs "
        r"org.delete org=org_\w+ by=\w+",
        line,
    ), line


@pytest.fixture
async def worker_redis() -> AsyncIterator[ArqRedis]:
    redis = ArqRedis.from_url(WORKER_REDIS)
    await redis.flushdb()
    yield redis
    await redis.flushdb()
    await redis.aclose()


async def test_the_worker_serves_job_metrics(
    tmp_path: Path, database_url: str, worker_redis: ArqRedis, app_server: TestServer
) -> None:
    """(``app_server`` migrates the test database the worker opens.)"""
    port = free_port()
    log = tmp_path / "worker.log"
    with log.open("wb") as stderr:
        worker = await asyncio.create_subprocess_exec(
            str(EMBAN),
            "worker",
            env=clean_env(
                EMBAN_DATA_DIR=str(tmp_path / "data"),
                EMBAN_REDIS_URL=WORKER_REDIS,
                EMBAN_DATABASE_URL=database_url,
                EMBAN_SECRET_KEY="w" * 32,
                EMBAN_WORKER_METRICS_PORT=str(port),
                EMBAN_METRICS_TOKEN=TOKEN,
                EMBAN_LOG_FORMAT="json",
            ),
            cwd=tmp_path,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        await worker_redis.enqueue_job("purge_expired", _job_id="purge_expired:e2e")
        url = f"http://127.0.0.1:{port}/metrics"
        expected = {
            'emban_job_runs_total{job="purge_expired"} 1.0',
            'emban_job_failures_total{job="purge_expired"} 0.0',
            'emban_job_duration_seconds_count{job="purge_expired"} 1.0',
        }
        async with aiohttp.ClientSession() as http:
            deadline = time.monotonic() + 60
            text = ""
            while not expected <= set(text.splitlines()):
                assert worker.returncode is None, _read(log)
                assert time.monotonic() < deadline, f"no job run counted:\n{text}"
                try:
                    response = await http.get(url, headers={"Authorization": f"Bearer {TOKEN}"})
                    text = await response.text()
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.1)
            refused = await http.get(url)
            assert refused.status == 401
            assert HEX16.fullmatch(refused.headers["X-Request-Id"])
    finally:
        worker.send_signal(signal.SIGTERM)
        await asyncio.wait_for(worker.wait(), timeout=30)
    lines = _read(log).splitlines()
    assert lines
    assert all(isinstance(json.loads(line), dict) for line in lines)

"""The embedded default (SQLite + chDB in a data dir) through the real ``emban`` command.

Everything runs in subprocesses: a SQLite and a PostgreSQL Tortoise context cannot share one
process, and chDB opens one data directory per process.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import EMBAN, free_port

CONFIG_ERROR = "emban: configuration error: "


def clean_env(**values: str) -> dict[str, str]:
    """The caller's environment without any EMBAN_* variable, plus ``values``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMBAN_")}
    env.update(values)
    return env


def emban(data_dir: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(EMBAN), *args],
        env=clean_env(EMBAN_DATA_DIR=str(data_dir)),
        cwd=data_dir.parent,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass(frozen=True)
class Demo:
    org_id: str
    email: str
    password: str
    key: str
    dashboard_id: str


def parse_demo(stdout: str) -> Demo:
    org = re.search(r"^Demo org: Demo Workspace \((org_\w+)\)$", stdout, re.M)
    login = re.search(r"^Owner login: (\S+) / (\S+)$", stdout, re.M)
    key = re.search(r"^Admin API key \(production\): (emb_\S+)$", stdout, re.M)
    dashboard = re.search(r"^Demo dashboard \(published\): (dash_[a-z2-7]{20})$", stdout, re.M)
    assert org and login and key and dashboard, stdout
    return Demo(org.group(1), login.group(1), login.group(2), key.group(1), dashboard.group(1))


@dataclass(frozen=True)
class Embedded:
    data_dir: Path
    migrate_outputs: tuple[subprocess.CompletedProcess[str], ...]
    secret_after_migrate: str
    first_demo: Demo
    demo: Demo
    demo_stdout: str


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Embedded:
    """A fresh data dir: `emban migrate` twice, then `emban demo` twice."""
    data_dir = tmp_path_factory.mktemp("embedded") / "data"
    first = emban(data_dir, "migrate")
    secret = (data_dir / "secret_key").read_text()
    second = emban(data_dir, "migrate")
    demo_runs = [emban(data_dir, "demo") for _ in range(2)]
    for run in demo_runs:
        assert run.returncode == 0, run.stderr
    return Embedded(
        data_dir=data_dir,
        migrate_outputs=(first, second),
        secret_after_migrate=secret,
        first_demo=parse_demo(demo_runs[0].stdout),
        demo=parse_demo(demo_runs[1].stdout),
        demo_stdout=demo_runs[1].stdout,
    )


def test_migrate_applies_once_then_reports_nothing_pending(embedded: Embedded) -> None:
    first, second = embedded.migrate_outputs
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    applied = re.fullmatch(
        r"metadata migrations applied; ClickHouse DDL versions applied: (\d+(, \d+)*)\n",
        first.stdout,
    )
    assert applied, first.stdout
    assert applied.group(1).split(", ")[0] == "1"
    assert second.stdout == (
        "metadata migrations applied; ClickHouse DDL versions applied: none pending\n"
    )
    assert (embedded.data_dir / "metadata.sqlite3").is_file()
    assert (embedded.data_dir / "clickhouse").is_dir()


def test_embedded_secret_is_generated_once_with_mode_0600(embedded: Embedded) -> None:
    path = embedded.data_dir / "secret_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(embedded.secret_after_migrate) == 64
    # Reused by every later run (the second migrate and both demo runs).
    assert path.read_text() == embedded.secret_after_migrate


def test_demo_prints_a_working_login(embedded: Embedded) -> None:
    demo = embedded.demo
    assert demo.email == "demo@emban.dev"
    assert len(demo.password) == 12
    embed = re.search(
        rf"^Embed URL \(valid 1 hour\): http://127.0.0.1:8000/embed/{demo.dashboard_id}"
        r"\?token=[\w-]+\.[\w-]+\.[\w-]+$",
        embedded.demo_stdout,
        re.M,
    )
    assert embed, embedded.demo_stdout
    assert embedded.demo_stdout.endswith(
        "Demo host page: http://127.0.0.1:8000/  (GraphQL: http://127.0.0.1:8000/graphql)\n"
        "Open them after `emban serve`\n"
    )
    # A second run keeps the org and its demo dashboard, resets the password, mints a new key.
    assert embedded.first_demo.org_id == demo.org_id
    assert embedded.first_demo.dashboard_id == demo.dashboard_id
    assert embedded.first_demo.password != demo.password
    assert embedded.first_demo.key != demo.key


async def _wait_healthy(http: aiohttp.ClientSession, base: str, process: object) -> None:
    deadline = time.monotonic() + 30
    while True:
        assert getattr(process, "returncode", None) is None, "emban serve exited early"
        try:
            response = await http.get(f"{base}/healthz")
            if response.status == 200:
                assert await response.json() == {"status": "ok"}
                return
        except aiohttp.ClientConnectionError:
            pass
        assert time.monotonic() < deadline, "emban serve was not healthy within 30 s"
        await asyncio.sleep(0.1)


async def _emban_async(data_dir: Path, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        str(EMBAN),
        *args,
        env=clean_env(EMBAN_DATA_DIR=str(data_dir)),
        cwd=data_dir.parent,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def _check_demo_dashboard(http: aiohttp.ClientSession, base: str, demo: Demo) -> None:
    """The published demo dashboard: its six widgets answer over the sample events."""
    headers = {"Authorization": f"Bearer {demo.key}"}
    listed = await (await http.get(f"{base}/v1/dashboards", headers=headers)).json()
    dashboards = listed["dashboards"]
    assert [(d["id"], d["name"], d["is_published"]) for d in dashboards] == [
        (demo.dashboard_id, "Demo: AI API usage", True)
    ]
    widgets = dashboards[0]["published"]["widgets"]
    assert widgets == dashboards[0]["widgets"]
    assert [(w["id"], w["kind"]) for w in widgets] == [
        ("about", "text"),
        ("unique_users", "metric"),
        ("errors", "metric"),
        ("calls", "timeseries"),
        ("calls_by_model", "breakdown"),
        ("latency_p95", "timeseries"),
    ]
    data: dict[str, list[dict[str, Any]]] = {}
    for widget in widgets:
        response = await http.post(
            f"{base}/v1/widgets/preview/data", json={"widget": widget}, headers=headers
        )
        assert response.status == 200, await response.text()
        data[widget["id"]] = (await response.json())["data"]
    assert data["about"] == []
    for metric in ("unique_users", "errors"):
        assert [p["group"] for p in data[metric]] == ["current", "previous"]
        assert data[metric][0]["value"] > 0, metric
    # At most the sample's 110 users; calls by model add up to the calls per day (same window).
    assert data["unique_users"][0]["value"] <= 110
    assert [p["group"] for p in data["calls_by_model"]] == [
        "claude-sonnet",
        "gpt-4o",
        "llama-3-70b",
    ]
    total = sum(p["value"] for p in data["calls"])
    assert len(data["calls"]) == 31
    assert total == sum(p["value"] for p in data["calls_by_model"]) > 0
    assert all(p["value"] > 0 for p in data["latency_p95"])


async def test_serve_end_to_end_and_set_plan(embedded: Embedded) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    data_dir = embedded.data_dir
    process = await asyncio.create_subprocess_exec(
        str(EMBAN),
        "serve",
        "--port",
        str(port),
        env=clean_env(EMBAN_DATA_DIR=str(data_dir)),
        cwd=data_dir.parent,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            await _wait_healthy(http, base, process)
            demo = embedded.demo

            login = await http.post(
                f"{base}/v1/auth/login", json={"email": demo.email, "password": demo.password}
            )
            assert login.status == 200, await login.text()
            body = await login.json()
            assert (body["org"]["id"], body["org"]["name"], body["role"]) == (
                demo.org_id,
                "Demo Workspace",
                "owner",
            )
            stale = await http.post(
                f"{base}/v1/auth/login",
                json={"email": demo.email, "password": embedded.first_demo.password},
            )
            assert stale.status == 401

            async with aiohttp.ClientSession() as backend:
                me = await backend.get(
                    f"{base}/v1/auth/me", headers={"Authorization": f"Bearer {demo.key}"}
                )
                assert me.status == 200
                me_body = await me.json()
                assert me_body["org"]["id"] == demo.org_id
                assert (me_body["scope"], me_body["role"], me_body["user"]) == (
                    "admin",
                    "admin",
                    None,
                )
                assert me_body["environment"]["name"] == "production"
                old = await backend.get(
                    f"{base}/v1/auth/me",
                    headers={"Authorization": f"Bearer {embedded.first_demo.key}"},
                )
                assert old.status == 401
                await _check_demo_dashboard(backend, base, demo)
                # Embedded mode: "/" is the demo host page (it mounts the demo through host.js).
                home = await backend.get(f"{base}/")
                assert home.status == 200
                assert '<script src="/static/embed/host.js"></script>' in await home.text()

            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as new:
                registered = await new.post(
                    f"{base}/v1/auth/register",
                    json={
                        "email": "founder@startup.test",
                        "password": "correct-horse-1",
                        "name": "Fay",
                        "org_name": "Startup",
                    },
                )
                assert registered.status == 201, await registered.text()
                org_id = (await registered.json())["org"]["id"]
                key = await new.post(
                    f"{base}/v1/api-keys", json={"label": "Events", "scope": "ingest"}
                )
                assert key.status == 201, await key.text()
                assert (await key.json())["scope"] == "ingest"
                org = await (await new.get(f"{base}/v1/settings/org")).json()
                assert org["plan"] == "free"

                # set-plan touches only the SQLite metadata, so it runs beside the server.
                code, stdout, stderr = await _emban_async(
                    data_dir, "org", "set-plan", org_id, "starter"
                )
                assert (code, stdout, stderr) == (
                    0,
                    f"org {org_id} is now on the starter plan\n",
                    "",
                )
                org = await (await new.get(f"{base}/v1/settings/org")).json()
                assert org["plan"] == "starter"
                audit = (await (await new.get(f"{base}/v1/audit")).json())["entries"]
                assert audit[0]["action"] == "org.set_plan"
                assert audit[0]["actor_type"] == "operator"
                assert audit[0]["actor_label"] == "cli"
                assert audit[0]["metadata"] == {"from": "free", "to": "starter"}

                code, stdout, stderr = await _emban_async(
                    data_dir, "org", "set-plan", org_id, "gold"
                )
                assert (code, stdout) == (1, "")
                assert stderr == "emban: plan must be one of free, starter, pro, enterprise\n"
                code, stdout, stderr = await _emban_async(
                    data_dir, "org", "set-plan", "org_doesnotexist", "pro"
                )
                assert (code, stdout, stderr) == (1, "", "emban: no org org_doesnotexist\n")
                org = await (await new.get(f"{base}/v1/settings/org")).json()
                assert org["plan"] == "starter"

            graphql = await http.post(
                f"{base}/graphql", json={"query": "{ me { role org { id plan } } }"}
            )
            assert await graphql.json() == {
                "data": {"me": {"role": "owner", "org": {"id": demo.org_id, "plan": "pro"}}}
            }
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        stdout_raw, stderr_raw = await asyncio.wait_for(process.communicate(), timeout=10)
    stdout, stderr = stdout_raw.decode(), stderr_raw.decode()
    assert process.returncode == 0, stderr
    assert stdout == f"Emban is serving at {base}/  (GraphQL: {base}/graphql)\n"
    assert "Traceback" not in stderr


BAD_SETTINGS = [
    (
        {"EMBAN_DATABASE_URL": "mysql://x"},
        "EMBAN_DATABASE_URL must start with postgres:// or sqlite:// (got mysql://)",
    ),
    (
        {"EMBAN_DATABASE_URL": "postgres://emban@127.0.0.1:5432/emban"},
        "EMBAN_SECRET_KEY is required when EMBAN_DATABASE_URL is set",
    ),
    (
        {"EMBAN_DEFAULT_PLAN": "gold"},
        "EMBAN_DEFAULT_PLAN must be one of free, starter, pro, enterprise (got gold)",
    ),
    ({"EMBAN_COOKIE_SECURE": "maybe"}, "EMBAN_COOKIE_SECURE must be true or false (got 'maybe')"),
    (
        {"EMBAN_CLICKHOUSE_URL": "ftp://x"},
        "EMBAN_CLICKHOUSE_URL must look like http://user:pass@host:8123/db",
    ),
]


def test_bad_settings_exit_2_with_one_line(tmp_path: Path) -> None:
    """Started together (each pays the import cost once, in parallel)."""
    runs = []
    for n, (values, _) in enumerate(BAD_SETTINGS):
        env = clean_env(EMBAN_DATA_DIR=str(tmp_path / f"data{n}"), **values)
        runs.append(
            subprocess.Popen(
                [str(EMBAN), "serve", "--port", str(free_port())],
                env=env,
                cwd=tmp_path,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    worker = subprocess.Popen(
        [str(EMBAN), "worker"],
        env=clean_env(EMBAN_DATA_DIR=str(tmp_path / "worker")),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    for process, (values, message) in zip(runs, BAD_SETTINGS, strict=True):
        stdout, stderr = process.communicate(timeout=60)
        assert (process.returncode, stdout, stderr) == (2, "", f"{CONFIG_ERROR}{message}\n"), values
    stdout, stderr = worker.communicate(timeout=60)
    assert (worker.returncode, stdout) == (2, "")
    assert stderr == (
        "emban: `emban worker` needs EMBAN_REDIS_URL (production mode); in embedded mode "
        "`emban serve` runs the jobs itself\n"
    )
    # Refused before anything was created (the settings error comes first).
    assert sorted(p.name for p in tmp_path.iterdir()) == ["worker"]

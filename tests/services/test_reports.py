"""Scheduled reports on chDB with a real SMTP server: CSV contents exact, bursting sends each
tenant only its own numbers, PDF rendered by the embed runtime in Chromium, webhooks, schedules,
runs recorded once, validation naming the field."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from emban.errors import BadRequest, Forbidden
from emban.jobs.inprocess import InProcessJobs
from emban.models import Delivery, Report, ReportRun
from emban.notify import signing
from emban.runtime import Runtime
from emban.services import reports, webhooks
from emban.services.boundary import transaction
from emban.services.report_runs import start_due, start_run
from emban.services.reports import ReportInput
from tests.conftest import ClientFactory, bearer, register
from tests.console_org import ConsoleOrg
from tests.smtp import Mailbox, attachments

NOW = datetime.now(UTC).replace(microsecond=0)

WIDGETS: list[dict[str, Any]] = [
    {
        "id": "calls",
        "kind": "metric",
        "title": "Calls today",
        "query": {"event_name": "api.call", "metric": "count", "period": "24h"},
        "viz": {"type": "number"},
        "layout": {"x": 0, "y": 0, "w": 6, "h": 2},
    },
    {
        "id": "by_model",
        "kind": "breakdown",
        "title": "Calls by model",
        "query": {
            "event_name": "api.call",
            "metric": "count",
            "period": "24h",
            "group_by": "model",
        },
        "viz": {"type": "bar"},
        "layout": {"x": 6, "y": 0, "w": 6, "h": 3},
    },
    {
        "id": "intro",
        "kind": "text",
        "title": "Intro",
        "text": "Hello",
        "layout": {"x": 0, "y": 3, "w": 12, "h": 1},
    },
]


Org = ConsoleOrg


@pytest.fixture
async def org(make_client: ClientFactory) -> Org:
    client = await make_client()
    made = Org(client, await register(client))
    response = await client.post(
        "/v1/dashboards", json={"name": "Usage <Q4> & co", "widgets": WIDGETS}
    )
    assert response.status == 201, await response.text()
    made.dashboard = (await response.json())["id"]
    published = await client.post(f"/v1/dashboards/{made.dashboard}/publish")
    assert published.status == 204, await published.text()
    events = (
        [_call("a", "gpt", m) for m in (1, 2, 3)]
        + [_call("a", "llama", 4)]
        + [_call("b", "gpt", m) for m in (1, 2)]
        + [_call("c", "=cmd|' /C calc'!A0", 5)]
    )
    sent = await client.post("/v1/events", json={"events": events}, headers=bearer(made.key))
    assert sent.status in (200, 202), await sent.text()
    return made


def _call(tenant: str, model: str, minutes_ago: int) -> dict[str, Any]:
    return {
        "event_name": "api.call",
        "tenant_id": tenant,
        "timestamp": (NOW - timedelta(minutes=minutes_ago)).isoformat(),
        "string_props": {"model": model},
    }


def _jobs(runtime: Runtime, **changes: Any) -> InProcessJobs:
    settings = dataclasses.replace(runtime.settings, **changes)
    return InProcessJobs({"settings": settings, "events": runtime.events, "usage": runtime.usage})


async def _create(org: Org, **fields: Any) -> Report:
    body = ReportInput(
        **{"name": "Weekly", "dashboard_id": org.dashboard, "schedule": "0 9 * * 1", **fields}
    )
    async with transaction():
        return await reports.create_report(actor=org.admin, body=body, allow_hosts=("127.0.0.1",))


async def _run(runtime: Runtime, report: Report, jobs: InProcessJobs) -> ReportRun:
    jobs.ctx["jobs"] = jobs
    run = await start_run(jobs, report, trigger="manual")
    assert run is not None
    await jobs.drain()
    return await ReportRun.get(id=run.id)


async def test_csv_by_email_exact(runtime: Runtime, org: Org, mailbox: Mailbox) -> None:
    jobs = _jobs(runtime, smtp_url=mailbox.url, email_from="reports@emban.test")
    report = await _create(org, recipients=["ops@example.com"], tenant_id="a")
    run = await _run(runtime, report, jobs)
    assert (run.status, run.trigger, run.format, run.error) == ("succeeded", "manual", "csv", None)
    assert run.finished_at is not None and run.duration_ms is not None
    [message] = mailbox.to("ops@example.com")
    files = attachments(message)
    assert files == {
        "calls.csv": b"period,value\ncurrent,4\nprevious,0\n",
        "by_model.csv": b"group,value\ngpt,3\nllama,1\n",
    }
    assert run.bytes == sum(len(v) for v in files.values())
    assert message["Subject"] == "[Emban] Weekly: Usage <Q4> & co (tenant a)"
    html = message.get_body(("html",))
    assert html is not None and "Usage &lt;Q4&gt; &amp; co" in html.get_content()
    [delivery] = await Delivery.filter(report_run_id=run.id)
    assert (
        delivery.channel,
        delivery.target,
        delivery.tenant_id,
        delivery.status,
        delivery.attempts,
    ) == (
        "email",
        "ops@example.com",
        "a",
        "succeeded",
        1,
    )


async def test_all_tenants_and_formula_cells(runtime: Runtime, org: Org, mailbox: Mailbox) -> None:
    jobs = _jobs(runtime, smtp_url=mailbox.url)
    report = await _create(org, recipients=["ops@example.com"])
    run = await _run(runtime, report, jobs)
    assert run.status == "succeeded"
    files = attachments(mailbox.to("ops@example.com")[0])
    assert files["calls.csv"] == b"period,value\ncurrent,7\nprevious,0\n"
    # Groups in the answer's order (by name); a group value that a spreadsheet would run as a
    # formula is quoted as text.
    assert files["by_model.csv"] == b"group,value\n'=cmd|' /C calc'!A0,1\ngpt,5\nllama,1\n"


async def test_bursting_sends_each_tenant_only_its_numbers(
    runtime: Runtime, org: Org, mailbox: Mailbox
) -> None:
    jobs = _jobs(runtime, smtp_url=mailbox.url)
    report = await _create(
        org, tenant_recipients={"a": ["alice@a.example"], "b": ["bob@b.example", "bea@b.example"]}
    )
    run = await _run(runtime, report, jobs)
    assert run.status == "succeeded"
    assert sorted(rcpt[0] for _, rcpt in mailbox.envelopes) == [
        "alice@a.example",
        "bea@b.example",
        "bob@b.example",
    ]
    assert attachments(mailbox.to("alice@a.example")[0])["calls.csv"] == (
        b"period,value\ncurrent,4\nprevious,0\n"
    )
    for address in ("bob@b.example", "bea@b.example"):
        [message] = mailbox.to(address)
        assert attachments(message) == {
            "calls.csv": b"period,value\ncurrent,2\nprevious,0\n",
            "by_model.csv": b"group,value\ngpt,2\n",
        }
    tenants = sorted(await Delivery.filter(report_run_id=run.id).values_list("tenant_id", "target"))
    assert tenants == [("a", "alice@a.example"), ("b", "bea@b.example"), ("b", "bob@b.example")]


async def test_without_smtp_the_run_fails_with_the_reason(runtime: Runtime, org: Org) -> None:
    jobs = _jobs(runtime, smtp_url=None)
    report = await _create(org, recipients=["ops@example.com"])
    run = await _run(runtime, report, jobs)
    assert (run.status, run.error) == ("failed", "e-mail: smtp_not_configured")
    [delivery] = await Delivery.filter(report_run_id=run.id)
    assert (delivery.status, delivery.error) == ("failed", "smtp_not_configured")


async def test_webhook_with_data_inline(runtime: Runtime, org: Org) -> None:
    seen: list[tuple[dict[str, str], bytes]] = []

    async def hook(request: web.Request) -> web.Response:
        seen.append((dict(request.headers), await request.read()))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        jobs = _jobs(runtime, webhook_allow_hosts=("127.0.0.1",), webhook_retry_base_seconds=0.01)
        report = await _create(org, webhook_url=str(server.make_url("/hook")), tenant_id="b")
        run = await _run(runtime, report, jobs)
    finally:
        await server.close()
    assert run.status == "succeeded"
    [(headers, body)] = seen
    assert headers["Emban-Event"] == "report.run"
    assert signing.verify(await webhooks.current_secret(org.id), headers["Emban-Signature"], body)
    payload = msgspec.json.decode(body)
    assert payload["type"] == "report.run" and payload["tenant_id"] == "b"
    assert payload["data"]["widgets"] == [
        {
            "id": "calls",
            "title": "Calls today",
            "kind": "metric",
            "columns": ["period", "value"],
            "rows": [["current", 2], ["previous", 0]],
        },
        {
            "id": "by_model",
            "title": "Calls by model",
            "kind": "breakdown",
            "columns": ["group", "value"],
            "rows": [["gpt", 2]],
        },
    ]
    [delivery] = await Delivery.filter(report_run_id=run.id)
    assert (delivery.channel, delivery.status, delivery.status_code, delivery.uid) == (
        "webhook",
        "succeeded",
        200,
        headers["Emban-Delivery"],
    )


async def test_pdf_rendered_by_the_embed_runtime(
    runtime: Runtime, org: Org, mailbox: Mailbox, app_server: TestServer, tmp_path: Path
) -> None:
    jobs = _jobs(
        runtime, smtp_url=mailbox.url, render_url=str(app_server.make_url("/")).rstrip("/")
    )
    report = await _create(org, recipients=["ops@example.com"], tenant_id="a", format="pdf")
    run = await _run(runtime, report, jobs)
    assert (run.status, run.error) == ("succeeded", None)
    files = attachments(mailbox.to("ops@example.com")[0])
    pdf = files[f"{org.dashboard}.pdf"]
    assert pdf.startswith(b"%PDF-") and run.bytes == len(pdf)
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    process = await asyncio.create_subprocess_exec(
        "pdftotext", "-layout", str(path), "-", stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate()
    assert process.returncode == 0
    text = out.decode()
    assert "Usage <Q4> & co" in text
    assert "Calls today" in text
    lines = [line for line in text.splitlines() if line.strip()]
    assert any(line.strip() == "4" or " 4 " in f" {line} " for line in lines), text


async def test_pdf_without_chromium_fails_with_the_reason(runtime: Runtime, org: Org) -> None:
    jobs = _jobs(runtime, chromium_path="/nonexistent/chromium")
    report = await _create(org, tenant_id="a", format="pdf")
    run = await _run(runtime, report, jobs)
    assert (run.status, run.error) == (
        "failed",
        "Chromium is not available at /nonexistent/chromium (EMBAN_CHROMIUM_PATH)",
    )


async def test_due_reports_start_once_and_move_on(runtime: Runtime, org: Org) -> None:
    report = await _create(org, schedule="*/15 * * * *", timezone="Europe/Paris")
    assert report.next_run_at is not None and report.next_run_at > NOW - timedelta(seconds=1)
    assert report.next_run_at.minute % 15 == 0 and report.next_run_at.second == 0
    due = report.next_run_at
    jobs = _jobs(runtime)
    jobs.ctx["jobs"] = jobs
    assert await start_due(jobs, now=due - timedelta(seconds=1)) == 0
    counts = [await start_due(jobs, now=due), await start_due(jobs, now=due)]
    assert counts == [1, 0]
    await jobs.drain()
    [run] = await ReportRun.filter(report_id=report.id)
    assert (run.trigger, run.status, run.scheduled_for) == ("schedule", "succeeded", due)
    fresh = await Report.get(id=report.id)
    assert fresh.next_run_at == due + timedelta(minutes=15)
    assert fresh.last_run_at is not None
    # Two starts of the same occurrence (two workers): one run.
    assert await start_run(jobs, fresh, trigger="schedule", scheduled_for=due) is None


async def test_validation_names_the_field(org: Org, make_client: ClientFactory) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"schedule": "0 9 * *"}, "schedule"),
        ({"schedule": "0 25 * * *"}, "schedule"),
        ({"timezone": "Mars/Base"}, "timezone"),
        ({"format": "xlsx"}, "format"),
        ({"format": "pdf"}, "format"),  # no tenant
        ({"recipients": ["x"]}, "recipients[0]"),
        ({"webhook_url": "http://10.0.0.1/"}, "webhook_url"),
        ({"dashboard_id": "dash_none"}, "dashboard_id"),
        ({"tenant_recipients": {"a": []}}, "tenant_recipients.a"),
        ({"tenant_recipients": {"a": ["nope"]}}, "tenant_recipients.a[0]"),
        ({"name": ""}, "name"),
    ]
    for change, field in cases:
        with pytest.raises(BadRequest) as caught:
            await _create(org, **change)
        assert caught.value.extra.get("field") == field, (change, caught.value.message)
    draft = await org.client.post("/v1/dashboards", json={"name": "Draft", "widgets": WIDGETS})
    with pytest.raises(BadRequest) as caught:
        await _create(org, dashboard_id=(await draft.json())["id"])
    assert caught.value.extra["field"] == "dashboard_id"
    viewer = org.viewer
    with pytest.raises(Forbidden):
        await reports.create_report(actor=viewer, body=ReportInput(name="x"))
    assert await Report.all().count() == 0

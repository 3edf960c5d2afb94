"""Report exports: CSV files (one per data widget) and a PDF of the dashboard as an embed shows it.

CSV columns by widget kind, values exactly as the widget's data answer carries them (the numbers
the embed runtime formats), buckets as ISO 8601 UTC:

- ``metric``: ``period,value`` — ``current`` and ``previous`` (the same-length window before);
- ``timeseries``/``table``: ``bucket,value``, or ``bucket,group,value`` with a ``group_by``;
- ``breakdown``: ``group,value`` (one total per group for the window).

The PDF is the published dashboard rendered by the embed runtime in headless Chromium
(Playwright, ``EMBAN_CHROMIUM_PATH``) through a five-minute internal embed session for the
run's tenant: the same server-side checks as any viewer's session.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any, Protocol

from emban.analytics.query_spec import Scope
from emban.analytics.shaping import iso_bucket
from emban.auth.embed_tokens import mint_embed_token
from emban.models import Dashboard, Environment
from emban.services.dashboards import published_widgets
from emban.services.embeds import EmbedPermissions
from emban.services.widget_config import QueryWidget, TextWidget
from emban.services.widgets import widget_result

RENDER_TIMEOUT_MS = 30_000
SESSION_SECONDS = 300


class ExportFailed(Exception):
    """The export could not be made; the message is the run's ``error``."""


@dataclass(frozen=True)
class ExportFile:
    filename: str
    content: bytes
    mime: str


@dataclass(frozen=True)
class WidgetTable:
    id: str
    title: str
    kind: str
    columns: list[str]
    rows: list[list[Any]]


class QueryRuntime(Protocol):
    """What running a widget's query needs (``emban.runtime.Runtime`` has it)."""

    settings: Any
    events: Any
    usage: Any


def _table(widget: QueryWidget, points: list[Any]) -> WidgetTable:
    kind = widget.kind
    grouped = widget.query.group_by is not None
    if kind == "metric":
        columns = ["period", "value"]
        rows = [[p.group, p.value] for p in points]
    elif kind == "breakdown":
        columns = ["group", "value"]
        rows = [[p.group, p.value] for p in points]
    elif grouped:
        columns = ["bucket", "group", "value"]
        rows = [[iso_bucket(p.bucket), p.group, p.value] for p in points]
    else:
        columns = ["bucket", "value"]
        rows = [[iso_bucket(p.bucket), p.value] for p in points]
    return WidgetTable(widget.id, widget.title, kind, columns, rows)


async def widget_tables(
    rt: QueryRuntime, dashboard: Dashboard, environment_id: str, tenant_id: str | None
) -> list[WidgetTable]:
    """Every data widget of the published snapshot, for one tenant (or all)."""
    scope = Scope(dashboard.org_id, environment_id)
    tables: list[WidgetTable] = []
    for widget in published_widgets(dashboard):
        if isinstance(widget, TextWidget):
            continue
        result = await widget_result(rt, scope, widget, tenant_id)  # type: ignore[arg-type]
        tables.append(_table(widget, result.points if result is not None else []))
    return tables


def _cell(value: Any) -> Any:
    # Spreadsheet formula injection: a text cell starting with = + - @ is read as a formula.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


def csv_files(tables: list[WidgetTable]) -> list[ExportFile]:
    files: list[ExportFile] = []
    for table in tables:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(table.columns)
        for row in table.rows:
            writer.writerow([_cell(v) for v in row])
        files.append(ExportFile(f"{table.id}.csv", out.getvalue().encode(), "text/csv"))
    return files


async def pdf_file(
    *,
    chromium_path: str,
    render_url: str,
    dashboard: Dashboard,
    environment: Environment,
    tenant_id: str,
    filename: str,
) -> ExportFile:
    """Print the embed page to PDF. Raises :class:`ExportFailed` with the reason."""
    import os

    if not os.access(chromium_path, os.X_OK):
        raise ExportFailed(f"Chromium is not available at {chromium_path} (EMBAN_CHROMIUM_PATH)")
    try:
        from playwright.async_api import Error as PlaywrightError
        from playwright.async_api import async_playwright
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise ExportFailed("playwright is not installed") from exc
    minted = mint_embed_token(
        environment,
        tenant_id=tenant_id,
        dashboard_id=dashboard.id,
        permissions=EmbedPermissions().claims(),
        expires_in=SESSION_SECONDS,
    )
    url = f"{render_url.rstrip('/')}/embed/{dashboard.id}?token={minted.token}"
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=chromium_path,
                headless=True,
                args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
            )
            try:
                page = await browser.new_page(viewport={"width": 1200, "height": 900})
                await page.goto(url, wait_until="load", timeout=RENDER_TIMEOUT_MS)
                root = page.locator('#emban-root[aria-busy="false"]')
                await root.wait_for(state="attached", timeout=RENDER_TIMEOUT_MS)
                status = await page.get_attribute("#emban-root", "data-status")
                if status not in (None, "ok"):
                    raise ExportFailed(f"the dashboard did not render ({status})")
                await page.emulate_media(media="print")
                content = await page.pdf(format="A4", print_background=True)
            finally:
                await browser.close()
    except PlaywrightError as exc:
        raise ExportFailed(f"rendering failed: {str(exc).splitlines()[0][:300]}") from exc
    return ExportFile(filename, content, "application/pdf")

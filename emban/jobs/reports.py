"""Report jobs: ``start_due_reports(ctx)`` every minute, ``run_report(ctx, run_id)`` per run.

Both need the engine (exports query it), so they run where alerts run: an arq worker with a
ClickHouse server, else the serving process.
"""

from __future__ import annotations

from typing import Any

from emban.jobs.metering import metered_job
from emban.services.report_runs import execute_run, start_due

REPORT_TICK_SECONDS = 60.0


class _ExportRuntime:
    """The parts of a runtime a report export uses, from a job's ``ctx``."""

    def __init__(self, ctx: dict[str, Any]) -> None:
        self.settings = ctx["settings"]
        self.events = ctx["events"]
        self.usage = ctx.get("usage") or _NoUsage()


class _NoUsage:
    def count_query(self, org_id: str) -> None:
        return None


@metered_job
async def start_due_reports(ctx: dict[str, Any]) -> None:
    await start_due(ctx["jobs"])


@metered_job
async def run_report(ctx: dict[str, Any], run_id: str) -> None:
    await execute_run(_ExportRuntime(ctx), ctx["jobs"], int(run_id))

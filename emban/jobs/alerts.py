"""The alert cycle as a job: ``evaluate_alerts(ctx)``, every ``EMBAN_ALERT_INTERVAL_SECONDS``.

On ``emban worker`` it is an arq cron job (unique per occurrence across workers) when the engine
is a ClickHouse server; with chDB the serving process runs it (chDB's data directory is its own).
``ctx``: ``settings``, ``events``, ``jobs`` (where deliveries go) and ``publish`` (new events to
live subscribers).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from emban.jobs.metering import metered_job
from emban.services.alert_eval import AlertRunner, evaluate_all

log = logging.getLogger("emban.alerts")


def runner_from(ctx: dict[str, Any]) -> AlertRunner:
    runner = AlertRunner(events=ctx["events"], jobs=ctx["jobs"], settings=ctx["settings"])
    if "publish" in ctx:
        runner.publish = ctx["publish"]
    return runner


@metered_job
async def evaluate_alerts(ctx: dict[str, Any]) -> None:
    started = time.perf_counter()
    rules, created = await evaluate_all(runner_from(ctx))
    if rules:
        log.info(
            "alert cycle: %d rules, %d events, %.0f ms",
            rules,
            created,
            (time.perf_counter() - started) * 1000,
        )


def cron_fields(seconds: int) -> dict[str, Any]:
    """arq cron fields running every ``seconds``: a divisor of 60 (seconds within each minute)
    or a whole number of minutes dividing 60; other values round down to the nearest such."""
    if seconds < 60:
        step = max(d for d in (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30) if d <= max(seconds, 1))
        return {"second": set(range(0, 60, step))}
    minutes = max(d for d in (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60) if d <= seconds // 60)
    if minutes == 1:
        return {"second": {0}}
    return {"minute": set(range(0, 60, minutes)), "second": {0}}

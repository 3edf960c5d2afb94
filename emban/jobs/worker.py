"""arq ``WorkerSettings`` for ``emban worker`` (production mode, Redis required)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from arq import cron
from arq.connections import ArqRedis, RedisSettings
from arq.worker import Worker

from emban.analytics.guarded import guarded
from emban.analytics.store import open_store
from emban.dependencies import REDIS, outages, redis_gone
from emban.jobs.alerts import cron_fields, evaluate_alerts
from emban.jobs.deliveries import deliver_email, deliver_webhook
from emban.jobs.maintenance import purge_expired
from emban.jobs.org_data import purge_org_events
from emban.jobs.queue import ArqJobs
from emban.jobs.reports import REPORT_TICK_SECONDS, run_report, start_due_reports
from emban.live.bus import RedisBus
from emban.metadata import close_metadata, open_metadata
from emban.metrics import Metrics
from emban.metrics_http import serve_metrics
from emban.settings import Settings


async def on_startup(ctx: dict[str, Any]) -> None:
    settings = Settings.from_env()
    ctx["settings"] = settings
    metrics = ctx["metrics"] = Metrics()
    if settings.worker_metrics_port is not None:
        ctx["metrics_server"] = await serve_metrics(
            metrics, settings, settings.host, settings.worker_metrics_port
        )
    ctx["metadata"] = await open_metadata(settings)
    # Engine jobs reach a worker only with a ClickHouse server (see jobs/queue.py): chDB's data
    # directory belongs to the serving process.
    if settings.clickhouse_url is not None:
        ctx["events"] = guarded(open_store(settings), metrics)
    ctx["jobs"] = ArqJobs(ctx["redis"])
    ctx["publish"] = RedisBus(ctx["redis"]).publish_alert_event


async def on_shutdown(ctx: dict[str, Any]) -> None:
    if "events" in ctx:
        await ctx["events"].close()
    await close_metadata(ctx["metadata"])
    if "metrics_server" in ctx:
        await ctx["metrics_server"].cleanup()


log = logging.getLogger("emban.worker")


class ResilientWorker(Worker):
    """arq's worker, kept alive through a Redis outage: arq ends its main loop on the first
    failed poll, so the process would exit (and need a restart). Here a poll that cannot reach
    Redis waits a second and polls again; jobs are picked up once Redis is back."""

    _redis_lost = False

    async def _poll_iteration(self) -> None:
        try:
            await super()._poll_iteration()
        except Exception as exc:
            if not redis_gone(exc):
                raise
            if not self._redis_lost:
                log.warning("worker lost Redis; polling again every second")
                self._redis_lost = True
            outages.down(REDIS)
            await asyncio.sleep(1.0)
            return
        if self._redis_lost:
            log.info("worker: Redis is back")
            self._redis_lost = False


def run_resilient_worker(settings: Settings) -> None:
    """``emban worker``: the arq worker with :class:`ResilientWorker`'s polling, on a Redis
    client with socket timeouts: arq's own has none, so a read from a Redis that hangs (or dies
    mid-reply) could block the worker for good instead of failing into the next poll."""
    assert settings.redis_url is not None
    pool = ArqRedis.from_url(
        settings.redis_url,
        socket_connect_timeout=REDIS_SOCKET_TIMEOUT,
        socket_timeout=REDIS_SOCKET_TIMEOUT,
    )
    ResilientWorker(**worker_settings(settings), redis_pool=pool).run()


REDIS_SOCKET_TIMEOUT = 5.0  # seconds; longer than any command the worker sends takes


def worker_settings(settings: Settings) -> dict[str, Any]:
    assert settings.redis_url is not None
    return {
        "functions": list(JOBS.values()),
        "cron_jobs": [
            cron(purge_expired, minute={7}, run_at_startup=False),
            # Alerts need the engine: on a worker only with a ClickHouse server.
            *(
                [
                    cron(evaluate_alerts, **cron_fields(settings.alert_interval_seconds)),
                    cron(start_due_reports, second={0}),
                ]
                if settings.clickhouse_url is not None
                else []
            ),
        ],
        "on_startup": on_startup,
        "on_shutdown": on_shutdown,
        "redis_settings": RedisSettings.from_dsn(settings.redis_url),
        "max_tries": 5,
    }


def periodic_jobs(settings: Settings, *, redis: bool) -> list[tuple[Any, float]]:
    """What the serving process schedules itself: (job, seconds between runs). Everything
    without Redis; with Redis only the engine jobs a worker cannot run (chDB)."""
    jobs: list[tuple[Any, float]] = []
    if not redis:
        jobs.append((purge_expired, 3600.0))
    if not redis or settings.clickhouse_url is None:
        jobs.append((evaluate_alerts, float(settings.alert_interval_seconds)))
        jobs.append((start_due_reports, REPORT_TICK_SECONDS))
    return jobs


# Jobs enqueued by name (``JobQueue.enqueue``), in-process or on arq.
JOBS: dict[str, Any] = {
    "purge_expired": purge_expired,
    "purge_org_events": purge_org_events,
    "deliver_webhook": deliver_webhook,
    "deliver_email": deliver_email,
    "evaluate_alerts": evaluate_alerts,
    "start_due_reports": start_due_reports,
    "run_report": run_report,
}

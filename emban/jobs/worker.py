"""arq ``WorkerSettings`` for ``emban worker`` (production mode, Redis required)."""

from __future__ import annotations

from typing import Any

from arq import cron
from arq.connections import RedisSettings

from emban.jobs.maintenance import purge_expired
from emban.metadata import close_metadata, open_metadata
from emban.settings import Settings


async def on_startup(ctx: dict[str, Any]) -> None:
    settings = Settings.from_env()
    ctx["settings"] = settings
    ctx["metadata"] = await open_metadata(settings)


async def on_shutdown(ctx: dict[str, Any]) -> None:
    await close_metadata(ctx["metadata"])


def worker_settings(settings: Settings) -> dict[str, Any]:
    assert settings.redis_url is not None
    return {
        "functions": [purge_expired],
        "cron_jobs": [cron(purge_expired, minute={7}, run_at_startup=False)],
        "on_startup": on_startup,
        "on_shutdown": on_shutdown,
        "redis_settings": RedisSettings.from_dsn(settings.redis_url),
        "max_tries": 5,
    }


# In-process schedule for embedded mode: (job, seconds between runs).
PERIODIC_JOBS = ((purge_expired, 3600.0),)

"""The metadata store (Tortoise ORM): configuration, migrations and the connection lifecycle."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from tortoise.context import TortoiseContext
from tortoise.migrations.api import migrate as tortoise_migrate

from emban.settings import Settings

APP_LABEL = "emban"


def tortoise_config(settings: Settings) -> dict[str, Any]:
    return {
        "connections": {"default": settings.metadata_db_url},
        "apps": {
            APP_LABEL: {
                "models": ["emban.models"],
                "migrations": "emban.models.migrations",
                "default_connection": "default",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


async def migrate_metadata(settings: Settings) -> None:
    """Apply pending Tortoise migrations (files under ``emban/models/migrations``).

    Runs in a context of its own, closed on exit, so it never shadows the serving context.
    """
    if settings.embedded:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    async with TortoiseContext():
        await tortoise_migrate(config=tortoise_config(settings))


async def open_metadata(settings: Settings) -> TortoiseContext:
    """Open this process's metadata connections; every task falls back to this context.

    The context is not bound to the calling task (no contextvar), so request handlers, jobs and
    tests running in other tasks all see it; close it with :func:`close_metadata`.
    """
    context = TortoiseContext()
    with context:  # bound only while initialising: the app registry looks the context up
        await context.init(config=tortoise_config(settings), _enable_global_fallback=True)
    return context


async def close_metadata(context: TortoiseContext) -> None:
    await context.close_connections()


@asynccontextmanager
async def metadata_opened(settings: Settings) -> AsyncIterator[TortoiseContext]:
    """Open the metadata store for a command-line action and close it afterwards."""
    context = await open_metadata(settings)
    try:
        yield context
    finally:
        await close_metadata(context)

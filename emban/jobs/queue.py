"""Enqueue a job by name: to arq workers on Redis, or onto the serving process's own loop.

A job that needs the event engine goes to arq only when a worker can open the engine, i.e. with
``EMBAN_CLICKHOUSE_URL`` set: chDB's data directory belongs to the serving process, so with chDB
the serving process runs engine jobs itself even when Redis is configured.
"""

from __future__ import annotations

from typing import Protocol

from arq.connections import ArqRedis
from redis.asyncio import Redis

from emban.jobs.inprocess import InProcessJobs
from emban.settings import Settings


class JobQueue(Protocol):
    async def enqueue(self, job: str, *args: str) -> None:
        """Run ``job`` (a name from ``worker.JOBS``) with ``args`` soon, outside this request."""
        ...


class ArqJobs:
    def __init__(self, redis: Redis) -> None:
        # Shares the app's connection pool; closed with it.
        self._arq = ArqRedis(pool_or_conn=redis.connection_pool)

    async def enqueue(self, job: str, *args: str) -> None:
        # One job per (name, args): enqueueing twice while the first is pending is a no-op.
        await self._arq.enqueue_job(job, *args, _job_id=":".join((job, *args)))


def job_queue(settings: Settings, redis: Redis | None, local: InProcessJobs) -> JobQueue:
    if redis is not None and settings.clickhouse_url is not None:
        return ArqJobs(redis)
    return local

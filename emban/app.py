"""``create_app(settings)``: the aiohttp application with both edges and its resources."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web
from redis.asyncio import Redis

from emban.analytics.ddl import migrate_clickhouse
from emban.analytics.decode_pool import DecodePool
from emban.analytics.drain_lock import drain_lock
from emban.analytics.guarded import guarded
from emban.analytics.store import open_store
from emban.analytics.wal_ingest import WalIngestWriter
from emban.auth.rate_limit import (
    AttemptLimiter,
    MemoryLimiter,
    MemoryRequestBudgets,
    RedisOrLocalBudgets,
    RedisOrLocalLimiter,
    RequestBudgets,
)
from emban.caller import caller_middleware
from emban.dependencies import (
    CLICKHOUSE,
    METADATA,
    REDIS,
    outages,
    quiet_reconnect_tracebacks,
)
from emban.embed_page import add_embed_routes
from emban.jobs.inprocess import InProcessJobs
from emban.jobs.queue import job_queue
from emban.jobs.worker import periodic_jobs
from emban.live.bus import InProcessBus, LiveBus, RedisBus, alert_event_message
from emban.live.hub import LiveHub
from emban.live.sockets import LiveSockets
from emban.metadata import close_metadata, migrate_metadata, open_metadata, probe_connection
from emban.metrics import Metrics
from emban.metrics_http import METRICS_KEY, METRICS_PATH, metrics_handler, metrics_middleware
from emban.request_ids import add_request_id_header, request_id_middleware, request_id_of
from emban.resolvers.schema import schema
from emban.resolvers.view import EmbanGraphQLView
from emban.rest_compat.http import error_middleware, json_response
from emban.rest_compat.routes import add_routes, add_webhook_routes
from emban.runtime import RUNTIME_KEY, Runtime
from emban.security_headers import add_security_headers
from emban.services import dashboards, embed_revocations
from emban.services.api_key_cache import ApiKeyCache
from emban.services.discovery_cache import DiscoveryCache
from emban.services.events import record_stored
from emban.settings import Settings
from emban.usage import UsageRecorder

# Ingest (a later route) takes up to 10 MiB; every other route enforces 1 MiB itself.
CLIENT_MAX_SIZE = 10 * 1024 * 1024 + 1024


REDIS_TIMEOUT = 2.0
GOING_AWAY = 1001  # WebSocket close code: the server is going down


async def _visible(ingest: WalIngestWriter, org: str | None) -> bool:
    """Read-your-writes: a read of ``org`` waits for the drain of that org's acknowledged rows."""
    return await ingest.visible(org=org, readable=True)


async def _close_live_sockets(app: web.Application) -> None:
    """On SIGTERM/SIGINT: close every live socket first, so none holds the shutdown up."""
    runtime = app.get(RUNTIME_KEY)
    if runtime is not None:
        await runtime.live.sockets.close_all(GOING_AWAY, "server_shutdown")


def create_app(settings: Settings, *, apply_migrations: bool | None = None) -> web.Application:
    """Build the app. Embedded mode applies pending migrations on start unless told otherwise."""
    # error_middleware is outermost, so a failure while resolving the caller is rendered too.
    # request_id_middleware is outermost, so every log line and response (errors included)
    # carries the id; the metrics middleware counts the status error_middleware rendered.
    metrics = Metrics()
    app = web.Application(
        middlewares=[
            request_id_middleware,
            metrics_middleware(metrics),
            error_middleware,
            caller_middleware,
        ],
        client_max_size=CLIENT_MAX_SIZE,
    )
    app[METRICS_KEY] = metrics
    app.on_response_prepare.append(add_request_id_header)
    migrate_on_start = settings.embedded if apply_migrations is None else apply_migrations
    quiet_reconnect_tracebacks()

    async def resources(app: web.Application) -> AsyncIterator[None]:
        if migrate_on_start:
            await migrate_metadata(settings)
        metadata = await open_metadata(settings)
        # Services never see the bare store: engine I/O inside a metadata transaction raises.
        engine = open_store(settings)
        decode_pool = (
            DecodePool(settings.ingest_decode_workers, idle=settings.ingest_decode_policy == "idle")
            if settings.ingest_decode_workers
            else None
        )
        ingest = WalIngestWriter(
            guarded(engine, metrics),
            settings.data_dir / "wal",
            backlog_limit=settings.ingest_backlog_bytes,
            on_stored=record_stored,
            lock=drain_lock(settings.clickhouse_url, settings.metadata_db_url),
            metrics=metrics,
            decode_pool=decode_pool,
        )
        # Readers wait (bounded) for the drain of what was acknowledged before them.
        events = guarded(engine, metrics, before_read=functools.partial(_visible, ingest))
        redis: Redis | None = (
            Redis.from_url(
                settings.redis_url,
                # A Redis that hangs must not hold every request that counts a budget: after
                # these seconds the call fails and the caller decides (dependencies.py).
                socket_connect_timeout=REDIS_TIMEOUT,
                socket_timeout=REDIS_TIMEOUT,
            )
            if settings.redis_url
            else None
        )
        jobs = InProcessJobs({"settings": settings, "events": events, "metrics": metrics})
        usage = UsageRecorder()
        bus: LiveBus = RedisBus(redis) if redis is not None else InProcessBus()
        sockets = LiveSockets(bus, redis, max_per_token=settings.live_max_sockets_per_token)
        sockets.revocation_listeners.append(embed_revocations.forget)
        api_keys = ApiKeyCache(settings.api_key_cache_ttl)
        bus.subscribe(api_keys.on_message)
        if isinstance(bus, RedisBus):
            bus.resubscribed.append(api_keys.clear)
        live = LiveHub(
            bus,
            max_cohorts=settings.live_max_cohorts_per_dashboard_tenant,
            max_concurrent_refreshes=settings.live_max_concurrent_refreshes,
            min_refresh_interval=settings.live_min_refresh_interval_ms / 1000,
            sockets=sockets,
            metrics=metrics,
        )
        metrics.watch(metrics.ingest_queue_rows, lambda: ingest.queued_rows)
        metrics.watch(metrics.live_sockets, lambda: sockets.open_sockets)
        metrics.watch(metrics.live_cohorts, lambda: live.cohort_count)
        metrics.watch(metrics.live_viewers, live.viewer_count)
        ingest.listeners.append(lambda touched: live.announce_ingest(touched.keys))
        discovery = DiscoveryCache(ttl=settings.discovery_cache_seconds)
        ingest.listeners.append(discovery.on_stored)
        bus.subscribe(discovery.on_message)
        stop_listening = dashboards.on_publish_change(live.announce_dashboard)
        try:
            if migrate_on_start:
                await migrate_clickhouse(guarded(engine))
            redis_down = functools.partial(outages.down, REDIS)
            limiter: AttemptLimiter = (
                RedisOrLocalLimiter(redis, redis_down) if redis else MemoryLimiter()
            )
            budgets: RequestBudgets = (
                RedisOrLocalBudgets(redis, redis_down) if redis else MemoryRequestBudgets()
            )
            app[RUNTIME_KEY] = Runtime(
                settings=settings,
                events=events,
                limiter=limiter,
                ingest=ingest,
                usage=usage,
                live=live,
                jobs=job_queue(settings, redis, jobs),
                redis=redis,
                budgets=budgets,
                api_keys=api_keys,
                decode_pool=decode_pool,
                discovery=discovery,
            )
            await bus.start()
            ingest.start()
            usage.start()

            async def publish_alert_event(org_id: str, event: dict[str, Any]) -> None:
                await bus.publish(alert_event_message(org_id, event))

            jobs.start(
                periodic_jobs(settings, redis=redis is not None),
                {"jobs": app[RUNTIME_KEY].jobs, "publish": publish_alert_event, "usage": usage},
            )
            yield
        finally:
            stop_listening()
            await bus.stop()
            await sockets.stop()
            await jobs.stop()
            await ingest.stop()
            if decode_pool is not None:
                decode_pool.close()
            await usage.stop()
            if redis is not None:
                await redis.aclose()
            await events.close()
            await close_metadata(metadata)

    app.cleanup_ctx.append(resources)
    app.on_shutdown.append(_close_live_sockets)
    add_security_headers(app, settings)
    app.router.add_get("/healthz", healthz)
    app.router.add_get(
        METRICS_PATH,
        metrics_handler(metrics, settings.metrics_token, settings.trusted_proxies),
    )
    add_routes(app)
    view = EmbanGraphQLView(schema=schema, graphql_ide="graphiql")
    app.router.add_route("*", "/graphql", view)
    add_embed_routes(app, settings)
    add_webhook_routes(app)
    return app


HEALTH_CHECK_TIMEOUT = 2.0
"""Seconds each ``/healthz`` check may take: a dependency that hangs is reported as failed
(``TimeoutError``) instead of holding the probe (and the orchestrator waiting on it)."""


async def _check(name: str, probe: Callable[[], Awaitable[object]]) -> tuple[str, str | None]:
    try:
        await asyncio.wait_for(probe(), timeout=HEALTH_CHECK_TIMEOUT)
    except Exception as exc:
        outages.down(name)
        return name, type(exc).__name__
    outages.up(name)
    return name, None


async def healthz(request: web.Request) -> web.Response:
    """200 when the metadata DB, ClickHouse and (when configured) Redis answer; 503 naming each
    one that failed or did not answer within ``HEALTH_CHECK_TIMEOUT``. The checks run at once."""
    runtime = request.app[RUNTIME_KEY]
    probes = [
        _check(METADATA, lambda: probe_connection().execute_query("SELECT 1")),
        _check(CLICKHOUSE, runtime.events.ping),
    ]
    redis = runtime.redis
    if redis is not None:
        probes.append(_check(REDIS, redis.ping))
    results = await asyncio.gather(*probes)
    failed = {name: error for name, error in results if error is not None}
    if failed:
        return json_response(
            {"status": "unavailable", "failed": failed, "request_id": request_id_of(request)},
            status=503,
        )
    return json_response({"status": "ok"})

"""``emban serve | worker | migrate | demo | schema | org set-plan``."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from emban.errors import EmbanError
from emban.settings import Settings, SettingsError

if TYPE_CHECKING:  # aiohttp is imported by `serve` only, after the settings are read
    from aiohttp import web


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as error:
        print(f"emban: configuration error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


# The share of EMBAN_SHUTDOWN_TIMEOUT in-flight requests get after SIGTERM; the rest is for the
# cleanup that follows (the ingest queue's last flush, closing the stores).
DRAIN_SHARE = 0.8


def _force_exit(seconds: float) -> None:
    logging.getLogger("emban.cli").warning(
        "shutdown still running %.1f s after SIGTERM (EMBAN_SHUTDOWN_TIMEOUT): exiting now; "
        "acknowledged events are already durable",
        seconds,
    )
    logging.shutdown()
    os._exit(1)


async def _arm_exit_deadline(app: web.Application) -> None:
    """On shutdown (SIGTERM/SIGINT, after the listener closed): the process is gone within
    EMBAN_SHUTDOWN_TIMEOUT even when a request or the engine outlasts it. A chDB query cannot be
    cancelled, and the cleanup (and the event loop's executor) waits for its thread; an exit
    then is no worse than the SIGKILL an orchestrator sends next, since an acknowledged batch is
    already durable (docs/operations.md, Durability)."""
    from emban.runtime import RUNTIME_KEY

    seconds = app[RUNTIME_KEY].settings.shutdown_timeout
    timer = threading.Timer(seconds, _force_exit, args=(seconds,))
    timer.daemon = True
    timer.start()


async def freeze_startup_objects(app: web.Application) -> None:
    """Once the app has started (schema built, modules imported, connections open): collect,
    then move every object alive to the collector's permanent generation. A full collection
    otherwise walks those ~million long-lived objects each time and holds the GIL for 65-90 ms
    (measured), a stall of every request in flight that came more often under load; after the
    freeze it walks only what was allocated since. The frozen objects live as long as the
    process anyway."""
    gc.collect()
    gc.freeze()


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings()  # before the heavy imports
    settings = settings.with_listen(
        settings.host if args.host is None else args.host,
        settings.port if args.port is None else args.port,
    )

    from aiohttp import web

    from emban.app import create_app
    from emban.logs import configure_logging

    configure_logging(settings.log_level, settings.log_format)
    # The event loop's thread asks for the GIL back after this long when a worker thread (a
    # drain's chunk, a live refresh, an engine answer being read) holds it; Python's 5 ms
    # default is added to a request each time (docs/performance.md, issue 8's benchmark).
    sys.setswitchinterval(settings.gil_switch_interval_us / 1_000_000)
    app = create_app(settings)
    app.on_startup.append(freeze_startup_objects)  # after the app's own startup
    app.on_shutdown.insert(0, _arm_exit_deadline)
    print(
        f"Emban is serving at {settings.base_url}/  (GraphQL: {settings.base_url}/graphql)",
        flush=True,
    )
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        print=None,
        access_log=None,
        # Requests still running after a SIGTERM get most of EMBAN_SHUTDOWN_TIMEOUT (live
        # sockets are closed first; the ingest queue is flushed in the cleanup that follows).
        shutdown_timeout=settings.shutdown_timeout * DRAIN_SHARE,
    )
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    settings = _settings()
    if not settings.redis_url:
        print(
            "emban: `emban worker` needs EMBAN_REDIS_URL (production mode); in embedded mode "
            "`emban serve` runs the jobs itself",
            file=sys.stderr,
        )
        return 2
    from emban.jobs.worker import run_resilient_worker
    from emban.logs import configure_logging

    configure_logging(settings.log_level, settings.log_format)
    run_resilient_worker(settings)
    return 0


async def _migrate(settings: Settings) -> list[int]:
    from emban.analytics.ddl import migrate_clickhouse
    from emban.analytics.store import open_store
    from emban.metadata import migrate_metadata

    await migrate_metadata(settings)
    store = open_store(settings)
    try:
        return await migrate_clickhouse(store)
    finally:
        await store.close()


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = _settings()
    applied = asyncio.run(_migrate(settings))
    done = ", ".join(str(v) for v in applied) if applied else "none pending"
    print(f"metadata migrations applied; ClickHouse DDL versions applied: {done}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from emban.demo import seed_demo

    settings = _settings()
    asyncio.run(_migrate(settings))
    result = asyncio.run(seed_demo(settings))
    print(f"Demo org: {result.org_name} ({result.org_id})")
    print(f"Owner login: {result.email} / {result.password}")
    print(f"Admin API key (production): {result.api_key}")
    print(f"Sample events: {result.sample_events:,} over 30 days for 5 tenants")
    print(f"Demo dashboard (published): {result.dashboard_id}")
    print(f"Embed URL (valid 1 hour): {result.embed_url}")
    print(f"Demo host page: {settings.base_url}/  (GraphQL: {settings.base_url}/graphql)")
    print("Open them after `emban serve`")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from emban.contracts import write_contracts

    for path in write_contracts(Path(args.out)):
        print(f"wrote {path}")
    return 0


def cmd_settings_doc(args: argparse.Namespace) -> int:
    from emban.settings import settings_table, with_settings_table

    if args.write is None:
        print(settings_table(), end="")
        return 0
    path = Path(args.write)
    path.write_text(with_settings_table(path.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"wrote {path}")
    return 0


def cmd_set_plan(args: argparse.Namespace) -> int:
    from emban.services.billing import set_plan_cli

    settings = _settings()
    try:
        org = asyncio.run(set_plan_cli(settings, args.org_id, args.plan))
    except EmbanError as error:
        print(f"emban: {error.message}", file=sys.stderr)
        return 1
    print(f"org {org.id} is now on the {org.plan} plan")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="emban", description="Embedded analytics service.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the API (GraphQL at /graphql, REST at /v1)")
    serve.add_argument("--host", default=None, help="default: EMBAN_HOST, else 127.0.0.1")
    serve.add_argument("--port", type=int, default=None, help="default: EMBAN_PORT, else 8000")
    serve.set_defaults(func=cmd_serve)
    sub.add_parser("worker", help="run the arq worker (needs EMBAN_REDIS_URL)").set_defaults(
        func=cmd_worker
    )
    sub.add_parser("migrate", help="apply metadata migrations and ClickHouse DDL").set_defaults(
        func=cmd_migrate
    )
    sub.add_parser("demo", help="seed the demo org and print its login").set_defaults(func=cmd_demo)
    schema = sub.add_parser("schema", help="write schema/schema.graphql and schema/openapi.json")
    schema.add_argument("--out", default="schema")
    schema.set_defaults(func=cmd_schema)
    settings_doc = sub.add_parser(
        "settings-doc", help="print the EMBAN_* settings table (docs/operations.md carries it)"
    )
    settings_doc.add_argument(
        "--write", metavar="PATH", help="replace the table in PATH (e.g. docs/operations.md)"
    )
    settings_doc.set_defaults(func=cmd_settings_doc)
    org = sub.add_parser("org", help="operator commands for orgs")
    org_sub = org.add_subparsers(dest="org_command", required=True)
    set_plan = org_sub.add_parser("set-plan", help="put an org on a plan")
    set_plan.add_argument("org_id")
    set_plan.add_argument("plan")
    set_plan.set_defaults(func=cmd_set_plan)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    raise SystemExit(args.func(args))


if __name__ == "__main__":  # `python -m emban.cli …` as well as the `emban` script
    main()

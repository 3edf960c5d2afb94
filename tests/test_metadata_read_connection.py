"""SQLite metadata: reads outside a transaction use a second connection (``ReadRouter``), so a
credential or dashboard lookup never queues behind a write transaction; reads inside one stay on
its connection and see its writes."""

from __future__ import annotations

from pathlib import Path

from tortoise import connections

from emban.metadata import (
    READ_CONNECTION,
    ReadRouter,
    marked_transaction,
    probe_connection,
    tortoise_config,
)
from emban.models import Org
from emban.settings import Settings
from tests.probes import run_probe

SECRET = "x" * 32


def test_a_file_backed_sqlite_store_gets_a_read_connection_and_the_router(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path}/meta.sqlite3"
    config = tortoise_config(Settings(database_url=url, secret_key=SECRET))
    assert config["connections"] == {"default": url, READ_CONNECTION: url}
    assert config["routers"] == ["emban.metadata.ReadRouter"]
    # Migrations read what their own transaction wrote: one connection.
    settings = Settings(database_url=url, secret_key=SECRET)
    migrating = tortoise_config(settings, read_connection=False)
    assert (migrating["connections"], migrating["routers"]) == ({"default": url}, [])


def test_memory_sqlite_and_postgres_keep_one_connection() -> None:
    for url in ("sqlite://:memory:", "postgres://u@127.0.0.1:5432/test"):
        config = tortoise_config(Settings(database_url=url, secret_key=SECRET))
        assert (config["connections"], config["routers"]) == ({"default": url}, [])


async def test_the_health_probe_uses_the_default_connection_without_a_read_connection(
    app_server: object,
) -> None:
    # The suite's metadata store is PostgreSQL: one pool, no read connection.
    assert probe_connection() is connections.get("default")
    assert await probe_connection().execute_query_dict("SELECT 1 AS up") == [{"up": 1}]


def test_the_router_sends_reads_outside_a_transaction_to_the_read_connection() -> None:
    router = ReadRouter()
    assert router.db_for_read(Org) == READ_CONNECTION
    assert router.db_for_write(Org) is None
    with marked_transaction():
        assert router.db_for_read(Org) is None
        assert router.db_for_write(Org) is None
    assert router.db_for_read(Org) == READ_CONNECTION


def test_reads_do_not_wait_for_an_open_write_transaction(tmp_path: Path) -> None:
    assert run_probe("tests.sqlite_read_probe", tmp_path / "data", timeout=120) == {
        "inside_sees_own_write": True,
        # With one connection each of these waited for the transaction ("timeout").
        "outside_count": 1,
        "outside_get": "Before",
        "outside_sees_uncommitted": False,
        "health_probe": [{"up": 1}],
        "after_commit_count": 2,
        "after_update": "Renamed",
    }

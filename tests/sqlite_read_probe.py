"""Run in a subprocess by ``test_metadata_read_connection.py``: the embedded SQLite metadata store
with a write transaction held open, and reads made meanwhile (a process of its own, because the
test suite's metadata store is PostgreSQL and Tortoise's router is per process).

Prints one JSON line: each outcome, ``"timeout"`` when a read could not finish while the
transaction was held.

Usage: ``python -m tests.sqlite_read_probe DATA_DIR``
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
from pathlib import Path
from typing import Any

from emban.metadata import close_metadata, migrate_metadata, open_metadata, probe_connection
from emban.models import Org
from emban.services.boundary import transaction
from emban.settings import Settings

HELD = 5.0  # seconds a read may take while the transaction is held before it counts as blocked


async def bounded(read: Any) -> Any:
    try:
        return await asyncio.wait_for(read, HELD)
    except TimeoutError:
        return "timeout"


async def main(data_dir: Path) -> dict[str, Any]:
    settings = Settings(data_dir=data_dir, secret_key=secrets.token_urlsafe(40))
    await migrate_metadata(settings)
    context = await open_metadata(settings)
    out: dict[str, Any] = {}
    try:
        await Org.create(id="org_before", name="Before")
        entered, release = asyncio.Event(), asyncio.Event()

        async def writer() -> None:
            async with transaction():
                await Org.create(id="org_inside", name="Inside")
                # Inside the transaction a read sees the transaction's own write.
                out["inside_sees_own_write"] = await Org.filter(id="org_inside").exists()
                entered.set()
                await release.wait()

        held = asyncio.create_task(writer())
        await entered.wait()
        # The write transaction is open: reads outside it go ahead, and see only committed rows.
        out["outside_count"] = await bounded(Org.all().count())
        out["outside_get"] = await bounded(Org.get(id="org_before").values_list("name", flat=True))
        out["outside_sees_uncommitted"] = await bounded(Org.filter(id="org_inside").exists())
        # /healthz's metadata probe answers too.
        out["health_probe"] = await bounded(probe_connection().execute_query_dict("SELECT 1 AS up"))
        release.set()
        await held
        # After the commit, a read on the read connection sees the write at once.
        out["after_commit_count"] = await Org.all().count()
        # A write outside any transaction (autocommit) is seen by the next read too.
        await Org.filter(id="org_before").update(name="Renamed")
        out["after_update"] = await Org.get(id="org_before").values_list("name", flat=True)
    finally:
        await close_metadata(context)
    return out


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(Path(sys.argv[1])))))

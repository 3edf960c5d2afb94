"""DDL version 3: every MergeTree table merges ten parts at once (``min_parts_to_merge_at_once``),
on a fresh data directory and on one migrated by an earlier release (versions 1 and 2 only).

Each case runs in a subprocess with a chDB data directory of its own (one process holds one).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from emban.analytics.ddl import MIN_PARTS_TO_MERGE

TABLES = [
    "event_ids",
    "events",
    "events_daily_dim_rollup",
    "events_daily_rollup",
    "events_hourly_dim_rollup",
    "events_hourly_rollup",
]

_MIGRATE = """
import asyncio, json, re, sys
from pathlib import Path
from emban.analytics.chdb_store import ChdbStore
from emban.analytics.ddl import SCHEMA_VERSIONS, migrate_clickhouse, schema_versions_table, versions

async def main(path: str, upgrade: bool) -> None:
    store = ChdbStore(Path(path))
    if upgrade:  # what an earlier release left: versions 1 and 2, recorded
        await store.execute(schema_versions_table())
        for version, name, statements in versions()[:2]:
            for statement in statements:
                await store.execute(statement)
            await store.execute(
                f"INSERT INTO {SCHEMA_VERSIONS} (version, name) "
                "VALUES ({v:UInt32}, {n:String})",
                {"v": version, "n": name},
            )
    applied = await migrate_clickhouse(store)
    again = await migrate_clickhouse(store)
    rows = (await store.query(
        "SELECT name, create_table_query FROM system.tables "
        "WHERE database = currentDatabase() AND engine LIKE '%MergeTree' ORDER BY name"
    )).rows
    found = {}
    for name, text in rows:
        value = re.search(r"min_parts_to_merge_at_once = (\\d+)", text)
        found[name] = int(value.group(1)) if value else None
    await store.close()
    json.dump({"applied": applied, "again": again, "settings": found}, sys.stdout)

asyncio.run(main(sys.argv[1], sys.argv[2] == "upgrade"))
"""


def _migrate(path: Path, mode: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", _MIGRATE, str(path), mode],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_a_fresh_engine_merges_ten_parts_at_once(tmp_path: Path) -> None:
    result = _migrate(tmp_path / "ch", "fresh")
    assert result["applied"] == [1, 2, 3]
    assert result["again"] == []
    assert result["settings"] == {
        "emban_schema_versions": None,
        **{table: MIN_PARTS_TO_MERGE for table in TABLES},
    }


def test_an_engine_of_an_earlier_release_gets_version_3(tmp_path: Path) -> None:
    result = _migrate(tmp_path / "ch", "upgrade")
    assert result["applied"] == [3]
    assert result["again"] == []
    assert result["settings"] == {
        "emban_schema_versions": None,
        **{table: MIN_PARTS_TO_MERGE for table in TABLES},
    }

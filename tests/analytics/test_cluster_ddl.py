"""The ClickHouse DDL on one node (unchanged) and on a cluster (``EMBAN_CLICKHOUSE_CLUSTER``).

chDB has no cluster (no Keeper, no ``remote_servers``), so the cluster statements cannot run
here: each one is parsed by chDB's own parser instead (``formatQuerySingleLine``, which parses
with the full ClickHouse grammar, ``ON CLUSTER`` included, and prints the statement back), in a
subprocess because ``chdb.query`` must not share a process with an open data directory. The
assertions read the engines, clusters and sharding keys from the parser's normalized text.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from emban.analytics.ddl import (
    VERSIONS,
    Layout,
    all_statements,
    delete_org_statements,
    schema_versions_table,
    versions,
)
from emban.settings import Settings, SettingsError

HERE = Path(__file__).parent
CLUSTER = "emban_cluster"

_PARSE = """
import json, sys, chdb
out = []
for statement in json.load(sys.stdin):
    literal = "'" + statement.replace("\\\\", "\\\\\\\\").replace("'", "\\\\'") + "'"
    try:
        text = chdb.query(f"SELECT formatQuerySingleLine({literal})", "TSVRaw").bytes().decode()
        out.append({"ok": text.rstrip("\\n")})
    except Exception as error:
        out.append({"error": str(error)})
json.dump(out, sys.stdout)
"""


def parse_with_chdb(statements: list[str]) -> list[dict[str, str]]:
    """Each statement as chDB's parser prints it back (``ok``), or its parse ``error``."""
    done = subprocess.run(
        [sys.executable, "-c", _PARSE],
        input=json.dumps(statements),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    parsed: list[dict[str, str]] = json.loads(done.stdout)
    return parsed


@pytest.fixture(scope="module")
def cluster_ddl() -> list[str]:
    statements = [*all_statements(CLUSTER), *delete_org_statements(CLUSTER)]
    parsed = parse_with_chdb(statements)
    assert [p.get("error") for p in parsed] == [None] * len(statements)
    return [p["ok"] for p in parsed]


def test_single_node_ddl_is_unchanged() -> None:
    today = json.loads((HERE / "ddl_single_node.json").read_text())
    assert [[v, n, s] for v, n, s in VERSIONS] == today
    assert [[v, n, s] for v, n, s in versions(None)] == today
    assert schema_versions_table() == (
        "CREATE TABLE IF NOT EXISTS emban_schema_versions "
        "(version UInt32, name String, applied_at DateTime DEFAULT now()) "
        "ENGINE = MergeTree ORDER BY version"
    )
    assert delete_org_statements()[0] == (
        "ALTER TABLE events DELETE WHERE org_id = {org:String} SETTINGS mutations_sync = 1"
    )


def test_the_parser_check_can_fail() -> None:
    parsed = parse_with_chdb(
        [
            "CREATE TABLE t ON CLUSTER c (a String) ENGINE = MergeTree ORDER BY a",
            "CREATE TABLE t ON CLUSTER (a String) ENGINE = MergeTree ORDER BY a",
        ]
    )
    assert parsed[0] == {
        "ok": "CREATE TABLE t ON CLUSTER c (`a` String) ENGINE = MergeTree ORDER BY a"
    }
    assert "Syntax error" in parsed[1]["error"]


def test_every_cluster_statement_runs_on_the_cluster(cluster_ddl: list[str]) -> None:
    # bookkeeping, local tables, Distributed tables, views, merge settings, an org's deletion
    assert len(cluster_ddl) == 1 + 6 + 6 + 4 + 6 + 6
    for text in cluster_ddl:
        assert re.match(r"^(CREATE|ALTER) .*? ON CLUSTER emban_cluster ", text), text


def _created(cluster_ddl: list[str]) -> dict[str, str]:
    tables: dict[str, str] = {}
    for text in cluster_ddl:
        found = re.match(r"^CREATE (?:TABLE|MATERIALIZED VIEW) IF NOT EXISTS (\w+) ", text)
        if found:
            tables[found.group(1)] = text
    return tables


REPLICA = "('/clickhouse/tables/{shard}/{database}/{table}', '{replica}'"


def test_local_tables_are_replicated(cluster_ddl: list[str]) -> None:
    engines = {
        name: re.search(r" ENGINE = (\w+\(.*?\))(?: PARTITION| ORDER)", text).group(1)  # type: ignore[union-attr]
        for name, text in _created(cluster_ddl).items()
        if name.endswith("_local") or name == "emban_schema_versions"
    }
    assert engines == {
        "emban_schema_versions": "ReplicatedMergeTree("
        "'/clickhouse/tables/all/{database}/emban_schema_versions', '{shard}-{replica}')",
        "events_local": f"ReplicatedMergeTree{REPLICA})",
        "event_ids_local": f"ReplicatedReplacingMergeTree{REPLICA}, seen_at)",
        "events_hourly_rollup_local": f"ReplicatedAggregatingMergeTree{REPLICA})",
        "events_daily_rollup_local": f"ReplicatedAggregatingMergeTree{REPLICA})",
        "events_hourly_dim_rollup_local": f"ReplicatedAggregatingMergeTree{REPLICA})",
        "events_daily_dim_rollup_local": f"ReplicatedAggregatingMergeTree{REPLICA})",
    }
    events = _created(cluster_ddl)["events_local"]
    assert events.endswith(
        "PARTITION BY toYYYYMM(timestamp) "
        "ORDER BY (org_id, environment_id, tenant_id, event_name, timestamp) "
        "SETTINGS fsync_after_insert = 1, fsync_part_directory = 1"
    )


def test_readable_names_are_distributed_and_sharded_by_tenant(cluster_ddl: list[str]) -> None:
    distributed = {
        name: text.split(" AS ", 1)[1]
        for name, text in _created(cluster_ddl).items()
        if "ENGINE = Distributed" in text
    }
    tenant = "cityHash64(org_id, tenant_id)"

    def over(table: str, key: str) -> str:
        return (
            f"{table}_local ENGINE = Distributed(emban_cluster, currentDatabase(), "
            f"{table}_local, {key})"
        )

    assert distributed == {
        "events": over("events", tenant),
        "event_ids": over("event_ids", "cityHash64(org_id, event_id)"),
        "events_hourly_rollup": over("events_hourly_rollup", tenant),
        "events_daily_rollup": over("events_daily_rollup", tenant),
        "events_hourly_dim_rollup": over("events_hourly_dim_rollup", tenant),
        "events_daily_dim_rollup": over("events_daily_dim_rollup", tenant),
    }


def test_views_read_and_write_the_shard_local_tables(cluster_ddl: list[str]) -> None:
    views = {}
    for name, text in _created(cluster_ddl).items():
        if text.startswith("CREATE MATERIALIZED VIEW"):
            target = re.search(r" TO (\w+) ", text).group(1)  # type: ignore[union-attr]
            sources = re.findall(r" FROM (\w+)", text)
            views[name] = (target, sources)
    assert views == {
        "events_daily_rollup_mv": ("events_daily_rollup_local", ["events_hourly_rollup_local"]),
        "events_daily_dim_rollup_mv": (
            "events_daily_dim_rollup_local",
            ["events_hourly_dim_rollup_local"],
        ),
        "events_hourly_rollup_mv": ("events_hourly_rollup_local", ["events_local"]),
        "events_hourly_dim_rollup_mv": ("events_hourly_dim_rollup_local", ["events_local"]),
    }


MERGE_TREE_TABLES = (
    "events",
    "event_ids",
    "events_hourly_rollup",
    "events_daily_rollup",
    "events_hourly_dim_rollup",
    "events_daily_dim_rollup",
)


def test_org_deletion_mutates_the_local_tables_on_every_replica(cluster_ddl: list[str]) -> None:
    alters = [text for text in cluster_ddl if text.startswith("ALTER") and "DELETE" in text]
    assert alters == [
        f"ALTER TABLE {table}_local ON CLUSTER emban_cluster (DELETE WHERE org_id = "
        "{org:String}) SETTINGS mutations_sync = 2"
        for table in MERGE_TREE_TABLES
    ]


def test_every_replica_merges_ten_parts_at_once(cluster_ddl: list[str]) -> None:
    alters = [text for text in cluster_ddl if text.startswith("ALTER") and "DELETE" not in text]
    assert alters == [
        f"ALTER TABLE {table}_local ON CLUSTER emban_cluster "
        "(MODIFY SETTING min_parts_to_merge_at_once = 10)"
        for table in MERGE_TREE_TABLES
    ]


def test_cluster_name_is_an_identifier(tmp_path: Path) -> None:
    data = str(tmp_path)
    url = {"EMBAN_CLICKHOUSE_URL": "http://ch:8123/default", "EMBAN_DATA_DIR": data}
    settings = Settings.from_env({**url, "EMBAN_CLICKHOUSE_CLUSTER": "emban_cluster"})
    assert settings.clickhouse_cluster == "emban_cluster"
    with pytest.raises(SettingsError) as bad:
        Settings.from_env({**url, "EMBAN_CLICKHOUSE_CLUSTER": "c; DROP TABLE events"})
    assert str(bad.value) == (
        "EMBAN_CLICKHOUSE_CLUSTER must be a plain identifier such as emban_cluster "
        "(got 'c; DROP TABLE events')"
    )
    with pytest.raises(SettingsError) as alone:
        Settings.from_env({"EMBAN_CLICKHOUSE_CLUSTER": "c", "EMBAN_DATA_DIR": data})
    assert str(alone.value) == (
        "EMBAN_CLICKHOUSE_CLUSTER needs EMBAN_CLICKHOUSE_URL (chDB has no cluster)"
    )
    with pytest.raises(ValueError, match="not a cluster identifier"):
        Layout("a-b")

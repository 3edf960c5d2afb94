"""``emban serve``'s interpreter settings: it freezes the objects alive once the app has started,
so a full collection later walks only what was allocated since (65-90 ms of GIL per full
collection before, measured), and it shortens the GIL's switch interval
(``EMBAN_GIL_SWITCH_INTERVAL_US``), so the event loop's thread gets the GIL back from a worker
thread sooner than Python's 5 ms."""

from __future__ import annotations

import argparse
import gc
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from emban import cli, logs


async def test_the_startup_objects_go_to_the_permanent_generation() -> None:
    gc.unfreeze()
    try:
        assert gc.get_freeze_count() == 0
        await cli.freeze_startup_objects(web.Application())
        frozen = gc.get_freeze_count()
        # This test process holds far more than 10,000 tracked objects (modules, pytest).
        assert frozen > 10_000
        made_after = [[i] for i in range(1_000)]
        gc.collect()
        assert gc.get_freeze_count() == frozen  # what came later is collected as before
        assert len(made_after) == 1_000
    finally:
        gc.unfreeze()


def _serve(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> web.Application:
    """``emban serve`` up to the point where it would run the app (returned instead)."""
    served: dict[str, web.Application] = {}

    def run_app(app: web.Application, **_: Any) -> None:
        served["app"] = app

    monkeypatch.setattr(web, "run_app", run_app)
    monkeypatch.setattr(logs, "configure_logging", lambda *_: None)  # the suite's logging stays
    monkeypatch.setenv("EMBAN_DATA_DIR", str(tmp_path))
    for name in ("EMBAN_DATABASE_URL", "EMBAN_CLICKHOUSE_URL", "EMBAN_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    assert cli.cmd_serve(argparse.Namespace(host=None, port=None)) == 0
    return served["app"]


def test_serve_freezes_after_the_apps_own_startup(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    startup = list(_serve(monkeypatch, tmp_path).on_startup)
    # Last: after the resources (migrations, metadata, engine) the app opens on startup.
    assert startup[-1] is cli.freeze_startup_objects
    assert startup.count(cli.freeze_startup_objects) == 1


@pytest.mark.parametrize(("variable", "seconds"), [(None, 0.0005), ("2000", 0.002)])
def test_serve_sets_the_gil_switch_interval(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str | None, seconds: float
) -> None:
    before = sys.getswitchinterval()
    try:
        sys.setswitchinterval(0.005)  # Python's default, whatever an earlier test left
        if variable is None:
            monkeypatch.delenv("EMBAN_GIL_SWITCH_INTERVAL_US", raising=False)
        else:
            monkeypatch.setenv("EMBAN_GIL_SWITCH_INTERVAL_US", variable)
        _serve(monkeypatch, tmp_path)
        assert sys.getswitchinterval() == pytest.approx(seconds)
    finally:
        sys.setswitchinterval(before)

"""The ingest decode worker processes run where they cannot delay a request: at nice 10, and under
Linux's SCHED_IDLE with ``EMBAN_INGEST_DECODE_POLICY=idle`` (the default); the app starts its
pool with the setting's policy."""

from __future__ import annotations

import os
import threading

import pytest

from emban.analytics.decode_pool import DecodePool
from emban.runtime import Runtime
from emban.settings import Settings, SettingsError

pytestmark = pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux scheduling")


def _scheduling() -> tuple[int, int]:
    """The calling thread's policy and nice value."""
    return os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.mark.parametrize(("idle", "policy"), [(True, os.SCHED_IDLE), (False, os.SCHED_OTHER)])
async def test_decode_workers_run_under_sched_idle_only_when_asked(idle: bool, policy: int) -> None:
    pool = DecodePool(1, idle=idle)
    try:
        assert await pool.run(_scheduling) == (policy, 10)
    finally:
        pool.close()
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # the server's own threads are not touched


def test_the_setting_takes_idle_or_nice_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EMBAN_INGEST_DECODE_POLICY", raising=False)
    assert Settings.from_env().ingest_decode_policy == "idle"
    monkeypatch.setenv("EMBAN_INGEST_DECODE_POLICY", " Nice ")
    assert Settings.from_env().ingest_decode_policy == "nice"
    monkeypatch.setenv("EMBAN_INGEST_DECODE_POLICY", "realtime")
    with pytest.raises(SettingsError, match="EMBAN_INGEST_DECODE_POLICY must be idle or nice"):
        Settings.from_env()


def test_the_app_starts_its_decode_pool_with_the_settings_policy(runtime: Runtime) -> None:
    pool = runtime.ingest.decode_pool  # type: ignore[attr-defined]
    assert isinstance(pool, DecodePool)
    assert pool.idle is True  # the suite runs with the default

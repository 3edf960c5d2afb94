"""``emban.background_tasks``: the start/stop lifecycle the writer, recorder, bus, sockets and
in-process jobs share."""

from __future__ import annotations

import asyncio
import logging

import pytest

from emban.background_tasks import OwnedTask, TaskSet, every


async def test_owned_task_starts_once_and_stop_waits_for_its_end() -> None:
    started: list[int] = []
    ended: list[str] = []

    async def run() -> None:
        started.append(1)
        try:
            await asyncio.Event().wait()
        finally:
            ended.append("cancelled")

    owned = OwnedTask("emban-test")
    assert owned.running is False
    assert owned.start(run) is True
    assert owned.start(run) is False  # already running: no second task
    await asyncio.sleep(0)
    assert started == [1]
    assert owned.running is True
    await owned.stop()
    assert ended == ["cancelled"]
    assert owned.running is False
    await owned.stop()  # stopping twice is fine
    assert owned.start(run) is True  # and it can start again
    await asyncio.sleep(0)
    assert started == [1, 1]
    await owned.stop()


async def test_owned_task_restarts_after_its_task_ended() -> None:
    runs: list[int] = []

    async def run() -> None:
        runs.append(1)

    owned = OwnedTask("emban-test")
    assert owned.start(run) is True
    await asyncio.sleep(0)
    assert owned.running is False
    assert owned.start(run) is True
    await asyncio.sleep(0)
    assert runs == [1, 1]


async def test_task_set_keeps_tasks_until_they_end() -> None:
    tasks = TaskSet()
    gate = asyncio.Event()
    finished: list[int] = []

    async def job(n: int) -> None:
        await gate.wait()
        finished.append(n)

    tasks.spawn(job(1))
    tasks.spawn(job(2), name="emban-test-2")
    assert len(tasks) == 2
    assert await tasks.wait(grace=0.01) != set()  # both still waiting on the gate
    gate.set()
    assert await tasks.wait() == set()
    await asyncio.sleep(0)
    assert sorted(finished) == [1, 2]
    assert len(tasks) == 0


async def test_task_set_drain_waits_for_tasks_spawned_meanwhile() -> None:
    tasks = TaskSet()
    order: list[str] = []

    async def second() -> None:
        await asyncio.sleep(0.01)
        order.append("second")

    async def first() -> None:
        await asyncio.sleep(0.01)
        tasks.spawn(second())
        order.append("first")

    tasks.spawn(first())
    await tasks.drain()
    assert order == ["first", "second"]
    assert len(tasks) == 0


async def test_task_set_cancel_ends_every_task_and_wait_takes_failures() -> None:
    tasks = TaskSet()
    cancelled: list[int] = []

    async def forever(n: int) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(n)
            raise

    async def fails() -> None:
        raise RuntimeError("boom")

    for n in range(3):
        tasks.spawn(forever(n))
    await asyncio.sleep(0)
    await tasks.cancel()
    assert sorted(cancelled) == [0, 1, 2]
    await asyncio.sleep(0)
    assert len(tasks) == 0
    tasks.spawn(fails())
    assert await tasks.wait() == set()


async def test_release_current_uncounts_the_running_task_before_it_ends() -> None:
    tasks = TaskSet()
    seen: list[int] = []

    async def job() -> None:
        tasks.release_current()
        seen.append(len(tasks))

    tasks.spawn(job())
    await tasks.wait()
    assert seen == [0]


async def test_every_runs_each_period_and_logs_a_failed_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runs: list[int] = []
    fourth = asyncio.Event()

    async def action() -> None:
        runs.append(1)
        if len(runs) == 4:
            fourth.set()
        if len(runs) == 2:
            raise RuntimeError("second run fails")

    log = logging.getLogger("emban.test")
    task = asyncio.create_task(every(0.01, action, log, "job %s failed", "probe"))
    with caplog.at_level(logging.ERROR, logger="emban.test"):
        await asyncio.wait_for(fourth.wait(), timeout=5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [r.getMessage() for r in caplog.records if r.name == "emban.test"] == [
        "job probe failed"
    ]

"""The ingest worker processes: a body framed in a worker is the record the server would frame
itself, a body the worker does not accept is left to the server, a dead worker is replaced, and
a bulk drain chunk prepared in a worker is the one prepared in-process."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from emban.analytics.decode_pool import DecodePool
from emban.analytics.wal import WriteAheadLog, segment_path
from emban.analytics.wal_ingest import frame, prepare_chunk
from emban.services.events import decode_events_json, event_rows

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def body(count: int, *, ids: bool = True) -> bytes:
    return msgspec.json.encode(
        {
            "events": [
                {
                    "tenant_id": f"t{i % 3}",
                    "event_name": "api.call",
                    "timestamp": "2026-11-29T11:00:00Z",
                    **({"event_id": f"id-{i}"} if ids else {}),
                    "string_props": {"model": "m"},
                    "numeric_props": {"tokens": float(i)},
                }
                for i in range(count)
            ]
        }
    )


@pytest.fixture
async def pool() -> DecodePool:
    decode = DecodePool(1)
    yield decode  # type: ignore[misc]
    decode.close()


async def test_a_worker_frames_the_record_the_server_would(pool: DecodePool) -> None:
    raw = body(500)
    rows = event_rows(decode_events_json(raw, NOW), org_id="o", environment_id="e")
    assert await pool.prepare(raw, NOW, "o", "e") == (frame(rows, [False] * 500), 500)


async def test_generated_ids_are_framed_without_their_id(pool: DecodePool) -> None:
    prepared = await pool.prepare(body(3, ids=False), NOW, "o", "e")
    assert prepared is not None
    record, count = prepared
    org, env, rows = msgspec.msgpack.decode(record[8:])
    assert (org, env, count) == ("o", "e", 3)
    assert [row[2] for row in rows] == ["", "", ""]  # the ids are in the rows' lines only
    assert all(len(msgspec.json.decode(row[3])[5]) == 32 for row in rows)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"events": [{"tenant_id": "", "event_name": "x"}]}',
        b'{"events": [',
        b'{"events": [{"tenant_id": "t", "event_name": "x", "numeric_props": {"a": 1e999}}]}',
        b"\xff\xfe",
        b"[]",
    ],
)
async def test_a_body_the_worker_does_not_accept_is_left_to_the_server(
    pool: DecodePool, raw: bytes
) -> None:
    assert await pool.prepare(raw, NOW, "o", "e") is None


async def test_a_dead_worker_is_replaced(pool: DecodePool) -> None:
    assert await pool.prepare(body(10), NOW, "o", "e") is not None
    assert pool._executor is not None
    for pid in list(pool._executor._processes):  # type: ignore[union-attr]
        os.kill(pid, signal.SIGKILL)
    # The call that finds the pool broken is answered None (the server decodes it), or by a
    # replacement if the executor noticed the death first; the next one has a new worker.
    first = await pool.prepare(body(10), NOW, "o", "e")
    assert first is None or first[1] == 10
    assert (await pool.prepare(body(10), NOW, "o", "e") or (b"", 0))[1] == 10


async def test_a_chunk_prepared_in_a_worker_is_the_one_prepared_here(
    pool: DecodePool, tmp_path: Path
) -> None:
    wal = WriteAheadLog(tmp_path / "wal")
    for n in range(3):
        rows = event_rows(decode_events_json(body(400), NOW), org_id=f"o{n}", environment_id="e")
        wal.append([frame(rows, [n == 1] * 400)])
    seq = wal.seal()
    assert seq is not None
    path = segment_path(tmp_path / "wal", seq)
    here = prepare_chunk(path, 0, 1_000)
    assert here is not None
    assert await pool.run(prepare_chunk, path, 0, 1_000) == here
    assert [rows for _, rows in here.records] == [400, 400, 400]
    assert set(here.scopes) == {("o0", "e"), ("o2", "e")}  # o1's ids were generated
    assert here.fresh.rows == 1_200 and here.fresh.stored == {"o0": 400, "o1": 400, "o2": 400}
    assert await pool.run(prepare_chunk, path, here.end, 1_000) is None
    wal.close()


HOLDER = """
import asyncio, sys
from datetime import UTC, datetime
from emban.analytics.decode_pool import DecodePool

async def main() -> None:
    pool = DecodePool(1)
    body = b'{"events": [{"tenant_id": "t", "event_name": "e"}]}'
    assert await pool.prepare(body, datetime.now(UTC), "o", "e") is not None
    print(*pool._executor._processes, flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


async def test_a_worker_exits_when_the_server_is_killed(tmp_path: Path) -> None:
    """A server killed with SIGKILL (the durability test does it) leaves no worker behind."""
    holder = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        HOLDER,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert holder.stdout is not None
    line = await asyncio.wait_for(holder.stdout.readline(), timeout=60)
    (worker,) = (int(pid) for pid in line.split())
    holder.kill()
    await holder.wait()
    for _ in range(100):  # it looks once a second
        if not _alive(worker):
            break
        await asyncio.sleep(0.1)
    assert not _alive(worker)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return status != "Z"  # a zombie has exited (its new parent reaps it)

"""What Python's GIL switch interval adds to an event loop's trip through a worker thread.

    .venv/bin/python -m bench.gil_switch [--trips 400] [--intervals-us 5000,500]

Every engine query, WAL append and SQLite call of `emban serve` is a trip from the event loop to
a worker thread and back. When another thread is running Python code (a drain's chunk, a live
refresh reading its answer, a metadata write), the thread that wants the GIL waits a whole
switch interval before the holder is asked to let go: twice per trip, once on the way out and
once on the way back. This prints the trip's p50/p95 with no other thread, then with one thread
running Python code at nice 10 (as `emban serve`'s background threads do), for each interval:
Python's default (5000 µs) and `EMBAN_GIL_SWITCH_INTERVAL_US`'s (500 µs). Not pass/fail.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import threading
import time

from emban.analytics.background import BACKGROUND_NICE


def _python_work(stop: threading.Event) -> None:
    """Pure Python arithmetic (holds the GIL but for the forced switches), at the nice value of
    `emban serve`'s background threads."""
    setpriority = getattr(os, "setpriority", None)
    if setpriority is not None:
        setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)
    total = 0
    while not stop.is_set():
        for i in range(1_000):
            total += i * i


def _nothing() -> None:
    return None


async def _trips(count: int) -> list[float]:
    """``count`` loop → thread → loop trips, 2 ms apart; milliseconds each."""
    times: list[float] = []
    for _ in range(count):
        started = time.perf_counter()
        await asyncio.to_thread(_nothing)
        times.append((time.perf_counter() - started) * 1_000)
        await asyncio.sleep(0.002)
    return times


def _p95(values: list[float]) -> float:
    return sorted(values)[int(len(values) * 0.95)]


def measure(interval_us: int, trips: int, busy: bool) -> list[float]:
    before = sys.getswitchinterval()
    sys.setswitchinterval(interval_us / 1_000_000)
    stop = threading.Event()
    worker = threading.Thread(target=_python_work, args=(stop,)) if busy else None
    try:
        if worker is not None:
            worker.start()
        return asyncio.run(_trips(trips))
    finally:
        stop.set()
        if worker is not None:
            worker.join()
        sys.setswitchinterval(before)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trips", type=int, default=400)
    parser.add_argument("--intervals-us", default="5000,500")
    args = parser.parse_args()
    intervals = [int(value) for value in args.intervals_us.split(",")]
    print(f"{'switch interval':<18} {'other thread':<26} {'trip p50 (ms)':>13} {'p95':>7}")
    for interval in intervals:
        for busy in (False, True):
            times = measure(interval, args.trips, busy)
            other = "running Python, nice 10" if busy else "none"
            print(
                f"{interval:>8} µs         {other:<26} {statistics.median(times):>13.2f} "
                f"{_p95(times):>7.2f}"
            )


if __name__ == "__main__":
    main()

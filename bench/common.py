"""Shared bench plumbing: run `emban serve` in a subprocess on a temp data dir, read its RSS."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve(data_dir: Path, port: int, log: Any = None) -> Iterator[subprocess.Popen[bytes]]:
    # Enterprise: the bench sends more events than a free plan's monthly limit.
    env = {**os.environ, "EMBAN_DATA_DIR": str(data_dir), "EMBAN_DEFAULT_PLAN": "enterprise"}
    for name in ("EMBAN_DATABASE_URL", "EMBAN_CLICKHOUSE_URL", "EMBAN_REDIS_URL"):
        env.pop(name, None)
    exe = Path(sys.executable).parent / "emban"
    proc = subprocess.Popen(
        [str(exe), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log if log is not None else subprocess.DEVNULL,
    )
    try:
        import urllib.request

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                    break
            except OSError:
                time.sleep(0.2)
        else:
            raise RuntimeError("emban serve did not become healthy")
        yield proc
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000.0


def p95_ms(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))] * 1000.0

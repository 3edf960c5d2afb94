"""Probes: scripts a test runs in a process of its own (``python -m tests.<probe> DATA_DIR``), on
the embedded defaults rather than the suite's PostgreSQL, each printing its outcome as one JSON
line last."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def run_probe(module: str, data_dir: Path, *, timeout: float) -> Any:
    """Run ``python -m module data_dir`` without the caller's ``EMBAN_`` settings; its last line
    of output, decoded."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMBAN_")}
    env["PYTHONPATH"] = str(ROOT)
    run = subprocess.run(
        [sys.executable, "-m", module, str(data_dir)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])

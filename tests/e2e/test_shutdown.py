"""SIGTERM with live sockets open: the sockets are closed (1001 server_shutdown) and the process
exits at once (issue 12: it stayed up with one embedLive socket open)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import aiohttp

from tests.conftest import EMBAN, free_port
from tests.live.test_live_two_processes import SUBSCRIPTION, _published_session


async def test_sigterm_closes_live_sockets_and_exits(tmp_path: Path) -> None:
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        "EMBAN_DATA_DIR": str(tmp_path / "data"),
        "EMBAN_DEFAULT_PLAN": "pro",
    }
    process = await asyncio.create_subprocess_exec(
        str(EMBAN),
        "serve",
        "--port",
        str(port),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            deadline = time.monotonic() + 60
            while True:
                try:
                    async with http.get(f"{url}/healthz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    pass
                assert time.monotonic() < deadline, "emban serve did not start"
                await asyncio.sleep(0.1)
            _, _, token = await _published_session(http, url)
            ws = await http.ws_connect(f"{url}/graphql", protocols=["graphql-transport-ws"])
            await ws.send_json({"type": "connection_init", "payload": {"token": token}})
            assert (await ws.receive_json(timeout=5))["type"] == "connection_ack"
            await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIPTION}})
            assert (await ws.receive_json(timeout=5))["type"] == "next"
            process.send_signal(signal.SIGTERM)
            while True:
                message = await ws.receive(timeout=10)
                if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                    break
            assert (ws.close_code, message.extra) == (1001, "server_shutdown")
            # Exits by itself (a hang would run into this wait, not the 10 s shutdown timeout).
            await asyncio.wait_for(process.wait(), timeout=8)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0

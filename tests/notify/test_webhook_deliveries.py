"""Webhook deliveries against a local receiver: signatures, retries with the same delivery id,
final failures, redirects, SSRF refusal at delivery, and secret rotation."""

from __future__ import annotations

import dataclasses
import ipaddress
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from emban.jobs.deliveries import MAX_ATTEMPTS, retry_delay
from emban.jobs.inprocess import InProcessJobs
from emban.models import Delivery, WebhookSecret
from emban.notify import signing
from emban.runtime import Runtime
from emban.services import webhooks
from tests.conftest import ClientFactory, register


@dataclass
class Receiver:
    statuses: list[int]  # answered in order; the last one repeats
    seen: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append((dict(request.headers), await request.read()))
        status = self.statuses[min(len(self.seen) - 1, len(self.statuses) - 1)]
        if 300 <= status < 400:
            return web.Response(status=status, headers={"Location": "http://127.0.0.1:9/x"})
        return web.Response(status=status, text=f"answer {len(self.seen)} " + "z" * 600)


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    rec = Receiver(statuses=[200])
    app = web.Application()
    app.router.add_post("/hook", rec.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield rec, str(server.make_url("/hook"))
    await server.close()


@pytest.fixture
async def org_id(make_client: ClientFactory) -> str:
    client = await make_client()
    body = await register(client)
    org: str = body["org"]["id"]
    return org


def _jobs(runtime: Runtime, *, allow: tuple[str, ...] = ("127.0.0.1",)) -> InProcessJobs:
    settings = dataclasses.replace(
        runtime.settings, webhook_allow_hosts=allow, webhook_retry_base_seconds=0.01
    )
    return InProcessJobs({"settings": settings})


async def _deliver(runtime: Runtime, org_id: str, url: str, **kw: str) -> Delivery:
    delivery = await webhooks.create_delivery(
        org_id=org_id,
        channel="webhook",
        event_type="alert.fired",
        target=url,
        tenant_id="t1",
        payload=b'{"type":"alert.fired","tenant_id":"t1"}',
    )
    jobs = _jobs(runtime, **kw)  # type: ignore[arg-type]
    await jobs.enqueue("deliver_webhook", str(delivery.id))
    await jobs.drain()
    return await Delivery.get(id=delivery.id)


async def test_retried_until_success_with_the_same_delivery_id(
    runtime: Runtime, org_id: str, receiver: tuple[Receiver, str]
) -> None:
    rec, url = receiver
    rec.statuses = [503, 429, 408, 200]
    done = await _deliver(runtime, org_id, url)
    assert (done.status, done.attempts, done.status_code, done.error) == ("succeeded", 4, 200, None)
    assert done.response_excerpt == ("answer 4 " + "z" * 600)[:512]
    assert len(rec.seen) == 4
    ids = {h["Emban-Delivery"] for h, _ in rec.seen}
    assert ids == {done.uid}
    secret = await webhooks.current_secret(org_id)
    for headers, body in rec.seen:
        assert body == b'{"type":"alert.fired","tenant_id":"t1"}'
        assert headers["Emban-Event"] == "alert.fired"
        assert headers["Content-Type"] == "application/json"
        assert signing.verify(secret, headers["Emban-Signature"], body)
        assert not signing.verify("whsec_other", headers["Emban-Signature"], body)


async def test_gives_up_after_five_attempts(
    runtime: Runtime, org_id: str, receiver: tuple[Receiver, str]
) -> None:
    rec, url = receiver
    rec.statuses = [500]
    done = await _deliver(runtime, org_id, url)
    assert (done.status, done.attempts, done.status_code, done.error) == (
        "failed",
        MAX_ATTEMPTS,
        500,
        "HTTP 500",
    )
    assert len(rec.seen) == 5
    assert [retry_delay(10, n) for n in (1, 2, 3, 4)] == [10, 20, 40, 80]


@pytest.mark.parametrize(
    ("status", "error"),
    [(400, "HTTP 400"), (404, "HTTP 404"), (410, "HTTP 410"), (302, "redirects are not followed")],
)
async def test_final_statuses_are_not_retried(
    runtime: Runtime, org_id: str, receiver: tuple[Receiver, str], status: int, error: str
) -> None:
    rec, url = receiver
    rec.statuses = [status, 200]
    done = await _deliver(runtime, org_id, url)
    assert (done.status, done.attempts, done.status_code, done.error) == (
        "failed",
        1,
        status,
        error,
    )
    assert len(rec.seen) == 1  # the redirect target was not followed either


def _loopback_name() -> str:
    """A host name other than localhost that resolves only to loopback here (the machine's own
    name, or another /etc/hosts entry): what an attacker's DNS name pointing at 127.0.0.1 is."""
    candidates = [socket.gethostname()]
    with open("/etc/hosts") as hosts:
        for line in hosts:
            parts = line.split("#")[0].split()
            if parts and parts[0].startswith("127."):
                candidates += parts[1:]
    for name in candidates:
        if name.lower().rstrip(".") == "localhost" or name.lower().endswith(".localhost"):
            continue
        try:
            infos = socket.getaddrinfo(name, 80, proto=socket.IPPROTO_TCP)
        except OSError:
            continue
        if infos and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos):
            return name
    raise AssertionError("no host name resolving to loopback on this machine")


async def test_loopback_refused_at_delivery_without_the_allow_list(
    runtime: Runtime, org_id: str, receiver: tuple[Receiver, str]
) -> None:
    rec, url = receiver
    by_name = url.replace("127.0.0.1", "localhost")
    done = await _deliver(runtime, org_id, by_name, allow=())
    assert (done.status, done.attempts, done.status_code) == ("failed", 1, None)
    assert done.error is not None and "loopback" in done.error
    # A name the save-time check cannot judge, resolving to loopback: refused at connect time.
    name = _loopback_name()
    by_other_name = await _deliver(runtime, org_id, url.replace("127.0.0.1", name), allow=())
    assert (by_other_name.status, by_other_name.attempts) == ("failed", 1)
    assert by_other_name.error == (
        f"refused: {name} resolves only to private or reserved addresses"
    )
    # A non-canonical address form is never connected to, and not retried.
    dotted = await _deliver(runtime, org_id, url.replace("127.0.0.1", "127.0.0.1."), allow=())
    assert (dotted.status, dotted.attempts) == ("failed", 1)
    literal = await _deliver(runtime, org_id, url, allow=())
    assert literal.status == "failed" and literal.error is not None
    assert "refused" in literal.error
    assert rec.seen == []


async def test_connection_refused_is_retried(runtime: Runtime, org_id: str) -> None:
    done = await _deliver(runtime, org_id, "http://127.0.0.1:9/hook")
    assert (done.status, done.attempts, done.status_code) == ("failed", MAX_ATTEMPTS, None)
    assert done.error


async def test_rotation_signs_with_both_for_a_day(
    runtime: Runtime, org_id: str, receiver: tuple[Receiver, str]
) -> None:
    rec, url = receiver
    old = await webhooks.current_secret(org_id)
    new, _ = await webhooks.rotate(org_id)
    assert new != old
    assert await webhooks.signing_secrets(org_id) == [new, old]
    await _deliver(runtime, org_id, url)
    headers, body = rec.seen[-1]
    assert headers["Emban-Signature"].count("v1=") == 2
    assert signing.verify(old, headers["Emban-Signature"], body)
    assert signing.verify(new, headers["Emban-Signature"], body)
    await WebhookSecret.filter(org_id=org_id).update(
        rotated_at=datetime.now(UTC) - timedelta(hours=24, seconds=1)
    )
    assert await webhooks.signing_secrets(org_id) == [new]

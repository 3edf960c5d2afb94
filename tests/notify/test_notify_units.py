"""Alerts, reports and webhooks building blocks: SSRF guard, signatures, cron, conditions, mail."""

from __future__ import annotations

import asyncio
import ipaddress
import math
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import Message

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Sink
from hypothesis import given
from hypothesis import strategies as st

from emban.notify import signing
from emban.notify.email import Attachment, BadSmtpUrl, SmtpConfig, build_message, escape, send
from emban.notify.ssrf import UnsafeURL, VettedResolver, check_url, refused_address
from emban.schedules import BadSchedule, check_cron, next_run, parse_zone
from emban.services.alert_conditions import (
    AlertState,
    ConditionType,
    EventKind,
    Measure,
    Operator,
    fires,
    lookback_minutes,
    percent_change,
    step,
    value_of,
)
from tests.conftest import free_port

REFUSED = [
    "http://127.0.0.1/",
    "http://127.1/",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0177.0.0.1/",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:10.0.0.1]/",
    "http://[::127.0.0.1]/",
    "http://10.0.0.1/",
    "http://172.16.5.4/",
    "http://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://100.64.0.1/",
    "http://224.0.0.1/",
    "http://0.0.0.0/",
    "http://[::]/",
    "http://[fc00::1]/",
    "http://[fd12:3456::1]/",
    "http://[fe80::1]/",
    "http://[ff02::1]/",
    "http://[2002:7f00:1::]/",
    "http://[64:ff9b::7f00:1]/",
    "http://240.0.0.1/",
    "http://255.255.255.255/",
    "http://localhost/",
    "http://LOCALHOST./",
    "http://a.localhost/",
    "https://user:pw@example.com/",
    "https://user@example.com/",
    "ftp://example.com/",
    "file:///etc/passwd",
    "gopher://example.com/",
    "javascript:alert(1)",
    "http:///nohost",
    "not a url",
    "https://example.com/#frag",
]


@pytest.mark.parametrize("url", REFUSED)
def test_refused_urls(url: str) -> None:
    with pytest.raises(UnsafeURL):
        check_url(url)


@pytest.mark.parametrize(
    "url", ["https://example.com/hook", "http://8.8.8.8:8080/x?y=1", "https://[2606:4700::1]/h"]
)
def test_public_urls_pass(url: str) -> None:
    assert str(check_url(url)) == url


def test_allow_hosts_exempt_names_and_literals() -> None:
    assert (
        str(check_url("http://127.0.0.1:9/x", allow_hosts=["127.0.0.1"])) == "http://127.0.0.1:9/x"
    )
    assert check_url("http://localhost:9/", allow_hosts=["LocalHost"]).host == "localhost"
    with pytest.raises(UnsafeURL):
        check_url("http://127.0.0.2/", allow_hosts=["127.0.0.1"])


@given(st.ip_addresses(v=4))
def test_ipv4_mapped_forms_judged_like_ipv4(address: ipaddress.IPv4Address) -> None:
    mapped = ipaddress.IPv6Address(f"::ffff:{address}")
    assert refused_address(mapped) is refused_address(address)
    # Everything Python does not call global is refused (the list refuses a few more ranges).
    if not address.is_global or address.is_multicast:
        assert refused_address(address)
    if address.is_global and not any(
        address in ipaddress.ip_network(n)
        for n in ("192.0.0.0/24", "192.88.99.0/24", "224.0.0.0/4", "100.64.0.0/10")
    ):
        assert not refused_address(address)


async def test_resolver_drops_loopback_for_a_name() -> None:
    resolver = VettedResolver()
    try:
        with pytest.raises(OSError, match="refused: localhost"):
            await resolver.resolve("localhost", 80)
    finally:
        await resolver.close()
    allowed = VettedResolver(["localhost"])
    try:
        hosts = {r["host"] for r in await allowed.resolve("localhost", 80)}
        assert hosts & {"127.0.0.1", "::1"}
    finally:
        await allowed.close()


def test_signature_matches_the_documented_formula() -> None:
    body = b'{"type":"alert.fired"}'
    value = signing.header(["whsec_a"], body, timestamp=1700000000)
    # HMAC-SHA256("whsec_a", "1700000000." + body), computed independently:
    import hashlib
    import hmac

    expected = hmac.new(b"whsec_a", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert value == f"t=1700000000,v1={expected}"
    assert signing.verify("whsec_a", value, body, now=1700000010)
    assert not signing.verify("whsec_a", value, body + b" ", now=1700000010)
    assert not signing.verify("whsec_b", value, body, now=1700000010)
    assert not signing.verify("whsec_a", value, body, now=1700000000 + 301)


def test_rotation_signs_with_both_secrets() -> None:
    value = signing.header(["whsec_new", "whsec_old"], b"x", timestamp=5)
    assert value.count("v1=") == 2
    assert signing.verify("whsec_new", value, b"x", now=5)
    assert signing.verify("whsec_old", value, b"x", now=5)
    assert signing.new_secret().startswith("whsec_")
    assert signing.new_secret() != signing.new_secret()


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expr", "zone", "after", "expected"),
    [
        # Monday 09:00 Paris: CET (+1) before 29 March 2026, CEST (+2) after.
        ("0 9 * * 1", "Europe/Paris", _utc(2026, 3, 20), _utc(2026, 3, 23, 8)),
        ("0 9 * * 1", "Europe/Paris", _utc(2026, 3, 27), _utc(2026, 3, 30, 7)),
        # Spring forward in New York (8 March 2026, 02:00 → 03:00): 02:30 does not exist,
        # runs at the end of the gap, 03:00 EDT = 07:00 UTC; the next day at 02:30 EDT.
        ("30 2 * * *", "America/New_York", _utc(2026, 3, 8, 0), _utc(2026, 3, 8, 7)),
        ("30 2 * * *", "America/New_York", _utc(2026, 3, 8, 7), _utc(2026, 3, 9, 6, 30)),
        # Fall back (1 November 2026, 02:00 EDT → 01:00 EST): 01:30 happens twice, runs once.
        ("30 1 * * *", "America/New_York", _utc(2026, 11, 1, 4), _utc(2026, 11, 1, 5, 30)),
        ("30 1 * * *", "America/New_York", _utc(2026, 11, 1, 5, 30), _utc(2026, 11, 2, 6, 30)),
        ("30 1 * * *", "America/New_York", _utc(2026, 11, 1, 6, 10), _utc(2026, 11, 2, 6, 30)),
        ("*/15 * * * *", "UTC", _utc(2026, 1, 1, 0, 0), _utc(2026, 1, 1, 0, 15)),
        ("0 0 1 1 *", "Asia/Tokyo", _utc(2026, 6, 1), _utc(2026, 12, 31, 15)),
    ],
)
def test_next_run(expr: str, zone: str, after: datetime, expected: datetime) -> None:
    assert next_run(expr, zone, after) == expected


@pytest.mark.parametrize(
    "expr", ["", "0 9 * *", "* * * * * *", "@daily", "61 * * * *", "a b c d e", "0 0 31 2 *"]
)
def test_bad_cron(expr: str) -> None:
    with pytest.raises(BadSchedule):
        check_cron(expr)


@pytest.mark.parametrize("zone", ["", "Mars/Olympus", "../etc/passwd", "/etc/localtime", "x" * 99])
def test_bad_zone(zone: str) -> None:
    with pytest.raises(BadSchedule):
        parse_zone(zone)


def test_cron_normalizes_spaces() -> None:
    assert check_cron("  0   9 * *  1 ") == "0 9 * * 1"


def test_percent_change_edges() -> None:
    assert percent_change(0, 0) == 0.0
    assert percent_change(5, 0) == math.inf
    assert percent_change(-5, 0) == -math.inf
    assert percent_change(150, 100) == 50.0
    assert percent_change(50, -100) == 150.0
    assert percent_change(25, 100) == -75.0


def test_conditions_exact() -> None:
    m = Measure(current=12, previous=8, matching_events=3)
    assert value_of(ConditionType.threshold, m) == 12
    assert value_of(ConditionType.delta, m) == 50.0
    assert value_of(ConditionType.no_data, m) == 3
    assert fires(ConditionType.threshold, Operator.gt, 10, m)
    assert not fires(ConditionType.threshold, Operator.gt, 12, m)
    assert fires(ConditionType.threshold, Operator.gte, 12, m)
    assert fires(ConditionType.threshold, Operator.eq, 12, m)
    assert fires(ConditionType.threshold, Operator.lt, 12.5, m)
    assert not fires(ConditionType.threshold, Operator.lte, 11.9, m)
    assert fires(ConditionType.delta, Operator.gte, 50, m)
    assert not fires(ConditionType.delta, Operator.gt, 50, m)
    assert fires(ConditionType.delta, Operator.gt, 1e300, Measure(current=1, previous=0))
    assert not fires(ConditionType.no_data, Operator.gt, 0, m)
    assert fires(ConditionType.no_data, Operator.gt, 0, Measure(current=0, matching_events=0))
    assert lookback_minutes(None) == 60
    assert lookback_minutes(0) == 60
    assert lookback_minutes(-5) == 60
    assert lookback_minutes(15) == 15


def test_state_machine() -> None:
    ok, firing, error = AlertState.ok, AlertState.firing, AlertState.error
    assert step(ok, True) == (firing, EventKind.fired)
    assert step(firing, True) == (firing, None)
    assert step(firing, False) == (ok, EventKind.resolved)
    assert step(ok, False) == (ok, None)
    assert step(ok, None) == (error, EventKind.error)
    assert step(firing, None) == (error, EventKind.error)
    assert step(error, None) == (error, None)
    assert step(error, False) == (ok, None)
    assert step(error, True) == (firing, EventKind.fired)


@given(st.lists(st.sampled_from([True, False, None]), max_size=40))
def test_state_machine_notifies_once_per_change(outcomes: list[bool | None]) -> None:
    state = AlertState.ok
    for outcome in outcomes:
        before = state
        state, event = step(state, outcome)
        if event is EventKind.fired:
            assert before is not AlertState.firing and outcome is True
        if event is EventKind.resolved:
            assert before is AlertState.firing and outcome is False
        if event is EventKind.error:
            assert before is not AlertState.error and outcome is None
        if event is None:
            assert (before, outcome) in {
                (AlertState.firing, True),
                (AlertState.ok, False),
                (AlertState.error, None),
                (AlertState.error, False),
            }


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://mail.example.com", SmtpConfig("mail.example.com", 25, None, None, False, False)),
        (
            "smtp://u%40x:p%3Aw@h:2525?starttls=true",
            SmtpConfig("h", 2525, "u@x", "p:w", False, True),
        ),
        ("smtps://u:p@h", SmtpConfig("h", 465, "u", "p", True, False)),
        ("smtp://h?starttls=1", SmtpConfig("h", 587, None, None, False, True)),
    ],
)
def test_smtp_url(url: str, expected: SmtpConfig) -> None:
    assert SmtpConfig.parse(url) == expected


@pytest.mark.parametrize(
    "url", ["http://h", "smtp://", "smtp://h:99999", "smtps://h?starttls=true", "h:25"]
)
def test_bad_smtp_url(url: str) -> None:
    with pytest.raises(BadSmtpUrl, match="EMBAN_SMTP_URL"):
        SmtpConfig.parse(url)


class _Capture(Sink):
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        content = envelope.content  # type: ignore[attr-defined]
        self.messages.append(message_from_bytes(content))
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))  # type: ignore[attr-defined]
        return "250 OK"


async def test_send_text_html_and_attachment_to_a_real_smtp_server() -> None:
    handler = _Capture()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        title = '<script>alert("x")</script> & Co'
        message = build_message(
            sender="reports@emban.test",
            to=["a@example.com", "b@example.com"],
            subject=f"Report: {title}\r\nBcc: evil@example.com",
            text=f"Dashboard {title}",
            html_body=f"<p>Dashboard <b>{escape(title)}</b></p>",
            attachments=[Attachment("w1.csv", b"day,count\n2026-01-01,3\n", "text/csv")],
        )
        await send(SmtpConfig.parse(f"smtp://127.0.0.1:{port}"), message)
        await asyncio.sleep(0)
    finally:
        controller.stop()
    assert handler.envelopes == [("reports@emban.test", ["a@example.com", "b@example.com"])]
    got = handler.messages[0]
    assert got["Subject"] == f"Report: {title} Bcc: evil@example.com"
    assert got["Bcc"] is None
    parts = {p.get_content_type(): p for p in got.walk()}
    assert parts["text/plain"].get_payload(decode=True).decode().strip() == f"Dashboard {title}"
    html_text = parts["text/html"].get_payload(decode=True).decode()
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Co" in html_text
    assert "<script>" not in html_text
    csv = parts["text/csv"]
    assert csv.get_filename() == "w1.csv"
    assert csv.get_payload(decode=True) == b"day,count\n2026-01-01,3\n"

"""``services/subscriptions.py`` directly: what each notification type does to the org's plan and
billing account, audited with Paddle as the actor; ``billing/paddle.py``'s signature check."""

from __future__ import annotations

import msgspec
import pytest
from aiohttp.test_utils import TestServer

from emban.billing import paddle
from emban.models import AuditLog, BillingAccount, BillingEvent, Org
from emban.services import subscriptions
from emban.services.boundary import transaction
from emban.settings import Settings
from tests.paddle_server import NOTIFICATION_KEY, configured, notification, subscription

AT = "2026-11-29T10:00:0{}Z"


@pytest.fixture
def paid(settings: Settings) -> Settings:
    return configured(settings, "http://127.0.0.1:9")


async def _apply(settings: Settings, body: bytes) -> str:
    async with transaction():
        return await subscriptions.apply_notification(settings, paddle.parse_notification(body))


async def _plan(org_id: str) -> str:
    return (await Org.get(id=org_id)).plan


async def test_paused_then_resumed(app_server: TestServer, paid: Settings) -> None:
    org = await Org.create(id="org_pause", name="P")
    steps = [
        ("subscription.created", "active", "pro"),
        ("subscription.paused", "paused", "free"),
        ("subscription.resumed", "active", "pro"),
        ("subscription.updated", "trialing", "pro"),
    ]
    for n, (kind, status, plan) in enumerate(steps):
        body = notification(
            f"evt_{n}", kind, subscription(org.id, status=status, price="pri_pro"), AT.format(n)
        )
        assert await _apply(paid, body) == "applied"
        assert await _plan(org.id) == plan, kind
    account = await BillingAccount.get(org_id=org.id)
    assert (account.status, account.subscription_id, account.customer_id) == (
        "trialing",
        "sub_01",
        "ctm_01",
    )
    rows = (
        await AuditLog.filter(org_id=org.id)
        .order_by("id")
        .values_list("actor_type", "actor_label", "action", "metadata")
    )
    assert [(r[0], r[1], r[2], r[3]["from"], r[3]["to"]) for r in rows] == [
        ("paddle", "evt_0", "org.set_plan", "free", "pro"),
        ("paddle", "evt_1", "org.set_plan", "pro", "free"),
        ("paddle", "evt_2", "org.set_plan", "free", "pro"),
    ]


async def test_an_unknown_price_keeps_the_plan(app_server: TestServer, paid: Settings) -> None:
    org = await Org.create(id="org_price", name="P", plan="starter")
    body = notification("evt_x", "subscription.updated", subscription(org.id, price="pri_other"))
    assert await _apply(paid, body) == "applied"
    assert await _plan(org.id) == "starter"
    assert await AuditLog.filter(org_id=org.id).count() == 0


async def test_the_highest_configured_plan_wins(paid: Settings) -> None:
    assert subscriptions.plan_for_prices(paid, ["pri_starter", "pri_pro", "pri_x"]) == "pro"
    assert subscriptions.plan_for_prices(paid, ["pri_enterprise", "pri_starter"]) == "enterprise"
    assert subscriptions.plan_for_prices(paid, ["pri_x"]) is None
    assert subscriptions.plan_for_prices(paid, []) is None


async def test_transaction_completed(app_server: TestServer, paid: Settings) -> None:
    org = await Org.create(id="org_txn", name="T")
    completed = {
        "id": "txn_01",
        "status": "completed",
        "customer_id": "ctm_t",
        "subscription_id": "sub_t",
        "items": [{"price": {"id": "pri_starter"}, "quantity": 1}],
        "custom_data": {"org_id": org.id},
    }
    assert await _apply(paid, notification("evt_t1", "transaction.completed", completed)) == (
        "applied"
    )
    account = await BillingAccount.get(org_id=org.id)
    assert (account.customer_id, account.subscription_id, account.status) == (
        "ctm_t",
        "sub_t",
        "active",
    )
    assert await _plan(org.id) == "starter"
    # A canceled subscription is not revived by a late payment of it.
    canceled = notification(
        "evt_t2",
        "subscription.canceled",
        subscription(org.id, status="canceled", sub_id="sub_t", customer_id="ctm_t"),
        "2026-11-29T11:00:00Z",
    )
    assert await _apply(paid, canceled) == "applied"
    late = notification("evt_t3", "transaction.completed", completed, "2026-11-29T12:00:00Z")
    assert await _apply(paid, late) == "applied"
    assert await _plan(org.id) == "free"


async def test_a_duplicate_raises_and_leaves_one_row(
    app_server: TestServer, paid: Settings
) -> None:
    org = await Org.create(id="org_dup", name="D")
    body = notification("evt_d", "subscription.created", subscription(org.id, price="pri_pro"))
    assert await _apply(paid, body) == "applied"
    with pytest.raises(subscriptions.DuplicateEvent):
        await _apply(paid, body)
    assert await BillingEvent.filter(event_id="evt_d").values_list("outcome", "org_id") == [
        ("applied", org.id)
    ]


def test_a_notification_missing_its_id_is_refused() -> None:
    with pytest.raises(paddle.BadNotification, match="not a Paddle notification"):
        paddle.parse_notification(msgspec.json.encode({"event_type": "x", "data": {}}))
    too_long = notification("evt_" + "x" * 61, "subscription.created", {})
    with pytest.raises(paddle.BadNotification, match="length <= 64"):
        paddle.parse_notification(too_long)
    with pytest.raises(paddle.BadNotification, match="malformed JSON"):
        paddle.parse_notification(b"{not json")


@pytest.mark.parametrize(
    ("header", "now", "message"),
    [
        (None, 1000, "missing Paddle-Signature header"),
        ("", 1000, "missing Paddle-Signature header"),
        ("h1=abc", 1000, "malformed Paddle-Signature header"),
        ("ts=-5;h1=abc", 1000, "malformed Paddle-Signature header"),
        ("ts=1000;h1=" + "0" * 64, 1000, "Paddle-Signature does not match the body"),
        (paddle.signature_header(NOTIFICATION_KEY, b"{}", 994), 1000, "too far from now"),
        (paddle.signature_header(NOTIFICATION_KEY, b"{}", 1006), 1000, "too far from now"),
    ],
)
def test_signature_refusals(header: str | None, now: int, message: str) -> None:
    with pytest.raises(paddle.BadSignature, match=message):
        paddle.verify_signature(NOTIFICATION_KEY, header, b"{}", now=now)


@pytest.mark.parametrize("ts", [995, 1000, 1005])
def test_signature_within_five_seconds_passes(ts: int) -> None:
    header = paddle.signature_header(NOTIFICATION_KEY, b"{}", ts)
    paddle.verify_signature(NOTIFICATION_KEY, header, b"{}", now=1000)
    # The same header with a second, unrelated h1 first (secret rotation) still passes.
    rotated = header.replace(";h1=", ";h1=" + "f" * 64 + ";h1=")
    paddle.verify_signature(NOTIFICATION_KEY, rotated, b"{}", now=1000)


async def test_one_customer_paying_for_two_orgs(app_server: TestServer, paid: Settings) -> None:
    """Paddle keeps one customer per e-mail: an admin of two orgs pays for both with it."""
    first = await Org.create(id="org_one", name="One")
    second = await Org.create(id="org_two", name="Two")
    for n, (org, sub_id, price) in enumerate(
        [(first, "sub_a", "pri_starter"), (second, "sub_b", "pri_pro")]
    ):
        body = notification(
            f"evt_s{n}",
            "subscription.created",
            subscription(org.id, sub_id=sub_id, price=price, customer_id="ctm_same"),
        )
        assert await _apply(paid, body) == "applied"
    assert (await _plan(first.id), await _plan(second.id)) == ("starter", "pro")
    # Without custom_data, the subscription id names the org...
    cancel = notification(
        "evt_s2",
        "subscription.canceled",
        subscription(None, status="canceled", sub_id="sub_b", customer_id="ctm_same"),
        "2026-11-29T11:00:00Z",
    )
    assert await _apply(paid, cancel) == "applied"
    assert (await _plan(first.id), await _plan(second.id)) == ("starter", "free")
    # ...and a customer id shared by two orgs names none.
    unknown_sub = notification(
        "evt_s3",
        "subscription.updated",
        subscription(None, sub_id="sub_c", customer_id="ctm_same", price="pri_enterprise"),
    )
    assert await _apply(paid, unknown_sub) == "no_org"
    assert (await _plan(first.id), await _plan(second.id)) == ("starter", "free")

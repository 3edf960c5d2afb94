"""Alert evaluation end to end on chDB: exact values for every condition type, the state
machine, per-tenant rules in one query, deliveries created once, and the error path."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from emban.analytics.alert_query import Probe, plan_alert, plan_batch, read_batch, read_rows
from emban.analytics.planner import QuerySpec, Scope
from emban.auth.principal import Principal
from emban.errors import BadRequest, Forbidden, NotFound
from emban.jobs.inprocess import InProcessJobs
from emban.models import AlertEvent, AlertRule, AlertState, AuditLog, Delivery
from emban.runtime import Runtime
from emban.services import alert_rules
from emban.services.alert_eval import AlertRunner, evaluate_all, evaluate_rule
from emban.services.alert_rules import AlertInput
from emban.services.boundary import transaction
from tests.conftest import Client, ClientFactory, bearer, register
from tests.smtp import Mailbox

NOW = datetime.now(UTC).replace(microsecond=0)

WIDGETS: list[dict[str, Any]] = [
    {
        "id": "calls",
        "kind": "metric",
        "title": "Calls",
        "query": {"event_name": "api.call", "metric": "count", "period": "24h"},
        "viz": {"type": "number"},
        "layout": {"x": 0, "y": 0, "w": 6, "h": 2},
    },
    {
        "id": "gpt_latency",
        "kind": "metric",
        "title": "Latency (gpt)",
        "query": {
            "event_name": "api.call",
            "metric": "avg",
            "numeric_prop": "latency",
            "period": "24h",
            "filters": {"model": "gpt"},
        },
        "viz": {"type": "number"},
        "layout": {"x": 6, "y": 0, "w": 6, "h": 2},
    },
    {
        "id": "note",
        "kind": "text",
        "title": "Note",
        "text": "hi",
        "layout": {"x": 0, "y": 2, "w": 12, "h": 1},
    },
]


class Org:
    def __init__(self, client: Client, reg: dict[str, Any]) -> None:
        self.client = client
        self.key: str = reg["api_key"]["key"]
        self.id: str = reg["org"]["id"]
        self.env: str = reg["environments"][0]["id"]
        self.admin = Principal(
            kind="api_key", org_id=self.id, environment_id=self.env, role="admin", scope="admin"
        )
        self.viewer = Principal(
            kind="session", org_id=self.id, environment_id=self.env, role="viewer", scope="session"
        )
        self.dashboard = ""

    async def ingest(self, events: list[dict[str, Any]]) -> None:
        response = await self.client.post(
            "/v1/events", json={"events": events}, headers=bearer(self.key)
        )
        assert response.status in (200, 202), await response.text()


@pytest.fixture
async def org(make_client: ClientFactory) -> Org:
    client = await make_client()
    made = Org(client, await register(client))
    response = await client.post("/v1/dashboards", json={"name": "Ops", "widgets": WIDGETS})
    assert response.status == 201, await response.text()
    made.dashboard = (await response.json())["id"]
    return made


def _runner(
    runtime: Runtime,
) -> tuple[AlertRunner, InProcessJobs, list[tuple[str, dict[str, Any]]]]:
    published: list[tuple[str, dict[str, Any]]] = []

    async def publish(org_id: str, event: dict[str, Any]) -> None:
        published.append((org_id, event))

    jobs = InProcessJobs({"settings": runtime.settings})
    return AlertRunner(runtime.events, jobs, runtime.settings, publish), jobs, published


def call(minutes_ago: float, tenant: str = "t1", **extra: Any) -> dict[str, Any]:
    return {
        "event_name": "api.call",
        "tenant_id": tenant,
        "timestamp": (NOW - timedelta(minutes=minutes_ago)).isoformat(),
        **extra,
    }


async def create(org: Org, **fields: Any) -> AlertRule:
    body = AlertInput(
        **{"dashboard_id": org.dashboard, "widget_id": "calls", "name": "Calls", **fields}
    )
    async with transaction():
        return await alert_rules.create_rule(actor=org.admin, body=body)


async def test_threshold_fires_once_and_resolves(runtime: Runtime, org: Org) -> None:
    await org.ingest([call(m) for m in (5, 10, 15)] + [call(70), call(5, tenant="t2")])
    runner, jobs, published = _runner(runtime)
    rule = await create(
        org,
        condition_type="threshold",
        operator="gt",
        threshold_value=3,
        email_to=["Ops@Example.com"],
    )
    assert (rule.lookback_minutes, rule.email_to, rule.enabled) == (60, ["ops@example.com"], True)
    first = await evaluate_rule(runner, rule, now=NOW)
    assert (first.state, first.value, first.events_created) == ("firing", 4.0, 1)
    again = await evaluate_rule(runner, rule, now=NOW)
    assert (again.state, again.value, again.events_created) == ("firing", 4.0, 0)
    events = await AlertEvent.filter(rule_id=rule.id)
    assert [(e.kind, e.value, e.threshold_value, e.tenant_id) for e in events] == [
        ("fired", 4.0, 3.0, None)
    ]
    assert events[0].message == (
        "Calls: fired: value 4 over the last 60 minutes (condition value > 3)"
    )
    deliveries = await Delivery.filter(alert_event_id=events[0].id)
    assert [(d.channel, d.target, d.event_type) for d in deliveries] == [
        ("email", "ops@example.com", "alert.fired")
    ]
    await jobs.drain()
    # No SMTP configured: recorded as failed with the reason.
    delivery = await Delivery.get(id=deliveries[0].id)
    assert (delivery.status, delivery.error) == ("failed", "smtp_not_configured")
    assert [(o, e["kind"]) for o, e in published] == [(org.id, "fired")]
    # 50 minutes later the window [-10 min, +50 min) holds the events at -10 (its start is
    # inclusive) and the two at -5: 3, not over 3.
    later = await evaluate_rule(runner, rule, now=NOW + timedelta(minutes=50))
    assert (later.state, later.value, later.events_created) == ("ok", 3.0, 1)
    kinds = [e.kind for e in await AlertEvent.filter(rule_id=rule.id).order_by("id")]
    assert kinds == ["fired", "resolved"]
    assert await AlertState.filter(rule_id=rule.id).count() == 0


@pytest.mark.parametrize(
    ("operator", "threshold", "fires"),
    [("gt", 4, False), ("gte", 4, True), ("lt", 5, True), ("lte", 3, False), ("eq", 4, True)],
)
async def test_operators(
    runtime: Runtime, org: Org, operator: str, threshold: float, fires: bool
) -> None:
    await org.ingest([call(m) for m in (1, 2, 3)] + [call(4, tenant="t9")])
    runner, _, _ = _runner(runtime)
    rule = await create(
        org, condition_type="threshold", operator=operator, threshold_value=threshold
    )
    result = await evaluate_rule(runner, rule, now=NOW)
    assert (result.value, result.state) == (4.0, "firing" if fires else "ok")


async def test_delta_against_the_previous_window(runtime: Runtime, org: Org) -> None:
    # previous window [-60, -30): 2 events; current [-30, 0): 3 events → +50 %.
    await org.ingest([call(m) for m in (35, 50, 5, 10, 20)])
    runner, _, _ = _runner(runtime)
    rule = await create(
        org, condition_type="delta", operator="gte", threshold_value=50, lookback_minutes=30
    )
    result = await evaluate_rule(runner, rule, now=NOW)
    assert (result.value, result.state, result.events_created) == (50.0, "firing", 1)
    event = await AlertEvent.get(rule_id=rule.id)
    assert event.message == (
        "Calls: fired: change 50% over the last 30 minutes (condition change ≥ 50%)"
    )


async def test_delta_from_zero_is_infinite(runtime: Runtime, org: Org) -> None:
    await org.ingest([call(5)])
    runner, _, _ = _runner(runtime)
    rule = await create(
        org, condition_type="delta", operator="gt", threshold_value=1000, lookback_minutes=30
    )
    result = await evaluate_rule(runner, rule, now=NOW)
    # +inf is not a JSON number: the answer carries null and the message says it.
    assert (result.value, result.state) == (None, "firing")
    event = await AlertEvent.get(rule_id=rule.id)
    assert event.message.startswith("Calls: fired: change +∞% over the last 30 minutes")
    both_zero = await create(
        org, condition_type="delta", operator="eq", threshold_value=0, lookback_minutes=1
    )
    later = await evaluate_rule(runner, both_zero, now=NOW + timedelta(hours=3))
    assert (later.value, later.state) == (0.0, "firing")


async def test_no_data(runtime: Runtime, org: Org) -> None:
    await org.ingest([call(90)])
    runner, _, _ = _runner(runtime)
    rule = await create(org, condition_type="no_data", lookback_minutes=60)
    assert (rule.operator, rule.threshold_value) == ("gt", 0.0)
    quiet = await evaluate_rule(runner, rule, now=NOW)
    assert (quiet.state, quiet.value, quiet.events_created) == ("firing", 0.0, 1)
    await org.ingest([call(1)])
    back = await evaluate_rule(runner, rule, now=NOW)
    assert (back.state, back.value, back.events_created) == ("ok", 1.0, 1)
    messages = [e.message for e in await AlertEvent.filter(rule_id=rule.id).order_by("id")]
    assert messages == [
        "Calls: no matching events in the last 60 minutes",
        "Calls: events again: 1 in the last 60 minutes",
    ]


async def test_filters_and_numeric_metric(runtime: Runtime, org: Org) -> None:
    await org.ingest(
        [
            call(5, string_props={"model": "gpt"}, numeric_props={"latency": 100}),
            call(6, string_props={"model": "gpt"}, numeric_props={"latency": 300}),
            call(7, string_props={"model": "llama"}, numeric_props={"latency": 5000}),
            call(8, string_props={"model": "gpt"}),  # no latency: not in the average
        ]
    )
    runner, _, _ = _runner(runtime)
    body = AlertInput(
        dashboard_id=org.dashboard,
        widget_id="gpt_latency",
        name="Slow gpt",
        condition_type="threshold",
        operator="gt",
        threshold_value=150,
    )
    async with transaction():
        rule = await alert_rules.create_rule(actor=org.admin, body=body)
    result = await evaluate_rule(runner, rule, now=NOW)
    assert (result.value, result.state) == (200.0, "firing")
    # No events at all: an average has no value, so the rule does not fire (nor resolve).
    empty = await evaluate_rule(runner, rule, now=NOW + timedelta(hours=5))
    assert (empty.value, empty.state, empty.events_created) == (None, "ok", 1)


async def test_per_tenant_one_query_and_separate_states(runtime: Runtime, org: Org) -> None:
    await org.ingest(
        [call(m, tenant="a") for m in (1, 2, 3)] + [call(1, tenant="b")] + [call(2, tenant="c")] * 2
    )
    runner, _, _ = _runner(runtime)
    rule = await create(
        org,
        condition_type="threshold",
        operator="gte",
        threshold_value=2,
        per_tenant=True,
        webhook_url="https://hooks.example.com/alerts",
    )
    queries: list[str] = []
    original = runtime.events.query

    async def counting(sql: str, params: Any = None, **kw: Any) -> Any:
        queries.append(sql)
        return await original(sql, params, **kw)

    runtime.events.query = counting  # type: ignore[method-assign]
    try:
        result = await evaluate_rule(runner, rule, now=NOW)
    finally:
        runtime.events.query = original  # type: ignore[method-assign]
    assert len(queries) == 1 and "GROUP BY t" in queries[0]
    assert (result.state, result.events_created) == ("firing", 2)
    assert sorted((o.tenant_id, o.firing, o.value) for o in result.outcomes) == [
        ("a", True, 3.0),
        ("b", False, 1.0),
        ("c", True, 2.0),
    ]
    events = await AlertEvent.filter(rule_id=rule.id).order_by("tenant_id")
    assert [(e.tenant_id, e.kind, e.value) for e in events] == [
        ("a", "fired", 3.0),
        ("c", "fired", 2.0),
    ]
    targets = (
        await Delivery.filter(org_id=org.id)
        .order_by("tenant_id")
        .values_list("tenant_id", "channel", "target")
    )
    assert targets == [
        ("a", "webhook", "https://hooks.example.com/alerts"),
        ("c", "webhook", "https://hooks.example.com/alerts"),
    ]
    # Tenant a goes quiet entirely (no rows in either window): it still resolves.
    later = await evaluate_rule(runner, rule, now=NOW + timedelta(hours=3))
    assert later.state == "ok"
    kinds = sorted((e.tenant_id, e.kind) for e in await AlertEvent.filter(rule_id=rule.id))
    assert kinds == [("a", "fired"), ("a", "resolved"), ("c", "fired"), ("c", "resolved")]


async def test_tenant_scope(runtime: Runtime, org: Org) -> None:
    await org.ingest([call(1, tenant="a")] * 3 + [call(1, tenant="b")] * 5)
    runner, _, _ = _runner(runtime)
    rule = await create(
        org, condition_type="threshold", operator="gt", threshold_value=0, tenant_id="a"
    )
    result = await evaluate_rule(runner, rule, now=NOW)
    assert result.value == 3.0
    event = await AlertEvent.get(rule_id=rule.id)
    assert (event.tenant_id, event.message) == (
        "a",
        "Calls (tenant a): fired: value 3 over the last 60 minutes (condition value > 0)",
    )


async def test_error_recorded_once_when_the_widget_is_gone(runtime: Runtime, org: Org) -> None:
    runner, _, _ = _runner(runtime)
    rule = await create(org, condition_type="threshold", operator="gt", threshold_value=0)
    response = await org.client.patch(
        f"/v1/dashboards/{org.dashboard}", json={"widgets": WIDGETS[1:]}
    )
    assert response.status == 200, await response.text()
    first = await evaluate_rule(runner, rule, now=NOW)
    second = await evaluate_rule(runner, rule, now=NOW)
    assert (first.state, first.events_created, second.events_created) == ("error", 1, 0)
    event = await AlertEvent.get(rule_id=rule.id)
    assert (event.kind, event.value) == ("error", None)
    assert event.message == (
        f"Calls: evaluation failed: widget calls no longer exists on dashboard {org.dashboard}"
    )


async def test_concurrent_evaluations_record_each_transition_once(
    runtime: Runtime, org: Org
) -> None:
    await org.ingest([call(1)] * 2 + [call(1, tenant="b")] * 2)
    runner, _, _ = _runner(runtime)
    rules = [
        await create(org, condition_type="threshold", operator="gt", threshold_value=1),
        await create(
            org, condition_type="threshold", operator="gt", threshold_value=1, per_tenant=True
        ),
    ]
    results = await asyncio.gather(*(evaluate_rule(runner, r, now=NOW) for r in rules * 4))
    assert sum(r.events_created for r in results) == 3
    assert await AlertEvent.all().count() == 3
    cycle = await asyncio.gather(evaluate_all(runner, now=NOW), evaluate_all(runner, now=NOW))
    assert [c for c in cycle] == [(2, 0), (2, 0)]


async def test_validation_names_the_field(org: Org) -> None:
    good: dict[str, Any] = {
        "dashboard_id": org.dashboard,
        "widget_id": "calls",
        "name": "x",
        "condition_type": "threshold",
        "operator": "gt",
        "threshold_value": 1,
    }
    cases: list[tuple[dict[str, Any], str]] = [
        ({"dashboard_id": "dash_nope"}, "dashboard_id"),
        ({"widget_id": "nope"}, "widget_id"),
        ({"widget_id": "note"}, "widget_id"),
        ({"condition_type": "above"}, "condition_type"),
        ({"operator": "gte "}, "operator"),
        ({"threshold_value": float("nan")}, "threshold_value"),
        ({"email_to": ["not-an-email"]}, "email_to[0]"),
        ({"webhook_url": "http://169.254.169.254/latest"}, "webhook_url"),
        ({"webhook_url": "ftp://example.com/"}, "webhook_url"),
        ({"name": "  "}, "name"),
        ({"lookback_minutes": 31 * 24 * 60 + 1}, "lookback_minutes"),
        ({"tenant_id": "a\x00b"}, "tenant_id"),
        ({"name": None}, "name"),
    ]
    for change, field in cases:
        with pytest.raises(BadRequest) as caught:
            async with transaction():
                await alert_rules.create_rule(
                    actor=org.admin, body=AlertInput(**{**good, **change})
                )
        assert caught.value.extra.get("field") == field, (change, caught.value.message)
    assert await AlertRule.all().count() == 0


async def test_roles_and_audit(org: Org) -> None:
    body = AlertInput(
        dashboard_id=org.dashboard,
        widget_id="calls",
        name="x",
        condition_type="no_data",
        lookback_minutes=-5,
    )
    with pytest.raises(Forbidden):
        await alert_rules.create_rule(actor=org.viewer, body=body)
    async with transaction():
        rule = await alert_rules.create_rule(actor=org.admin, body=body)
    assert rule.lookback_minutes == 60
    assert [r.id for r in await alert_rules.list_rules(actor=org.viewer)] == [rule.id]
    with pytest.raises(Forbidden):
        await alert_rules.update_rule(
            actor=org.viewer, alert_id=str(rule.id), body=AlertInput(name="y")
        )
    async with transaction():
        changed = await alert_rules.update_rule(
            actor=org.admin, alert_id=str(rule.id), body=AlertInput(name="y", enabled=False)
        )
    assert (changed.name, changed.enabled) == ("y", False)
    with pytest.raises(NotFound):
        await alert_rules.get_rule(actor=org.viewer, alert_id="999999")
    with pytest.raises(NotFound):
        await alert_rules.get_rule(actor=org.viewer, alert_id="1e3")
    other = Principal(
        kind="api_key", org_id="org_other", environment_id="env_x", role="admin", scope="admin"
    )
    with pytest.raises(NotFound):
        await alert_rules.get_rule(actor=other, alert_id=str(rule.id))
    async with transaction():
        await alert_rules.delete_rule(actor=org.admin, alert_id=str(rule.id))
    actions = [a.action for a in await AuditLog.filter(org_id=org.id).order_by("id")]
    assert [a for a in actions if a.startswith("alert.")] == [
        "alert.create",
        "alert.update",
        "alert.delete",
    ]


METRICS = ("count", "count_unique", "count_unique_approx", "sum", "avg", "p95", "p99")


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


@hyp_settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
async def test_a_batch_answers_every_probe_as_its_own_query(
    runtime: Runtime, make_client: ClientFactory, data: st.DataObject
) -> None:
    """One scan for many probes gives each probe exactly what its own query gives."""
    if not hasattr(test_a_batch_answers_every_probe_as_its_own_query, "org"):
        client = await make_client()
        reg = await register(client, email="batch@acme.test")
        events = [
            call(
                (i * 7) % 170,
                tenant=f"t{i % 4}",
                user_id=f"u{i % 5}" if i % 3 else "",
                string_props={"model": ("gpt", "llama", "=x")[i % 3]},
                numeric_props={"latency": float((i * 37) % 500)} if i % 4 else {},
            )
            for i in range(120)
        ]
        response = await client.post(
            "/v1/events", json={"events": events}, headers=bearer(reg["api_key"]["key"])
        )
        assert response.status in (200, 202)
        test_a_batch_answers_every_probe_as_its_own_query.org = (  # type: ignore[attr-defined]
            reg["org"]["id"],
            reg["environments"][0]["id"],
        )
    org_id, env_id = test_a_batch_answers_every_probe_as_its_own_query.org  # type: ignore[attr-defined]
    probe = st.builds(
        Probe,
        metric=st.sampled_from(METRICS),
        numeric_prop=st.just("latency"),
        filters=st.sampled_from(
            [(), (("model", "gpt"),), (("model", "=x"),), (("model", "none"),)]
        ),
        lookback=st.sampled_from([timedelta(minutes=m) for m in (5, 30, 60, 90)]),
        tenant_id=st.sampled_from([None, "t1", "t3", "nobody"]),
        per_tenant=st.booleans(),
    )
    probes = data.draw(st.lists(probe, min_size=1, max_size=6, unique=True))
    scope = Scope(org_id, env_id)
    batch = plan_batch(probes, scope, "api.call", now=NOW)
    answers = read_batch(probes, (await runtime.events.query(batch.sql, batch.params)).rows)
    for probe_, answer in zip(probes, answers, strict=True):
        spec = QuerySpec(
            event_name="api.call",
            metric=probe_.metric,  # type: ignore[arg-type]
            period="24h",
            granularity="hour",
            filters=probe_.filters,
            numeric_prop=probe_.numeric_prop
            if probe_.metric in ("sum", "avg", "p95", "p99")
            else None,
        )
        single = plan_alert(
            spec,
            scope,
            now=NOW,
            lookback=probe_.lookback,
            tenant_id=probe_.tenant_id,
            per_tenant=probe_.per_tenant,
        )
        alone = read_rows(single, (await runtime.events.query(single.sql, single.params)).rows)
        assert [(r.tenant_id, r.matching) for r in answer] == [
            (r.tenant_id, r.matching) for r in alone
        ], probe_
        for got, want in zip(answer, alone, strict=True):
            assert _same(got.current, want.current) and _same(got.previous, want.previous), (
                probe_,
                got,
                want,
            )


async def test_alert_mail_through_a_real_smtp_server(
    runtime: Runtime, org: Org, mailbox: Mailbox
) -> None:
    await org.ingest([call(m) for m in (1, 2, 3)])
    settings = dataclasses.replace(
        runtime.settings, smtp_url=mailbox.url, email_from="alerts@emban.test"
    )
    jobs = InProcessJobs({"settings": settings})
    runner = AlertRunner(runtime.events, jobs, settings)
    rule = await create(
        org,
        condition_type="threshold",
        operator="gt",
        threshold_value=2,
        email_to=["ops@example.com", "oncall@example.com"],
        name="<Calls> & more",
    )
    assert (await evaluate_rule(runner, rule, now=NOW)).events_created == 1
    await jobs.drain()
    assert sorted(rcpt[0] for _, rcpt in mailbox.envelopes) == [
        "oncall@example.com",
        "ops@example.com",
    ]
    message = mailbox.to("ops@example.com")[0]
    assert message["Subject"] == "[Emban] Alert: <Calls> & more"
    assert message["From"] == "Emban <alerts@emban.test>"
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    assert text.get_content().splitlines()[0] == (
        "<Calls> & more: fired: value 3 over the last 60 minutes (condition value > 2)"
    )
    assert "&lt;Calls&gt; &amp; more" in html.get_content()
    assert "<Calls>" not in html.get_content()
    statuses = await Delivery.filter(channel="email").values_list("target", "status", "attempts")
    assert sorted(statuses) == [
        ("oncall@example.com", "succeeded", 1),
        ("ops@example.com", "succeeded", 1),
    ]

"""Evaluating alert rules: few engine scans per cycle, transitions recorded exactly once.

A cycle (the ``evaluate_alerts`` job, every ``EMBAN_ALERT_INTERVAL_SECONDS``) loads every enabled
rule, their dashboards and their non-ok states in three metadata queries. Rules asking the same
question share a probe; the probes of one (org, environment, event) are answered up to
``BATCH_SIZE`` at a time by one scan (``GROUPING SETS`` gives per-tenant rows and the whole-scope
row together), so a cycle costs at most one engine query per rule and usually far fewer. Only
transitions are written. A state row exists only for a (rule, tenant) that is not ``ok``; a
transition is written under a lock on the rule's row after reading the states again, so of two
workers evaluating the same rule at once exactly one records and notifies each transition.
``POST /v1/alerts/{id}/evaluate`` evaluates one rule with its own query (``measure``).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import msgspec

from emban.analytics.alert_query import (
    BATCH_SIZE,
    Probe,
    WindowValues,
    plan_alert,
    plan_batch,
    read_batch,
    read_rows,
)
from emban.analytics.query_spec import COUNT_METRICS, Scope
from emban.analytics.store import ClickHouseError, EventStore
from emban.auth.principal import Principal
from emban.errors import EmbanError
from emban.models import AlertEvent, AlertRule, AlertState, Dashboard, Delivery
from emban.services import alert_rules, webhooks
from emban.services.access import requires
from emban.services.alert_conditions import (
    AlertState as State,
)
from emban.services.alert_conditions import (
    ConditionType,
    EventKind,
    Measure,
    Operator,
    fires,
    step,
    value_of,
)
from emban.services.alert_rules import widget_of
from emban.services.boundary import after_commit, transaction
from emban.services.widget_config import TextWidget, spec_of
from emban.settings import Settings

if TYPE_CHECKING:
    from emban.jobs.queue import JobQueue

log = logging.getLogger("emban.alerts")

CONCURRENT_BATCHES = 2  # engine scans of one cycle at once (the cores of a small machine)
ALL_TENANTS = ""
_OPERATOR_TEXT = {"gt": ">", "gte": "≥", "lt": "<", "lte": "≤", "eq": "="}

Publish = Callable[[str, dict[str, Any]], Awaitable[None]]


async def _no_publish(org_id: str, event: dict[str, Any]) -> None:
    return None


@dataclass
class AlertRunner:
    """What evaluation needs: the engine, the job queue (deliveries) and the settings."""

    events: EventStore
    jobs: JobQueue
    settings: Settings
    publish: Publish = _no_publish  # each new alert event, to live subscribers of the org


@dataclass(frozen=True)
class Outcome:
    tenant_id: str | None
    firing: bool | None  # None: the evaluation failed
    value: float | None
    error: str | None = None


@dataclass
class Evaluation:
    state: str
    value: float | None
    events_created: int
    outcomes: list[Outcome] = field(default_factory=list)


class RuleFailed(Exception):
    """The rule cannot be evaluated (its widget is gone, the query fails): recorded as error."""


def _spec(rule: AlertRule, dashboard: Dashboard | None) -> Any:
    if dashboard is None:
        raise RuleFailed(f"dashboard {rule.dashboard_id} no longer exists")
    widget = widget_of(dashboard, rule.widget_id)
    if widget is None:
        raise RuleFailed(f"widget {rule.widget_id} no longer exists on dashboard {dashboard.id}")
    if isinstance(widget, TextWidget):
        raise RuleFailed(f"widget {rule.widget_id} is now a text widget, which has no metric")
    try:
        return spec_of(widget, None)
    except EmbanError as exc:
        raise RuleFailed(f"widget {rule.widget_id} has an invalid query: {exc.message}") from exc


Measured = tuple[list[WindowValues], bool]  # the rule's rows, and whether its metric counts


async def measure(
    events: EventStore, rule: AlertRule, dashboard: Dashboard | None, now: datetime
) -> Measured:
    """The rule's one engine query: window values per tenant (or one row for all)."""
    spec = _spec(rule, dashboard)
    query = plan_alert(
        spec,
        Scope(rule.org_id, rule.environment_id),
        now=now,
        lookback=timedelta(minutes=rule.lookback_minutes),
        tenant_id=rule.tenant_id,
        per_tenant=rule.per_tenant,
    )
    try:
        rows = (await events.query(query.sql, query.params, background=True)).rows
    except ClickHouseError as exc:
        raise RuleFailed(f"query failed: {str(exc).splitlines()[0][:300]}") from exc
    return read_rows(query, rows), spec.metric in COUNT_METRICS


def outcomes_of(
    rule: AlertRule, rows: list[WindowValues], counted: bool, known_tenants: Iterable[str]
) -> list[Outcome]:
    """Whether each watched scope fires. ``known_tenants``: tenants of a per-tenant rule with a
    non-ok state, judged even when they sent nothing in either window (their value is 0 for
    counts, none otherwise)."""
    kind = ConditionType(rule.condition_type)
    oper = Operator(rule.operator)
    by_tenant: dict[str | None, WindowValues] = {row.tenant_id: row for row in rows}
    if rule.per_tenant:
        for known in known_tenants:
            by_tenant.setdefault(known, WindowValues(known, None, None, 0))
    elif not by_tenant:
        by_tenant[None] = WindowValues(None, None, None, 0)
    outcomes: list[Outcome] = []
    for tenant, row in sorted(by_tenant.items(), key=lambda item: item[0] or ""):
        zero = 0.0 if counted else None
        current = row.current if row.current is not None else zero
        previous = row.previous if row.previous is not None else zero
        scope_tenant = tenant if rule.per_tenant else rule.tenant_id
        if kind is not ConditionType.no_data and (
            current is None or (kind is ConditionType.delta and previous is None)
        ):
            # A metric with no value (an average of no events): nothing to compare, not firing.
            outcomes.append(Outcome(scope_tenant, False, None))
            continue
        measured = Measure(
            current=current or 0.0, previous=previous or 0.0, matching_events=row.matching
        )
        outcomes.append(
            Outcome(
                scope_tenant,
                fires(kind, oper, rule.threshold_value, measured),
                value_of(kind, measured),
            )
        )
    return outcomes


def _fmt(value: float | None) -> str:
    if value is None:
        return "no value"
    if math.isinf(value):
        return "+∞" if value > 0 else "-∞"
    return f"{value:,.6g}"


def message(rule: AlertRule, kind: EventKind, outcome: Outcome) -> str:
    who = f" (tenant {outcome.tenant_id})" if outcome.tenant_id is not None else ""
    window = f"the last {rule.lookback_minutes} minutes"
    if kind is EventKind.error:
        return f"{rule.name}{who}: evaluation failed: {outcome.error}"
    condition = ConditionType(rule.condition_type)
    if condition is ConditionType.no_data:
        detail = (
            f"no matching events in {window}"
            if kind is EventKind.fired
            else f"events again: {_fmt(outcome.value)} in {window}"
        )
    else:
        what = "change" if condition is ConditionType.delta else "value"
        unit = "%" if condition is ConditionType.delta else ""
        sign = _OPERATOR_TEXT[rule.operator]
        verdict = "fired" if kind is EventKind.fired else "resolved"
        detail = (
            f"{verdict}: {what} {_fmt(outcome.value)}{unit} over {window} "
            f"(condition {what} {sign} {_fmt(rule.threshold_value)}{unit})"
        )
    return f"{rule.name}{who}: {detail}"


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def event_payload(rule: AlertRule, event: AlertEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "kind": event.kind,
        "value": _finite(event.value),
        "threshold_value": event.threshold_value,
        "tenant_id": event.tenant_id,
        "at": event.at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "message": event.message,
        "alert": {
            "id": rule.id,
            "name": rule.name,
            "dashboard_id": rule.dashboard_id,
            "widget_id": rule.widget_id,
            "condition_type": rule.condition_type,
            "operator": rule.operator,
            "threshold_value": rule.threshold_value,
            "lookback_minutes": rule.lookback_minutes,
        },
    }


async def _record(
    runner: AlertRunner,
    rule: AlertRule,
    kind: EventKind,
    outcome: Outcome,
) -> AlertEvent:
    """Inside the transition's transaction: the event and its deliveries."""
    event = await AlertEvent.create(
        rule_id=rule.id,
        org_id=rule.org_id,
        kind=kind.value,
        value=outcome.value,
        threshold_value=rule.threshold_value,
        tenant_id=outcome.tenant_id,
        message=message(rule, kind, outcome),
    )
    payload = event_payload(rule, event)
    deliveries: list[Delivery] = []
    event_type = f"alert.{kind.value}"
    body = msgspec.json.encode(
        {"type": event_type, "tenant_id": outcome.tenant_id, "data": payload}
    )
    for email in rule.email_to:
        deliveries.append(
            await webhooks.create_delivery(
                org_id=rule.org_id,
                channel="email",
                event_type=event_type,
                target=email,
                tenant_id=outcome.tenant_id,
                payload=body,
                alert_event_id=event.id,
            )
        )
    if rule.webhook_url:
        deliveries.append(
            await webhooks.create_delivery(
                org_id=rule.org_id,
                channel="webhook",
                event_type=event_type,
                target=rule.webhook_url,
                tenant_id=outcome.tenant_id,
                payload=body,
                alert_event_id=event.id,
            )
        )

    async def announce() -> None:
        for delivery in deliveries:
            job = "deliver_webhook" if delivery.channel == "webhook" else "deliver_email"
            await runner.jobs.enqueue(job, str(delivery.id))
        await runner.publish(rule.org_id, payload)

    after_commit(announce)
    return event


def _needed(states: dict[str, AlertState], steps: list[tuple[str, Outcome]]) -> bool:
    for key, outcome in steps:
        row = states.get(key)
        seen = State(row.state) if row is not None else State.ok
        if step(seen, outcome.firing).state is not seen:
            return True
    return False


async def _apply(
    runner: AlertRunner, rule: AlertRule, steps: list[tuple[str, Outcome]], now: datetime
) -> int:
    """Record the rule's transitions in one short transaction; returns the events created.

    The rule's row is locked first (``SELECT … FOR UPDATE``; SQLite runs one write transaction
    at a time anyway) and the states are read again under the lock, so a second worker
    evaluating the same rule waits, then finds the transitions made and records nothing.
    """
    created = 0
    async with transaction():
        if await AlertRule.filter(id=rule.id).select_for_update().first() is None:
            return 0  # deleted meanwhile
        states = {s.tenant_key: s for s in await AlertState.filter(rule_id=rule.id)}
        for key, outcome in steps:
            row = states.get(key)
            seen = State(row.state) if row is not None else State.ok
            target, kind = step(seen, outcome.firing)
            if target is seen:
                continue
            if row is None:
                await AlertState.create(
                    rule_id=rule.id,
                    tenant_key=key,
                    state=target.value,
                    value=_finite(outcome.value),
                    evaluated_at=now,
                )
            elif target is State.ok:
                await AlertState.filter(id=row.id).delete()
            else:
                await AlertState.filter(id=row.id).update(
                    state=target.value, value=_finite(outcome.value), evaluated_at=now
                )
            if kind is not None:
                await _record(runner, rule, kind, outcome)
                created += 1
    return created


async def evaluate_rule(
    runner: AlertRunner, rule: AlertRule, *, now: datetime | None = None
) -> Evaluation:
    """Evaluate one rule now (``POST /v1/alerts/{id}/evaluate``)."""
    dashboard = await Dashboard.get_or_none(id=rule.dashboard_id, org_id=rule.org_id)
    states = await AlertState.filter(rule_id=rule.id)
    return await _evaluate(runner, rule, now or datetime.now(UTC), dashboard, states)


@requires("admin")
async def evaluate_now(runner: AlertRunner, *, actor: Principal, alert_id: str) -> Evaluation:
    """``POST /v1/alerts/{id}/evaluate`` and ``evaluateAlert``: the actor's rule, evaluated now
    (a transition is recorded and notified like the scheduled cycle's)."""
    rule = await alert_rules.find_for_admin(actor=actor, alert_id=alert_id)
    return await evaluate_rule(runner, rule)


async def _evaluate(
    runner: AlertRunner,
    rule: AlertRule,
    now: datetime,
    dashboard: Dashboard | None,
    states: list[AlertState],
    measured: Measured | RuleFailed | None = None,
) -> Evaluation:
    """``measured``: the rule's engine answer when a batch already read it (else read here)."""
    by_key = {s.tenant_key: s for s in states}
    steps: list[tuple[str, Outcome]] = []
    try:
        if isinstance(measured, RuleFailed):
            raise measured
        rows, counted = (
            measured if measured is not None else await measure(runner.events, rule, dashboard, now)
        )
    except RuleFailed as exc:
        # One error for the rule as a whole; per-tenant states are left as they are.
        steps.append((ALL_TENANTS, Outcome(rule.tenant_id, None, None, str(exc))))
    else:
        known = [k for k in by_key if k != ALL_TENANTS] if rule.per_tenant else []
        for outcome in outcomes_of(rule, rows, counted, known):
            key = outcome.tenant_id if rule.per_tenant and outcome.tenant_id else ALL_TENANTS
            steps.append((key, outcome))
        if rule.per_tenant and ALL_TENANTS in by_key:
            # The rule-wide error of an earlier cycle is over.
            steps.append((ALL_TENANTS, Outcome(None, False, None)))
    created = await _apply(runner, rule, steps, now) if _needed(by_key, steps) else 0
    fresh = (
        {s.state for s in await AlertState.filter(rule_id=rule.id)}
        if created
        else {s.state for s in by_key.values()}
    )
    summary = "firing" if "firing" in fresh else "error" if "error" in fresh else "ok"
    outcomes = [o for _, o in steps]
    value = outcomes[0].value if len(outcomes) == 1 else None
    return Evaluation(summary, _finite(value), created, outcomes)


async def _measure_batch(
    events: EventStore, scope: Scope, event_name: str, probes: list[Probe], now: datetime
) -> list[list[WindowValues]] | RuleFailed:
    query = plan_batch(probes, scope, event_name, now=now)
    try:
        rows = (await events.query(query.sql, query.params, background=True)).rows
    except ClickHouseError as exc:
        return RuleFailed(f"query failed: {str(exc).splitlines()[0][:300]}")
    return read_batch(probes, rows)


async def measure_all(
    events: EventStore, rules: list[AlertRule], dashboards: dict[str, Dashboard], now: datetime
) -> dict[int, Measured | RuleFailed]:
    """Every rule's engine answer in as few scans as possible: rules asking the same question
    share a probe, and the probes of one (org, environment, event) are answered
    :data:`BATCH_SIZE` at a time by one scan each."""
    answers: dict[int, Measured | RuleFailed] = {}
    groups: dict[tuple[str, str, str], dict[Probe, list[tuple[AlertRule, bool]]]] = {}
    for rule in rules:
        dashboard = dashboards.get(rule.dashboard_id)
        if dashboard is not None and dashboard.org_id != rule.org_id:
            dashboard = None
        try:
            spec = _spec(rule, dashboard)
        except RuleFailed as exc:
            answers[rule.id] = exc
            continue
        probe = Probe.of(
            spec,
            lookback=timedelta(minutes=rule.lookback_minutes),
            tenant_id=rule.tenant_id,
            per_tenant=rule.per_tenant,
        )
        key = (rule.org_id, rule.environment_id, spec.event_name)
        groups.setdefault(key, {}).setdefault(probe, []).append(
            (rule, spec.metric in COUNT_METRICS)
        )
    batches: list[tuple[Scope, str, list[Probe], dict[Probe, list[tuple[AlertRule, bool]]]]] = []
    for (org_id, environment_id, event_name), by_probe in groups.items():
        probes = list(by_probe)
        for at in range(0, len(probes), BATCH_SIZE):
            batches.append(
                (Scope(org_id, environment_id), event_name, probes[at : at + BATCH_SIZE], by_probe)
            )
    gate = asyncio.Semaphore(CONCURRENT_BATCHES)

    async def run(scope: Scope, event_name: str, probes: list[Probe], by_probe: Any) -> None:
        async with gate:
            result = await _measure_batch(events, scope, event_name, probes, now)
        for index, probe in enumerate(probes):
            for rule, counted in by_probe[probe]:
                answers[rule.id] = (
                    result if isinstance(result, RuleFailed) else (result[index], counted)
                )

    await asyncio.gather(*(run(*batch) for batch in batches))
    return answers


async def evaluate_all(runner: AlertRunner, *, now: datetime | None = None) -> tuple[int, int]:
    """One cycle over every enabled rule; returns (rules evaluated, events created)."""
    moment = now or datetime.now(UTC)
    rules = await AlertRule.filter(enabled=True).order_by("id")
    if not rules:
        return 0, 0
    dashboards = {d.id: d for d in await Dashboard.filter(id__in={r.dashboard_id for r in rules})}
    states: dict[int, list[AlertState]] = {}
    for state in await AlertState.filter(rule_id__in=[r.id for r in rules]):
        states.setdefault(state.rule_id, []).append(state)
    measured = await measure_all(runner.events, rules, dashboards, moment)
    created = 0
    for rule in rules:
        try:
            result = await _evaluate(
                runner,
                rule,
                moment,
                dashboards.get(rule.dashboard_id),
                states.get(rule.id, []),
                measured[rule.id],
            )
        except Exception:
            log.exception("alert rule %s: evaluation crashed", rule.id)
            continue
        created += result.events_created
    return len(rules), created

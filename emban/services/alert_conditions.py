"""Alert conditions, pure: the value a rule compares, whether it fires, and the state machine.

- ``threshold``: the widget's metric over ``[now - lookback, now)`` compared with
  ``threshold_value`` by ``operator``.
- ``delta``: the percent change of that value against the previous window of the same length,
  compared the same way. A previous value of 0 gives +inf when the current one is positive
  (any rise from nothing is infinitely large), -inf when it is negative, and 0 when both are 0.
- ``no_data``: fires when the window holds no matching event; ``operator``/``threshold_value``
  are not used and the value is the number of matching events.
"""

from __future__ import annotations

import math
import operator as op
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple


class ConditionType(StrEnum):
    threshold = "threshold"
    delta = "delta"
    no_data = "no_data"


class Operator(StrEnum):
    gt = "gt"
    gte = "gte"
    lt = "lt"
    lte = "lte"
    eq = "eq"


class AlertState(StrEnum):
    ok = "ok"
    firing = "firing"
    error = "error"


class EventKind(StrEnum):
    fired = "fired"
    resolved = "resolved"
    error = "error"


_COMPARE: dict[Operator, Callable[[float, float], bool]] = {
    Operator.gt: op.gt,
    Operator.gte: op.ge,
    Operator.lt: op.lt,
    Operator.lte: op.le,
    Operator.eq: op.eq,
}

DEFAULT_LOOKBACK_MINUTES = 60


def lookback_minutes(value: int | None) -> int:
    """Omitted or ≤ 0 → 60 (the spec's default)."""
    return DEFAULT_LOOKBACK_MINUTES if value is None or value <= 0 else value


def percent_change(current: float, previous: float) -> float:
    if previous == 0:
        if current == 0:
            return 0.0
        return math.inf if current > 0 else -math.inf
    return (current - previous) / abs(previous) * 100.0


@dataclass(frozen=True)
class Measure:
    """What the engine answered for one window pair (one tenant, or the whole environment)."""

    current: float
    previous: float = 0.0
    matching_events: int = 0


def value_of(kind: ConditionType, measure: Measure) -> float:
    if kind is ConditionType.delta:
        return percent_change(measure.current, measure.previous)
    if kind is ConditionType.no_data:
        return float(measure.matching_events)
    return measure.current


def fires(kind: ConditionType, oper: Operator, threshold: float, measure: Measure) -> bool:
    if kind is ConditionType.no_data:
        return measure.matching_events == 0
    return _COMPARE[oper](value_of(kind, measure), threshold)


class Transition(NamedTuple):
    state: AlertState
    event: EventKind | None  # the event to record and notify, if any


def step(previous: AlertState, firing_now: bool | None) -> Transition:
    """The state machine. ``firing_now`` None means the evaluation failed.

    ok → firing records ``fired``; firing → ok records ``resolved``; staying puts records
    nothing. A failed evaluation records one ``error`` (not again while it keeps failing); the
    next successful evaluation leaves the error state without an event unless it fires.
    """
    if firing_now is None:
        if previous is AlertState.error:
            return Transition(AlertState.error, None)
        return Transition(AlertState.error, EventKind.error)
    if firing_now:
        if previous is AlertState.firing:
            return Transition(AlertState.firing, None)
        return Transition(AlertState.firing, EventKind.fired)
    if previous is AlertState.firing:
        return Transition(AlertState.ok, EventKind.resolved)
    return Transition(AlertState.ok, None)

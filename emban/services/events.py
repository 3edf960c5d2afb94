"""Event ingest: validation (every bad event listed), the monthly plan limit, group commit."""

from __future__ import annotations

import functools
import math
import secrets
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

import msgspec

from emban.analytics.background import in_background
from emban.analytics.ingest import EventRow
from emban.auth.principal import Principal
from emban.errors import BadRequest, Forbidden, InvalidEvents, PayloadTooLarge
from emban.models import Org, UsageDaily
from emban.runtime import Runtime
from emban.services import billing
from emban.usage import add_usage

MAX_EVENTS = 10_000
OFF_LOOP_BODY_BYTES = 64 * 1024  # bodies above this are decoded on a worker thread
MAX_NAME = 200
MAX_PROPS = 200
FUTURE_LIMIT = timedelta(hours=24)
MAX_REPORTED_ERRORS = 100
_FIELDS = frozenset(
    {"tenant_id", "event_name", "timestamp", "event_id", "user_id", "string_props", "numeric_props"}
)


def _timestamp(value: Any, now: datetime) -> str | None:
    """'YYYY-MM-DD HH:MM:SS.mmm' (UTC) or None when the value is not acceptable."""
    if not isinstance(value, str) or not value or len(value) > 64:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    if moment > now + FUTURE_LIMIT or moment.year < 1970:
        return None
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


_Name = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_NAME)]
_Optional = Annotated[str, msgspec.Meta(max_length=MAX_NAME)] | None


class _Event(msgspec.Struct, forbid_unknown_fields=True):
    tenant_id: _Name
    event_name: _Name
    timestamp: str | None = None
    event_id: _Optional = None
    user_id: _Optional = None
    string_props: dict[str, str] | None = None
    numeric_props: dict[str, float] | None = None


class _Body(msgspec.Struct):
    events: list[_Event]


_decoder = msgspec.json.Decoder(_Body)


def _decode_any(body: bytes) -> Any:
    try:
        return msgspec.json.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:  # e.g. 1e999: out of range
        raise BadRequest(f"malformed JSON: {exc}", code="invalid_json") from None


def generated_event_ids(count: int) -> Iterator[str]:
    """``count`` random 128-bit ids (32 hex digits) for events sent without one, from one read
    of the system's randomness: ``uuid4()`` per event made one ``getrandom`` call each, and a
    10,000-event batch spent most of its decoding time in the kernel."""
    pool = secrets.token_hex(16 * count)
    return (pool[i : i + 32] for i in range(0, len(pool), 32))


def parse_events(body: bytes, *, org_id: str, environment_id: str, now: datetime) -> list[EventRow]:
    """Fast path: typed decoding in C; any doubt falls back to :func:`validate_events`, which
    lists every problem."""
    try:
        decoded = _decoder.decode(body)
    except msgspec.ValidationError:
        decoded = None
    except msgspec.DecodeError as exc:
        raise BadRequest(f"malformed JSON: {exc}", code="invalid_json") from None
    if decoded is None or not 0 < len(decoded.events) <= MAX_EVENTS:
        return validate_events(
            _decode_any(body), org_id=org_id, environment_id=environment_id, now=now
        )
    stamp_now = _timestamp(now.isoformat(), now) or ""
    ids = generated_event_ids(len(decoded.events))
    rows: list[EventRow] = []
    for event in decoded.events:
        stamp = stamp_now if event.timestamp is None else _timestamp(event.timestamp, now)
        string_props = event.string_props or {}
        numeric_props = event.numeric_props or {}
        if (
            stamp is None
            or not event.tenant_id.strip()
            or not event.event_name.strip()
            or len(string_props) > MAX_PROPS
            or len(numeric_props) > MAX_PROPS
            or not all(math.isfinite(v) for v in numeric_props.values())
        ):
            return validate_events(
                _decode_any(body), org_id=org_id, environment_id=environment_id, now=now
            )
        rows.append(
            EventRow(
                org_id=org_id,
                environment_id=environment_id,
                tenant_id=event.tenant_id,
                event_name=event.event_name,
                timestamp=stamp,
                event_id=event.event_id or next(ids),
                user_id=event.user_id or "",
                string_props=string_props,
                numeric_props=numeric_props,
            )
        )
    return rows


def validate_events(raw: Any, *, org_id: str, environment_id: str, now: datetime) -> list[EventRow]:
    """The body's events → rows; any problem anywhere → 400 listing each (index, field)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("events"), list):
        raise BadRequest('body must be {"events": [...]}', field="events")
    events: list[Any] = raw["events"]
    if not events:
        raise BadRequest("events must not be empty", field="events")
    if len(events) > MAX_EVENTS:
        raise PayloadTooLarge(f"at most {MAX_EVENTS} events per request (got {len(events)})")
    errors: list[dict[str, object]] = []
    total = 0
    ids = generated_event_ids(len(events))

    def bad(index: int, field: str, message: str) -> None:
        nonlocal total
        total += 1
        if len(errors) < MAX_REPORTED_ERRORS:
            errors.append({"index": index, "field": field, "message": message})

    stamp_now = _timestamp(now.isoformat(), now) or ""
    rows: list[EventRow] = []
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            bad(index, "event", "must be an object")
            continue
        for key in event:
            if key not in _FIELDS:
                bad(index, str(key), "unknown field")
        names: dict[str, str] = {}
        for key in ("tenant_id", "event_name"):
            value = event.get(key)
            if not isinstance(value, str) or not value.strip():
                bad(index, key, "required non-empty string")
            elif len(value) > MAX_NAME:
                bad(index, key, f"at most {MAX_NAME} characters")
            else:
                names[key] = value
        stamp = stamp_now
        if event.get("timestamp") is not None:
            parsed = _timestamp(event["timestamp"], now)
            if parsed is None:
                bad(index, "timestamp", "must be ISO 8601 and at most 24 h in the future")
            else:
                stamp = parsed
        optional: dict[str, str] = {}
        for key in ("event_id", "user_id"):
            value = event.get(key)
            if value is None:
                continue
            if not isinstance(value, str) or len(value) > MAX_NAME:
                bad(index, key, f"must be a string of at most {MAX_NAME} characters")
            else:
                optional[key] = value
        string_props = event.get("string_props") or {}
        if not isinstance(string_props, dict) or len(string_props) > MAX_PROPS:
            bad(index, "string_props", f"must be an object of at most {MAX_PROPS} strings")
            string_props = {}
        for key, value in string_props.items():
            if not isinstance(value, str):
                bad(index, f"string_props.{key}", "value must be a string")
        numeric_props = event.get("numeric_props") or {}
        if not isinstance(numeric_props, dict) or len(numeric_props) > MAX_PROPS:
            bad(index, "numeric_props", f"must be an object of at most {MAX_PROPS} numbers")
            numeric_props = {}
        for key, value in numeric_props.items():
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
            ):
                bad(index, f"numeric_props.{key}", "value must be a finite number")
        if total:
            continue
        rows.append(
            EventRow(
                org_id=org_id,
                environment_id=environment_id,
                tenant_id=names["tenant_id"],
                event_name=names["event_name"],
                timestamp=stamp,
                event_id=optional.get("event_id") or next(ids),
                user_id=optional.get("user_id", ""),
                string_props=string_props,
                numeric_props={k: float(v) for k, v in numeric_props.items()},
            )
        )
    if total:
        raise InvalidEvents(errors, total)
    return rows


async def events_this_month(org_id: str, today: date) -> int:
    days = await UsageDaily.filter(org_id=org_id, day__gte=today.replace(day=1)).values_list(
        "events", flat=True
    )
    return sum(int(str(n)) for n in days)


async def ingest_events(rt: Runtime, *, actor: Principal, body: bytes) -> int:
    """Validate, check the plan's monthly limit, then wait for the durable group commit.

    ``body`` is the JSON document ``{"events": [...]}`` (both edges send bytes).
    """
    if actor.scope not in ("admin", "ingest"):
        raise Forbidden(
            "events are sent with an admin or ingest API key", code="insufficient_scope"
        )
    now = datetime.now(UTC)
    parse = functools.partial(
        parse_events, body, org_id=actor.org_id, environment_id=actor.environment_id, now=now
    )
    # A big batch is decoded on a low-priority thread: on the loop, one burst's 10,000 events
    # would hold every other request for tens of milliseconds per request.
    rows = await in_background(parse) if len(body) > OFF_LOOP_BODY_BYTES else parse()
    org = await Org.get(id=actor.org_id)
    billing.check_limit(
        org, "events_per_month", await events_this_month(org.id, now.date()), len(rows)
    )
    await rt.ingest.submit(rows)  # usage is recorded by the writer, once per flush
    return len(rows)


async def record_stored(stored: dict[str, int]) -> None:
    """The ingest writer's hook: add a flush's new rows to each org's usage for today."""
    today = datetime.now(UTC).date()
    for org_id, count in stored.items():
        await add_usage(org_id, today, events=count)

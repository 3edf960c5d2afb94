"""Event ingest: validation (every bad event listed), the monthly plan limit, group commit."""

from __future__ import annotations

import functools
import json
import math
import secrets
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, get_args, get_type_hints

import msgspec

from emban.analytics.background import in_background
from emban.analytics.ingest import EventRow
from emban.analytics.wal_ingest import IngestBacklogFull, WalIngestWriter
from emban.auth.principal import Principal
from emban.error_codes import AuthErrorCode, IngestErrorCode
from emban.errors import BadRequest, Forbidden, InvalidEvents, PayloadTooLarge, ServiceUnavailable
from emban.models import Org, UsageDaily
from emban.runtime import Runtime
from emban.services import billing
from emban.timestamps import utc_moment
from emban.usage import add_usage
from emban.wire import CONVERT_FAILURES, UNREADABLE_JSON, malformed_json

MAX_EVENTS = 10_000
BACKLOG_RETRY_AFTER = 1  # seconds: a few drain chunks (20,000 rows each)
OFF_LOOP_BODY_BYTES = 64 * 1024  # bodies above this are decoded on a worker thread
OFF_LOOP_EVENTS = 1_000  # batches above this become rows on a worker thread
MAX_NAME = 200
MAX_PROPS = 200
MAX_TIMESTAMP = 64
FUTURE_LIMIT = timedelta(hours=24)
MAX_REPORTED_ERRORS = 100
TIMESTAMP_RULE = "must be ISO 8601 and at most 24 h in the future"


def _timestamp(value: str, now: datetime) -> str | None:
    """'YYYY-MM-DD HH:MM:SS.mmm' (UTC) or None when the value is not acceptable."""
    if not value or len(value) > MAX_TIMESTAMP:
        return None
    moment = utc_moment(value)
    if moment is None or moment > now + FUTURE_LIMIT or moment.year < 1970:
        return None
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


Name = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_NAME)]
OptionalName = Annotated[str, msgspec.Meta(max_length=MAX_NAME)] | None
StringProps = Annotated[dict[str, str], msgspec.Meta(max_length=MAX_PROPS)]
NumericProps = Annotated[dict[str, float], msgspec.Meta(max_length=MAX_PROPS)]


class IngestEvent(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One event as a client sends it (POST /v1/events, GraphQL ingestEvents). A bad batch is
    refused whole, with every problem listed (index, field, message)."""

    tenant_id: Name
    event_name: Name
    timestamp: Annotated[str, msgspec.Meta(max_length=MAX_TIMESTAMP)] | None = None
    event_id: OptionalName = None
    user_id: OptionalName = None
    string_props: StringProps | None = None
    numeric_props: NumericProps | None = None


FIELDS: tuple[str, ...] = IngestEvent.__struct_fields__
_HINTS = get_type_hints(IngestEvent, include_extras=True)


class IngestBody(msgspec.Struct, forbid_unknown_fields=True):
    """Up to 10,000 events."""

    events: list[IngestEvent]


@dataclass(frozen=True)
class IngestBatch:
    """Decoded events and the moment their timestamps were checked against (an event without a
    timestamp is stamped with it)."""

    events: list[IngestEvent]
    received_at: datetime


_decoder = msgspec.json.Decoder(IngestBody)
_UNREADABLE_OR_OUT_OF_RANGE: tuple[type[BaseException], ...] = (
    *UNREADABLE_JSON,
    msgspec.ValidationError,
)


def _decode_any(body: bytes) -> Any:
    """Any JSON document, for the slow path that lists every bad event. A number msgspec will not
    read (``1e999``) is read by the standard parser as infinity, so the event holding it is the
    one reported (index and field), not the whole body."""
    try:
        return msgspec.json.decode(body)
    except _UNREADABLE_OR_OUT_OF_RANGE as exc:
        try:
            return json.loads(body)
        except (ValueError, RecursionError, UnicodeDecodeError):
            raise malformed_json(exc) from None


def generated_event_ids(count: int) -> Iterator[str]:
    """``count`` random 128-bit ids (32 hex digits) for events sent without one, from one read
    of the system's randomness: ``uuid4()`` per event made one ``getrandom`` call each, and a
    10,000-event batch spent most of its decoding time in the kernel."""
    pool = secrets.token_hex(16 * count)
    return (pool[i : i + 32] for i in range(0, len(pool), 32))


def _sound(event: IngestEvent, now: datetime) -> bool:
    """The rules the types cannot say: names not blank, the timestamp a real moment at most 24 h
    ahead, numbers finite (a GraphQL JSON value can be infinite)."""
    return (
        bool(event.tenant_id.strip())
        and bool(event.event_name.strip())
        and (event.timestamp is None or _timestamp(event.timestamp, now) is not None)
        and all(math.isfinite(v) for v in (event.numeric_props or {}).values())
    )


def decode_events_json(body: bytes, now: datetime) -> IngestBatch:
    """``{"events": [...]}`` bytes → a batch. Fast path: typed decoding in C; any doubt falls back
    to :func:`decode_events`, which lists every problem."""
    try:
        decoded = _decoder.decode(body)
    except msgspec.ValidationError:
        decoded = None
    except UNREADABLE_JSON:  # NaN, 1e999: not msgspec's JSON, maybe the standard parser's
        return decode_events(_decode_any(body), now)
    if (
        decoded is None
        or not 0 < len(decoded.events) <= MAX_EVENTS
        or not all(_sound(event, now) for event in decoded.events)
    ):
        return decode_events(_decode_any(body), now)
    return IngestBatch(decoded.events, now)


def _fits(value: object, kind: Any) -> bool:
    try:
        msgspec.convert(value, kind, strict=True)
    except CONVERT_FAILURES:
        return False
    return True


def _problems(event: object, now: datetime) -> list[tuple[str, str]]:
    """Every (field, message) wrong with one raw event, each field checked against its type in
    :class:`IngestEvent` (a missing or empty props object is no props, as it always was)."""
    if not isinstance(event, dict):
        return [("event", "must be an object")]
    found = [(str(key), "unknown field") for key in event if key not in FIELDS]
    for key in ("tenant_id", "event_name"):
        value = event.get(key)
        if isinstance(value, str) and len(value) > MAX_NAME:
            found.append((key, f"at most {MAX_NAME} characters"))
        elif not _fits(value, _HINTS[key]) or not str(value).strip():
            found.append((key, "required non-empty string"))
    stamp = event.get("timestamp")
    if stamp is not None and (
        not _fits(stamp, _HINTS["timestamp"]) or _timestamp(stamp, now) is None
    ):
        found.append(("timestamp", TIMESTAMP_RULE))
    for key in ("event_id", "user_id"):
        if not _fits(event.get(key), _HINTS[key]):
            found.append((key, f"must be a string of at most {MAX_NAME} characters"))
    for key, kind, what, rule in (
        ("string_props", StringProps, "strings", "value must be a string"),
        ("numeric_props", NumericProps, "numbers", "value must be a finite number"),
    ):
        props = event.get(key) or {}
        if not isinstance(props, dict) or len(props) > MAX_PROPS:
            found.append((key, f"must be an object of at most {MAX_PROPS} {what}"))
            continue
        value_kind = get_args(get_args(kind)[0])[1]
        for name, value in props.items():
            if not _fits(value, value_kind) or (value_kind is float and not _finite(value)):
                found.append((f"{key}.{name}", rule))
    return found


def _finite(value: Any) -> bool:
    """A JSON number that is a finite float (an integer of 400 digits is not: it overflows)."""
    try:
        return math.isfinite(float(value))
    except (OverflowError, ValueError, TypeError):
        return False


def decode_events(raw: Any, now: datetime) -> IngestBatch:
    """``{"events": [...]}`` as JSON values → a batch; any problem anywhere → 400 listing each
    (index, field)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("events"), list):
        raise BadRequest('body must be {"events": [...]}', field="events")
    for key in raw:
        if key != "events":
            raise BadRequest(f"{key} is not a known field", field=str(key))
    events: list[Any] = raw["events"]
    if not events:
        raise BadRequest("events must not be empty", field="events")
    if len(events) > MAX_EVENTS:
        raise PayloadTooLarge(f"at most {MAX_EVENTS} events per request (got {len(events)})")
    try:
        typed = msgspec.convert(events, list[IngestEvent], strict=True)
    except CONVERT_FAILURES:  # the slow path below names each field
        typed = None
    if typed is not None and all(_sound(event, now) for event in typed):
        return IngestBatch(typed, now)
    errors: list[dict[str, object]] = []
    total = 0
    decoded: list[IngestEvent] = []
    for index, event in enumerate(events):
        problems = _problems(event, now)
        total += len(problems)
        for field, message in problems[: max(0, MAX_REPORTED_ERRORS - len(errors))]:
            errors.append({"index": index, "field": field, "message": message})
        if not total:
            props = {key: event.get(key) or None for key in ("string_props", "numeric_props")}
            decoded.append(msgspec.convert({**event, **props}, IngestEvent, strict=True))
    if total:
        raise InvalidEvents(errors, total)
    return IngestBatch(decoded, now)


def event_rows(batch: IngestBatch, *, org_id: str, environment_id: str) -> list[EventRow]:
    """A decoded batch → the rows the ingest writer stores."""
    now = batch.received_at
    stamp_now = _timestamp(now.isoformat(), now) or ""
    ids = generated_event_ids(len(batch.events))
    return [
        EventRow(
            org_id=org_id,
            environment_id=environment_id,
            tenant_id=event.tenant_id,
            event_name=event.event_name,
            timestamp=stamp_now
            if event.timestamp is None
            else _timestamp(event.timestamp, now) or stamp_now,
            event_id=event.event_id or next(ids),
            user_id=event.user_id or "",
            string_props=event.string_props or {},
            numeric_props=event.numeric_props or {},
        )
        for event in batch.events
    ]


def check_can_ingest(actor: Principal) -> None:
    """403 unless an admin or ingest key sends the events (checked before the body is read)."""
    if actor.scope not in ("admin", "ingest"):
        raise Forbidden(
            "events are sent with an admin or ingest API key", code=AuthErrorCode.insufficient_scope
        )


async def decode_body(body: bytes) -> IngestBatch:
    """``POST /v1/events``' body → a batch. A big body is decoded on a low-priority thread: on
    the loop, one burst's 10,000 events would hold every other request for tens of milliseconds
    per request."""
    decode = functools.partial(decode_events_json, body, datetime.now(UTC))
    return await in_background(decode) if len(body) > OFF_LOOP_BODY_BYTES else decode()


async def events_this_month(org_id: str, today: date) -> int:
    days = await UsageDaily.filter(org_id=org_id, day__gte=today.replace(day=1)).values_list(
        "events", flat=True
    )
    return sum(int(str(n)) for n in days)


async def ingest_body(rt: Runtime, *, actor: Principal, body: bytes) -> int:
    """``POST /v1/events``: a big body is decoded and framed by a worker process
    (:mod:`emban.analytics.decode_pool`) and appended as it is; near the plan's cap, or when the
    worker refuses the body, it is decoded here (:func:`decode_body`), which names every bad
    event."""
    check_can_ingest(actor)
    pool, writer = rt.decode_pool, rt.ingest
    if pool is not None and isinstance(writer, WalIngestWriter) and len(body) > OFF_LOOP_BODY_BYTES:
        now = datetime.now(UTC)
        prepared = await pool.prepare(body, now, actor.org_id, actor.environment_id)
        if prepared is not None:
            record, count = prepared
            org = await Org.get(id=actor.org_id)
            limit = billing.plan_of(org).events_per_month
            # A plan without a monthly limit needs no usage lookup.
            if limit is None or (
                await events_this_month(org.id, now.date()) + writer.undrained(org.id) + count
                <= limit
            ):
                return await _submitted(writer.submit_record(record, count, org.id))
    return await ingest_events(rt, actor=actor, batch=await decode_body(body))


async def _check_monthly_limit(
    rt: Runtime, org: Org, limit: int, rows: list[EventRow], today: date
) -> None:
    """402 when storing ``rows`` would take ``org`` past its plan's monthly ``limit``."""
    used = await events_this_month(org.id, today)
    adding = len(rows)
    if used + rt.ingest.undrained(org.id) + adding > limit:
        # Usage counts rows once they are in the engine: near the cap, let the drain catch up
        # so events acknowledged earlier are counted.
        await rt.ingest.visible(org=org.id)
        used = await events_this_month(org.id, today)
    if used + adding > limit:
        # Only events the writer would store count against the cap: a resend of stored event
        # ids (a client retrying after a lost answer) is accepted, not refused. Asked only
        # near the cap, so the common request does not pay for the lookup.
        adding = await rt.ingest.count_new(rows)
    if adding:
        billing.check_limit(org, "events_per_month", used, adding)


async def _submitted(submit: Awaitable[int]) -> int:
    """The writer's answer; a full WAL is 503 ``ingest_backlog``."""
    try:
        return await submit
    except IngestBacklogFull as exc:
        raise ServiceUnavailable(
            "ingest is behind: the write-ahead log holds more events than the engine has taken "
            f"({exc.backlog} of {exc.limit} bytes); retry after the Retry-After seconds",
            code=IngestErrorCode.ingest_backlog,
            retry_after=BACKLOG_RETRY_AFTER,
        ) from None


async def ingest_events(rt: Runtime, *, actor: Principal, batch: IngestBatch) -> int:
    """Check the plan's monthly limit, then wait for the durable group commit of the decoded
    events (both edges decode: :func:`decode_body`, :func:`decode_events`)."""
    check_can_ingest(actor)
    rows_of = functools.partial(
        event_rows, batch, org_id=actor.org_id, environment_id=actor.environment_id
    )
    rows = await in_background(rows_of) if len(batch.events) > OFF_LOOP_EVENTS else rows_of()
    org = await Org.get(id=actor.org_id)
    limit = billing.plan_of(org).events_per_month
    if limit is not None:  # a plan without a monthly limit needs no usage lookup
        await _check_monthly_limit(rt, org, limit, rows, batch.received_at.date())
    generated = [not event.event_id for event in batch.events]
    await _submitted(rt.ingest.submit(rows, generated))  # usage recorded once drained
    return len(rows)


async def record_stored(stored: dict[str, int]) -> None:
    """The ingest writer's hook: add a flush's new rows to each org's usage for today."""
    today = datetime.now(UTC).date()
    for org_id, count in stored.items():
        await add_usage(org_id, today, events=count)

"""Client timestamps: any text is a moment or None, never an exception (issue 12: an ISO value
out of range after its offset was a 500 for the whole ingest batch and in embed date ranges)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from emban.services.events import _timestamp
from emban.timestamps import utc_moment
from tests.conftest import ClientFactory, bearer, register

EDGES = ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-23:59", "0001-01-01T00:30:00+00:31"]


def test_out_of_range_after_the_offset_is_none() -> None:
    for value in EDGES:
        assert utc_moment(value) is None, value
    assert utc_moment("0001-01-01T00:00:00-01:00") == datetime(1, 1, 1, 1, tzinfo=UTC)
    assert utc_moment("2026-11-29T10:00:00") == datetime(2026, 11, 29, 10, tzinfo=UTC)
    assert utc_moment("2026-11-29T10:00:00+02:00") == datetime(2026, 11, 29, 8, tzinfo=UTC)
    assert utc_moment("yesterday") is None


@given(st.text(max_size=40))
def test_any_text_is_a_moment_or_none(value: str) -> None:
    moment = utc_moment(value)
    assert moment is None or moment.tzinfo is UTC


@given(st.datetimes(timezones=st.timezones()))
def test_any_aware_datetime_round_trips_or_is_refused(moment: datetime) -> None:
    try:
        expected: datetime | None = moment.astimezone(UTC)
    except OverflowError:
        expected = None
    assert utc_moment(moment.isoformat()) == expected


def test_ingest_refuses_them_as_a_field_error() -> None:
    now = datetime.now(UTC)
    for value in EDGES:
        assert _timestamp(value, now) is None
    assert _timestamp((now - timedelta(hours=1)).isoformat(), now) is not None


async def test_an_out_of_range_timestamp_is_a_field_error_not_a_500(
    make_client: ClientFactory,
) -> None:
    client = await make_client()
    key = (await register(client))["api_key"]["key"]
    events = [
        {"tenant_id": "t", "event_name": "e"},
        {"tenant_id": "t", "event_name": "e", "timestamp": EDGES[0]},
    ]
    response = await client.post("/v1/events", json={"events": events}, headers=bearer(key))
    assert response.status == 400
    body = await response.json()
    assert (body["code"], body["errors"]) == (
        "invalid_events",
        [
            {
                "index": 1,
                "field": "timestamp",
                "message": "must be ISO 8601 and at most 24 h in the future",
            }
        ],
    )

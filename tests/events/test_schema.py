"""Event schemas: clear errors naming field and value; optional fields evolve compatibly."""

from __future__ import annotations

import pytest

from loopline.events import Codec, Event
from loopline.exceptions import SchemaError


class TransactionV1(Event, frozen=True, kw_only=True):
    v: int = 1
    card_token: str
    amount: float
    channel: str


class TransactionV2(Event, frozen=True, kw_only=True):
    v: int = 2
    card_token: str
    amount: float
    channel: str
    device_id: str | None = None  # the compatible evolution: a new optional field


V1, V2 = Codec(TransactionV1), Codec(TransactionV2)


def test_round_trip() -> None:
    event = TransactionV1(card_token="tok", amount=12.5, channel="cnp")
    assert V1.decode(V1.encode(event)) == event


def test_a_missing_field_is_named() -> None:
    with pytest.raises(SchemaError, match="missing field 'amount'") as excinfo:
        V1.decode(b'{"v": 1, "card_token": "tok", "channel": "cp"}')
    assert excinfo.value.field == "amount"
    assert "TransactionV1 v1 requires it" in str(excinfo.value)


def test_a_wrong_type_names_field_value_and_type() -> None:
    with pytest.raises(SchemaError) as excinfo:
        V1.decode(b'{"v": 1, "card_token": "tok", "amount": "12,50", "channel": "cp"}')
    message = str(excinfo.value)
    assert "field 'amount'" in message
    assert "'12,50'" in message
    assert "`float`" in message
    assert (excinfo.value.field, excinfo.value.value) == ("amount", "12,50")


def test_an_unknown_field_in_a_same_version_event_is_an_error() -> None:
    raw = b'{"v": 1, "card_token": "t", "amount": 1.0, "channel": "cp", "amout": 2}'
    with pytest.raises(SchemaError, match="unknown field 'amout'") as excinfo:
        V1.decode(raw)
    assert "new schema version (v2)" in str(excinfo.value)
    assert excinfo.value.value == 2


def test_old_readers_accept_newer_events_with_an_added_optional_field() -> None:
    raw = V2.encode(TransactionV2(card_token="t", amount=3.0, channel="cnp", device_id="d-1"))
    assert V1.decode(raw) == TransactionV1(v=2, card_token="t", amount=3.0, channel="cnp")


def test_new_readers_fill_defaults_into_older_events() -> None:
    raw = V1.encode(TransactionV1(card_token="t", amount=3.0, channel="cnp"))
    assert V2.decode(raw) == TransactionV2(v=1, card_token="t", amount=3.0, channel="cnp")


def test_a_newer_event_still_needs_the_fields_the_reader_requires() -> None:
    with pytest.raises(SchemaError, match="missing field 'channel'"):
        V1.decode(b'{"v": 2, "card_token": "t", "amount": 3.0, "device_id": "d"}')


@pytest.mark.parametrize("raw", [b"{oops", b"[1, 2]", b'"text"'])
def test_not_an_object_is_a_clear_error(raw: bytes) -> None:
    with pytest.raises(SchemaError, match=r"Event 'TransactionV1' \(v1\)"):
        V1.decode(raw)

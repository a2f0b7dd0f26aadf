"""Records that fail validation go to <topic>.dlq with their reason and original bytes."""

from __future__ import annotations

from loopline.events import (
    Codec,
    DeadLetterQueue,
    Event,
    EventLog,
    Message,
    TopicPartition,
    dead_letter_topic,
    decode_or_dead_letter,
)


class Payment(Event, frozen=True, kw_only=True):
    v: int = 1
    card_token: str
    amount: float


def test_invalid_records_go_to_the_dead_letter_topic(log: EventLog, topic: str) -> None:
    codec = Codec(Payment)
    log.create_topic(topic, partitions=2)
    good = [codec.encode(Payment(card_token=f"tok-{i}", amount=float(i))) for i in range(5)]
    bad = [
        b'{"v": 1, "card_token": "tok-x"}',
        b'{"v": 1, "card_token": "t", "amount": "ten"}',
        b"\xff not json",
    ]
    log.append_many(topic, [Message(v, key=b"k") for v in good[:3] + bad + good[3:]])
    (partition,) = {p for p in range(2) if log.end_offset(TopicPartition(topic, p))}
    records = log.read(TopicPartition(topic, partition), 0)

    dlq = DeadLetterQueue(log, topic)
    decoded = decode_or_dead_letter(records, codec, dlq)

    assert [event.card_token for _, event in decoded] == [f"tok-{i}" for i in range(5)]
    letters = [
        DeadLetterQueue.parse(r) for r in log.read(TopicPartition(dead_letter_topic(topic), 0), 0)
    ]
    assert [letter.value for letter in letters] == bad
    assert [letter.offset for letter in letters] == [3, 4, 5]
    assert all(letter.source_topic == topic and letter.key == b"k" for letter in letters)
    assert "missing field 'amount'" in letters[0].reason
    assert "'amount'" in letters[1].reason
    assert "'ten'" in letters[1].reason
    assert "not valid JSON" in letters[2].reason
    assert {letter.error for letter in letters} == {"SchemaError"}


def test_card_numbers_are_masked_before_a_dead_letter_is_stored(log: EventLog, topic: str) -> None:
    """A producer sending a raw card number (PAN) where a token belongs: the dead letter
    keeps the record's shape but no PAN, in its value, key or reason (which quotes the
    refused value), and says how many runs it masked."""
    codec = Codec(Payment)
    log.create_topic(topic, partitions=1)
    pan, spaced = "4111111111111111", "5500 0000 0000 0004"
    raw = b'{"v": 1, "card_token": "%s", "amount": "%s", "order": 1234567890123}' % (
        pan.encode(),
        spaced.encode(),
    )
    log.append_many(topic, [Message(raw, key=pan.encode())])
    records = log.read(TopicPartition(topic, 0), 0)

    assert decode_or_dead_letter(records, codec, DeadLetterQueue(log, topic)) == []

    (stored,) = log.read(TopicPartition(dead_letter_topic(topic), 0), 0)
    for text in (pan, spaced, pan[:4] + " " + pan[4:]):
        assert text.encode() not in stored.value
    assert stored.key is not None
    assert pan.encode() not in stored.key
    letter = DeadLetterQueue.parse(stored)
    assert b"*" * len(pan) in letter.value
    assert b"1234567890123" in letter.value  # 13 digits failing Luhn: not a card number
    assert pan not in letter.reason
    assert spaced not in letter.reason
    assert letter.masked_pans == 4  # the value's two, the key's and the reason's

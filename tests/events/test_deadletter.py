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

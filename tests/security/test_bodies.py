"""Hostile bodies against the live process: card numbers in identifiers and headers,
oversized, slow and malformed bodies, events from the future. Each is a 4xx naming
what is wrong; none is a 5xx, none holds the service."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest

from .conftest import PAN, SCORE_KEY, Live, transaction

IDENTIFIERS = ["transaction_id", "customer_id", "terminal_id", "card_token", "device_id"]
SPELLINGS = [PAN, "4111-1111-1111-1111", f"id_{PAN}", f"c:{PAN}|x"]


def _score(live: Live, body: dict[str, object], **headers: str) -> httpx.Response:
    return httpx.post(
        f"{live.url}/v1/score", json=body, headers={"X-API-Key": SCORE_KEY, **headers}
    )


@pytest.mark.parametrize("field", [*IDENTIFIERS, "merchant_category"])
@pytest.mark.parametrize("spelling", SPELLINGS)
def test_a_card_number_in_any_identifier_is_refused(live: Live, field: str, spelling: str) -> None:
    r = _score(live, transaction(1000, **{field: spelling}))
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field
    assert PAN not in r.text


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_a_card_number_as_idempotency_key_is_refused(live: Live, spelling: str) -> None:
    r = _score(live, transaction(1001), **{"Idempotency-Key": spelling})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "Idempotency-Key"


def test_a_card_number_where_it_belongs_is_tokenized(live: Live) -> None:
    r = _score(live, transaction(1002, card_token=None, card_number=PAN))
    assert r.status_code == 200, r.text
    assert PAN not in r.text


def test_an_event_time_from_the_future_is_refused(live: Live) -> None:
    # one such request once moved the watermark to 2099: every real event was late
    for at in (4_000_000_000_000, int(time.time() * 1000) + 3_600_000):
        r = _score(live, transaction(1003, event_time_ms=at))
        assert r.status_code == 422, r.text
        assert r.json()["field"] == "event_time_ms"
    assert _score(live, transaction(1004, event_time_ms=int(time.time() * 1000))).is_success


def test_oversized_and_malformed_bodies(live: Live) -> None:
    url, key = f"{live.url}/v1/score", {"X-API-Key": SCORE_KEY}
    big = httpx.post(url, content=b"{" + b" " * 1_000_000 + b"}", headers=key)
    assert big.status_code == 413
    for bad in (b"\xff\xfe{}", b'{"transaction_id": "\xc3\x28"}', b"\x00" * 10, b"[" * 5000):
        r = httpx.post(url, content=bad, headers={**key, "content-type": "application/json"})
        assert 400 <= r.status_code < 500, (bad[:20], r.status_code, r.text)
        assert "error" in r.json()


def _slow_sender(port: int, results: list[bytes]) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        head = (
            f"POST /v1/score HTTP/1.1\r\nHost: x\r\nX-API-Key: {SCORE_KEY}\r\n"
            "Content-Type: application/json\r\nContent-Length: 400\r\n\r\n"
        )
        s.sendall(head.encode() + b"{")
        try:
            for _ in range(8):  # a byte a second: 400 bytes would take minutes
                time.sleep(1)
                s.sendall(b" ")
        except OSError:
            pass  # the server closed the connection: what should happen
        results.append(s.recv(4096))


def test_slow_senders_are_cut_off_and_hold_no_slot(live: Live) -> None:
    port = int(live.url.rsplit(":", 1)[1])
    results: list[bytes] = []
    threads = [threading.Thread(target=_slow_sender, args=(port, results)) for _ in range(20)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    started = time.monotonic()
    assert _score(live, transaction(1005)).status_code == 200  # others are still served
    assert time.monotonic() - started < 1.0
    for t in threads:
        t.join(timeout=30)
    assert len(results) == 20
    assert all(r.startswith(b"HTTP/1.1 408") for r in results), results[:2]

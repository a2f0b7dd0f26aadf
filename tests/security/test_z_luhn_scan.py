"""Last in this package (the name sorts last): after every hostile request above, the
live process is stopped and every file it wrote (databases, event-log topics, dead
letters, its log lines) is scanned for card numbers: none (PCI DSS 3.3-3.5)."""

from __future__ import annotations

import httpx

from loopline.privacy import find_pans

from .conftest import PAN, SCORE_KEY, Live, transaction


def test_no_card_number_is_left_anywhere_after_the_run(live: Live) -> None:
    url, key = f"{live.url}/v1/score", {"X-API-Key": SCORE_KEY}
    body = transaction(5000, card_token=None, card_number=PAN)
    assert httpx.post(url, json=body, headers=key).status_code == 200
    for field in ("customer_id", "device_id"):  # refused, so written nowhere either
        assert httpx.post(url, json=transaction(5001, **{field: PAN}), headers=key).is_error
    live.proc.terminate()
    # uvicorn shuts down cleanly (writing what the service holds), then re-raises SIGTERM
    assert live.proc.wait(timeout=30) in (0, -15)
    scanned, found = 0, []
    for path in [*sorted(live.state.rglob("*")), live.log]:
        if path.is_file():
            text = path.read_bytes().decode("latin-1")
            scanned += 1
            found += [(path.name, pan) for pan in find_pans(text)]
            assert PAN not in text, path.name
    assert scanned >= 4, "the decisions, features, events and log were there to scan"
    assert found == []

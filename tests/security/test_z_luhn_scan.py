"""Last in this package (the name sorts last): after every hostile request above, the
live process is stopped and every file it wrote (databases, event-log topics, dead
letters, its log lines) is scanned for card numbers: none (PCI DSS 3.3-3.5).

Two scans, because a raw one alone is not exact on a database file: SQLite writes a
value and the next field's bytes side by side, so a stored 14-digit id followed by a
one-byte integer that happens to be an ASCII digit reads as a 15-digit run in the raw
bytes (seen: the key ``08285074711332`` then rowid 49, ``'1'``). So every card number
that was sent (the fuzzer's included) is looked for as a digit run in the raw bytes of
every file, WAL frames and unused space too; and every value SQLite holds, one at a time, is
scanned for any Luhn-valid run; the log, text, is scanned whole."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import httpx

from loopline.privacy import find_pans

from .conftest import PAN, SCORE_KEY, Live, sent_pans, transaction

# a digit run, not the fraction of a decimal number: a sent "0000000000000" is inside many
# stored numbers, and no card number
DIGITS = re.compile(r"(?<![0-9.])[0-9]+")


def stored_values(db: Path) -> list[str]:
    """Every text and blob value of every table in the SQLite database ``db``."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        tables = [t for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        values = []
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                for v in row:
                    if isinstance(v, bytes):
                        values.append(v.decode("latin-1"))
                    elif isinstance(v, str):
                        values.append(v)
        return values
    finally:
        conn.close()


def test_no_card_number_is_left_anywhere_after_the_run(live: Live) -> None:
    url, key = f"{live.url}/v1/score", {"X-API-Key": SCORE_KEY}
    body = transaction(5000, card_token=None, card_number=PAN)
    assert httpx.post(url, json=body, headers=key).status_code == 200
    sent_pans.add(PAN)
    for field in ("customer_id", "device_id"):  # refused, so written nowhere either
        assert httpx.post(url, json=transaction(5001, **{field: PAN}), headers=key).is_error
    live.proc.terminate()
    # uvicorn shuts down cleanly (writing what the service holds), then re-raises SIGTERM
    assert live.proc.wait(timeout=30) in (0, -15)
    files = [p for p in [*sorted(live.state.rglob("*")), live.log] if p.is_file()]
    assert len(files) >= 4, "the decisions, features, events and log were there to scan"
    assert len(sent_pans) > 10, "the fuzzer sent card numbers too"
    found = []
    for path in files:  # raw bytes: no card number that was sent, as a run of its own
        runs = set(DIGITS.findall(path.read_bytes().decode("latin-1")))
        found += [(path.name, pan) for pan in sent_pans & runs]
    databases = [p for p in files if p.suffix == ".db"]
    assert {p.name for p in databases} >= {"decisions.db", "events.db", "features.db"}
    for db in databases:  # what SQLite holds, value by value: no Luhn-valid run at all
        values = stored_values(db)
        assert values, db.name
        found += [(db.name, pan) for v in values for pan in find_pans(v)]
    found += [(live.log.name, pan) for pan in find_pans(live.log.read_text("latin-1"))]
    assert found == []

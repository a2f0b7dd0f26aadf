"""A live ``loopline serve fraud`` process, as an attacker meets it, with one key per
kind of caller."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from loopline.privacy import find_pans
from loopline.registry import Registry
from loopline.serving import KeyRing, new_key
from tests.fraud.conftest import fraud_registry, rules_file, service  # noqa: F401 (fixtures)
from tests.fraud.test_service_durability import _port

SCORE_KEY, SCORE = new_key("scorer", ["score"])
DETAIL_KEY, DETAIL = new_key("analyst", ["score", "detail"])
MONITOR_KEY, MONITOR = new_key("dashboard", ["monitor"])
ADMIN_KEY, ADMIN = new_key("ops", ["admin"])
PAN = "4111111111111111"  # a test card number (passes Luhn)
# every card number the tests sent the live process (the fuzzer's too): none may be stored
sent_pans: set[str] = set()


def note_pans(value: object) -> None:
    """Add the card numbers in ``value`` (a request body or headers, nested) to
    :data:`sent_pans`."""
    if isinstance(value, str):
        sent_pans.update(find_pans(value))
    elif isinstance(value, dict):
        for v in value.values():
            note_pans(v)
    elif isinstance(value, list):
        for v in value:
            note_pans(v)


@dataclass
class Live:
    url: str
    state: Path
    keys: Path
    log: Path  # the process's stderr (its JSON log lines)
    proc: subprocess.Popen[bytes]


@pytest.fixture(scope="package")
def live(
    tmp_path_factory: pytest.TempPathFactory,
    fraud_registry: Registry,  # noqa: F811
) -> Iterator[Live]:
    root = tmp_path_factory.mktemp("live")
    keys = root / "keys.json"
    KeyRing([SCORE, DETAIL, MONITOR, ADMIN]).save(keys)
    port = _port()
    log = root / "serve.log"
    loopline = str(Path(sys.executable).parent / "loopline")
    cmd = [loopline, "serve", "fraud", "--port", str(port), "--state", str(root / "state")]
    cmd += ["--registry", fraud_registry.uri, "--keys", str(keys), "--body-timeout-s", "1"]
    with log.open("wb") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise AssertionError(log.read_text()[-3000:])
        time.sleep(0.2)
    yield Live(url, root / "state", keys, log, proc)
    proc.terminate()
    proc.wait(timeout=30)


def transaction(i: int, **change: object) -> dict[str, object]:
    body: dict[str, object] = {
        "transaction_id": f"sec-{i}",
        "amount": 42.5,
        "currency": "EUR",
        "channel": "cnp",
        "customer_id": f"cust-{i % 7}",
        "terminal_id": "term-0000001",
        "merchant_category": "5411",
        "card_token": f"tok_{i % 5:032x}",
    }
    body.update(change)
    return {k: v for k, v in body.items() if v is not None}

"""Who may do what, against the live process: every admin and monitoring route refused
without a key and to a score-only key; exact scores only with the detail scope; revoked
and expired keys refused without a restart; random paths never grow the metrics."""

from __future__ import annotations

import secrets
import time

import httpx
import pytest

from loopline.serving import KeyRing, new_key

from .conftest import ADMIN_KEY, DETAIL_KEY, MONITOR_KEY, SCORE_KEY, Live, transaction

ADMIN_ROUTES = ["model/reload", "model/rollback", "routing", "rules/reload"]


@pytest.mark.parametrize("action", ADMIN_ROUTES)
def test_admin_routes_need_the_admin_scope(live: Live, action: str) -> None:
    url = f"{live.url}/admin/{action}"
    assert httpx.post(url, json={}).status_code == 401
    for key in (SCORE_KEY, DETAIL_KEY, MONITOR_KEY):
        r = httpx.post(url, json={}, headers={"X-API-Key": key})
        assert r.status_code == 403, r.text
        assert r.json()["field"] == "X-API-Key"


def test_monitoring_data_needs_the_monitor_scope_and_works_before_any_label(live: Live) -> None:
    # it once needed no key, and answered 500 on a service with decisions but no labels
    for i in range(3):
        r = httpx.post(
            f"{live.url}/v1/score", json=transaction(i), headers={"X-API-Key": SCORE_KEY}
        )
        assert r.status_code == 200, r.text
    url = f"{live.url}/monitor/data"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"X-API-Key": SCORE_KEY}).status_code == 403
    for key in (MONITOR_KEY, ADMIN_KEY):
        r = httpx.get(url, headers={"X-API-Key": key})
        assert r.status_code == 200, r.text
        assert r.json()["title"]
    page = httpx.get(f"{live.url}/monitor")
    assert page.status_code == 200
    assert b"series" in page.content  # the shell: no data
    assert b"X-API-Key" in page.content


def test_exact_scores_and_reasons_need_the_detail_scope(live: Live) -> None:
    body = transaction(100)
    plain = httpx.post(f"{live.url}/v1/score", json=body, headers={"X-API-Key": SCORE_KEY})
    assert plain.status_code == 200, plain.text
    assert plain.json()["score"] is None
    assert plain.json()["reasons"] is None
    assert plain.json()["decision"] in ("approve", "review", "decline")
    body = transaction(101)
    full = httpx.post(f"{live.url}/v1/score", json=body, headers={"X-API-Key": DETAIL_KEY})
    assert isinstance(full.json()["score"], float)
    assert isinstance(full.json()["reasons"], list)


def test_another_callers_idempotency_key_is_not_replayed(live: Live) -> None:
    body = transaction(200)
    first = httpx.post(f"{live.url}/v1/score", json=body, headers={"X-API-Key": DETAIL_KEY})
    assert first.status_code == 200
    other = httpx.post(f"{live.url}/v1/score", json=body, headers={"X-API-Key": SCORE_KEY})
    assert other.status_code == 422, "another caller's answer is not theirs to see"
    again = httpx.post(f"{live.url}/v1/score", json=body, headers={"X-API-Key": DETAIL_KEY})
    assert again.json()["replayed"] is True
    assert again.json()["score"] == first.json()["score"]


def test_revoked_and_expired_keys_stop_working_without_a_restart(live: Live) -> None:
    key, stored = new_key("temporary", ["score"])
    soon, expiring = new_key("expiring", ["score"], expires_ms=int(time.time() * 1000) + 3000)
    ring = KeyRing.load(live.keys)
    ring.keys += [stored, expiring]
    ring.save(live.keys)
    assert oct(live.keys.stat().st_mode & 0o777) == "0o600"

    def status(k: str, i: int) -> int:
        r = httpx.post(f"{live.url}/v1/score", json=transaction(i), headers={"X-API-Key": k})
        return r.status_code

    deadline = time.monotonic() + 10  # the service looks at the file every 2 s
    while status(key, 300) != 200:
        assert time.monotonic() < deadline, "a new key is taken without a restart"
        time.sleep(0.5)
    assert status(soon, 301) == 200
    ring = KeyRing.load(live.keys)
    assert ring.revoke("temporary") == 1
    ring.save(live.keys)
    deadline = time.monotonic() + 10
    while status(key, 302) != 401:
        assert time.monotonic() < deadline, "a revoked key is refused without a restart"
        time.sleep(0.5)
    while time.time() * 1000 < expiring.expires_ms:  # type: ignore[operator]
        time.sleep(0.2)
    assert status(soon, 303) == 401


def _series(live: Live) -> int:
    text = httpx.get(f"{live.url}/metrics").text
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))


def test_a_thousand_random_paths_do_not_grow_the_metrics(live: Live) -> None:
    httpx.post(f"{live.url}/admin/warm-up", json={})  # the "other" label exists
    httpx.get(f"{live.url}/nothing-here")
    _series(live)  # /metrics itself is counted from its first scrape on
    before = _series(live)
    with httpx.Client(base_url=live.url) as c:
        for i in range(1000):
            path = f"/{'admin/' if i % 2 else ''}{secrets.token_urlsafe(8)}"
            r = c.post(path, json={}) if i % 3 else c.get(path)
            assert r.status_code in (401, 404, 405), (path, r.status_code)
    after = _series(live)
    assert after == before, f"{before} -> {after} series"

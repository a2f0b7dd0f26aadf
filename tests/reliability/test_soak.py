"""A soak: the scoring process (`loopline serve fraud`, embedded defaults) under sustained
open-loop load for three minutes. After warm-up its resident memory grows by at most 5 %,
and every request is answered 200.

Event time runs far faster than wall time here (150 simulated customers, about a
simulated day a second), so the warm-up covers two of the feature views' longest windows,
the horizon after which idle entities give their state back. `loopline bench soak`
runs the same for ten minutes with a report.
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

from loopline.apps.fraud.data import request_bodies
from loopline.apps.fraud.simulator import profile, simulate
from loopline.registry import Registry
from loopline.serving import KeyRing
from loopline.testing.soak import soak
from tests.fraud.conftest import SCORE, SCORE_KEY
from tests.fraud.test_service_durability import _close, _port, _start

SECONDS, RATE, WARMUP_S = 180.0, 250.0, 90.0
CUSTOMERS = 150


def test_memory_is_flat_and_nothing_fails_under_sustained_load(
    tmp_path: Path, fraud_registry: Registry
) -> None:
    days = math.ceil(SECONDS * RATE / (2 * CUSTOMERS) * 1.3)  # about 2 a customer a day
    setting = profile("full", customers=CUSTOMERS, terminals=2 * CUSTOMERS, days=days)
    transactions = simulate(setting, seed=21).transactions
    keys = tmp_path / "keys.json"
    KeyRing([SCORE]).save(keys)
    port = _port()
    proc = _start(tmp_path / "state", fraud_registry, keys, port)
    try:
        result = asyncio.run(
            soak(
                port,
                SCORE_KEY,
                proc.pid,
                request_bodies(transactions),
                path="/v1/score",
                seconds=SECONDS,
                rate=RATE,
                warmup_s=WARMUP_S,
                window_s=20.0,
                progress=False,
            )
        )
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        _close(proc)
    summary = result.summary()
    assert result.sent == int(SECONDS * RATE)
    assert result.errors == 0, summary
    assert result.growth <= 0.05, summary
    assert summary["answered_tps"] >= 0.95 * RATE, summary


def test_growth_compares_the_window_after_warm_up_with_the_last() -> None:
    from loopline.testing.soak import SoakResult

    r = SoakResult(seconds=60, rate=1, warmup_s=20, window_s=10)
    r.rss_mb = [(t, 100.0 if t < 20 else 200.0 + (10 if t >= 50 else 0)) for t in range(61)]
    assert (r.warm_mb, r.end_mb) == (200.0, 210.0)
    assert round(r.growth, 3) == 0.05


def test_a_soak_too_short_to_compare_is_refused() -> None:
    import pytest

    from loopline.exceptions import ConfigError
    from loopline.testing.soak import check

    with pytest.raises(ConfigError, match="soak seconds=30"):
        check(30, 20, 10)

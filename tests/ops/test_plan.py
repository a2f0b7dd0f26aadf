"""The capacity and cost planner against worked examples computed by hand (the arithmetic
is in the comments; docs/planning.md repeats the first example)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from loopline.capacity import erlang_c
from loopline.exceptions import ConfigError
from loopline.ops.plan import Lever, Load, Role, Storage, Workload, plan
from loopline.ops.plan_sizing import p_response_over, servers_for_p99
from loopline.ops.prices import load_prices
from loopline.ops.results import load, save

GIB = 1024**3

# Round prices for the worked examples (a --prices file, overriding the defaults).
PRICES = """
core_hour = 0.05
memory_gib_hour = 0.01
storage_gib_month = 0.1
object_gib_month = 0.02
egress_gib = 0.1
inter_region_gib = 0.02
spot_discount = 0.6
hours_month = 730
date = "test"
source = "the worked example"
"""


@pytest.fixture
def prices_file(tmp_path: Path) -> Path:
    path = tmp_path / "prices.toml"
    path.write_text(PRICES)
    return path


def toy(folder: Path) -> Workload:
    """Two roles whose per-core figures come from a saved result, as an app's would."""
    saved = load("toy", folder)
    return Workload(
        roles=[
            Role(name="a", per_core=saved.figure("a_per_s"), memory_gib=2.0, source="toy"),
            Role(
                name="b",
                per_core=saved.figure("b_per_s"),
                share=0.5,
                on_path=False,
                max_utilisation=0.5,
                memory_gib=1.0,
                source="toy",
            ),
        ],
        storage=[
            Storage(name="event log", bytes_per_record=1000.0),
            Storage(name="artifacts", retained=False, fixed_gib=10.0, kind="object"),
        ],
        egress_bytes_per_request=2000.0,
        levers=[Lever(name="batching", roles=("a",), throughput=2.0), Lever(name="quantization")],
        sources=[saved],
    )


def test_erlang_c_matches_closed_forms_and_scales() -> None:
    # M/M/1: an arrival waits with probability rho; M/M/2: C = 2 rho^2 / (1 + rho)
    assert erlang_c(1, 0.5) == pytest.approx(0.5, rel=1e-12)
    assert erlang_c(2, 1.5) == pytest.approx(2 * 0.75**2 / 1.75, rel=1e-12)
    # 3,000 servers at a = 2,950: a^k / k! overflows there; the recursion does not
    assert 0 < erlang_c(3000, 2950.0) < erlang_c(3000, 2990.0) < 1
    # c = 2951: theta = 2951 / 0.001 - 2.95e6 = 1000/s, the wait's tail at 50 ms ~ e^-50
    assert servers_for_p99(2_950_000.0, 0.001, 0.05) == 2951


def test_mm1_tail_is_exponential() -> None:
    # M/M/1: the response time is exponential with rate mu - lambda = 100 - 60
    assert p_response_over(0.05, 60.0, 0.01, 1) == pytest.approx(math.exp(-40 * 0.05))


def test_servers_for_p99_by_hand() -> None:
    # s = 10 ms, lambda = 150/s, a = 1.5, objective 50 ms.
    # c = 2: ErlangC = (1.5^2/2 * 2/0.5) / (1 + 1.5 + 4.5) = 4.5 / 7 = 0.642857, theta = 50/s:
    #   P(T > .05) = 0.357143 e^-5 + 0.642857 (50 e^-5 - 100 e^-2.5) / -50 = 0.1036 > 0.01
    # c = 3: ErlangC = 1.125 / 4.75 = 0.236842, theta = 150/s:
    #   P = 0.763158 e^-5 + 0.236842 (150 e^-5 - 100 e^-7.5) / 50 = 0.005142 + 0.004526
    #     = 0.009668 <= 0.01  -> 3 servers
    assert p_response_over(0.05, 150.0, 0.01, 2) == pytest.approx(0.10361, abs=1e-4)
    assert p_response_over(0.05, 150.0, 0.01, 3) == pytest.approx(0.0096676, abs=1e-6)
    assert servers_for_p99(150.0, 0.01, 0.05) == 3
    # an idle server's own p99 (10 ms x ln 100 = 46 ms) above a 40 ms objective: unreachable
    assert servers_for_p99(150.0, 0.01, 0.04) is None


def test_the_worked_example(tmp_path: Path, prices_file: Path) -> None:
    save("toy", {"a_per_s": 100.0, "b_per_s": 400.0}, folder=tmp_path, command="by hand")
    load_ = Load(rate=50.0, peak=3.0, latency_ms=50.0, retention_days=10.0, peak_hours=4.0)
    made = plan(toy(tmp_path), load_, load_prices(prices_file))
    out = made.to_dict()
    # role a, on the path: peak 150/s at 100/s a core -> 3 cores for p99 <= 50 ms (above),
    # + 1 spare = 4 instances of 1 core, 2 GiB: 4 x (0.05 + 2 x 0.01) x 730 = 204.40
    a, b = out["roles"]["a"], out["roles"]["b"]
    assert (a["cores"], a["memory_gib"], a["sizing"]) == (4, 8.0, "p99")
    assert a["monthly_cost"] == pytest.approx(204.40)
    # role b, off the path: 150 x 0.5 = 75/s, ceil(75 / (400 x 0.5)) = 1, + 1 spare = 2;
    # 2 x (0.05 + 1 x 0.01) x 730 = 87.60
    assert (b["cores"], b["memory_gib"], b["sizing"]) == (2, 2.0, "throughput")
    assert b["monthly_cost"] == pytest.approx(87.60)
    # event log: 1000 B x 50/s x 86,400 s x 10 days = 4.32e10 B = 40.2331 GiB at 0.1;
    # artifacts 10 GiB at 0.02 -> storage 50.2331 GiB, 4.02331 + 0.2 = 4.22331
    assert out["storage_gib"] == pytest.approx(50.2331, abs=1e-3)
    assert made.storage_cost == pytest.approx(4.22331, abs=1e-4)
    # egress: 2000 B x 50/s x 730 h x 3600 s = 2.628e11 B = 244.7516 GiB at 0.1 = 24.47516
    assert out["network"]["egress_gib_month"] == pytest.approx(244.7516, abs=1e-3)
    # total: 204.40 + 87.60 + 4.22331 + 24.47516 = 320.6985
    assert (out["cores"], out["memory_gib"]) == (6, 10.0)
    assert out["monthly_cost"] == pytest.approx(320.70, abs=0.01)
    rows = {w["name"]: w for w in out["what_ifs"]}
    # spot: compute x 0.4, 2 spares: a 5 x 0.07 x 0.4 x 730 = 102.20, b 3 x 0.06 x 0.4 x 730
    # = 52.56; + 4.22331 + 24.47516 = 183.4585
    assert rows["spot"]["monthly_cost"] == pytest.approx(183.46, abs=0.01)
    # autoscaling: off peak (24 x 50 - 4 x 150) / 20 = 30/s. a at 30/s: c = 2 (ErlangC(2, 0.3)
    # = 0.0391304, P = 0.0064743 + 0.0006289 = 0.0071 <= 0.01), 3 instances = 153.30;
    # b: 2 instances = 87.60 -> 240.90 off peak, 292.00 at peak:
    # (4 x 292.00 + 20 x 240.90) / 24 = 249.41667; + 28.69847 = 278.1151
    assert rows["autoscaling"]["monthly_cost"] == pytest.approx(278.12, abs=0.01)
    # batching x2 on a: s = 5 ms, a = 0.75; c = 2: ErlangC 0.204545, theta 250, mu 200,
    # P = 0.795455 e^-10 + 0.204545 (250 e^-10 - 200 e^-12.5) / 50 = 7.95e-5 -> 2 + 1 = 3
    # instances, 153.30 instead of 204.40: 320.6985 - 51.10 = 269.5985
    assert rows["batching"]["monthly_cost"] == pytest.approx(269.60, abs=0.01)
    assert rows["quantization"]["monthly_cost"] is None
    assert rows["quantization"]["note"] == "not measured"
    # the inputs used: the saved result's benchmark, date, machine, command
    assert out["sources"][0]["benchmark"] == "toy"
    assert out["sources"][0]["command"] == "by hand"
    assert out["sources"][0]["machine"]["cores"] >= 1


def test_two_regions_double_the_spares_and_replicate(tmp_path: Path, prices_file: Path) -> None:
    save("toy", {"a_per_s": 100.0, "b_per_s": 400.0}, folder=tmp_path)
    load_ = Load(rate=50.0, peak=3.0, latency_ms=50.0, retention_days=10.0, regions=2)
    out = plan(toy(tmp_path), load_, load_prices(prices_file)).to_dict()
    # a region: 75/s at a = 0.75 -> c = 3 (see the batching case's a, at s = 10 ms: c = 2
    # gives 0.01067 > 0.01, c = 3 gives 0.00698), + 1 spare = 4 a region, 8 in all
    assert out["roles"]["a"]["cores"] == 8
    # the event log twice (40.2331 x 2) and written across: 1000 B x 50/s x 2.628e6 s
    # = 1.314e11 B = 122.3758 GiB a month at 0.02
    assert out["storage"]["event log"] == pytest.approx(80.4663, abs=1e-3)
    assert out["network"]["inter_region_gib_month"] == pytest.approx(122.3758, abs=1e-3)


def test_prices_override_field_by_field(tmp_path: Path) -> None:
    default = load_prices()
    assert default.date
    assert default.source
    assert default.core_hour > 0
    path = tmp_path / "p.toml"
    path.write_text('core_hour = 1\ndate = "2030-01"\n[gpu_hour]\nh100 = 2.5\n')
    mine = load_prices(path)
    assert (mine.core_hour, mine.date) == (1.0, "2030-01")
    assert mine.gpu_hour["h100"] == 2.5
    assert mine.gpu_hour["a100"] == default.gpu_hour["a100"]  # merged, not replaced
    assert mine.storage_gib_month == default.storage_gib_month
    assert mine.gpu("v100") == 0.9  # not in the table: the training planner's assumed price
    path.write_text("core_hours = 1\n")
    with pytest.raises(ConfigError, match="core_hours"):
        load_prices(path)
    path.write_text('core_hour = "cheap"\n')
    with pytest.raises(ConfigError, match="core_hour"):
        load_prices(path)
    with pytest.raises(ConfigError, match="no file"):
        load_prices(tmp_path / "missing.toml")


def test_a_missing_result_names_the_command(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"loopline bench serving --json --save"):
        load("serving", tmp_path)
    save("serving", {"http_max_rps": 10}, folder=tmp_path)
    with pytest.raises(ConfigError, match="stream_tx_per_s"):
        load("serving", tmp_path).figure("stream_tx_per_s")
    raw = json.loads((tmp_path / "serving.json").read_text())
    assert raw["benchmark"] == "serving"
    assert raw["result"] == {"http_max_rps": 10}
    assert {"cpu", "cores", "memory_gib", "python", "platform"} <= set(raw["machine"])


def test_bad_load_is_refused() -> None:
    with pytest.raises(ConfigError, match="peak"):
        Load(rate=10.0, peak=0.5)
    # 10x the mean for 6 hours is 60 rate-hours: more than a day's 24
    with pytest.raises(ConfigError, match="peak-hours"):
        Load(rate=100.0, peak=10.0, peak_hours=6.0)
    assert Load(rate=100.0, peak=6.0, peak_hours=4.0).base_rate == 0.0
    with pytest.raises(ConfigError, match="per_core"):
        Role(name="x", per_core=0.0)

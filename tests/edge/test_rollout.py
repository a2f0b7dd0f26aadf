"""Staged rollouts over a simulated fleet: stable cohorts of the planned sizes, a canary
that stops a bad package before it reaches anyone else, a halt that rolls everyone back."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from loopline.edge import (
    Device,
    EdgeError,
    Fleet,
    Rollout,
    RolloutPlan,
    cohort,
    open_package,
)
from loopline.exceptions import ConfigError
from tests.edge import FILES, HW, Signer, package, signer

N = 20
PLAN = RolloutPlan(stages=(0.05, 0.25, 0.5, 1.0), max_failure_rate=0.2, min_reports=3)
BAD = {**FILES, "model.onnx": b"truncated"}


def loads(folder: Path) -> list[str]:
    """The device's own check: the model file must be whole."""
    return [] if len((folder / "model.onnx").read_bytes()) > 100 else ["model.onnx is truncated"]


@pytest.fixture
def key(tmp_path: Path) -> Signer:
    return signer(tmp_path / "keys")


def fleet(
    tmp_path: Path, key: Signer, *, probation: Callable[[str], list[str]] | None = None
) -> Fleet:
    """N devices running version 1, confirmed. ``probation(device id)``: the failures a
    device meets on probation."""
    devices = []
    v1 = package(tmp_path, key.key, 1)
    for i in range(N):
        device_id = f"dev-{i:04d}"
        devices.append(Device(
            device_id, root=tmp_path / "fleet" / device_id, compatible=HW,
            trusted_keys=key.trusted, health_check=loads,
            probation=(lambda folder, d=device_id: probation(d)) if probation else None,
        ))  # fmt: skip
        devices[-1].slots.install(open_package(v1, key.trusted, HW), health_check=loads)
        devices[-1].slots.confirm()
    return Fleet(devices)


def versions(fleet: Fleet) -> Counter[int | None]:
    return Counter(d.slots.status().version for d in fleet.devices.values())


def installs(device: Device) -> int:
    return sum(e.action == "install" for e in device.slots.status().history)


def test_cohorts_are_stable_and_of_the_planned_sizes() -> None:
    assert cohort("dev-0001") == cohort("dev-0001")  # pure: same on every run
    assert round(cohort("dev-0001"), 12) == 0.013525775929  # pinned across versions
    assert cohort("dev-0001", salt="rollout-7") != cohort("dev-0001")
    values = [cohort(f"device-{i}") for i in range(20_000)]
    for fraction in (0.01, 0.1, 0.5):
        share = sum(v < fraction for v in values) / len(values)
        assert abs(share - fraction) < 0.01 + fraction * 0.1, (fraction, share)


def test_a_healthy_rollout_reaches_every_device_stage_by_stage(tmp_path: Path, key: Signer) -> None:
    devices = fleet(tmp_path, key)
    rollout = Rollout(devices, package(tmp_path, key.key, 2), plan=PLAN)
    rollout.run()
    assert rollout.state_ == "complete"
    assert [r.passed for r in rollout.results_] == [True] * 4
    sizes = [len(r.devices) for r in rollout.results_]
    assert sum(sizes) == N
    assert sizes[0] >= PLAN.min_reports  # a 5 % canary of 20 (1 device) is topped up to 3
    canary = set(rollout.results_[0].devices)
    order = sorted(devices.devices, key=cohort)
    assert canary == set(order[: sizes[0]])  # the lowest cohorts go first
    assert versions(devices) == {2: N}
    assert all(not d.slots.status().probation for d in devices.devices.values())  # confirmed
    with pytest.raises(EdgeError, match="already ran"):
        rollout.run()


def test_a_failing_canary_halts_the_rollout_before_anyone_else(tmp_path: Path, key: Signer) -> None:
    devices = fleet(tmp_path, key)
    rollout = Rollout(devices, package(tmp_path, key.key, 2, files=BAD), plan=PLAN)
    rollout.run()
    assert rollout.state_ == "halted"
    assert len(rollout.results_) == 1
    gate = rollout.results_[0]
    assert (gate.passed, gate.failures, gate.reports) == (
        False,
        len(gate.devices),
        len(gate.devices),
    )
    assert versions(devices) == {1: N}  # every canary rolled itself back
    others = [d for i, d in devices.devices.items() if i not in gate.devices]
    assert len(others) == N - len(gate.devices)
    assert all(installs(d) == 1 for d in others)  # never offered version 2
    assert all("truncated" in rollout.reports_[i].problems[0] for i in gate.devices)


def test_a_late_stage_failure_rolls_back_every_updated_device(tmp_path: Path, key: Signer) -> None:
    """Devices failing on probation beyond the first half: the gate of stage 3 fails and
    the earlier, confirmed stages roll back too."""
    late = {i for i in (f"dev-{n:04d}" for n in range(N)) if cohort(i) >= 0.5}
    devices = fleet(tmp_path, key, probation=lambda d: ["crash loop"] if d in late else [])
    rollout = Rollout(devices, package(tmp_path, key.key, 2), plan=PLAN)
    rollout.run()
    assert rollout.state_ == "halted"
    assert [r.passed for r in rollout.results_] == [True, True, True, False]
    assert rollout.results_[-1].failures == len(late)
    assert versions(devices) == {1: N}
    first = devices.devices[rollout.results_[0].devices[0]].slots.status()
    assert (first.floor, first.versions) == (2, {"a": 1, "b": 2})  # confirmed, then rolled back
    assert first.last is not None
    assert first.last.problems == ("rollout halted at stage 3",)


def test_a_device_that_refuses_the_package_counts_as_a_failure(tmp_path: Path, key: Signer) -> None:
    devices = fleet(tmp_path, key)
    for device in devices.devices.values():
        device.compatible = "board-y"
    rollout = Rollout(devices, package(tmp_path, key.key, 2), plan=PLAN)
    rollout.run()
    assert rollout.state_ == "halted"
    assert len(rollout.results_) == 1
    assert all(not r.ok for r in rollout.reports_.values())
    assert "incompatible" in next(iter(rollout.reports_.values())).problems[0]


@pytest.mark.parametrize(
    "options",
    [
        {"stages": (0.1, 0.5)},
        {"stages": (0.5, 0.1, 1.0)},
        {"stages": (0.0, 1.0)},
        {"max_failure_rate": 1.0},
        {"min_reports": 0},
    ],
)
def test_a_plan_is_checked_on_creation(options: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match="RolloutPlan"):
        RolloutPlan(**options)  # type: ignore[arg-type]


def test_a_fleet_smaller_than_a_gate_needs_is_refused(tmp_path: Path, key: Signer) -> None:
    with pytest.raises(ConfigError, match="cannot give"):
        Rollout(Fleet([]), tmp_path / "p.tar", plan=PLAN)

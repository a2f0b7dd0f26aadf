"""The retraining loop's decisions, with the serving side, training and evidence stood in
by plain objects (the drift scenario test runs it on the real ones): a drift alert waits
for its data to mature; a refused challenger is retired and retried later; a healthy one
goes shadow -> gate -> canary -> champion; a canary the guard rolled back is retired.
Every step lands in the registry's history."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from loopline.feedback import Policy, RetrainingLoop, Stage, Trigger
from loopline.monitoring import Drift, DriftReport
from loopline.predictions import Joined, ShadowPairs
from loopline.registry import Bundle, Registry, Signature
from loopline.tasks import AveragePrecision
from loopline.units import DAY_MS

T0 = 1_750_000_000_000
HOUR = 3_600_000


@dataclass
class FakeDeployment:
    """Routing state only."""

    champion_version: int = 1
    challenger: int | None = None
    percent: float = 0.0
    expected: float = 1.0
    killed: bool = False  # the guard rolled the canary back
    log: list[str] = field(default_factory=list)

    def champion(self) -> int:
        return self.champion_version

    def shadow(self, version: int) -> str:
        self.challenger = version
        self.log.append(f"shadow {version}")
        return f"m:{version}"

    def shadow_flag_ratio(self) -> float:
        return 2.5

    def canary(self, percent: float, expected_flag_ratio: float) -> None:
        self.percent, self.expected = percent, expected_flag_ratio
        self.log.append(f"canary {self.challenger}")

    def canary_alive(self) -> bool:
        return not self.killed

    def promote(self) -> None:
        assert self.challenger is not None
        self.champion_version, self.challenger = self.challenger, None
        self.log.append(f"promote {self.champion_version}")

    def retire(self) -> None:
        self.log.append(f"retire {self.challenger}")
        self.challenger, self.percent = None, 0.0


@dataclass
class ShadowedLabels:
    """The prediction log's answers, as the loop asks them: each challenger's shadow run
    separates positives ``gains[i]`` better than the champion (the i-th one trained)."""

    gains: list[float]
    trained: list[tuple[int, Trigger]]

    def shadow_pairs(self, challenger: str, **_: int) -> ShadowPairs:
        gain = self.gains[len(self.trained) - 1]
        rng = np.random.default_rng(0)
        n = 3000
        y = (rng.random(n) < 0.05).astype(float)
        champion, shadow = rng.normal(size=n) + y, rng.normal(size=n) + (1 + gain) * y
        return ShadowPairs(
            [{"score": s} for s in champion], [{"score": s} for s in shadow],
            [{"": v} for v in y], calls=n, errors=0,
        )  # fmt: skip

    def joined(self, **_: object) -> Joined:
        return Joined()  # no matured performance: the alerts here are drift and schedule


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    registry = Registry(root=tmp_path / "registry")
    packed = Bundle(Signature(task="binary", flavour="onnx-trees", inputs=("x",)),
                    {"model.txt": b"x"})  # fmt: skip
    for _ in range(4):
        registry.register("m", bundle=packed, metrics={"average_precision": 0.8},
                          params={}, tags={})  # fmt: skip
    return registry


def _loop(
    registry: Registry, deployment: FakeDeployment, drift: list[list[str]], gains: list[float]
) -> tuple[RetrainingLoop, list[tuple[int, Trigger]]]:
    trained: list[tuple[int, Trigger]] = []

    def train(now_ms: int, trigger: Trigger) -> int:
        trained.append((now_ms, trigger))
        return len(trained) + 1

    def check() -> DriftReport:
        features = drift[0]
        results = [Drift(f, "numeric", 0.5, 0.3, 1e-9, 1e-9, True) for f in features]
        return DriftReport(0, 5000, results)

    loop = RetrainingLoop(
        policy=Policy(),
        registry=registry,
        model="m",
        rollout=deployment,
        train=train,
        outcomes=ShadowedLabels(gains, trained),  # type: ignore[arg-type]
        metric=AveragePrecision(),
        check_drift=check,
    )
    return loop, trained


def _run(loop: RetrainingLoop, start: int, hours: int) -> int:
    for h in range(hours):
        loop.tick(start + h * HOUR)
    return start + hours * HOUR


def test_drift_waits_for_mature_data_then_a_worse_challenger_is_refused_and_retried(
    registry: Registry,
) -> None:
    deployment = FakeDeployment()
    drift = [["tx_amount"]]
    loop, trained = _loop(registry, deployment, drift, gains=[-0.5, 1.5])
    now = _run(loop, T0, 8 * 24)  # the alert at T0; its data matures 7 + 1 days later
    assert len(loop.alerts) == 1
    assert loop.alerts[0][1] == "drift"
    assert trained == [], "nothing trained before a day of the drifted data has matured"
    now = _run(loop, now, 2)
    assert [t for t, _ in trained] == [T0 + 8 * DAY_MS]
    assert trained[0][1].kind == "drift"
    assert loop.stage is Stage.SHADOW
    now = _run(loop, now, 8 * 24)  # 7 days to mature + 1 day of matured shadow: the gate
    assert deployment.log == ["shadow 2", "retire 2"], "the worse challenger never got traffic"
    assert loop.stage is Stage.IDLE
    now = _run(loop, now, 2 * 24 + 2)  # retried after retry_days, the drift still there
    assert len(trained) == 2
    now = _run(loop, now, 9 * 24)  # gate, then a day of canary
    assert deployment.log[-3:] == ["shadow 3", "canary 3", "promote 3"]
    assert deployment.expected == 2.5, "the canary expects the flag rate its shadow run showed"
    assert registry.get("m", "champion").version == 3
    steps = [(s.version, s.action, s.trigger, s.passed) for s in registry.history("m")]
    assert steps == [
        (1, "request retraining", "drift", True),
        (2, "train challenger", "drift", True),
        (2, "start shadow", "drift", True),
        (2, "gate", "drift", False),
        (3, "train challenger", "drift", True),
        (3, "start shadow", "drift", True),
        (3, "gate", "drift", True),
        (3, "start canary", "drift", True),
        (3, "promote to champion", "drift", True),
        (3, "request retraining", "drift", True),  # still drifting against the new champion
    ]
    refused = next(s for s in registry.history("m") if s.action == "gate" and not s.passed)
    assert "ahead in only" in refused.why
    assert all(T0 <= s.at_ms <= now for s in registry.history("m")), "simulated times kept"


def test_a_canary_rolled_back_by_the_guard_is_retired(registry: Registry) -> None:
    deployment = FakeDeployment()
    loop, _ = _loop(registry, deployment, [["score"]], gains=[1.5, 1.5])
    now = _run(loop, T0, 16 * 24 + 2)  # trained at day 8, gate at day 16: canary
    assert deployment.log[-1] == "canary 2"
    deployment.killed = True
    now = _run(loop, now, 1)
    assert deployment.log[-1] == "retire 2"
    assert loop.stage is Stage.IDLE
    assert deployment.champion_version == 1
    assert "promote to champion" not in [s.action for s in registry.history("m")]


def test_schedule_triggers_without_alerts(registry: Registry) -> None:
    deployment = FakeDeployment()
    loop, trained = _loop(registry, deployment, [[]], gains=[1.5])
    _run(loop, T0, 30 * 24 + 1)
    assert loop.alerts == []
    assert [t.kind for _, t in trained] == ["schedule"]

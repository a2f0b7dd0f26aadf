"""A training run's settings: the example file loads, mistakes are named, the schedule
warms up then follows a cosine to its floor."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from loopline.exceptions import ConfigError
from loopline.llm.settings import TrainSettings, load

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "llm-small.toml"


def test_the_documented_example_loads() -> None:
    settings = load(EXAMPLE)
    assert (settings.shape, settings.vocab_size, settings.precision) == ("small", 4096, "bf16")
    assert settings.data == Path(".loopline/llm/shards")
    assert settings.per_rank(2) == (8, 2)  # 16 windows a step: 8 a rank, 2 micro-batches


def test_mistakes_are_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[train]\nstepz = 3\n")
    with pytest.raises(ConfigError, match="stepz"):
        load(bad)
    bad.write_text("[optimizer]\nlr = 1\n")
    with pytest.raises(ConfigError, match="optimizer"):
        load(bad)
    with pytest.raises(ConfigError, match="precision"):
        TrainSettings(precision="fp8")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="does not split over 3"):
        TrainSettings(global_batch=16).per_rank(3)


def test_warmup_then_cosine_to_the_floor() -> None:
    s = TrainSettings(lr=1.0, warmup=10, steps=110, min_lr_ratio=0.1)
    assert [s.lr_at(i) for i in (0, 4, 9)] == pytest.approx([0.1, 0.5, 1.0])
    assert s.lr_at(10) == pytest.approx(1.0)
    assert s.lr_at(109) == pytest.approx(0.1)  # the last step: the floor
    middle = 10 + (110 - 10 - 1) / 2
    assert s.lr_at(int(middle)) == pytest.approx(0.55, abs=0.02)
    lrs = [s.lr_at(i) for i in range(10, 110)]
    assert all(a >= b for a, b in itertools.pairwise(lrs))

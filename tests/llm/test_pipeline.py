"""`loopline demo llm-train` (and under it `loopline train llm`'s pipeline): a run with
a rank killed and resumed, followed into MLflow and a report, its model registered in
safetensors with its tokenizer and shape, signed, and loaded back."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

pytest.importorskip("torch")

import torch
from typer.testing import CliRunner

from loopline.cli import app
from loopline.llm import export
from loopline.llm.engine.engine import Engine
from loopline.llm.engine.sampling import SamplingParams
from loopline.llm.engine.weights import from_version
from loopline.llm.follow import Follower
from loopline.llm.pipeline import TrainingFailedError, train_and_register
from loopline.llm.settings import load
from loopline.llm.worker import latest
from loopline.registry import Registry
from loopline.registry.tracking import TrackedRun

STEPS = 12


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    tmp = tmp_path_factory.mktemp("llm-demo")
    uri = f"sqlite:///{tmp / 'registry' / 'mlflow.db'}"
    args = ["demo", "llm-train", "--out", str(tmp / "demo"), "--shape", "tiny",
            "--steps", str(STEPS), "--seq-len", "64", "--vocab-size", "512",
            "--registry", uri, "--json"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return tmp, json.loads(result.stdout.strip().splitlines()[-1])


def test_the_demo_survives_its_crash_and_registers_the_model(
    demo: tuple[Path, dict[str, object]],
) -> None:
    tmp, summary = demo
    assert summary["restarts"] == 1
    assert summary["replayed_steps"] == summary["replayed_identical"] > 0  # bit for bit
    assert summary["val_bits_per_byte"] < summary["unigram_bits_per_byte"]  # type: ignore[operator]
    registry = Registry(f"sqlite:///{tmp / 'registry' / 'mlflow.db'}", root=tmp / "registry")
    version = registry.get("shakespeare-small", summary["version"])  # type: ignore[arg-type]
    assert {"model.safetensors", "tokenizer.json", "config.json"} <= set(version.checksums)
    assert version.tags["checkpoint"] == f"step-{STEPS:06d}"
    # the MLflow run of the training holds every step, the replayed ones included, and
    # the version
    run = TrackedRun(registry.client, version.run_id)
    steps = [s for s, _ in run.history("loss")]
    assert sorted(set(steps)) == list(range(1, STEPS + 1))
    assert len(steps) == STEPS + summary["replayed_steps"]  # type: ignore[operator]
    assert registry.client.get_run(version.run_id).info.status == "FINISHED"
    assert version.metrics["restarts"] == 1
    page = Path(str(summary["report"])).read_text()
    assert page.count("<svg") == 1
    assert "stopped after step 6 (dotted)" in page


def test_the_registered_model_loads_with_the_checkpoints_weights(
    demo: tuple[Path, dict[str, object]],
) -> None:
    tmp, summary = demo
    registry = Registry(f"sqlite:///{tmp / 'registry' / 'mlflow.db'}", root=tmp / "registry")
    model, tokenizer = export.load(registry.resolve("shakespeare-small", summary["version"]))  # type: ignore[arg-type]
    settings = load(tmp / "demo" / "settings.toml")
    checkpoint = latest(settings.out / "checkpoints")
    assert checkpoint is not None
    trained = export.from_checkpoint(model.config, checkpoint)
    for (name, a), b in zip(model.state_dict().items(), trained.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    ids = tokenizer.encode("To be, or not to be: that is the question").ids
    with torch.no_grad():
        assert model.loss(torch.tensor([ids])).item() < math.log(model.config.vocab_size)
        want, context = [], list(ids[:5])
        for _ in range(8):  # greedy, the whole context each token
            want.append(int(model(torch.tensor([context]))[0, -1].argmax()))
            context.append(want[-1])
    # the serving engine loads the same version and decodes the same tokens
    pinned = registry.resolve("shakespeare-small", summary["version"])  # type: ignore[arg-type]
    decoder, _ = from_version(pinned, num_blocks=8, block_size=8)
    engine = Engine(decoder, num_blocks=8)
    greedy = SamplingParams(temperature=0, max_tokens=8, ignore_eos=True)
    assert engine.generate([ids[:5]], greedy) == [want]


def test_a_training_that_fails_marks_its_run_failed(
    demo: tuple[Path, dict[str, object]],
) -> None:
    tmp, _ = demo
    config = tmp / "fails.toml"
    text = (tmp / "demo" / "settings.toml").read_text()
    config.write_text(text.replace(str(tmp / "demo" / "run"), str(tmp / "fails")))
    registry = Registry(root=tmp / "registry-fails")
    with pytest.raises(TrainingFailedError, match="resumes from the last checkpoint"):
        train_and_register(
            config, registry=registry, processes=2, max_restarts=0,
            env={"LOOPLINE_LLM_CRASH": "0:2"},
        )  # fmt: skip
    runs = registry.client.search_runs([registry._experiment("shakespeare-small")])
    assert [r.info.status for r in runs] == ["FAILED"]
    assert "shakespeare-small" not in registry.names()


def test_the_follower_reads_whole_lines_as_they_land(tmp_path: Path) -> None:
    log = tmp_path / "metrics.jsonl"
    log.write_text('{"event": "started", "step": 0, "world": 2}\n')  # before: not re-read
    seen: list[dict[str, object]] = []
    follower = Follower(log, tracked=None, show=seen.append)
    with log.open("a") as f:
        f.write('{"step": 1, "loss": 2.0, "time": 1.0}\n{"step": 2, "lo')
    follower._read()
    assert seen == [{"step": 1, "loss": 2.0, "time": 1.0}]
    with log.open("a") as f:
        f.write('ss": 1.5, "time": 2.0}\n{"event": "resumed", "step": 1, "world": 2}\n')
    follower._read()
    assert [r.get("step") for r in seen] == [1, 2, 1]
    assert follower.restarts == 1

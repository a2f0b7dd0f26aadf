"""`loopline train llm`: FSDP2 on gloo with two processes; a rank killed mid-run and
resumed under torchrun's restarts gives the uninterrupted run's losses exactly; a
checkpoint written by two ranks resumes on one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("torch")

from loopline.llm.launch import launch

SETTINGS = """
[model]
shape = "tiny"
seq_len = 64
[data]
folder = "{data}"
vocab_size = 512
[train]
steps = {steps}
global_batch = 8
micro_batch = 4
lr = 3e-3
warmup = 2
checkpoint_every = 3
eval_every = 4
eval_batches = 2
precision = "{precision}"
async_checkpoints = {async_}
peak_tflops = 1.0
out = "{out}"
"""


def settings(
    tmp: Path, name: str, *, steps: int = 8, precision: str = "fp32", async_: bool = False
) -> Path:
    path = tmp / f"{name}.toml"
    text = SETTINGS.format(
        data=tmp / "shards", steps=steps, precision=precision, out=tmp / name,
        async_=str(async_).lower(),
    )  # fmt: skip
    path.write_text(text)
    return path


def losses(run: Path) -> dict[int, float]:
    """Each step's loss, the last one logged (a resumed run logs steps again)."""
    out: dict[int, float] = {}
    for line in (run / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if "loss" in record:
            out[record["step"]] = record["loss"]
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("llm-train")
    assert launch(settings(tmp, "whole"), processes=2, max_restarts=0) == 0
    return tmp


def test_two_ranks_train_and_checkpoint(runs: Path) -> None:
    got = losses(runs / "whole")
    assert sorted(got) == list(range(1, 9))
    assert got[8] < got[1]  # it learns
    records = [json.loads(x) for x in (runs / "whole" / "metrics.jsonl").read_text().splitlines()]
    assert records[0] == {"event": "started", "step": 0, "world": 2}
    assert "val_bits_per_byte" in records[-1]
    assert 0 < records[-1]["mfu"] < 1  # against the stated peak (a CPU has none known)
    assert records[-1]["memory_gib"] > 0
    checkpoints = sorted(p.name for p in (runs / "whole" / "checkpoints").iterdir())
    assert checkpoints == ["step-000006", "step-000008"]  # the last two, no partial one


def test_a_killed_rank_resumes_with_the_same_losses_exactly(runs: Path) -> None:
    crashed = settings(runs, "crashed")
    code = launch(crashed, processes=2, max_restarts=1, env={"LOOPLINE_LLM_CRASH": "1:5"})
    assert code == 0
    events = [
        json.loads(x)["event"]
        for x in (runs / "crashed" / "metrics.jsonl").read_text().splitlines()
        if "event" in json.loads(x)
    ]
    assert events == ["started", "resumed"]  # killed after step 5, back from step 3
    assert (runs / "crashed" / "crashed-once").exists()
    assert losses(runs / "crashed") == losses(runs / "whole")  # bit for bit


def test_asynchronous_checkpoints_resume_as_exactly(runs: Path) -> None:
    # step 3's checkpoint is written while steps 4-6 change the weights, made visible
    # at step 6's; the kill after step 7 (step 6's still in flight) resumes from it
    crashed = settings(runs, "async", async_=True)
    code = launch(crashed, processes=2, max_restarts=1, env={"LOOPLINE_LLM_CRASH": "1:7"})
    assert code == 0
    records = [json.loads(x) for x in (runs / "async" / "metrics.jsonl").read_text().splitlines()]
    assert {"event": "resumed", "step": 3, "world": 2} in records
    assert losses(runs / "async") == losses(runs / "whole")
    checkpoints = sorted(p.name for p in (runs / "async" / "checkpoints").iterdir())
    assert checkpoints == ["step-000006", "step-000008"]  # the last one made visible at the end


def test_a_two_rank_checkpoint_resumes_on_one(runs: Path) -> None:
    written = runs / "whole" / "checkpoints" / "step-000006"  # by two ranks
    shutil.copytree(written, runs / "shrink" / "checkpoints" / written.name)
    assert launch(settings(runs, "shrink"), processes=1, max_restarts=0) == 0
    records = [json.loads(x) for x in (runs / "shrink" / "metrics.jsonl").read_text().splitlines()]
    assert records[0] == {"event": "resumed", "step": 6, "world": 1}
    got, want = losses(runs / "shrink"), losses(runs / "whole")
    assert sorted(got) == [7, 8]
    # one rank sums its two micro-batches where two ranks all-reduce: equal to rounding
    assert [got[7], got[8]] == pytest.approx([want[7], want[8]], rel=1e-5)

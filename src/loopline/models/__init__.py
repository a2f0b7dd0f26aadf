"""Models loaded for serving, by flavour: how a trained model is packed into a
registry bundle and loaded back for inference.

Flavours: ``onnx-trees`` (:mod:`loopline.models.trees`: ONNX Runtime with LightGBM as
the fallback) and ``onnx-net`` (:mod:`loopline.models.onnxnet`: a neural network in
ONNX). Another flavour (PyTorch, GGUF) is a module with ``pack`` and ``load``, passed
to :func:`load` in ``flavours``. Importing this package imports no ML library; a
flavour imports its own when it loads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from loopline.models.base import Explains, ServingModel
from loopline.models.sentences import SentenceEncoder
from loopline.registry.bundle import Pinned, RegistryError

Loader = Callable[..., ServingModel]


def _trees(pinned: Pinned, *, threads: int = 1) -> ServingModel:
    from loopline.models import trees

    return trees.load(pinned, threads=threads)


def _net(pinned: Pinned, *, threads: int = 1) -> ServingModel:
    from loopline.models import onnxnet

    return onnxnet.load(pinned, threads=threads)


FLAVOURS: Mapping[str, Loader] = {"onnx-trees": _trees, "onnx-net": _net}


def sentence_encoder(*, threads: int | None = None) -> SentenceEncoder:
    """The all-MiniLM-L6-v2 sentence model (:mod:`loopline.models.sentences`), loaded."""
    from loopline.models import sentences

    return sentences.load(threads=threads)


def load(
    pinned: Pinned, *, flavours: Mapping[str, Loader] = FLAVOURS, threads: int = 1
) -> ServingModel:
    """Load a pinned version with the loader its signature names, warmed up."""
    flavour = pinned.signature.flavour
    loader = flavours.get(flavour)
    if loader is None:
        raise RegistryError(
            f"{pinned.label} is of flavour {flavour!r}, which this process cannot load "
            f"(known: {sorted(flavours)}); pass its loader in flavours=."
        )
    return loader(pinned, threads=threads)


__all__ = [
    "FLAVOURS",
    "Explains",
    "Loader",
    "SentenceEncoder",
    "ServingModel",
    "load",
    "sentence_encoder",
]

"""The contract of a model loaded for serving, whatever its flavour."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from loopline.registry.bundle import Bundle, Signature

if TYPE_CHECKING:
    from loopline.registry.bundle import Pinned

F64 = npt.NDArray[np.float64]


@runtime_checkable
class ServingModel(Protocol):
    """One model version, loaded and warmed.

    ``predict`` takes rows of inputs (columns in ``signature.inputs`` order, NaN for
    missing) and returns one output per row (a score, for binary and ranking tasks) or
    a row of outputs (class probabilities, in ``signature.outputs`` order), and whether
    a fallback engine of the same version answered instead of the primary one.
    """

    name: str
    version: int
    signature: Signature
    pinned: Pinned | None  # the files it came from (None: built in memory)

    @property
    def label(self) -> str:
        """``name:version``."""
        ...

    def predict(self, x: F64) -> tuple[F64, bool]: ...


@runtime_checkable
class Explains(Protocol):
    """A model that can say which inputs pushed one row's output up."""

    def contributions(self, x: F64, top: int = 3) -> list[tuple[str, float]]:
        """The ``top`` inputs with the largest positive contribution to row ``x[0]``."""
        ...


def warm_up(model: ServingModel) -> None:
    """Call ``model`` a few times before traffic arrives (first calls allocate), one row
    and a batch, and its explanations if it gives any."""
    x = np.zeros((8, len(model.signature.inputs)))
    for _ in range(3):
        model.predict(x[:1])
        model.predict(x)
        if isinstance(model, Explains):
            model.contributions(x[:1])


def packed(
    flavour: str,
    files: Mapping[str, bytes],
    *,
    task: str,
    inputs: Sequence[str],
    outputs: Sequence[str] = ("score",),
    meta: Mapping[str, Any] | None = None,
    extra: Mapping[str, bytes] | None = None,
) -> Bundle:
    """A flavour's files as a bundle, with ``extra`` files (a drift reference, say)."""
    signature = Signature(
        task=task, flavour=flavour, inputs=tuple(inputs), outputs=tuple(outputs),
        meta=dict(meta or {}),
    )  # fmt: skip
    return Bundle(signature, {**files, **(extra or {})})

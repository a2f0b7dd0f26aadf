"""Late fusion: a learned combiner over what each modality said.

An item's parts are read separately (the message, the words in its images, the speech in
its audio, the look of its images); each source gives a probability per label (the six
categories and ``benign``). The combiner is a multinomial logistic regression over the
sources' log-probabilities and whether each source was present, fitted on items that carry
several modalities, so it learns, say, how far to trust OCR'd words against the message.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from loopline.apps.moderation.taxonomy import LABELS
from loopline.apps.moderation.text import fit_softmax, npz, softmax

F32 = npt.NDArray[np.float32]
SOURCES: Final = ("text", "image_text", "speech", "visual")
WIDTH: Final = len(SOURCES) * (len(LABELS) + 1) + 1
_EPS = 1e-4


def inputs(sources: Mapping[str, F32], tricks: bool) -> F32:
    """The combiner's inputs for one item: per source its log-probabilities (zeros when
    absent) and whether it was present; then whether the text hid words."""
    parts = []
    for name in SOURCES:
        p = sources.get(name)
        if p is None:
            parts.append(np.zeros(len(LABELS) + 1, np.float32))
        else:
            parts.append(np.append(np.log(np.clip(p, _EPS, 1.0)) / 4.0, 1.0))
    return np.asarray(np.concatenate([*parts, [float(tricks)]]), dtype=np.float32)


def visual(looks: Mapping[str, float]) -> F32:
    """The image classifier's answer as a probability per label (it tells sexual and
    violent images from the rest: those two, and benign for the rest)."""
    p = np.zeros(len(LABELS), np.float32)
    for label, value in looks.items():
        p[LABELS.index(label)] = value
    p[LABELS.index("benign")] = max(1.0 - float(p.sum()), 0.0)
    return p


@dataclass(frozen=True)
class Combiner:
    weights: F32  # (labels, WIDTH)
    bias: F32  # (labels,)

    @classmethod
    def fit(cls, x: Sequence[F32], labels: Sequence[str], *, c: float = 1.0) -> Combiner:
        """Fitted on items' :func:`inputs` and their labels (a category or ``benign``)."""
        return cls(*fit_softmax(np.stack(x), labels, c))

    @classmethod
    def default(cls) -> Combiner:
        """Before any fit: the product of what the sources said (their logs summed)."""
        w = np.zeros((len(LABELS), WIDTH), np.float32)
        for j in range(len(SOURCES)):
            for k in range(len(LABELS)):
                w[k, j * (len(LABELS) + 1) + k] = 4.0
        return cls(w, np.zeros(len(LABELS), np.float32))

    def probabilities(self, x: F32) -> F32:
        """Fused probabilities per label from :func:`inputs` (one item, or a stack)."""
        return softmax(np.asarray(x @ self.weights.T + self.bias, dtype=np.float32))

    def to_bytes(self) -> bytes:
        return npz(weights=self.weights, bias=self.bias)

    @classmethod
    def from_bytes(cls, data: bytes) -> Combiner:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            if z["weights"].shape != (len(LABELS), WIDTH):
                raise ValueError(f"A combiner of shape {z['weights'].shape} is not this one's.")
            return cls(z["weights"], z["bias"])

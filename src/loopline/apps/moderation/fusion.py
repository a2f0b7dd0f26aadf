"""Late fusion: one learned combiner per category over what each modality said.

An item's parts are read separately (the message, the words in its images, the speech in
its audio, the look of its images); each source gives a probability per category. The
combiner is a logistic regression per category over the sources' logits and whether each
source was present, fitted on items that carry several modalities, so it learns, say, how
far to trust OCR'd words against the message itself.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from loopline.apps.moderation.taxonomy import CATEGORIES

F32 = npt.NDArray[np.float32]
SOURCES: Final = ("text", "image_text", "speech", "visual")
_EPS = 1e-4


def _logit(p: F32) -> F32:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.asarray(np.log(p / (1 - p)), dtype=np.float32)


def inputs(sources: Mapping[str, F32], tricks: bool) -> F32:
    """The combiner's inputs for one item, per category: (categories, 2 * sources + 1)."""
    n = len(CATEGORIES)
    logits = np.zeros((n, len(SOURCES)), np.float32)
    present = np.zeros((n, len(SOURCES)), np.float32)
    for j, name in enumerate(SOURCES):
        p = sources.get(name)
        if p is not None:
            logits[:, j] = _logit(p) / 4.0
            present[:, j] = 1.0
    flag = np.full((n, 1), float(tricks), np.float32)
    return np.hstack([logits, present, flag])


@dataclass(frozen=True)
class Combiner:
    weights: F32  # (categories, 2 * sources + 1)
    bias: F32  # (categories,)

    @classmethod
    def fit(cls, x: Sequence[F32], labels: Sequence[str], *, c: float = 1.0) -> Combiner:
        """Fitted on items' :func:`inputs` and their labels (a category or ``benign``)."""
        from sklearn.linear_model import LogisticRegression

        stacked = np.stack(x)  # (items, categories, features)
        weights, bias = [], []
        for k, category in enumerate(CATEGORIES):
            y = np.array([label == category for label in labels], dtype=np.int8)
            if 0 < y.sum() < len(y):
                head = LogisticRegression(C=c, max_iter=1000, class_weight="balanced")
                head.fit(stacked[:, k, :], y)
                weights.append(head.coef_[0])
                bias.append(head.intercept_[0])
            else:  # nothing to learn from: the strongest source decides
                weights.append(cls.default().weights[k])
                bias.append(0.0)
        return cls(np.asarray(weights, np.float32), np.asarray(bias, np.float32))

    @classmethod
    def default(cls) -> Combiner:
        """Each source's logit as it is (before any fit): the sum of what was said."""
        w = np.zeros((len(CATEGORIES), 2 * len(SOURCES) + 1), np.float32)
        w[:, : len(SOURCES)] = 4.0
        return cls(w, np.zeros(len(CATEGORIES), np.float32))

    def scores(self, x: F32) -> F32:
        """Fused probabilities per category from one item's :func:`inputs`."""
        z = np.einsum("kf,kf->k", x, self.weights) + self.bias
        return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -30, 30))), dtype=np.float32)

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez_compressed(buffer, weights=self.weights, bias=self.bias)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Combiner:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            return cls(z["weights"], z["bias"])

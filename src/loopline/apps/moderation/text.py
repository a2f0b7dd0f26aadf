"""The text classifiers: one score per category for a normalized text.

- :class:`Linear` is the fast one: character n-grams (1 to 5, inside word boundaries, so
  every script is read the same way) and word uni- and bigrams, hashed into 2^18 columns
  (scikit-learn's ``HashingVectorizer``: no vocabulary to store, any language), and one
  logistic regression per category. About a tenth of a millisecond a message.
- :class:`Thorough` reads meaning: the all-MiniLM-L6-v2 sentence embedding of the text
  beside the fast model's logits, into a logistic regression per category. Milliseconds a
  message, so the cascade asks it only about the fast model's uncertain band.

Both keep their weights as NumPy arrays (``.npz``: nothing pickled) and are fitted with
scikit-learn; each category's probability has a temperature, refitted from reviewers'
labels (:meth:`Linear.recalibrated`).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt

from loopline.apps.moderation.taxonomy import CATEGORIES

F32 = npt.NDArray[np.float32]
FEATURES = 2**18
WORDS = r"(?u)\b\w+\b"  # single-letter words count


@cache
def _vectorizers() -> tuple[Any, Any]:
    from sklearn.feature_extraction.text import HashingVectorizer

    chars = HashingVectorizer(
        analyzer="char_wb", ngram_range=(1, 5), n_features=FEATURES, alternate_sign=False,
        norm="l2", lowercase=False,
    )  # fmt: skip
    words = HashingVectorizer(
        analyzer="word", ngram_range=(1, 2), n_features=FEATURES, alternate_sign=False,
        norm="l2", lowercase=False, token_pattern=WORDS,
    )  # fmt: skip
    return chars, words


def featurize(texts: Sequence[str]) -> Any:
    """The hashed n-grams of normalized texts: a sparse (n, 2 * 2^18) matrix."""
    from scipy.sparse import hstack

    chars, words = _vectorizers()
    return hstack([chars.transform(texts), words.transform(texts)], format="csr")


def _targets(labels: Sequence[str], categories: Sequence[str]) -> npt.NDArray[np.int8]:
    return np.array([[label == c for c in categories] for label in labels], dtype=np.int8)


def _fit_heads(x: Any, y: npt.NDArray[np.int8], c: float) -> tuple[F32, F32]:
    from sklearn.linear_model import LogisticRegression

    weights, bias = [], []
    for k in range(y.shape[1]):
        if not 0 < y[:, k].sum() < len(y):  # nothing to tell apart: never fires
            weights.append(np.zeros(x.shape[1]))
            bias.append(-10.0 if y[:, k].sum() == 0 else 10.0)
            continue
        head = LogisticRegression(C=c, max_iter=2000, class_weight="balanced").fit(x, y[:, k])
        weights.append(head.coef_[0])
        bias.append(head.intercept_[0])
    return np.asarray(weights, np.float32), np.asarray(bias, np.float32)


def _sigmoid(z: F32) -> F32:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -30, 30))), dtype=np.float32)


def _temperature(logits: F32, truth: npt.NDArray[np.int8]) -> float:
    """The temperature that minimises the log loss of ``sigmoid(logits / t)``."""
    from scipy.optimize import minimize_scalar

    def loss(log_t: float) -> float:
        p = np.clip(_sigmoid(logits / np.exp(log_t)), 1e-7, 1 - 1e-7)
        return float(-np.mean(truth * np.log(p) + (1 - truth) * np.log(1 - p)))

    return float(np.exp(minimize_scalar(loss, bounds=(-3, 3), method="bounded").x))


@dataclass(frozen=True)
class Linear:
    """Hashed n-grams, one logistic regression per category."""

    weights: F32  # (categories, 2 * 2^18)
    bias: F32  # (categories,)
    temperature: F32  # (categories,)
    categories: tuple[str, ...] = CATEGORIES

    @classmethod
    def fit(cls, texts: Sequence[str], labels: Sequence[str], *, c: float = 8.0) -> Linear:
        """Fitted on normalized ``texts``, each labelled with a category or ``benign``."""
        y = _targets(labels, CATEGORIES)
        weights, bias = _fit_heads(featurize(texts), y, c)
        return cls(weights, bias, np.ones(len(CATEGORIES), np.float32))

    def logits(self, texts: Sequence[str]) -> F32:
        z = featurize(texts) @ self.weights.T + self.bias
        return np.asarray(z, dtype=np.float32)

    def scores(self, texts: Sequence[str]) -> F32:
        """Probabilities, (len(texts), categories)."""
        return _sigmoid(self.logits(texts) / self.temperature)

    def recalibrated(self, texts: Sequence[str], labels: Sequence[str]) -> Linear:
        """The same weights with each category's temperature refitted on labelled texts
        (reviewers' verdicts): a category with no positive among them keeps its own."""
        z, y = self.logits(texts), _targets(labels, self.categories)
        t = self.temperature.copy()
        for k in range(len(self.categories)):
            if 0 < y[:, k].sum() < len(y):
                t[k] = _temperature(z[:, k], y[:, k])
        return replace(self, temperature=t)

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez_compressed(buffer, weights=self.weights, bias=self.bias,
                            temperature=self.temperature,
                            categories=np.array(self.categories))  # fmt: skip
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Linear:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            return cls(z["weights"], z["bias"], z["temperature"],
                       tuple(str(c) for c in z["categories"]))  # fmt: skip


@dataclass(frozen=True)
class Thorough:
    """The sentence embedding and the fast model's logits, one logistic regression per
    category (weights over 384 + categories inputs)."""

    weights: F32  # (categories, 384 + categories)
    bias: F32
    categories: tuple[str, ...] = CATEGORIES

    @classmethod
    def fit(
        cls, embeddings: F32, fast_logits: F32, labels: Sequence[str], *, c: float = 4.0
    ) -> Thorough:
        x = np.hstack([embeddings, fast_logits / 10.0])
        weights, bias = _fit_heads(x, _targets(labels, CATEGORIES), c)
        return cls(weights, bias)

    def scores(self, embeddings: F32, fast_logits: F32) -> F32:
        x = np.hstack([embeddings, fast_logits / 10.0])
        return _sigmoid(np.asarray(x @ self.weights.T + self.bias, dtype=np.float32))

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez_compressed(buffer, weights=self.weights, bias=self.bias,
                            categories=np.array(self.categories))  # fmt: skip
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Thorough:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            return cls(z["weights"], z["bias"], tuple(str(c) for c in z["categories"]))

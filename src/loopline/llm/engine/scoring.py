"""A text's likelihood under an engine's decoder: the quality side of a quantization
(perplexity on held-out text), computed through the same paged forward pass that
serves."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F  # noqa: N812 (PyTorch's own name for it)

from loopline.llm.engine.decoder import Batch, PagedDecoder


def perplexity(decoder: PagedDecoder, tokens: list[int], *, window: int = 512,
               chunk: int = 64) -> float:  # fmt: skip
    """exp(mean next-token loss) over ``tokens``, in windows of ``window`` tokens (each
    from an empty context), fed ``chunk`` tokens a pass. Uses the cache's first slots:
    not while an engine serves from this decoder."""
    slots = decoder.k_cache.shape[1]
    if window > slots:
        raise ValueError(f"a window of {window} needs {window} cache slots; {slots} there")
    total, count = 0.0, 0
    for start in range(0, len(tokens) - 1, window):
        piece = tokens[start : start + window + 1]
        for lo in range(0, len(piece) - 1, chunk):
            hi = min(lo + chunk, len(piece) - 1)
            n = hi - lo
            batch = Batch(
                tokens=torch.tensor(piece[lo:hi]),
                positions=torch.arange(lo, hi),
                slots=torch.arange(lo, hi),
                spans=[(0, n)] if n > 1 else [(0, 1)],
                keys=[torch.arange(hi)],
                logits_at=torch.arange(n),
            )
            logits = decoder(batch)
            target = torch.tensor(piece[lo + 1 : hi + 1])
            total += float(F.cross_entropy(logits, target, reduction="sum"))
            count += n
    return math.exp(total / count)

"""Large language models: training infrastructure (data, model, distributed training,
checkpoints) and the planner. PyTorch is imported only by the modules that train
(extra ``llm``); shapes and plans are plain Python."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from loopline.llm.embeddings import LMEncoder


def text_encoder(*, threads: int | None = None) -> LMEncoder:
    """Gemma 3 270M as a multilingual text encoder (:mod:`loopline.llm.embeddings`)."""
    from loopline.llm import embeddings

    return embeddings.load(threads=threads)

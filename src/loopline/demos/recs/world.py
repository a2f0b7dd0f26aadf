"""The catalogue the demos and benchmarks share: MovieLens-100K and its items' content."""

from __future__ import annotations

from pathlib import Path

from loopline.apps.recs.content import embed
from loopline.apps.recs.data import MovieLens, load
from loopline.apps.recs.ranking import Items


def catalogue(cache: Path | None = None) -> tuple[MovieLens, Items]:
    """The data set and what is known of every item (content embeddings cached)."""
    data = load(cache)
    content = embed([data.item_text(i) for i in range(data.n_items)], cache=cache)
    return data, Items(genres=data.genres, year=data.year, content=content)

"""An entity's online state: its tiles per hop, and their (de)serialisation."""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec
import numpy as np

from loopline.features.kernel import F64, Layout, merge_into

Tile = tuple[F64, list[set[object]]]


@dataclass
class EntityState:
    """Partial aggregates of one entity, ``tiles[hop][tile_index]``."""

    tiles: dict[int, dict[int, Tile]] = field(default_factory=dict)

    def merge_tile(self, layout: Layout, tile: int, partial: F64, sets: list[set[object]]) -> None:
        by_tile = self.tiles.setdefault(layout.hop_ms, {})
        found = by_tile.get(tile)
        if found is None:
            by_tile[tile] = (partial.copy(), [set(s) for s in sets])
            return
        merge_into(layout, found[0], partial)
        for mine, theirs in zip(found[1], sets, strict=True):
            mine |= theirs

    def prune(self, hop_ms: int, oldest_tile: int) -> None:
        """Drop tiles no window can reach any more."""
        by_tile = self.tiles.get(hop_ms, {})
        for tile in [t for t in by_tile if t < oldest_tile]:
            del by_tile[tile]

    def encode(self) -> bytes:
        return _encoder.encode(
            {
                hop: [
                    (t, p.tolist(), [sorted(s, key=repr) for s in sets])
                    for t, (p, sets) in by_tile.items()
                ]
                for hop, by_tile in self.tiles.items()
            }
        )

    @classmethod
    def decode(cls, raw: bytes) -> EntityState:
        data = _decoder.decode(raw)
        return cls(
            {
                hop: {
                    t: (np.array(p, dtype=np.float64), [set(s) for s in sets])
                    for t, p, sets in tiles
                }
                for hop, tiles in data.items()
            }
        )


_Wire = dict[int, list[tuple[int, list[float], list[list[object]]]]]
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(_Wire)

"""The online store contract: tile tables updated by runs of partials, read by window.

Every store is an :class:`OnlineStore`. Two capabilities are optional, each its own
protocol, and the engine checks for them once, when it is built: :class:`BatchReads`
(many keys' windows in one call) and :class:`RingReads` (tile rings in this process,
read by the compiled one-entity path).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from loopline.features.distinct import Codes
from loopline.features.kernel import F64, Layout

if TYPE_CHECKING:
    from loopline.features.ring import TileRing

WindowValue = tuple[F64, list[set[int]]]  # merged partial, one set of codes per distinct_count


@dataclass(frozen=True)
class Table:
    """The tiles of one view version, one hop, one source partition."""

    version: str
    hop_ms: int
    partition: int
    layout: Layout
    ring: int

    @property
    def span_ms(self) -> int:
        """The time one entity's ring covers (its state expires two spans after use)."""
        return self.layout.span_ms(self.ring)


@dataclass(frozen=True)
class Runs:
    """One micro-batch's partials for one table: run ``i`` is key ``codes[i]`` of the
    batch's unique keys, tile ``tiles[i]``."""

    table: Table
    codes: npt.NDArray[np.intp]
    tiles: npt.NDArray[np.int64]
    parts: F64
    distinct: Codes  # the distinct counts' (run, aggregation, value code)


@dataclass(frozen=True)
class Window:
    """A read of one window: tiles ``head - tiles + 1 .. head`` of one hop."""

    hop_ms: int
    layout: Layout
    head: int
    tiles: int


@dataclass(frozen=True)
class ManyWindows:
    """Reads of one window for many rows: tiles ``heads[i] - tiles + 1 .. heads[i]``."""

    hop_ms: int
    layout: Layout
    heads: npt.NDArray[np.int64]
    tiles: int


# per window: merged partials (rows, width) and, with distinct counts, each row's sets
ManyValues = tuple[npt.NDArray[np.float64], "list[list[set[int]]] | None"]
# one view version's read of many keys: (version, keys, its windows)
ManyRead = tuple[str, Sequence[str], Sequence[ManyWindows]]


@runtime_checkable
class OnlineStore(Protocol):
    """Where the online engine keeps tiles and, per source partition, its checkpoint.

    ``commit`` makes everything applied to a partition's tables durable together with
    that partition's checkpoint (consumer offsets, watermarks): a restart resumes from a
    state and offsets that belong together.
    """

    remote: bool
    """Whether the state lives in a server (each read a round trip), not in this process."""

    def apply(self, keys: npt.NDArray[np.generic], runs: Sequence[Runs]) -> None:
        """Merge runs of partials into their tables (all of one view version and partition);
        ``keys`` are the batch's unique entity keys that the runs' codes index."""
        ...

    def read(self, version: str, key: str, windows: Sequence[Window]) -> list[WindowValue]:
        """Each window of ``key`` merged over all partitions (one round trip)."""
        ...

    def commit(self, partition: int, checkpoint: bytes) -> None:
        """Make the partition's applied runs and ``checkpoint`` durable, atomically."""
        ...

    def checkpoint(self, partition: int) -> bytes | None:
        """The partition's last committed checkpoint."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class BatchReads(Protocol):
    """An :class:`OnlineStore` that reads many keys' windows at once."""

    def read_views(self, reads: Sequence[ManyRead]) -> list[list[ManyValues]]:
        """Per ``(version, keys, windows)`` read, per window: the merged partials
        ``(len(keys), width)`` and, with distinct counts, each key's sets (a remote store:
        all of them in one round trip)."""
        ...


@runtime_checkable
class RingReads(Protocol):
    """An :class:`OnlineStore` whose tile rings are in this process, for the compiled
    one-entity read (:mod:`loopline.features.rowread`)."""

    def locate(self, version: str, key: str) -> list[tuple[int, int]]:
        """(partition, slot) of each partition that holds ``key`` in ``version``."""
        ...

    def ring(self, version: str, layout: Layout, partition: int) -> TileRing | None:
        """The tile ring of (``version``, ``layout``'s hop, ``partition``), if any."""
        ...

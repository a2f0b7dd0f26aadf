"""The online store contract: atomic writes of entity states together with a checkpoint."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

StateKey = tuple[str, int, str]  # (view version, source partition, entity key)


@runtime_checkable
class OnlineStore(Protocol):
    """Where the online engine keeps entity states and its checkpoint.

    A checkpoint (consumer offsets and watermarks) is written in the same atomic step
    as the states it produced, so a restart resumes exactly where the state stands.
    """

    def get_many(self, keys: Sequence[StateKey]) -> list[bytes | None]:
        """The stored state of each key, ``None`` where there is none."""
        ...

    def partitions(self, view_version: str) -> list[int]:
        """The source partitions that hold state for a view."""
        ...

    def commit(self, states: Mapping[StateKey, bytes], checkpoint: bytes) -> None:
        """Write ``states`` and ``checkpoint`` atomically: all of them or none."""
        ...

    def checkpoint(self) -> bytes | None:
        """The last committed checkpoint."""
        ...

    def close(self) -> None: ...

"""The prediction log: every prediction with the inputs and model that made it, the
labels that arrive for it later, and the queries the feedback loop asks of both.

Backends: :class:`SqliteLog` (a file, the embedded default) and ``PostgresLog``
(``loopline.predictions.postgres``, the ``postgres`` extra). :func:`open_prediction_log`
picks one from a path or URL.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from loopline.predictions.base import (
    Column,
    Joined,
    Keep,
    Label,
    Log,
    Notify,
    Outcomes,
    PredictionLog,
    Recent,
    Row,
    ShadowPairs,
    Stored,
)
from loopline.predictions.sqlite import SqliteLog


def open_prediction_log(
    target: Path | str, *, columns: Sequence[Column] = (), notify: Notify | None = None
) -> Log:
    """A SQLite file path, or a ``postgresql://`` URL."""
    if isinstance(target, str) and target.startswith(("postgresql://", "postgres://")):
        from loopline.predictions.postgres import PostgresLog

        return PostgresLog(target, columns=columns, notify=notify)
    return SqliteLog(Path(target), columns=columns, notify=notify)


__all__ = [
    "Column",
    "Joined",
    "Keep",
    "Label",
    "Log",
    "Notify",
    "Outcomes",
    "PredictionLog",
    "Recent",
    "Row",
    "ShadowPairs",
    "SqliteLog",
    "Stored",
    "open_prediction_log",
]

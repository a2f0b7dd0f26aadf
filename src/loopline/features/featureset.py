"""A model's whole feature vector: feature views, request-time and derived features.

``online`` computes it for incoming events from the online engine (each event's own
contribution merged in through the kernel); ``offline`` computes it for a spine of the
source's events from history. Both apply the same request-time and derived functions to
columns, so training and serving see the same values.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from loopline.exceptions import ConfigError
from loopline.features.definitions import FeatureView, Source
from loopline.features.derived import F64, Derived, RequestFeature
from loopline.features.offline import training_set
from loopline.features.online import Columns, OnlineEngine


@dataclass(frozen=True, kw_only=True)
class FeatureSet:
    """The features a model reads, by name.

    Args:
        name: The set's name.
        views: Windowed aggregations; columns are ``<view>__<feature>``.
        request: Features of the incoming event itself.
        derived: Functions of the columns above (ratios, z-scores, distances), in order.
        include_event: Whether an event's view features count the event itself (the
            default), or describe only the history before it: needed for features of the
            previous event such as the time since it or its location.
        events: The source of the events scored (default: the first view's); views over
            other sources (e.g. late labels) are read as of each event's time.
    """

    name: str
    views: tuple[FeatureView, ...]
    request: tuple[RequestFeature, ...] = ()
    derived: tuple[Derived, ...] = ()
    include_event: bool = True
    events: Source | None = None

    def __post_init__(self) -> None:
        names = self.names
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ConfigError(f"FeatureSet {self.name!r} defines {duplicates} twice.")
        known = set(names[: len(names) - len(self.derived)])
        for d in self.derived:
            missing = [i for i in d.inputs if i not in known]
            if missing:
                raise ConfigError(
                    f"Derived feature {d.name!r} of FeatureSet {self.name!r} reads {missing}, "
                    "which are not defined before it. Name view features '<view>__<feature>'."
                )
            known.add(d.name)

    @functools.cached_property
    def names(self) -> list[str]:
        """Every output column, in order."""
        return [
            *(f"{v.name}__{f.name}" for v in self.views for f in v.features),
            *(r.name for r in self.request),
            *(d.name for d in self.derived),
        ]

    @property
    def source(self) -> Source:
        """The source whose events are scored."""
        if self.events is None and not self.views:
            raise ConfigError(f"FeatureSet {self.name!r} has no views: name its events' Source.")
        return self.events or self.views[0].source

    def finish(self, columns: dict[str, F64], events: Columns) -> dict[str, F64]:
        """The whole vector from the views' columns (``<view>__<feature>``) of ``events``:
        request-time and derived features added, in order (one event: on its numbers,
        :meth:`finish_one`)."""
        one = len(next(iter(events.values()), ())) == 1
        if one and all(columns[i].ndim == 1 for i in self._derived_inputs if i in columns):
            return self.finish_one(columns, events)
        for r in self.request:
            columns[r.name] = r.compute(events)
        for d in self.derived:
            columns[d.name] = d.compute(columns)
        return {n: columns[n] for n in self.names}

    def finish_one(self, columns: dict[str, F64], events: Columns) -> dict[str, F64]:
        """:meth:`finish` of one event: the request-time and derived features computed on
        Python numbers (``compute_one``: the same arithmetic without NumPy's per-call
        cost), each returned as a one-element column."""
        event = {r.column: np.asarray(events[r.column])[0] for r in self.request}
        numbers = {i: float(columns[i][0]) for i in self._derived_inputs if i in columns}
        added: dict[str, float] = {}
        for r in self.request:
            added[r.name] = numbers[r.name] = r.compute_one(event)
        for d in self.derived:
            added[d.name] = numbers[d.name] = d.compute_one(numbers)
        if added:
            row = np.array(list(added.values()), dtype=np.float64)
            columns.update((n, row[i : i + 1]) for i, n in enumerate(added))
        return {n: columns[n] for n in self.names}

    @functools.cached_property
    def _derived_inputs(self) -> frozenset[str]:
        """The view features the derived features read."""
        return frozenset(i for d in self.derived for i in d.inputs)

    def online(self, engine: OnlineEngine, events: Columns) -> dict[str, F64]:
        """The feature vector of each incoming event (one row per event; a vector or list
        feature is an array of shape (events, dim or n))."""
        n = len(next(iter(events.values())))
        times = np.asarray(events[self.source.timestamp], dtype=np.int64)
        by_view: dict[str, dict[str, F64]] = {}
        history: list[FeatureView] = []  # views read as of before each event: read together
        for view in self.views:
            if view.source == self.source and self.include_event:  # each event merged in
                rows = [
                    engine.read_event(
                        view, {c: np.asarray(events[c])[i : i + 1] for c in view.columns}
                    )
                    for i in range(n)
                ]
                by_view[view.name] = {
                    f.name: np.array([r.values[f.name] for r in rows]) for f in view.features
                }
            else:  # the history before each event: what the engine holds when it arrives
                history.append(view)
        reads = [(view, _keys(events[view.entity.join_key]), times) for view in history]
        by_view.update(zip((v.name for v in history), engine.read_views(reads), strict=True))
        columns = {
            f"{view.name}__{name}": column
            for view in self.views
            for name, column in by_view[view.name].items()
        }
        return self.finish(columns, events)

    def offline(
        self, history: Any, spine: Any, *, connection: duckdb.DuckDBPyConnection | None = None
    ) -> pa.Table:
        """The spine (rows of the scored source's events, present in its history) with every
        feature as served when that event was scored.

        ``history`` is the events' history (a table or Parquet path), or a mapping from
        source name to each source's history when the views read more than one source.
        """
        con = connection or duckdb.connect()
        table = spine if isinstance(spine, pa.Table) else pa.table(spine)
        clash = sorted(set(self.names) & set(table.column_names))
        if clash:
            raise ConfigError(
                f"FeatureSet {self.name!r} outputs {clash}, which the spine already has as "
                "columns. Rename those features (e.g. 'tx_amount' for column 'amount')."
            )
        columns: dict[str, F64] = {}
        for view in self.views:
            own = view.source == self.source
            positions = [c for c in ("_partition", "_offset") if c in table.column_names]
            result = training_set(
                view,
                history[view.source.name] if isinstance(history, Mapping) else history,
                table if own else table.drop_columns(positions),  # other logs' positions
                spine_time=self.source.timestamp,
                include_spine_event=self.include_event or not own,
                connection=con,
            )
            for f in view.features:
                name = f"{view.name}__{f.name}"
                column = result.column(name).combine_chunks()
                columns[name] = (
                    column.to_numpy()
                    if f.scalar
                    else column.flatten().to_numpy().reshape(-1, f.width)
                )
        events = {c: table.column(c).to_numpy(zero_copy_only=False) for c in table.column_names}
        for name, values in self.finish(columns, events).items():
            table = table.append_column(name, _arrow(values))
        return table


def _arrow(values: F64) -> pa.Array:
    """A feature column: doubles, or fixed-size lists of them (vector and list features,
    one row of ``values`` each)."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 2:
        flat = pa.array(values.reshape(-1), pa.float64())
        return pa.FixedSizeListArray.from_arrays(flat, values.shape[1])
    return pa.array(values, pa.float64())


def _keys(column: Any) -> list[str]:
    """An entity key column as strings ("" where the event has no key)."""
    return ["" if k is None else str(k) for k in np.asarray(column).tolist()]

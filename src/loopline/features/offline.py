"""The offline engine: point-in-time correct training sets on DuckDB.

Given a spine (entity key, timestamp, any other columns such as a label), every feature
is computed as the online engine would have served it at that timestamp, by the
kernel's window rule (see :mod:`loopline.features.kernel`):

* events of the same entity in the window's tiles, at or before the spine time;
* that had arrived by then (``_arrival_ms`` <= spine time; history without arrival
  times is taken as on time);
* that were not late: with ``_partition`` and ``_offset`` columns the engine replays each
  partition's watermark in offset order and drops what the online engine dropped.

The SQL is a range join plus GROUP BY, one per (hop, tiles, filter): it maps to Spark
SQL unchanged but for ``//`` (use ``floor(a / b)``) and ``max(struct)`` (use
``max_by``); see docs/features.md.

Vector features (``dim``) are ``DOUBLE[dim]`` columns of lane sums (exact, as the scalar
sums) or means; ``last_n`` lists are ``DOUBLE[n]`` columns, an ordered ``list()`` of the
window's values, newest first (time, then the scored event itself, then ``_partition``
and ``_offset``), NaN-padded.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from loopline.exceptions import ConfigError
from loopline.features.definitions import Feature, FeatureView, Filter
from loopline.features.kernel import VARIANCE_FLOOR


def _agg_sql(f: Feature, ts: str, order: str) -> str:
    a = f.aggregation
    col = f"e.{_q(a.column)}" if a.column else ""
    if a.dim is not None:
        return _vector_sql(f, col)
    if a.function == "last_n":
        value = f"{col}::DOUBLE"
        order = order.replace("e.__value", value)
        kept = f"list({value} ORDER BY {order}) FILTER (WHERE NOT isnan({value}))"
        return f"list_resize(({kept})[1:{a.n}], {a.n}, 'NaN'::DOUBLE)::DOUBLE[{a.n}]"
    n = f"count({col})"
    total, second = _exact_sum(col), f"{_exact_sum(f'{col} * {col}')} / {n}"
    variance = f"({second} - power({total} / {n}, 2))"
    return {
        "count": f"count(e.{ts})",
        "sum": f"coalesce({total}, 0)",
        "mean": f"{total} / nullif({n}, 0)",
        "std": f"CASE WHEN {n} > 0 THEN CASE WHEN {variance} > {VARIANCE_FLOOR} * {second}"
        f" THEN sqrt({variance}) ELSE 0 END END",
        "min": f"min({col})",
        "max": f"max({col})",
        "last": f"(max({{'ts': e.{ts}, 'v': {col}}}) FILTER (WHERE {col} IS NOT NULL)).v",
        "time_since_last": f"s.__t - max(e.{ts})",
        "distinct_count": f"count(DISTINCT {col})",
    }[a.function]


def _vector_sql(f: Feature, col: str) -> str:
    """Lane sums over the rows whose vector is whole (``__ok_<column>``), or means."""
    a, dim = f.aggregation, f.aggregation.dim or 0
    ok = f"e.{_q('__ok_' + (a.column or ''))}"
    lanes = [_exact_sum(f"CASE WHEN {ok} THEN {col}[{i + 1}] END") for i in range(dim)]
    if a.function == "sum":
        return f"[{', '.join(f'coalesce({x}, 0)' for x in lanes)}]::DOUBLE[{dim}]"
    n = f"count(*) FILTER (WHERE {ok})"
    means = ", ".join(f"{x} / {n}" for x in lanes)
    return f"CASE WHEN {n} > 0 THEN [{means}]::DOUBLE[{dim}] END"


def _default_sql(f: Feature) -> str:
    """A feature's value where its window holds no event."""
    a = f.aggregation
    if not f.scalar:
        fill = "0.0" if a.function == "sum" else "'NaN'::DOUBLE"
        return f"list_resize([]::DOUBLE[], {f.width}, {fill})::DOUBLE[{f.width}]"
    zero = a.function in ("count", "sum", "distinct_count")
    return "0::DOUBLE" if zero else "'NaN'::DOUBLE"


def _check_columns(view: FeatureView, con: duckdb.DuckDBPyConnection) -> None:
    """Vector columns hold ``dim`` numbers a row; last_n columns hold numbers."""
    types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE history)").fetchall())
    for a in view.aggregations:
        kind = str(types.get(a.column or "", ""))
        if a.dim is not None:
            bad = con.execute(
                f"SELECT count(*) FROM history WHERE {_q(a.column)} IS NOT NULL "
                f"AND len({_q(a.column)}) <> {a.dim}"
            ).fetchone()
            if bad and bad[0]:
                raise ConfigError(
                    f"The column {a.column!r} of Aggregation {a.function!r} (dim={a.dim}) must "
                    f"hold lists of {a.dim} floats; {bad[0]} rows of the history do not."
                )
        if a.function == "last_n" and not _numeric(kind):
            raise ConfigError(
                f"The column {a.column!r} of Aggregation 'last_n' must hold numbers (ids as "
                f"integers); the history has {kind}."
            )


def _numeric(kind: str) -> bool:
    return kind.split("(")[0] in {
        "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
        "UINTEGER", "UBIGINT", "FLOAT", "DOUBLE", "DECIMAL",
    }  # fmt: skip


def _exact_sum(expr: str) -> str:
    """A sum that does not depend on the order rows are added in (DuckDB adds doubles in
    whatever order its threads meet them, so reruns differ in the last bits and a model
    trained on them is not reproducible): fixed point with 12 decimals, added exactly."""
    return f"sum(({expr})::DECIMAL(38, 12))::DOUBLE"


def _q(name: str | None) -> str:
    return '"' + (name or "").replace('"', '""') + '"'


def _literal(value: object) -> str:
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(value)


def _events_sql(view: FeatureView, columns: set[str]) -> str:
    ts = _q(view.source.timestamp)
    arrival = "_arrival_ms" if "_arrival_ms" in columns else view.source.timestamp
    flags = ""
    for a in view.aggregations:  # whether each row's vector is whole: no null, no NaN
        if a.dim is not None:
            holes = f"list_transform({_q(a.column)}, lambda x: x IS NULL OR isnan(x))"
            flags += (
                f", coalesce(NOT list_bool_or({holes}), false) AS {_q('__ok_' + str(a.column))}"
            )
    keyed = f"{_q(view.entity.join_key)} IS NOT NULL AND {_q(view.entity.join_key)}::VARCHAR <> ''"
    if {"_partition", "_offset"} <= columns:
        return f"""
            SELECT * FROM (
                SELECT *, {_q(arrival)} AS __arrival{flags},
                       max({ts}) OVER (PARTITION BY _partition ORDER BY _offset
                                       ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS __wm
                FROM history
            ) WHERE (__wm IS NULL OR {ts} >= __wm - {view.allowed_lateness_ms}) AND {keyed}"""
    return f"SELECT *, {_q(arrival)} AS __arrival{flags} FROM history WHERE {keyed}"


def training_set(
    view: FeatureView,
    history: Any,
    spine: Any,
    *,
    spine_time: str | None = None,
    include_spine_event: bool = True,
    connection: duckdb.DuckDBPyConnection | None = None,
) -> pa.Table:
    """The spine with ``view``'s features as served at each row's time.

    Args:
        view: The feature view.
        history: The source's events: a Parquet path or glob, or anything DuckDB scans
            (a pyarrow Table, a pandas DataFrame); ``None`` reads ``view.source.history``.
        spine: Rows to compute features for: the entity key column and a time column.
        spine_time: The spine's time column (default: the source's timestamp name).
        include_spine_event: Whether a spine row that is itself an event of ``history``
            counts in its own features (as the online engine's ``read_event``). ``False``
            gives the history strictly before it (as a read before the event is applied);
            both tables then need ``_partition`` and ``_offset`` to tell the row apart.
        connection: A DuckDB connection to use (default: a new in-memory one).

    Returns:
        The spine's columns, in the spine's order, plus one ``<view>__<feature>`` column
        per feature: DOUBLE, or ``DOUBLE[dim]`` / ``DOUBLE[n]`` (Arrow fixed-size lists)
        for vector and list features.
    """
    con = connection or duckdb.connect()
    key, ts = view.entity.join_key, view.source.timestamp
    spine_time = spine_time or ts
    history = view.source.history if history is None else history
    if history is None:
        raise ConfigError(
            f"FeatureView {view.name!r} has no history: pass one, or declare "
            f"Source(history='path/*.parquet') for {view.source.name!r}."
        )
    if isinstance(history, str | os.PathLike):
        source = f"read_parquet({_literal(str(history))})"
        con.execute(f"CREATE OR REPLACE TEMP VIEW history AS SELECT * FROM {source}")
    else:
        con.register("history", history)
    con.register("spine_in", spine)
    columns = {c[0] for c in con.execute("DESCRIBE history").fetchall()}
    missing = sorted(set(view.columns) - columns)
    if missing:
        raise ConfigError(
            f"The history of FeatureView {view.name!r} lacks the columns {missing}; "
            f"it has {sorted(columns)}. Write them into the history files."
        )
    _check_columns(view, con)
    con.execute(f"CREATE OR REPLACE TEMP TABLE events AS {_events_sql(view, columns)}")
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE spine AS SELECT *, row_number() OVER () - 1 AS __row, "
        f"{_q(spine_time)} AS __t, {_q(key)} AS __key FROM spine_in"
    )
    groups: dict[tuple[int, int, Filter | None], list[Feature]] = defaultdict(list)
    for f in view.features:
        groups[(f.hop_ms, f.tiles, f.aggregation.where)].append(f)
    spine_cols = set(spine_columns(con))
    arrived = "e.__arrival <= s.__t"
    positioned = {"_partition", "_offset"} <= spine_cols and {"_partition", "_offset"} <= columns
    if not include_spine_event and not positioned:
        raise ConfigError(
            f"include_spine_event=False for FeatureView {view.name!r} needs '_partition' and "
            "'_offset' columns in both the spine and the history, to leave each row's own "
            "event out. Add each event's log position (e.g. 0 and its row number)."
        )
    if positioned:
        # spine rows are events of the log: of events arriving in the same millisecond,
        # only those before the row's own position had arrived when it was scored
        before = "<=" if include_spine_event else "<"
        arrived = (
            "(e.__arrival < s.__t OR (e.__arrival = s.__t AND (e._partition <> s._partition"
            f" OR e._offset {before} s._offset)))"
        )
    order = _list_order(_q(ts), positioned, {"_partition", "_offset"} <= columns)
    selects, joins = [], []
    for i, ((hop, tiles, where), feats) in enumerate(groups.items()):
        filt = f" AND e.{_q(where.column)} = {_literal(where.value)}" if where else ""
        aggs = ", ".join(f"{_agg_sql(f, _q(ts), order)} AS {_q(f.name)}" for f in feats)
        joins.append(f"""
            LEFT JOIN (
                SELECT s.__row, {aggs}
                FROM spine s JOIN events e
                  ON e.{_q(key)} = s.__key AND e.{_q(ts)} <= s.__t AND {arrived}
                 AND e.{_q(ts)} // {hop} > s.__t // {hop} - {tiles}{filt}
                GROUP BY s.__row, s.__t
            ) g{i} USING (__row)""")
        for f in feats:
            value = f"g{i}.{_q(f.name)}" + ("::DOUBLE" if f.scalar else "")
            selects.append(
                f"coalesce({value}, {_default_sql(f)}) AS {_q(view.name + '__' + f.name)}"
            )
    keep = ", ".join(f"spine.{_q(c)}" for c in spine_columns(con))
    sql = f"SELECT {keep}, {', '.join(selects)} FROM spine {''.join(joins)} ORDER BY __row"
    return con.sql(sql).to_arrow_table()


def _list_order(ts: str, positioned: bool, logged: bool) -> str:
    """The order of a last_n list, newest first: event time, then the scored event itself
    (as ``read_event`` merges it), then log position; by value without positions."""
    if not logged:
        return f"e.{ts} DESC, e.__value DESC"
    own = "(e._partition = s._partition AND e._offset = s._offset) DESC, " if positioned else ""
    return f"e.{ts} DESC, {own}e._partition DESC, e._offset DESC"


def spine_columns(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [c[0] for c in con.execute("DESCRIBE spine_in").fetchall()]


def erase_rows(root: Path, columns: Sequence[str], values: Collection[str]) -> int:
    """Rewrite every Parquet file under ``root`` without the rows whose ``columns`` (those
    a file has) hold one of ``values`` (erasure: a subject's history); return how many
    rows went. A file is written beside the old one and renamed over it, with the old
    one's compression, so a reader sees the old file or the new one, never half of one.
    """
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    wanted = pa.array(sorted(values), type=pa.string())
    removed = 0
    for path in sorted(root.rglob("*.parquet")) if root.exists() else []:
        table = pq.read_table(path)
        present = [c for c in columns if c in table.column_names]
        if not present or not len(wanted):
            continue
        hit = pc.is_in(table[present[0]].cast(pa.string()), value_set=wanted)
        for name in present[1:]:
            hit = pc.or_(hit, pc.is_in(table[name].cast(pa.string()), value_set=wanted))
        hit = pc.fill_null(hit, False)
        n = pc.sum(hit).as_py() or 0
        if n:
            meta = pq.ParquetFile(path).metadata
            codec = meta.row_group(0).column(0).compression.lower() if meta.num_row_groups else None
            tmp = path.with_name(path.name + ".erasing")
            pq.write_table(table.filter(pc.invert(hit)), tmp, compression=codec or "snappy")
            tmp.replace(path)
            removed += n
    return removed

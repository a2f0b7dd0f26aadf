"""The SQL both backends share, written once with ``?`` marks (PostgreSQL's backend
swaps them for ``%s``), and the grouping of joined rows into :class:`Joined`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from loopline.exceptions import ConfigError
from loopline.predictions.base import GENERIC, Column, Joined, Keep, Row, ShadowPairs

_types = {"TEXT": "TEXT", "REAL": "REAL", "INTEGER": "INTEGER", "BLOB": "BLOB"}
_postgres = {"TEXT": "TEXT", "REAL": "DOUBLE PRECISION", "INTEGER": "BIGINT", "BLOB": "BYTEA"}


def schema(columns: Sequence[Column], *, postgres: bool = False) -> str:
    """The tables: predictions (generic and declared columns), labels, label positions."""
    t = _postgres if postgres else _types
    declared = "".join(f",\n    {c.name} {t[c.type]}" for c in columns)
    indexes = "".join(
        f"\nCREATE INDEX IF NOT EXISTS predictions_{c.name} ON predictions ({c.name});"
        for c in columns
        if c.index
    )
    return f"""
CREATE TABLE IF NOT EXISTS predictions (
    idempotency_key TEXT PRIMARY KEY,
    request_id TEXT NOT NULL,
    payload_sha256 TEXT NOT NULL,
    decided_ms {t["INTEGER"]} NOT NULL,
    routing_key TEXT NOT NULL,
    model_version TEXT NOT NULL,
    arm TEXT NOT NULL,
    inputs {t["BLOB"]} NOT NULL,
    outputs {t["BLOB"]} NOT NULL,
    shadow_model TEXT,
    shadow_outputs {t["BLOB"]},
    response {t["BLOB"]} NOT NULL{declared}
);
CREATE INDEX IF NOT EXISTS predictions_request ON predictions (request_id);
CREATE INDEX IF NOT EXISTS predictions_decided ON predictions (decided_ms);
CREATE INDEX IF NOT EXISTS predictions_shadow ON predictions (shadow_model);{indexes}
CREATE TABLE IF NOT EXISTS labels (
    request_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    value {t["REAL"]} NOT NULL,
    label_time_ms {t["INTEGER"]} NOT NULL,
    PRIMARY KEY (request_id, subject)
);
CREATE TABLE IF NOT EXISTS label_positions (
    topic TEXT NOT NULL,
    partition {t["INTEGER"]} NOT NULL,
    next_offset {t["INTEGER"]} NOT NULL,
    PRIMARY KEY (topic, partition)
);
"""


def insert(columns: Sequence[Column], *, postgres: bool = False) -> str:
    names = [*GENERIC, *(c.name for c in columns)]
    mark = "%s" if postgres else "?"
    verb = "INSERT" if postgres else "INSERT OR IGNORE"
    tail = " ON CONFLICT (idempotency_key) DO NOTHING" if postgres else ""
    return (
        f"{verb} INTO predictions ({', '.join(names)}) "
        f"VALUES ({', '.join([mark] * len(names))}){tail}"
    )


def values(rows: Sequence[Row], columns: Sequence[Column]) -> list[tuple[Any, ...]]:
    names = [c.name for c in columns]
    return [
        (
            r.key, r.request_id, r.fingerprint, r.decided_ms, r.routing_key, r.model_version,
            r.arm, r.inputs, r.outputs, r.shadow_model, r.shadow_outputs, r.response,
            *(r.columns.get(n) for n in names),
        )
        for r in rows
    ]  # fmt: skip


_KEEP = {
    "max": "DO UPDATE SET value = excluded.value, label_time_ms = excluded.label_time_ms"
    " WHERE excluded.value > labels.value",
    "latest": "DO UPDATE SET value = excluded.value, label_time_ms = excluded.label_time_ms"
    " WHERE excluded.label_time_ms >= labels.label_time_ms AND excluded.value <> labels.value",
    "first": "DO NOTHING",
}


def upsert_label(keep: Keep) -> str:
    return (
        "INSERT INTO labels (request_id, subject, value, label_time_ms) VALUES (?, ?, ?, ?) "
        f"ON CONFLICT (request_id, subject) {_KEEP[keep]}"
    )


UPSERT_POSITION = """INSERT INTO label_positions VALUES (?, ?, ?) ON CONFLICT (topic, partition)
   DO UPDATE SET next_offset = excluded.next_offset"""
POSITION = "SELECT next_offset FROM label_positions WHERE topic = ? AND partition = ?"
FIND = "SELECT payload_sha256, response FROM predictions WHERE idempotency_key = ?"
COUNT = "SELECT count(*) FROM predictions"


def keys_of(column: str, columns: Sequence[Column]) -> str:
    """The request ids and routing keys of the rows whose declared ``column`` is ``?``."""
    if column not in {c.name for c in columns}:
        raise ConfigError(f"No declared column {column!r}; declared: {[c.name for c in columns]}.")
    return f"SELECT request_id, routing_key FROM predictions WHERE {column} = ?"


def erase(*, postgres: bool = False) -> tuple[str, str]:
    """Deleting a subject's labels, then its predictions: the rows whose routing key or
    request id is one of the values (one parameter per mark: a JSON array on SQLite, a
    list on PostgreSQL), and the labels of those requests."""
    among = "= ANY(?)" if postgres else "IN (SELECT value FROM json_each(?))"
    rows = f"routing_key {among} OR request_id {among}"
    labels = (
        f"DELETE FROM labels WHERE request_id {among} "
        f"OR request_id IN (SELECT request_id FROM predictions WHERE {rows})"
    )
    return labels, f"DELETE FROM predictions WHERE {rows}"


# retention: the oldest rows first, at most LIMIT of them per statement (bounded work)
EXPIRE_PREDICTIONS = """DELETE FROM predictions WHERE idempotency_key IN (
   SELECT idempotency_key FROM predictions WHERE decided_ms < ? ORDER BY decided_ms LIMIT ?)"""
EXPIRE_LABELS = """DELETE FROM labels WHERE (request_id, subject) IN (
   SELECT request_id, subject FROM labels WHERE label_time_ms < ? ORDER BY label_time_ms LIMIT ?)"""


def recent(model_version: str | None, since_ms: int | None) -> tuple[str, list[Any]]:
    where, args = _where(("model_version = ?", model_version), ("decided_ms >= ?", since_ms))
    sql = f"SELECT inputs, outputs FROM predictions {where} ORDER BY decided_ms DESC LIMIT ?"
    return sql, args


def joined(segment_sql: str, model_version: str | None, *, inputs: bool) -> str:
    """``inputs``: select each row's inputs (only an input segment needs them)."""
    version = " AND p.model_version = ?" if model_version is not None else ""
    return f"""SELECT p.idempotency_key, p.request_id, p.decided_ms, p.model_version, p.arm,
                      {segment_sql}, p.outputs, {"p.inputs" if inputs else "NULL"},
                      l.subject, l.value
               FROM predictions p LEFT JOIN labels l
                 ON l.request_id = p.request_id AND l.label_time_ms < ?
               WHERE p.decided_ms >= ? AND p.decided_ms < ?{version}
               ORDER BY p.decided_ms, p.idempotency_key"""


SHADOW_PAIRS = """SELECT p.idempotency_key, p.outputs, p.shadow_outputs, l.subject, l.value
   FROM predictions p JOIN labels l ON l.request_id = p.request_id AND l.label_time_ms < ?
   WHERE p.shadow_model = ? AND p.shadow_outputs IS NOT NULL AND p.decided_ms < ?
   ORDER BY p.idempotency_key"""
SHADOW_CALLS = """SELECT count(*),
   coalesce(sum(CASE WHEN shadow_outputs IS NULL THEN 1 ELSE 0 END), 0)
   FROM predictions WHERE shadow_model = ? AND decided_ms < ?"""


def _where(*terms: tuple[str, Any]) -> tuple[str, list[Any]]:
    used = [(sql, arg) for sql, arg in terms if arg is not None]
    where = "WHERE " + " AND ".join(sql for sql, _ in used) if used else ""
    return where, [arg for _, arg in used]


_decode = msgspec.json.Decoder()


def group_joined(rows: Sequence[Sequence[Any]], input_name: str | None) -> Joined:
    """Rows of :func:`joined` (one per prediction and label) as one entry a prediction."""
    out = Joined()
    last = None
    for key, request, decided, version, arm, segment, outputs, inputs, subject, value in rows:
        if key != last:
            last = key
            if input_name is not None:
                got = _decode.decode(bytes(inputs)).get(input_name)
                segment = None if got is None else str(got)
            out.request_ids.append(request)
            out.decided_ms.append(int(decided))
            out.model_versions.append(version)
            out.arms.append(arm)
            out.segments.append(None if segment is None else str(segment))
            out.outputs.append(_decode.decode(bytes(outputs)))
            out.labels.append({})
        if subject is not None:
            out.labels[-1][subject] = float(value)
    return out


def group_pairs(rows: Sequence[Sequence[Any]], calls: int, errors: int) -> ShadowPairs:
    champion: list[dict[str, Any]] = []
    challenger: list[dict[str, Any]] = []
    labels: list[dict[str, float]] = []
    last = None
    for key, outputs, shadow, subject, value in rows:
        if key != last:
            last = key
            champion.append(_decode.decode(bytes(outputs)))
            challenger.append(_decode.decode(bytes(shadow)))
            labels.append({})
        labels[-1][subject] = float(value)
    return ShadowPairs(champion, challenger, labels, int(calls), int(errors))

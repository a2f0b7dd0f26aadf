"""The Milvus vector store: pymilvus's ``MilvusClient`` against a Milvus server.

The same code runs against Milvus Lite (``loopline.servers.milvus_server``, the tests
and ``loopline up``) and a Milvus cluster. A collection's schema: an INT64 primary key
``id``, a FLOAT_VECTOR ``vector``, one INT64 field per attribute; an HNSW index with the
inner-product metric (cosine collections store unit vectors, so inner product is the
cosine); strong consistency, so a search sees every write acknowledged before it. The
metric is kept in the collection's description.

A filter becomes a Milvus boolean expression (``genre in [1, 2] and year == 1995``)
built only from attribute names validated as identifiers against the collection's schema
and values validated as integers: no caller's string ever reaches the expression.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from loopline.exceptions import ConfigError
from loopline.vectors.base import (
    F32,
    I64,
    CollectionNotFoundError,
    Matches,
    Where,
    check_attrs,
    check_ids,
    check_k,
    check_name,
    check_schema,
    check_vectors,
    check_where,
    empty_matches,
)

M, EF_CONSTRUCTION, EF_SEARCH = 16, 128, 64
BATCH = 5000  # rows per insert or query request (well under gRPC's message limit)


def _expression(where: Mapping[str, I64]) -> str:
    parts = [
        f"{name} == {int(values[0])}"
        if len(values) == 1
        else f"{name} in [{', '.join(str(int(v)) for v in values)}]"
        for name, values in where.items()
    ]
    return " and ".join(parts)


class MilvusIndex:
    """One collection of a :class:`MilvusVectors` store (made by its ``create``/``open``)."""

    def __init__(
        self, client: Any, *, name: str, dim: int, metric: str, attrs: Sequence[str]
    ) -> None:
        self._client = client
        self.name = name
        self.dim = dim
        self.metric = metric
        self.attrs = tuple(attrs)

    def upsert(self, ids: I64, vectors: F32, attrs: Mapping[str, I64] | None = None) -> None:
        ids = check_ids(self, ids)
        vectors = check_vectors(self, vectors, len(ids))
        columns = check_attrs(self, attrs, len(ids))
        if len(np.unique(ids)) != len(ids):
            raise ConfigError(
                f"The ids of one upsert to collection {self.name!r} must be distinct."
            )
        for at in range(0, len(ids), BATCH):
            part = slice(at, at + BATCH)
            cols = {n: c[part].tolist() for n, c in columns.items()}
            rows = [
                {"id": i, "vector": v, **{n: c[j] for n, c in cols.items()}}
                for j, (i, v) in enumerate(
                    zip(ids[part].tolist(), vectors[part].tolist(), strict=True)
                )
            ]
            self._client.upsert(self.name, rows)

    def delete(self, ids: I64) -> None:
        ids = check_ids(self, ids)
        for at in range(0, len(ids), BATCH):
            self._client.delete(self.name, ids=ids[at : at + BATCH].tolist())

    def search(self, queries: F32, k: int, *, where: Where | None = None) -> Matches:
        queries = check_vectors(self, queries)
        k = check_k(self, k)
        allowed = check_where(self, where)
        out = empty_matches(len(queries), k)
        if len(queries) == 0:
            return out
        hits = self._client.search(
            self.name,
            data=queries.tolist(),
            limit=k,
            filter=_expression(allowed),
            search_params={"metric_type": "IP", "params": {"ef": max(EF_SEARCH, k)}},
            output_fields=[],
        )
        for q, found in enumerate(hits):
            for j, hit in enumerate(list(found)[:k]):
                out.ids[q, j] = int(hit["id"])
                out.scores[q, j] = float(hit["distance"])
        return out

    def count(self) -> int:
        rows = self._client.query(self.name, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    def ids(self) -> I64:
        found: list[int] = []
        iterator = self._client.query_iterator(
            self.name, batch_size=BATCH, filter="", output_fields=["id"]
        )
        try:
            while batch := iterator.next():
                found.extend(int(row["id"]) for row in batch)
        finally:
            iterator.close()
        return np.sort(np.asarray(found, dtype=np.int64))

    def attributes(self, ids: I64) -> tuple[I64, dict[str, I64]]:
        ids = check_ids(self, ids)
        got: dict[int, dict[str, Any]] = {}
        for at in range(0, len(ids), BATCH):
            part = ", ".join(str(i) for i in ids[at : at + BATCH].tolist())
            for row in self._client.query(
                self.name, filter=f"id in [{part}]", output_fields=["id", *self.attrs]
            ):
                got[int(row["id"])] = row
        present = np.asarray([i for i in ids.tolist() if i in got], dtype=np.int64)
        return present, {
            n: np.asarray([got[i][n] for i in present.tolist()], np.int64) for n in self.attrs
        }


class MilvusVectors:
    """A :class:`~loopline.vectors.VectorStore` in a Milvus server.

    Args:
        uri: The server (``http://127.0.0.1:19530``; ``milvus://host:port`` is the same).
        token: Its credentials (``user:password``), when it requires them.
    """

    def __init__(self, uri: str, *, token: str = "") -> None:
        from pymilvus import MilvusClient

        self.uri = uri
        self._client = MilvusClient(uri=uri.replace("milvus://", "http://", 1), token=token)

    def collections(self) -> list[str]:
        return sorted(self._client.list_collections())

    def create(
        self, name: str, *, dim: int, metric: str = "ip", attrs: Sequence[str] = ()
    ) -> MilvusIndex:
        from pymilvus import DataType

        names = check_schema(name, dim, metric, attrs)
        if self._client.has_collection(name):
            raise ConfigError(f"Collection {name!r} already exists (or is an alias) in {self.uri}.")
        schema = self._client.create_schema(
            auto_id=False, enable_dynamic_field=False, description=json.dumps({"metric": metric})
        )
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
        for attr in names:
            schema.add_field(attr, DataType.INT64)
        index = self._client.prepare_index_params()
        index.add_index(
            field_name="vector",
            index_type="HNSW",
            metric_type="IP",
            params={"M": M, "efConstruction": EF_CONSTRUCTION},
        )
        self._client.create_collection(
            name, schema=schema, index_params=index, consistency_level="Strong"
        )
        return MilvusIndex(self._client, name=name, dim=dim, metric=metric, attrs=names)

    def open(self, name: str) -> MilvusIndex:
        name = self.resolve(check_name(name)) or name
        if not self._client.has_collection(name):
            raise CollectionNotFoundError(f"No collection or alias {name!r} in {self.uri}.")
        info = self._client.describe_collection(name)
        fields = {f["name"]: f for f in info["fields"]}
        metric = json.loads(info.get("description") or "{}").get("metric", "ip")
        attrs = [n for n in fields if n not in ("id", "vector")]
        dim = int(fields["vector"]["params"]["dim"])
        return MilvusIndex(self._client, name=name, dim=dim, metric=metric, attrs=attrs)

    def drop(self, name: str) -> None:
        check_name(name)
        pointing = sorted(a for a in self._aliases() if self.resolve(a) == name)
        if pointing:
            raise ConfigError(
                f"Collection {name!r} is named by alias {pointing}: "
                "point the alias elsewhere first."
            )
        self._client.drop_collection(name)

    def _aliases(self) -> list[str]:
        return list(self._client.list_aliases().get("aliases", []))

    def resolve(self, alias: str) -> str | None:
        if alias not in self._aliases():
            return None
        return str(self._client.describe_alias(alias)["collection_name"])

    def point(self, alias: str, collection: str) -> None:
        check_name(alias, "alias")
        if not self._client.has_collection(check_name(collection)) or self.resolve(collection):
            raise CollectionNotFoundError(
                f"No collection {collection!r} in {self.uri} to point {alias!r} at."
            )
        if alias in self._aliases():
            self._client.alter_alias(collection, alias)
        else:
            self._client.create_alias(collection, alias)

    def close(self) -> None:
        self._client.close()

"""The recommendation application's commands, registered into the ``loopline`` verbs
(entry point ``loopline.applications``): ``serve recs`` and ``train recs``. Heavy
imports happen inside the commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from loopline.cli import Verbs, show_record

RegistryOpt = Annotated[
    str | None,
    typer.Option(
        "--registry", help="MLflow tracking URI (default: SQLite under .loopline/registry)."
    ),
]
StateOpt = Annotated[
    Path, typer.Option(help="Event log, prediction log, API keys, embedded vectors.")
]
VectorsOpt = Annotated[
    str | None,
    typer.Option(help="Vector store: a folder or milvus://host:port (default: STATE/vectors)."),
]


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    state: StateOpt = Path(".loopline/recs"),
    registry: RegistryOpt = None,
    keys: Annotated[
        Path | None, typer.Option(help="API key file (default: STATE/keys.json).")
    ] = None,
    vectors: VectorsOpt = None,
    events: Annotated[
        str | None, typer.Option(help="Event log URL (default: file:// under STATE).")
    ] = None,
    decisions: Annotated[
        str | None, typer.Option(help="postgresql://... prediction log (default: SQLite).")
    ] = None,
    body_timeout_s: Annotated[
        float, typer.Option(min=0.01, help="A body not all arrived by then is a 408.")
    ] = 10.0,
) -> None:
    """Serve recommendations from the registry's recs champion (POST /v1/recommend,
    POST /v1/feedback)."""
    from loopline.apps.recs.service import ServeOptions
    from loopline.apps.recs.service import serve as run
    from loopline.serving import Limits

    options = ServeOptions(
        state=state, registry=registry, keys=keys, vectors=vectors, events=events,
        decisions=decisions, limits=Limits(body_timeout_s=body_timeout_s),
    )  # fmt: skip
    run(options, host=host, port=port)


def train(
    seed: Annotated[int, typer.Option(help="Split and training seed.")] = 0,
    factors: Annotated[int, typer.Option(min=2, help="Embedding dimensions.")] = 64,
    state: StateOpt = Path(".loopline/recs"),
    registry: RegistryOpt = None,
    vectors: VectorsOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Train the recommender on MovieLens-100K (a per-user random 80/20 split; NDCG@10
    and recall@20 on the fifth held out), register it as the recs champion, and index
    its items in the vector store under that version."""
    import time

    from loopline.apps.recs.data import load
    from loopline.apps.recs.model import RecsConfig
    from loopline.apps.recs.retrieval import RetrievalConfig
    from loopline.apps.recs.service import vectors_of
    from loopline.apps.recs.split import random_split
    from loopline.apps.recs.train import MODEL, items_of, train_and_register, version_label
    from loopline.registry import Registry
    from loopline.vectors import open_vectors

    started = time.perf_counter()
    data = load()
    split = random_split(data.user, data.item, (data.n_users, data.n_items), seed=seed)
    state.mkdir(parents=True, exist_ok=True)
    where, swap_state = vectors_of(state, vectors)
    reg = Registry(registry, root=state / "registry") if registry else Registry()
    version = train_and_register(
        reg, data, split.train, items_of(data), seed=seed, test=split.test,
        config=RecsConfig(retrieval=RetrievalConfig(factors=factors, seed=seed)),
        vectors=open_vectors(where), vectors_state=swap_state,
    )  # fmt: skip
    found = reg.get(MODEL, version)
    show_record(
        {
            "model": MODEL, "version": version, "embedding_version": version_label(version),
            "vectors": where, "interactions": len(data.user),
            "metrics": {k: round(float(v), 4) for k, v in found.metrics.items()},
            "seconds": round(time.perf_counter() - started, 1),
        },
        as_json=as_json,
    )  # fmt: skip


def register(verbs: Verbs) -> None:
    """The recommendation application's commands, under ``loopline``'s verbs."""
    verbs.serve.command("recs")(serve)
    verbs.train.command("recs")(train)

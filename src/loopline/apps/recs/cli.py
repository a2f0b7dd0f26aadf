"""The recommendation application's commands, registered into the ``loopline`` verbs
(entry point ``loopline.applications``): ``serve recs`` and ``train recs`` (with
``--swap N`` and ``--rollback`` for the embedding swap). Heavy imports happen inside
the commands."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from loopline.cli import Verbs, show_record
from loopline.cli_models import RegistryOpt
from loopline.cli_options import DecisionsOpt, EventsOpt, HostOpt, JsonOpt, KeysOpt, PortOpt
from loopline.ops import plan_command

if TYPE_CHECKING:
    from loopline.apps.recs.swap import SwapConfig
    from loopline.vectors import Backfill

StateOpt = Annotated[
    Path, typer.Option(help="Event log, prediction log, API keys, embedded vectors.")
]
VectorsOpt = Annotated[
    str | None,
    typer.Option(help="Vector store: a folder or milvus://host:port (default: STATE/vectors)."),
]


def serve(
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8000,
    state: StateOpt = Path(".loopline/recs"),
    registry: RegistryOpt = None,
    keys: KeysOpt = None,
    vectors: VectorsOpt = None,
    events: EventsOpt = None,
    decisions: DecisionsOpt = None,
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
    swap_to: Annotated[
        int | None,
        typer.Option(
            "--swap", min=1, help="Train nothing: swap the index to this registered version."
        ),
    ] = None,
    rollback: Annotated[
        bool, typer.Option("--rollback", help="Move the index (and champion) back one swap.")
    ] = False,
    min_overlap: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Shadow gate: least overlap@50.")
    ] = 0.2,
    max_quality_drop: Annotated[
        float, typer.Option(min=0.0, help="Shadow gate: most held-out recall@50 lost.")
    ] = 0.02,
    as_json: JsonOpt = False,
) -> None:
    """Train the recommender on MovieLens-100K (a per-user random 80/20 split; NDCG@10
    and recall@20 on the fifth held out), register it, and index its items under that
    version: the first at once; a later one through the embedding swap (dual writes, a
    resumable backfill, a shadow gate on overlap and held-out recall, the alias moved),
    becoming the champion only if the gate passed. --swap N swaps to a registered
    version instead of training; --rollback moves the alias back."""
    import time

    from loopline.apps.recs.swap import SwapConfig, SwapRefusedError

    started = time.perf_counter()
    state.mkdir(parents=True, exist_ok=True)
    gate = SwapConfig(min_overlap=min_overlap, max_quality_drop=max_quality_drop)
    try:
        if rollback:
            record = _rollback(state, registry, vectors)
        else:
            record = _train_or_swap(state, registry, vectors, seed, factors, swap_to, gate)
    except SwapRefusedError as refused:
        typer.echo(str(refused), err=True)
        raise typer.Exit(1) from refused
    show_record({**record, "seconds": round(time.perf_counter() - started, 1)}, as_json=as_json)


def _train_or_swap(
    state: Path,
    registry: str | None,
    vectors: str | None,
    seed: int,
    factors: int,
    swap_to: int | None,
    gate: SwapConfig,
) -> dict[str, Any]:
    from loopline.apps.recs.data import load
    from loopline.apps.recs.model import RecsConfig
    from loopline.apps.recs.retrieval import RetrievalConfig
    from loopline.apps.recs.service import vectors_of
    from loopline.apps.recs.split import random_split
    from loopline.apps.recs.swap import EmbeddingSwap, SwapRefusedError, describe
    from loopline.apps.recs.train import MODEL, items_of, train_and_register, version_label
    from loopline.registry import Registry
    from loopline.vectors import open_vectors

    data = load()
    split = random_split(data.user, data.item, (data.n_users, data.n_items), seed=seed)
    where, swap_state = vectors_of(state, vectors)
    reg = Registry(registry, root=state / "registry") if registry else Registry()
    store = open_vectors(where)
    with _backfill_bar() as progress:
        if swap_to is None:
            version = train_and_register(
                reg, data, split.train, items_of(data), seed=seed, test=split.test,
                config=RecsConfig(retrieval=RetrievalConfig(factors=factors, seed=seed)),
                vectors=store, vectors_state=swap_state, swap=gate, progress=progress,
            )  # fmt: skip
        else:
            version = swap_to
            swap = EmbeddingSwap(
                store, reg, version, held_out=split.test, config=gate, state=swap_state
            )
            result = swap.run(progress)
            if not result.promoted:
                raise SwapRefusedError(f"Not swapped: {describe(result.shadow)}.")
            reg.promote(MODEL, version, "champion", why=describe(result.shadow))
    close = getattr(store, "close", None)
    if close is not None:
        close()
    found = reg.get(MODEL, version)
    return {
        "model": MODEL, "version": version, "embedding_version": version_label(version),
        "vectors": where, "interactions": len(data.user),
        "metrics": {k: round(float(v), 4) for k, v in found.metrics.items()},
    }  # fmt: skip


def _rollback(state: Path, registry: str | None, vectors: str | None) -> dict[str, Any]:
    """The index's alias back to the version before the last swap, and the champion
    with it (the ranker beside its retrieval)."""
    from loopline.apps.recs.service import vectors_of
    from loopline.apps.recs.swap import rollback_embeddings
    from loopline.apps.recs.train import MODEL, version_number
    from loopline.registry import Registry
    from loopline.vectors import open_vectors

    where, swap_state = vectors_of(state, vectors)
    live = rollback_embeddings(open_vectors(where), state=swap_state)
    reg = Registry(registry, root=state / "registry") if registry else Registry()
    reg.promote(MODEL, version_number(live), "champion", trigger="rollback",
                why="embedding swap rolled back")  # fmt: skip
    return {"model": MODEL, "version": version_number(live), "embedding_version": live}


@contextmanager
def _backfill_bar() -> Iterator[Callable[[Backfill], None]]:
    """A rich progress bar on stderr, told of each backfill checkpoint."""
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("backfill", total=None)

        def progress(done: Backfill) -> None:
            bar.update(task, completed=done.done, total=done.total,
                       description=f"backfill {done.version}")  # fmt: skip

        yield progress


def register(verbs: Verbs) -> None:
    """The recommendation application's commands, under ``loopline``'s verbs."""
    verbs.serve.command("recs")(serve)
    verbs.train.command("recs")(train)
    verbs.plan.command("recs")(
        plan_command(
            "recs",
            "loopline.apps.recs.plan:workload",
            unit="requests",
            flag="--rps",
            rate=100.0,
            latency_ms=50.0,
            retention_days=30.0,
            cache_hit_rate=0.2,
            title="recommendation service",
        )
    )

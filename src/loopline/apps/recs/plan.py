"""``loopline plan recs``: the recommendation service's roles and storage, from the saved
result of ``loopline bench recs``.

The service (``loopline serve recs``: retrieval from the vector index, ranking, re-ranking)
is one role on the path; its per-core figure is ``http_max_rps`` (the service pinned to one
core, the load generator on the other). Caching takes a stated hit rate
(``--cache-hit-rate``; no benchmark measures one). Quantization and batching are not
measured for this service.

Stated, not measured (the notes list them): memory per instance, the bytes of an
interaction event and of a served list, the index and feature sizes, the artifacts.
"""

from __future__ import annotations

from loopline.ops import Lever, PlanInputs, Role, Storage, Workload, load_result

EVENT_BYTES = 120.0  # an interaction: user, item, kind, time
SERVED_BYTES = 400.0  # a served list logged: request id, user, 10 items and scores
INDEX_GIB = 1.0  # item embeddings and the HNSW graph, one copy a region
FEATURES_GIB = 1.0  # user and item features online, one copy a region
ARTIFACTS_GIB = 2.0  # models, embeddings' versions (object storage)
RESPONSE_BYTES = 1200.0  # ten items with titles and scores
MEMORY_GIB = 2.0


def workload(inputs: PlanInputs) -> Workload:
    """The recommendation service's workload from its saved result."""
    recs = load_result("recs", inputs.folder)
    rps = recs.figure("http_max_rps")
    notes = [
        f"stated, not measured: event {EVENT_BYTES:g} B, served list {SERVED_BYTES:g} B, "
        f"index {INDEX_GIB:g} GiB and features {FEATURES_GIB:g} GiB a region, artifacts "
        f"{ARTIFACTS_GIB:g} GiB, response {RESPONSE_BYTES:g} B, {MEMORY_GIB:g} GiB an instance"
    ]
    p99 = recs.figure("http_p99_ms_at_half_load")
    if p99 > inputs.load.latency_ms:
        notes.append(f"measured p99 at half load {p99:g} ms exceeds the objective")
    return Workload(
        roles=[
            Role(
                name="recommender",
                per_core=rps,
                memory_gib=MEMORY_GIB,
                source="recs: http_max_rps (one core)",
            )
        ],
        storage=[
            Storage(name="event log", bytes_per_record=EVENT_BYTES, source="stated"),
            Storage(name="prediction log", bytes_per_record=SERVED_BYTES, source="stated"),
            Storage(name="features", retained=False, fixed_gib=FEATURES_GIB, source="stated"),
            Storage(name="vector index", retained=False, fixed_gib=INDEX_GIB, source="stated"),
            Storage.artifacts(ARTIFACTS_GIB),
        ],
        egress_bytes_per_request=RESPONSE_BYTES,
        levers=[
            Lever.stated_caching(inputs.cache_hit_rate, ("recommender",)),
            Lever(name="quantization", note="not measured: no benchmark measures it here"),
            Lever(name="batching", note="not measured: the service answers one at a time"),
        ],
        sources=[recs],
        notes=notes,
    )

"""``loopline plan fraud``: the decision service's roles and storage, from the saved
results of ``loopline bench serving`` (and ``loopline bench scale`` when saved).

* With ``benchmarks/results/scale.json``: the scale-out profile. Every role's per-core
  figure is ``1000 / cpu_ms_per_tx`` at N = 1 (the CPU each role's processes spent per
  decided transaction): the scorer (on the path), the feature workers, Redis, PostgreSQL
  and the Kafka-protocol broker (off the path).
* Without it: the one-node profile, the scorer alone with its features in process; its
  per-core figure is ``http_max_rps`` of ``loopline bench serving`` (the server pinned to
  one core).

Batching is measured: the stream scorer (``stream_tx_per_s``, one core, batches from the
event log) against the HTTP scorer (``http_max_rps``). Caching does not apply: every
transaction is new. Quantization is not measured for this model.

Stated, not measured (the notes list them): memory per instance, and the bytes of an event,
a prediction-log row and the feature state.
"""

from __future__ import annotations

from loopline.exceptions import ConfigError
from loopline.ops import Lever, PlanInputs, Role, Saved, Storage, Workload, load_result

# Stated inputs (bytes as stored; memory per instance as provisioned).
EVENT_BYTES = 320.0  # the serving benchmark's request: ~300 bytes of JSON
PREDICTION_BYTES = 200.0  # a decision: id, score, decision, model version, reasons
FEATURE_STATE_GIB = 2.0  # rolling windows of customers and terminals, one copy a region
ARTIFACTS_GIB = 1.0  # model bundles, reports (object storage)
RESPONSE_BYTES = 250.0  # a decision sent back
MEMORY_GIB = {"scorer": 1.0, "worker": 1.0, "redis": 4.0, "postgres": 4.0, "kafka": 4.0}
SCALE_ROLES = {"worker": "worker", "redis": "redis", "postgres": "postgres", "noida": "kafka"}


def _scale_roles(scale: Saved) -> list[Role]:
    first = scale.result["per_n"][0]
    roles = [
        Role(
            name="scorer",
            per_core=1000 / float(first["cpu_ms_per_tx"]["scorer"]),
            memory_gib=MEMORY_GIB["scorer"],
            source="scale: 1000 / per_n[N=1].cpu_ms_per_tx.scorer",
        )
    ]
    for key, name in SCALE_ROLES.items():
        ms = first["cpu_ms_per_tx"].get(key)
        if ms:
            roles.append(
                Role(
                    name=name,
                    per_core=1000 / float(ms),
                    on_path=False,
                    memory_gib=MEMORY_GIB[name],
                    source=f"scale: 1000 / per_n[N=1].cpu_ms_per_tx.{key}",
                )
            )
    return roles


def workload(inputs: PlanInputs) -> Workload:
    """The fraud decision service's workload from its saved results."""
    serving = load_result("serving", inputs.folder)
    http = serving.figure("http_max_rps")
    sources, notes = [serving], []
    try:
        scale: Saved | None = load_result("scale", inputs.folder)
    except ConfigError:  # optional: the one-node profile without it
        scale = None
    if scale is not None:
        sources.append(scale)
        roles = _scale_roles(scale)
        notes.append("profile: scale-out (Redis, PostgreSQL, Kafka), from loopline bench scale")
    else:
        roles = [
            Role(
                name="scorer",
                per_core=http,
                memory_gib=MEMORY_GIB["scorer"],
                source="serving: http_max_rps (one core)",
            )
        ]
        notes.append(
            "profile: one node (features in process); run `loopline bench scale --json "
            "--save` for the scale-out profile's roles"
        )
    p99 = serving.figure("http_p99_ms_at_half_load")
    if p99 > inputs.load.latency_ms:
        notes.append(
            f"measured: the service's p99 at half load on the benchmark machine was {p99:g} ms, "
            f"above the {inputs.load.latency_ms:g} ms objective (the M/M/c sizing does not see "
            "the shared machine's other processes)"
        )
    notes.append(
        f"stated, not measured: event {EVENT_BYTES:g} B, prediction row {PREDICTION_BYTES:g} B, "
        f"feature state {FEATURE_STATE_GIB:g} GiB a region, artifacts {ARTIFACTS_GIB:g} GiB, "
        f"response {RESPONSE_BYTES:g} B, memory per instance {MEMORY_GIB} GiB"
    )
    stream = serving.figure("stream_tx_per_s")
    levers = [
        Lever(
            name="caching",
            note="does not apply: every transaction is new (no repeated requests to cache)",
            measured=False,
        ),
        Lever(name="quantization", note="no benchmark measures it for this model"),
        Lever(
            name="batching",
            roles=("scorer",),
            throughput=stream / http,
            note=f"stream scorer {stream:g} tx/s against HTTP {http:g} on one core "
            f"(loopline bench serving, one-node profile, x{stream / http:.2f})",
        ),
    ]
    storage = [
        Storage(name="event log", bytes_per_record=EVENT_BYTES, source="stated"),
        Storage(name="prediction log", bytes_per_record=PREDICTION_BYTES, source="stated"),
        Storage(name="features", retained=False, fixed_gib=FEATURE_STATE_GIB, source="stated"),
        Storage.artifacts(ARTIFACTS_GIB),
    ]
    return Workload(
        roles=roles,
        storage=storage,
        egress_bytes_per_request=RESPONSE_BYTES,
        levers=levers,
        sources=sources,
        notes=notes,
    )

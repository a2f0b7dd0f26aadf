"""``loopline plan vision``: perception for many camera streams on servers, from the saved
result of ``loopline bench vision``.

The perception pipeline (preprocess, INT8 detector, tracker, publish) is one role on the
path; one core completes ``1000 / frame_p50_ms`` frames a second (the whole pipeline's
median time a frame, measured in real time on one core) and its measured ``frame_p99_ms``
is the service's p99 alone. The unit is frames a second over all streams (``--fps``: 10
cameras at 30 fps = 300) and the objective the frame deadline (30 ms).

Quantization is measured: the plan runs the INT8 detector; its row is the FP32 detector
instead, the pipeline's time a frame grown by ``fp32_ms - int8_ms`` (one detector call
each, measured side by side). Caching and batching are not measured (one frame at a time).

Stated, not measured (the notes list them): memory per instance, the bytes of the tracks
published a frame, the artifacts; no video is kept.
"""

from __future__ import annotations

from loopline.ops import Lever, PlanInputs, Role, Storage, Workload, load_result

TRACKS_BYTES = 300.0  # a frame's tracks published: ids, boxes, classes, scores
ARTIFACTS_GIB = 0.5  # detector versions, calibration, packages (object storage)
MEMORY_GIB = 1.0


def workload(inputs: PlanInputs) -> Workload:
    """The perception pipeline's workload from its saved result."""
    vision = load_result("vision", inputs.folder)
    p50 = vision.figure("frame_p50_ms")
    p99 = vision.figure("frame_p99_ms")
    int8, fp32 = vision.figure("int8_ms"), vision.figure("fp32_ms")
    slower = p50 / (p50 + fp32 - int8)
    return Workload(
        roles=[
            Role(
                name="perception",
                per_core=1000 / p50,
                service_p99_ms=p99,
                memory_gib=MEMORY_GIB,
                source="vision: 1000 / frame_p50_ms; frame_p99_ms (one core)",
            )
        ],
        storage=[
            Storage(name="event log", bytes_per_record=TRACKS_BYTES, source="stated"),
            Storage.artifacts(ARTIFACTS_GIB),
        ],
        levers=[
            Lever.stated_caching(inputs.cache_hit_rate, ("perception",)),
            Lever(
                name="quantization",
                roles=("perception",),
                throughput=slower,
                note=f"the plan runs INT8 (one detector call {int8:.2f} ms); this row runs "
                f"FP32 ({fp32:.2f} ms): {p50:.2f} -> {p50 + fp32 - int8:.2f} ms a frame",
            ),
            Lever(name="batching", note="not measured: one frame at a time, as on the vehicle"),
        ],
        sources=[vision],
        notes=[
            f"stated, not measured: tracks {TRACKS_BYTES:g} B a frame, artifacts "
            f"{ARTIFACTS_GIB:g} GiB, {MEMORY_GIB:g} GiB an instance; no video kept"
        ],
    )

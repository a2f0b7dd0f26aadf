"""``loopline plan moderation``: the moderation cascade's roles and storage, from the
saved result of ``loopline bench moderation``.

Two roles on the path, each item alone through the cascade on one core, as measured: text
items (``items_per_s``, p99 ``text_p99_ms``) and items with a picture
(``text_image_items_per_s``, p99 ``text_image_p99_ms``). The share of items with a
picture is a stated input. The human review the policy escalates (``review_share``,
measured) is people's time, not machines': the notes give its volume, not its cost.

Caching takes a stated hit rate (``--cache-hit-rate``; no benchmark measures one).
Quantization and batching are not measured for the cascade.
"""

from __future__ import annotations

from loopline.ops import Lever, PlanInputs, Role, Storage, Workload, load_result

IMAGE_SHARE = 0.1  # items that carry a picture
ITEM_BYTES = 600.0  # an item's text and metadata as logged (pictures: object storage)
IMAGE_BYTES = 150_000.0  # a picture kept for appeals and review
DECISION_BYTES = 300.0  # scores per category, action, policy version
ARTIFACTS_GIB = 2.0  # models (the thorough model's weights), policies
RESPONSE_BYTES = 300.0
MEMORY_GIB = 3.0  # the thorough model (Gemma 3 270M) in memory


def workload(inputs: PlanInputs) -> Workload:
    """The moderation cascade's workload from its saved result."""
    m = load_result("moderation", inputs.folder)
    review = m.figure("review_share")
    per_month = inputs.load.rate * inputs.prices.hours_month * 3600
    return Workload(
        roles=[
            Role(
                name="text",
                per_core=m.figure("items_per_s"),
                share=1 - IMAGE_SHARE,
                service_p99_ms=m.figure("text_p99_ms"),
                memory_gib=MEMORY_GIB,
                source="moderation: items_per_s, text_p99_ms (one core)",
            ),
            Role(
                name="text+image",
                per_core=m.figure("text_image_items_per_s"),
                share=IMAGE_SHARE,
                service_p99_ms=m.figure("text_image_p99_ms"),
                memory_gib=MEMORY_GIB,
                source="moderation: text_image_items_per_s, text_image_p99_ms (one core)",
            ),
        ],
        storage=[
            Storage(name="event log", bytes_per_record=ITEM_BYTES, source="stated"),
            Storage(name="prediction log", bytes_per_record=DECISION_BYTES, source="stated"),
            Storage(
                name="pictures",
                bytes_per_record=IMAGE_BYTES,
                records_per_request=IMAGE_SHARE,
                kind="object",
                source="stated",
            ),
            Storage.artifacts(ARTIFACTS_GIB),
        ],
        egress_bytes_per_request=RESPONSE_BYTES,
        levers=[
            Lever.stated_caching(inputs.cache_hit_rate, ("text", "text+image")),
            Lever(name="quantization", note="not measured: no benchmark measures it here"),
            Lever(name="batching", note="not measured: the cascade takes one item at a time"),
        ],
        sources=[m],
        notes=[
            f"measured: the default policy escalates {review:.1%} of items to people: "
            f"{review * per_month:,.0f} reviews a month at this load (not costed here)",
            f"stated, not measured: {IMAGE_SHARE:.0%} of items carry a picture "
            f"({IMAGE_BYTES:g} B kept), item {ITEM_BYTES:g} B, decision {DECISION_BYTES:g} B, "
            f"artifacts {ARTIFACTS_GIB:g} GiB, {MEMORY_GIB:g} GiB an instance",
        ],
    )

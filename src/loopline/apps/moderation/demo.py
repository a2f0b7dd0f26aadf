"""``loopline demo moderation``: the whole loop on one machine.

1. Train the cascade on the weakly labelled training set and register it as champion.
2. Serve it, and send the evaluation set through ``POST /v1/moderate`` over HTTP, from
   users in several regions: text and images answered at once, audio and video polled
   until their background analysis is done; one user posts spam until rate-limited.
3. Simulated reviewers (a simulation, named as such) work the review queue; simulated
   authors appeal some wrong verdicts; every final verdict goes to ``moderation.verdicts``
   and the feedback stage joins it to the prediction log.
4. From those labels, refit the combiner and the operating threshold, register the result
   as version 2 and promote it; the service swaps to it.
5. Write the HTML report.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from loopline.apps.moderation import measure, pipeline, report
from loopline.apps.moderation.evalset import Item, evaluation_set, payload
from loopline.apps.moderation.recalibrate import recalibrate
from loopline.apps.moderation.reviewers import SimulatedReviewers
from loopline.apps.moderation.service import ServeOptions, build
from loopline.registry import Registry
from loopline.serving import KeyRing, new_key, running

Say = Callable[[str], None]
REGIONS = ("default", "eu", "de", "us", "in", "br")


def body(item: Item, n: int, rng: np.random.Generator) -> dict[str, Any]:
    """The request a client would send for an evaluation item."""
    data = payload(item)
    part: dict[str, Any] = (
        {"type": "text", "text": data.decode()} if item.modality == "text"
        else {"type": item.modality, "data": base64.b64encode(data).decode()}
    )  # fmt: skip
    return {
        "id": item.id, "parts": [part], "user": f"user-{int(rng.integers(0, 400))}",
        "region": REGIONS[n % len(REGIONS)], "reach": int(rng.pareto(1.2) * 50),
    }  # fmt: skip


def _labels_arrived(svc: Any, expected: int, timeout_s: float = 30.0) -> None:
    """Wait until the feedback stage (every second) has joined ``expected`` items' labels."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if sum(bool(labels) for labels in svc.log.joined().labels) >= expected:
            return
        time.sleep(0.25)


def run(out: Path, *, per_cell: int = 16, media: bool = True, say: Say = print) -> dict[str, Any]:
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{(out / 'registry' / 'mlflow.db').resolve()}"
    registry = Registry(uri)
    config = pipeline.TrainConfig(per_cell=per_cell, images=40 if media else 0,
                                  speech=8 if media else 0)  # fmt: skip
    built = pipeline.build(config, say=say)
    v1 = pipeline.register(registry, built)
    registry.promote(pipeline.MODEL, v1, trigger="demo", why="first model")
    state = out / "state"
    key, stored = new_key("demo", ["score", "label", "monitor"])
    KeyRing([stored]).save(state / "keys.json")
    svc = build(ServeOptions(state=state, registry=uri, watch_s=1.0))
    items = evaluation_set(per_cell=max(per_cell // 4, 3), media=media)
    say(f"sending {len(items)} evaluation items through the service")
    rng = np.random.default_rng(7)
    answers: dict[str, dict[str, Any]] = {}
    latencies: dict[str, list[float]] = {"text": [], "image": [], "audio/video (async)": []}
    limited = 0
    with (
        running(svc.service) as port,
        httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": key}, timeout=120
        ) as client,
    ):
        pending: dict[str, float] = {}
        for n, item in enumerate(items):
            t = time.perf_counter()
            r = client.post("/v1/moderate", json=body(item, n, rng))
            r.raise_for_status()
            answer = r.json()
            if answer["status"] == "pending":
                pending[item.id] = t
            else:
                answers[item.id] = answer
                latencies["text" if item.modality == "text" else "image"].append(
                    (time.perf_counter() - t) * 1e3
                )
            if n % 200 == 0:
                say(f"  {n}/{len(items)} sent")
        deadline = time.monotonic() + 60 + 10 * len(pending)
        while pending and time.monotonic() < deadline:
            for item_id, t in list(pending.items()):
                polled = client.get(f"/v1/moderate/{item_id}").json()
                if polled.get("status", "failed") != "pending":
                    answers[item_id] = polled
                    latencies["audio/video (async)"].append((time.perf_counter() - t) * 1e3)
                    del pending[item_id]
            time.sleep(0.2)
        if pending:
            say(f"{len(pending)} recordings were still being analysed; left out")
        say(f"{len(answers)} answers; a spammer posts until the limit")
        spam = next(i for i in items if i.label == "spam" and i.modality == "text")
        for n in range(30):
            r = client.post("/v1/moderate", json={
                "id": f"spam-run-{n}", "user": "spammer-1",
                "parts": [{"type": "text", "text": f"{spam.text} #{n}"}],
            })  # fmt: skip
            limited += r.status_code == 429
        truth = {i.id: i.label for i in items} | {f"spam-run-{n}": "spam" for n in range(30)}
        sim = SimulatedReviewers(truth, seed=3)
        say(f"simulated reviewers work the queue ({svc.review.stats().pending} tasks)")
        work = sim.work(svc.review, steps=20_000, start=time.time())
        _labels_arrived(svc, len(svc.review.labels(limit=len(truth) + 1)))
        stats = svc.review.stats()
        agreement = svc.review.agreement()
        recal = recalibrate(svc.log, built.cascade, built.threshold, f"{pipeline.MODEL}:{v1}")
        v2 = None
        if recal.combiner is not None:
            built2 = pipeline.Built(config, recal.cascade, recal.threshold, built.metrics)
            v2 = pipeline.register(registry, built2, metrics={"labels": float(recal.labels)})
            registry.promote(pipeline.MODEL, v2, trigger="demo", why="refit from verdicts")
            time.sleep(2.5)  # the service follows the champion alias
        champion = svc.service.deployment.routing.champion.label
    svc.close()

    found = measure.assess_items(built.cascade, items, say=say)
    served_actions = [answers.get(i.id, {}).get("action") or "allow" for i in items]
    compared = measure.compare(items, found, built.threshold, served_actions)
    actions = [a.get("action") for a in answers.values()]
    review_share = sum(a == "escalate" for a in actions) / max(len(actions), 1)
    costs = measure.costs(found, review_share)
    summary = {
        "items": len(items), "answered": len(answers),
        "precision (text)": compared["text"]["overall"]["precision"],
        "recall (text)": compared["text"]["overall"]["recall"],
        "false-positive rate (text)": compared["text"]["overall"]["false_positive_rate"],
        "thorough share": compared["all"]["stages"]["thorough"]["share"],
        "review share": round(review_share, 4),
        "cost per 1,000 items (USD)": costs["cost_per_1000_items"],
        "spam posts rate-limited": limited, "champion after the loop": champion,
        "seconds": round(time.perf_counter() - started, 1),
    }  # fmt: skip
    review_rows = {
        "simulated verdicts": work.verdicts, "simulated appeals": work.appeals,
        "final labels right (simulation)": work.final_accuracy, "kappa": agreement.kappa,
        "raw agreement": agreement.raw, "double-reviewed": agreement.count,
        "escalations": stats.escalations, "overdue": stats.overdue,
        "disagreements": stats.disagreements, "appeals": stats.appeals,
        "overturned share": stats.overturned_share, "dropped": stats.dropped,
        "median time to verdict s (simulated)": stats.median_time_to_verdict_s,
    }  # fmt: skip
    path = report.write(
        out / "report.html", summary=summary, compared=compared, latencies_ms=latencies,
        review=review_rows, costs=costs, recalibration=recal.figures(),
    )  # fmt: skip
    say(f"report: {path}")
    return {**summary, "report": str(path), "v1": v1, "v2": v2}

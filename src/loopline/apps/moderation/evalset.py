"""The moderation evaluation set and the weakly labelled training set, made from the
hand-written seeds (:mod:`~loopline.apps.moderation.seeds`).

An item is a message in one of 12 languages: harmful (one of the six categories), everyday
benign, or benign on a sensitive topic (news, medical, reclaimed words, education: what the
false-positive rate is reported on). The training set fills the seeds' train templates, the
evaluation set their eval templates, with disjoint words in the slots, so a score on the
evaluation set is a score on phrasings the models never saw.

The evaluation set also carries attacks (each obfuscation of
:mod:`~loopline.apps.moderation.obfuscate` on a harmful and a benign message of every cell
that it applies to) and media: the text drawn into an image (Latin-script languages),
spoken by espeak-ng (languages Whisper reads from espeak), and both in an MP4. Items hold
only words; :func:`payload` makes the bytes a client would send, when they are needed.
docs/moderation-evalset.md has the counts and the limits.
"""

from __future__ import annotations

import itertools
import math
import random
import re
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Final

from loopline.apps.moderation.obfuscate import VARIANTS
from loopline.apps.moderation.seeds import CELLS, FILLERS, TEMPLATES
from loopline.apps.moderation.taxonomy import (
    CATEGORIES,
    LANGUAGES,
    MODALITIES,
    SENSITIVE_BENIGN,
    Modality,
)

IMAGE_LANGUAGES: Final = ("en", "es", "fr", "de", "it", "pt", "nl", "pl", "tr")  # Latin script
AUDIO_LANGUAGES: Final = ("en", "es", "fr", "de", "it", "pt")  # espeak voices Whisper reads
VIDEO_LANGUAGES: Final = ("en", "es", "fr", "de")
OBFUSCATED_SHARE = 0.25  # of training messages that also come obfuscated
VIDEO_FPS = 2.0
KINDS: Final = ("harmful", "benign", *SENSITIVE_BENIGN)
_MEDIA_VARIANTS: Final = {"image": "image_text", "audio": "speech", "video": "video"}
# Each media modality: its languages, and its items per language.
_MEDIA: Final[tuple[tuple[Modality, tuple[str, ...], int], ...]] = (
    ("image", IMAGE_LANGUAGES, 8),
    ("audio", AUDIO_LANGUAGES, 4),
    ("video", VIDEO_LANGUAGES, 2),
)
# The labels a modality's items cycle through, per language: the six categories, an
# everyday message and a sensitive one (the sensitive kind rotates with the language).
_MEDIA_CELLS: Final = (*CATEGORIES, "benign", "sensitive")
_SLOT = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True, slots=True)
class Item:
    """One message of the set, and what it is.

    ``label`` is a category or "benign"; ``kind`` is "harmful", "benign" or the sensitive
    topic of a benign message; ``variant`` is "plain", an obfuscation's name, or how the
    words travel in media ("image_text", "speech", "video"). ``text`` is the words the
    item carries (typed, drawn or spoken), ``template`` the seed template they come from.
    """

    id: str
    modality: Modality
    language: str
    label: str
    kind: str
    variant: str
    text: str
    template: str


def _fill(language: str, cell: str, half: str, rng: random.Random, n: int) -> list[tuple[str, str]]:
    """Up to ``n`` distinct (template id, text) of one cell's half, taking the templates in
    turn (in a random order) and each template's slot fillings in a random order."""
    templates: tuple[str, ...] = getattr(TEMPLATES[language][cell], half)
    queues = []
    for i, template in enumerate(templates):
        slots = list(dict.fromkeys(_SLOT.findall(template)))
        words = [getattr(FILLERS[language][slot], half) for slot in slots]
        fillings = [dict(zip(slots, combo, strict=True)) for combo in itertools.product(*words)]
        rng.shuffle(fillings)
        texts = [template.format_map(filling) for filling in fillings]
        queues.append((f"{language}-{cell}-{half}-{i}", texts))
    rng.shuffle(queues)
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for rank in range(max(len(texts) for _, texts in queues)):
        for template_id, texts in queues:
            if rank < len(texts) and texts[rank] not in seen and len(out) < n:
                seen.add(texts[rank])
                out.append((template_id, texts[rank]))
    return out


def _cell(split: str, language: str, cell: str, seed: int, per_cell: int) -> list[Item]:
    """A cell's plain text items."""
    rng = random.Random(f"{seed}/{split}/{language}/{cell}")
    label, kind = (cell, "harmful") if cell in CATEGORIES else ("benign", cell)
    return [
        Item(
            id=f"{split}-{language}-{cell}-{index:04d}-plain",
            modality="text",
            language=language,
            label=label,
            kind=kind,
            variant="plain",
            text=text,
            template=template,
        )
        for index, (template, text) in enumerate(_fill(language, cell, split, rng, per_cell))
    ]


def _as(item: Item, variant: str, text: str, modality: Modality = "text") -> Item:
    stem = item.id.rsplit("-", 1)[0]
    return replace(item, id=f"{stem}-{variant}", modality=modality, variant=variant, text=text)


def _obfuscated(item: Item, name: str, rng: random.Random) -> Item | None:
    """``item`` under the obfuscation ``name``; None where it changes nothing."""
    text = VARIANTS[name](item.text, rng)
    return None if text == item.text else _as(item, name, text)


def training_set(seed: int = 0, per_cell: int = 24) -> list[Item]:
    """Text items from the seeds' train templates and train slot words: every language,
    every category, everyday benign and each sensitive kind, up to ``per_cell`` distinct
    messages a (language, cell), and a share (:data:`OBFUSCATED_SHARE`) of them once more
    under a random obfuscation.

    Weakly labelled: the labels come from construction (a template written as a threat is
    labelled violence), not from anyone reading each message.
    """
    _check(per_cell)
    items: list[Item] = []
    for language, cell in itertools.product(LANGUAGES, CELLS):
        rng = random.Random(f"{seed}/train/{language}/{cell}/obfuscate")
        for item in _cell("train", language, cell, seed, per_cell):
            items.append(item)
            if rng.random() < OBFUSCATED_SHARE:
                variant = _obfuscated(item, rng.choice(sorted(VARIANTS)), rng)
                items.extend([variant] if variant else [])
    return items


def evaluation_set(seed: int = 1, per_cell: int = 8, media: bool = True) -> list[Item]:
    """Items from the seeds' eval templates and eval slot words.

    - plain text: up to ``per_cell`` messages for every language and cell (the six
      categories, everyday benign, each sensitive kind);
    - attacks: in every language, each obfuscation on ``max(1, per_cell // 8)`` messages of
      every category and of everyday benign (where the obfuscation applies to the script);
    - with ``media``: images of the text in :data:`IMAGE_LANGUAGES`, speech in
      :data:`AUDIO_LANGUAGES`, video (frames of the text, the speech as sound) in
      :data:`VIDEO_LANGUAGES`, cycling through the categories and benign kinds.
    """
    _check(per_cell)
    plain = {
        (language, cell): _cell("eval", language, cell, seed, per_cell)
        for language, cell in itertools.product(LANGUAGES, CELLS)
    }
    items = [item for cell_items in plain.values() for item in cell_items]
    items += _attacks(plain, seed, max(1, per_cell // 8))
    if media:
        for modality, languages, per_language in _MEDIA:
            items += _media(plain, modality, languages, per_language)
    return items


def _check(per_cell: int) -> None:
    if per_cell < 1:
        raise ValueError(f"per_cell is how many messages a cell holds; at least 1. Got {per_cell}.")


def _attacks(plain: dict[tuple[str, str], list[Item]], seed: int, each: int) -> list[Item]:
    attacks: list[Item] = []
    for language, cell in itertools.product(LANGUAGES, (*CATEGORIES, "benign")):
        base = plain[(language, cell)]
        for (i, name), r in itertools.product(enumerate(VARIANTS), range(each)):
            rng = random.Random(f"{seed}/eval/{language}/{cell}/{name}/{r}")
            variant = _obfuscated(base[(i + r * len(VARIANTS)) % len(base)], name, rng)
            attacks.extend([variant] if variant else [])
    return attacks


def _media(
    plain: dict[tuple[str, str], list[Item]],
    modality: Modality,
    languages: tuple[str, ...],
    per_language: int,
) -> list[Item]:
    """``per_language`` items of ``modality`` a language, each from a plain item (a
    different one for each modality), their cells cycling through :data:`_MEDIA_CELLS`."""
    offset = MODALITIES.index(modality)
    items = []
    for li, language in enumerate(languages):
        for k in range(per_language):
            cell = _MEDIA_CELLS[(li * per_language + k) % len(_MEDIA_CELLS)]
            if cell == "sensitive":
                cell = SENSITIVE_BENIGN[li % len(SENSITIVE_BENIGN)]
            base = plain[(language, cell)]
            source = base[offset % len(base)]
            items.append(_as(source, _MEDIA_VARIANTS[modality], source.text, modality))
    return items


def payload(item: Item) -> bytes:
    """The bytes a client would send for ``item``: the UTF-8 text, a PNG of the text drawn
    over a meme-like background, a 16 kHz mono WAV of espeak-ng speaking it, or an MP4 of
    frames showing it with the speech as its sound. Media take a moment (espeak, H.264)."""
    if item.modality == "text":
        return item.text.encode()
    from loopline.apps.moderation import media

    seed = zlib.crc32(item.id.encode())
    if item.modality == "image":
        return media.encode_image(media.render_text_image(item.text, seed=seed))
    speech = media.speak(item.text, item.language)
    if item.modality == "audio":
        return media.encode_wav(speech)
    # two shots of the text (two backgrounds), as long as the speech
    frames = max(2, math.ceil(speech.size / media.RATE * VIDEO_FPS))
    shots = [media.render_text_image(item.text, seed=seed + shot) for shot in (0, 1)]
    return media.make_video([shots[2 * i // frames] for i in range(frames)], speech, fps=VIDEO_FPS)


def summary(items: Iterable[Item]) -> dict[str, dict[str, int]]:
    """Counts of ``items`` by modality, language, label, kind and variant (each in the
    taxonomy's order), and their total under ``{"total": {"items": n}}``."""
    listed = list(items)
    orders: dict[str, tuple[str, ...]] = {
        "modality": MODALITIES,
        "language": LANGUAGES,
        "label": (*CATEGORIES, "benign"),
        "kind": KINDS,
        "variant": ("plain", *VARIANTS, *_MEDIA_VARIANTS.values()),
    }
    out = {"total": {"items": len(listed)}}
    for field, order in orders.items():
        counts = Counter(getattr(item, field) for item in listed)
        out[field] = {key: counts[key] for key in order if counts[key]}
    return out

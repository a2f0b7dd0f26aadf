"""The evaluation set and the training set: seeds split without leaks, every language and
category in both, deterministic items, attacks that hide words without losing them, each
language in its own script, and the bytes of each modality."""

from __future__ import annotations

import io
import random
import re
import string
import unicodedata
from collections import Counter

import numpy as np
import pytest

from loopline.apps.moderation.evalset import (
    AUDIO_LANGUAGES,
    IMAGE_LANGUAGES,
    VIDEO_LANGUAGES,
    Item,
    evaluation_set,
    payload,
    summary,
    training_set,
)
from loopline.apps.moderation.obfuscate import (
    HOMOGLYPHS,
    LEET,
    SEPARATORS,
    VARIANTS,
    ZERO_WIDTH,
    homoglyphs,
    leet,
    spacing,
    zero_width,
)
from loopline.apps.moderation.seeds import CELLS, FILLERS, TEMPLATES
from loopline.apps.moderation.taxonomy import CATEGORIES, LANGUAGES, SENSITIVE_BENIGN

LATIN = ("en", "es", "fr", "de", "it", "pt", "nl", "pl", "tr")
SCRIPTS = {"ru": "CYRILLIC", "ar": "ARABIC", "hi": "DEVANAGARI"} | dict.fromkeys(LATIN, "LATIN")
TEXTS = {
    "latin": "I will find you and hurt you tonight, you worthless loser",
    "cyrillic": "я найду тебя и завтра сделаю тебе больно, придурок",
}


@pytest.fixture(scope="module")
def evaluation() -> list[Item]:
    return evaluation_set()


@pytest.fixture(scope="module")
def training() -> list[Item]:
    return training_set(per_cell=12)


def _rngs(seed: int) -> list[np.random.Generator | random.Random]:
    return [np.random.default_rng(seed), random.Random(seed)]


def test_seeds_have_every_cell_in_two_disjoint_halves_and_every_slot_filled() -> None:
    for language in LANGUAGES:
        assert set(TEMPLATES[language]) == set(CELLS)
        for cell, split in TEMPLATES[language].items():
            least = 3 if cell in SENSITIVE_BENIGN else 4
            assert min(len(split.train), len(split.eval)) >= least, (language, cell)
            assert not set(split.train) & set(split.eval), (language, cell)
            for template in split.train + split.eval:
                slots = set(re.findall(r"\{(\w+)\}", template))
                assert slots, (language, template)
                assert slots <= set(FILLERS[language]), (language, template)
        for slot, words in FILLERS[language].items():
            assert min(len(words.train), len(words.eval)) >= 2, (language, slot)
            assert not set(words.train) & set(words.eval), (language, slot)


def test_train_and_eval_share_no_template_and_no_message(
    training: list[Item], evaluation: list[Item]
) -> None:
    assert {i.template for i in training}.isdisjoint(i.template for i in evaluation)
    assert all("-train-" in i.template for i in training)
    assert all("-eval-" in i.template for i in evaluation)
    assert {i.text for i in training}.isdisjoint(i.text for i in evaluation)


def test_every_language_label_and_kind_is_in_both_sets(
    training: list[Item], evaluation: list[Item]
) -> None:
    labels = {*CATEGORIES, "benign"}
    kinds = {"harmful", "benign", *SENSITIVE_BENIGN}
    for items in (training, evaluation):
        assert {(i.language, i.label) for i in items} == {
            (language, label) for language in LANGUAGES for label in labels
        }
        assert {(i.language, i.kind) for i in items} == {
            (language, kind) for language in LANGUAGES for kind in kinds
        }
        assert all((i.kind == "harmful") == (i.label in CATEGORIES) for i in items)


def test_items_are_a_function_of_the_seed(evaluation: list[Item]) -> None:
    assert evaluation_set() == evaluation
    assert evaluation_set(seed=2) != evaluation
    assert training_set(seed=3, per_cell=4) == training_set(seed=3, per_cell=4)
    assert training_set(seed=3, per_cell=4) != training_set(seed=4, per_cell=4)


def test_ids_are_unique_and_name_the_item(training: list[Item], evaluation: list[Item]) -> None:
    for split, items in (("train", training), ("eval", evaluation)):
        assert len({i.id for i in items}) == len(items)
        for item in items:
            cell = item.label if item.kind == "harmful" else item.kind
            assert re.fullmatch(
                rf"{split}-{item.language}-{cell}-\d{{4}}-{item.variant}", item.id
            ), item.id


def test_default_evaluation_set_sizes_and_coverage(evaluation: list[Item]) -> None:
    counts = summary(evaluation)
    text = counts["modality"]["text"]
    media = counts["total"]["items"] - text
    assert 1000 <= text <= 1500, counts
    assert 60 <= media <= 120, counts
    assert list(counts["label"]) == [*CATEGORIES, "benign"]
    by_variant = {(i.language, i.variant) for i in evaluation}
    for language in (*LATIN, "ru"):
        assert {(language, name) for name in VARIANTS} <= by_variant, language
    assert {(language, "leet") for language in ("ar", "hi")}.isdisjoint(by_variant)
    for modality, languages in (
        ("image", IMAGE_LANGUAGES),
        ("audio", AUDIO_LANGUAGES),
        ("video", VIDEO_LANGUAGES),
    ):
        assert {i.language for i in evaluation if i.modality == modality} == set(languages)
    assert evaluation_set(per_cell=2, media=False) == [
        i for i in evaluation_set(per_cell=2) if i.modality == "text"
    ]


def test_a_cell_of_no_messages_is_refused() -> None:
    with pytest.raises(ValueError, match="per_cell"):
        evaluation_set(per_cell=0)


def test_attacks_and_media_carry_a_plain_items_words_and_label(
    evaluation: list[Item],
) -> None:
    plain = {i.id.rsplit("-", 1)[0]: i for i in evaluation if i.variant == "plain"}
    for item in evaluation:
        source = plain[item.id.rsplit("-", 1)[0]]
        assert (item.label, item.kind, item.template) == (
            source.label,
            source.kind,
            source.template,
        )
        assert (item.text == source.text) == (item.variant == "plain" or item.modality != "text")


def test_training_set_obfuscates_a_share_of_its_messages(training: list[Item]) -> None:
    variants = Counter(i.variant for i in training)
    share = 1 - variants["plain"] / len(training)
    assert 0.1 < share < 0.35, variants
    assert set(variants) == {"plain", *VARIANTS}


def test_each_language_is_written_in_its_own_script(evaluation: list[Item]) -> None:
    for language, script in SCRIPTS.items():
        letters = Counter(
            unicodedata.name(c).split()[0]
            for i in evaluation
            if i.language == language and i.variant == "plain"
            for c in i.text
            if c.isalpha()
        )
        # Latin letters elsewhere only in links and brand names ("iPhone", "bit.ly/...")
        assert letters[script] / sum(letters.values()) > 0.95, (language, letters)


@pytest.mark.parametrize("text", TEXTS.values(), ids=TEXTS.keys())
def test_zero_width_adds_only_invisible_characters_inside_words(text: str) -> None:
    for rng in _rngs(0):
        hidden = zero_width(text, rng)
        assert hidden != text
        assert "".join(c for c in hidden if c not in ZERO_WIDTH) == text
        for word in hidden.split():
            assert word[0] not in ZERO_WIDTH
            assert word[-1] not in ZERO_WIDTH


@pytest.mark.parametrize("text", TEXTS.values(), ids=TEXTS.keys())
def test_spacing_spreads_the_letters_of_a_word(text: str) -> None:
    separators = re.escape("".join(SEPARATORS))
    for rng in _rngs(0):
        spread = spacing(text, rng)
        assert spread != text
        assert re.sub(f"[{separators}]", "", spread) == re.sub(f"[{separators}]", "", text)
        assert re.search(rf"(?:[^\W\d_][{separators}]){{3,}}[^\W\d_]", spread), spread


@pytest.mark.parametrize("text", TEXTS.values(), ids=TEXTS.keys())
def test_homoglyphs_swap_letters_for_look_alikes_of_another_script(text: str) -> None:
    for rng in _rngs(0):
        swapped = homoglyphs(text, rng)
        assert swapped != text
        assert len(swapped) == len(text)
        for before, after in zip(text, swapped, strict=True):
            assert after == before or after in HOMOGLYPHS[before]


@pytest.mark.parametrize("text", TEXTS.values(), ids=TEXTS.keys())
def test_leet_writes_letters_as_digits_and_symbols(text: str) -> None:
    for rng in _rngs(0):
        written = leet(text, rng)
        assert written != text
        assert len(written) == len(text)
        for before, after in zip(text, written, strict=True):
            assert after == before or after in LEET[before.lower()]
        assert any(c in string.digits + string.punctuation for c in set(written) - set(text))


@pytest.mark.parametrize("name", VARIANTS)
def test_obfuscations_are_a_function_of_the_generator(name: str) -> None:
    attack = VARIANTS[name]
    text = TEXTS["latin"]
    for make in (np.random.default_rng, random.Random):
        assert attack(text, make(7)) == attack(text, make(7))
        assert len({attack(text, make(seed)) for seed in range(6)}) > 1


def test_obfuscations_leave_what_they_cannot_apply_to() -> None:
    hindi = "कल स्कूल में चाकू लेकर तेरा इंतज़ार करूँगा"
    assert leet(hindi, random.Random(0)) == hindi
    assert homoglyphs(hindi, random.Random(0)) == hindi
    for attack in VARIANTS.values():  # links are not words: "visit" is the only target
        assert "bit.ly/3xQz9k" in attack("visit bit.ly/3xQz9k", random.Random(0))


def test_summary_counts_every_item_in_the_taxonomys_order() -> None:
    items = evaluation_set(per_cell=2)
    counts = summary(items)
    for field, by_value in counts.items():
        if field != "total":
            assert sum(by_value.values()) == len(items), field
    assert list(counts["language"]) == list(LANGUAGES)
    assert counts["total"] == {"items": len(items)}


def test_payload_of_a_text_item_is_its_utf8(evaluation: list[Item]) -> None:
    item = next(i for i in evaluation if i.language == "hi" and i.modality == "text")
    assert payload(item).decode("utf-8") == item.text


def test_payload_of_media_items_is_a_png_a_wav_and_an_mp4() -> None:
    media = pytest.importorskip("loopline.apps.moderation.media")
    av = pytest.importorskip("av")
    items = evaluation_set(per_cell=2)
    image, audio, video = (
        next(i for i in items if i.modality == m and i.language == "es")
        for m in ("image", "audio", "video")
    )
    png = payload(image)
    assert png.startswith(b"\x89PNG")
    assert media.decode_image(png).shape == (256, 384, 3)
    wav = payload(audio)
    assert wav[:4] == b"RIFF"
    assert wav[8:12] == b"WAVE"
    assert media.decode_audio(wav).size > 0.5 * media.RATE
    mp4 = payload(video)
    assert mp4[4:8] == b"ftyp"
    assert media.decode_audio(mp4).size > 0.5 * media.RATE
    with av.open(io.BytesIO(mp4)) as container:
        assert sum(1 for _ in container.decode(video=0)) >= 2

"""The text side of the cascade: normalization against obfuscation, language identification,
the known-items lists, the linear classifier and the fusion of sources."""

from __future__ import annotations

import numpy as np
import pytest

from loopline.apps.moderation.fusion import SOURCES, Combiner, inputs
from loopline.apps.moderation.language import identify
from loopline.apps.moderation.lists import TextList
from loopline.apps.moderation.normalize import normalize
from loopline.apps.moderation.taxonomy import CATEGORIES
from loopline.apps.moderation.text import Linear
from loopline.exceptions import ConfigError


@pytest.mark.parametrize(
    ("hidden", "plain", "trick"),
    [
        ("I will k1ll you", "i will kill you", "leet"),
        ("n00b l0s3r", "noob loser", "leet"),
        ("$tupid", "stupid", "leet"),
        ("k i l l yourself", "kill yourself", "spread"),
        ("k.i.l.l", "kill", "spread"),
        ("st\u200bu\u200cpi\u2060d", "stupid", "invisible"),
        ("\u0456diot", "idiot", "lookalike"),  # Cyrillic i
        ("h\u0430te", "hate", "lookalike"),  # Cyrillic a
    ],
)
def test_obfuscations_are_undone_and_named(hidden: str, plain: str, trick: str) -> None:
    n = normalize(hidden)
    assert n.text == plain
    assert trick in n.tricks


@pytest.mark.parametrize(
    "text",
    ["Я тебя убью", "मैं तुम्हें मार दूंगा", "price 100$ at 3pm", "wow!!!", "y a la casa"],
)
def test_other_scripts_prices_and_punctuation_stay_as_written(text: str) -> None:
    n = normalize(text)
    assert n.text == text.casefold()
    assert n.tricks == ()


def test_full_width_letters_fold() -> None:
    assert normalize("\uff49\uff44\uff49\uff4f\uff54").text == "idiot"  # full-width


def test_language_identification() -> None:
    assert identify("Ich hasse dich, du Idiot, verschwinde").code == "de"
    assert identify("أنت غبي جدا ولا أحد يحبك").code == "ar"
    assert identify("12345 !!!").code == "und"


def test_known_messages_match_after_normalization_and_domains_by_suffix() -> None:
    known = TextList()
    known.add_message(normalize("buy followers now").text, "spam")
    known.add_domain("bad.example", "spam")
    assert [h.category for h in known.match(normalize("B u y followers n0w").text)] == ["spam"]
    assert known.match(normalize("buy followers now").text)[0].source == "message"
    assert known.match(normalize("buy followers later").text) == []
    hits = known.match("click https://www.promo.bad.example/x?y=1 today")
    assert [(h.category, h.source) for h in hits] == [("spam", "domain:bad.example")]
    assert known.match("good.example is fine") == []
    again = TextList.from_json(known.to_json())
    assert again.match(normalize("buy followers now").text)
    with pytest.raises(ConfigError, match="Unknown category"):
        known.add_domain("x.example", "rudeness")


def test_the_linear_classifier_learns_and_recalibrates() -> None:
    rng = np.random.default_rng(0)
    harmful = ["you are a worthless idiot", "shut up you stupid idiot", "idiot loser go away"]
    benign = ["see you at lunch", "the weather is nice today", "thanks for the help"]
    texts = [t for t in harmful * 10 + benign * 10]
    labels = ["harassment"] * 30 + ["benign"] * 30
    model = Linear.fit(texts, labels)
    p = model.scores(["what a stupid idiot", "lunch at noon?"])
    k = CATEGORIES.index("harassment")
    assert p[0, k] > 0.5 > p[1, k]
    again = Linear.from_bytes(model.to_bytes())
    assert np.allclose(again.scores(["what a stupid idiot"]), p[:1])
    order = rng.permutation(len(texts))
    sharper = model.recalibrated([texts[i] for i in order], [labels[i] for i in order])
    assert sharper.temperature[k] != 1.0  # refitted where there were positives
    assert sharper.temperature[CATEGORIES.index("spam")] == 1.0  # none: kept


def test_the_combiner_learns_which_source_to_trust() -> None:
    rng = np.random.default_rng(1)
    x, labels = [], []
    for _ in range(400):
        harmful = rng.random() < 0.5
        label = "hate" if harmful else "benign"
        truth = np.full(len(CATEGORIES), 0.05, np.float32)
        truth[CATEGORIES.index("hate")] = 0.9 if harmful else 0.05
        noise = rng.random(len(CATEGORIES)).astype(np.float32)  # a source that says nothing
        x.append(inputs({"text": truth, "image_text": noise}, tricks=False))
        labels.append(label)
    combiner = Combiner.fit(x, labels)
    k = CATEGORIES.index("hate")
    w = combiner.weights[k]
    assert w[SOURCES.index("text")] > 5 * abs(w[SOURCES.index("image_text")])
    sure = inputs(
        {"text": np.full(6, 0.9, np.float32), "image_text": np.zeros(6, np.float32)}, False
    )
    assert combiner.scores(sure)[k] > 0.8
    assert np.allclose(Combiner.from_bytes(combiner.to_bytes()).scores(sure), combiner.scores(sure))

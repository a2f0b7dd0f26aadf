"""The text side of the cascade: normalization against obfuscation, language identification,
the known-items lists, the linear classifier and the fusion of sources."""

from __future__ import annotations

import numpy as np
import pytest

from loopline.apps.moderation.fusion import Combiner, inputs
from loopline.apps.moderation.language import identify
from loopline.apps.moderation.lists import TextList
from loopline.apps.moderation.normalize import normalize
from loopline.apps.moderation.taxonomy import LABELS
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
    [
        "Я тебя убью",
        "मैं तुम्हें मार दूंगा",
        "price 100$ at 3pm",
        "wow!!!",
        "y a la casa",
        "k\u0131z\u0131m \u00e7ok g\u00fczel",  # Turkish dotless i is a letter, not a look-alike
        "क्\u200dष",  # a joiner Devanagari needs
        "مرحبا\u200f بك",  # a right-to-left mark in Arabic
    ],
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
    known.add_domain("bad4u.example", "spam")
    hidden = "see bad4u.example now"
    assert [h.source for h in known.match(normalize(hidden).text, hidden)] == [
        "domain:bad4u.example"
    ]
    again = TextList.from_json(known.to_json())
    assert again.match(normalize("buy followers now").text)
    with pytest.raises(ConfigError, match="Unknown category"):
        known.add_domain("x.example", "rudeness")


def test_the_linear_classifier_learns_and_recalibrates() -> None:
    harmful = ["you are a worthless idiot", "shut up you stupid idiot", "idiot loser go away"]
    benign = ["see you at lunch", "the weather is nice today", "thanks for the help"]
    texts = harmful * 10 + benign * 10
    labels = ["harassment"] * 30 + ["benign"] * 30
    model = Linear.fit(texts, labels)
    p = model.probabilities(["what a stupid idiot", "lunch at noon?"])
    assert np.allclose(p.sum(axis=1), 1.0, atol=1e-5)
    k, benign_k = LABELS.index("harassment"), LABELS.index("benign")
    assert p[0, k] > 0.5 > p[1, k]
    assert p[1, benign_k] > 0.5
    assert p[:, LABELS.index("spam")].max() < 1e-6  # never seen: never said
    again = Linear.from_bytes(model.to_bytes())
    assert np.allclose(again.probabilities(["what a stupid idiot"]), p[:1])
    # reviewers say the model is overconfident: the temperature rises above one
    noisy = ["harassment" if i % 3 else "benign" for i in range(30)] + ["benign"] * 30
    assert model.recalibrated(texts, noisy).temperature > 1.0


def test_the_combiner_learns_which_source_to_trust() -> None:
    rng = np.random.default_rng(1)
    x, labels = [], []
    hate, benign = LABELS.index("hate"), LABELS.index("benign")
    for _ in range(400):
        harmful = rng.random() < 0.5
        truth = np.full(len(LABELS), 0.02, np.float32)
        truth[hate if harmful else benign] = 0.88
        noise = rng.dirichlet(np.ones(len(LABELS))).astype(np.float32)  # says nothing
        x.append(inputs({"text": truth, "image_text": noise}, tricks=False))
        labels.append("hate" if harmful else "benign")
    combiner = Combiner.fit(x, labels)
    said = np.full(len(LABELS), 0.02, np.float32)
    said[hate] = 0.88
    flat = np.full(len(LABELS), 1 / len(LABELS), np.float32)
    p = combiner.probabilities(inputs({"text": said, "image_text": flat}, False))
    assert p[hate] > 0.8
    q = combiner.probabilities(inputs({"text": flat, "image_text": said}, False))
    assert q[hate] < p[hate] - 0.3  # the noisy source is not trusted
    again = Combiner.from_bytes(combiner.to_bytes())
    assert np.allclose(again.probabilities(inputs({"text": said}, False)),
                       combiner.probabilities(inputs({"text": said}, False)))  # fmt: skip
    default = Combiner.default().probabilities(inputs({"text": said}, False))
    assert default.argmax() == hate

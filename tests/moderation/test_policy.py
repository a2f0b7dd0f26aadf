"""Regional policies: the packaged file, decisions and their explanation, which rule wins,
uncertain bands, inheritance, validation on load, and hot reload."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from loopline.apps.moderation.policy import Policies, parse
from loopline.exceptions import ConfigError

POLICY = """
regions:
  default:
    version: 7
    categories:
      hate:
        rules: [{threshold: 0.8, action: remove}, {threshold: 0.6, action: blur}]
        uncertain: [0.4, 0.6]
      harassment:
        rules: [{threshold: 0.8, action: remove}, {threshold: 0.6, action: blur}]
      sexual:
        rules: [{threshold: 0.9, action: remove}, {threshold: 0.6, action: age_gate}]
      violence:
        rules: [{threshold: 0.6, action: blur}]
  xx:
    version: v2
    categories:
      sexual:
        rules: []
      hate:
        rules: [{threshold: 0.5, action: remove}]
"""


@pytest.fixture
def policies(tmp_path: Path) -> Policies:
    path = tmp_path / "policies.yaml"
    path.write_text(POLICY)
    return Policies(path)


def test_packaged_policies_cover_the_regions() -> None:
    p = Policies()
    assert set(p.versions()) == {"default", "eu", "de", "us", "in", "br"}
    # the same scores, different regions: de removes hate that us only escalates
    assert p.decide("de", {"hate": 0.6}).action == "remove"
    assert p.decide("us", {"hate": 0.6}).action == "escalate"
    assert p.decide("us", {"sexual": 0.99}).action == "age_gate"  # never removed there
    assert p.decide("in", {"sexual": 0.75}).action == "remove"


def test_decision_explains_itself(policies: Policies) -> None:
    d = policies.decide("xx", {"hate": 0.55, "violence": 0.7, "spam": 0.99})
    assert (d.action, d.category, d.score) == ("remove", "hate", 0.55)
    assert d.rule == "xx@v2:hate>=0.5:remove"
    assert (d.region, d.policy_version) == ("xx", "v2")
    fired = {(r.category, r.threshold, r.action, r.rule) for r in d.reasons}
    assert fired == {
        ("hate", 0.5, "remove", "xx@v2:hate>=0.5:remove"),
        ("violence", 0.6, "blur", "xx@v2:violence>=0.6:blur"),
    }
    doc = json.loads(json.dumps(d.to_dict()))
    assert doc["reasons"][0]["score"] in (0.55, 0.7)
    assert doc["rule"] == d.rule


def test_unknown_region_gets_default_and_nothing_fired_is_allowed(policies: Policies) -> None:
    d = policies.decide("FR", {"hate": 0.85})
    assert (d.region, d.policy_version, d.rule) == ("default", "7", "default@7:hate>=0.8:remove")
    assert policies.decide(" XX ", {"hate": 0.5}).region == "xx"
    allowed = policies.decide("default", {"hate": 0.2, "violence": 0.3})
    assert (allowed.action, allowed.category, allowed.score) == ("allow", None, 0.3)
    assert (allowed.rule, allowed.reasons) == ("default@7:allow", ())
    with pytest.raises(ValueError, match="A region must be text"):
        policies.decide(None, {})  # type: ignore[arg-type]


def test_strongest_action_then_severity_then_score_wins(policies: Policies) -> None:
    # remove (harassment) beats blur (violence, more severe)
    d = policies.decide("default", {"harassment": 0.85, "violence": 0.95})
    assert (d.action, d.category) == ("remove", "harassment")
    # both remove: hate (severity 4) beats harassment (3) though its score is lower
    d = policies.decide("default", {"harassment": 0.99, "hate": 0.81})
    assert (d.action, d.category) == ("remove", "hate")
    # both remove, the same severity (3): the higher score
    d = policies.decide("default", {"harassment": 0.85, "sexual": 0.95})
    assert (d.action, d.category, d.score) == ("remove", "sexual", 0.95)
    d = policies.decide("default", {"harassment": 0.97, "sexual": 0.92})
    assert (d.action, d.category, d.score) == ("remove", "harassment", 0.97)


def test_uncertain_band_escalates_unless_removed(policies: Policies) -> None:
    d = policies.decide("default", {"hate": 0.45, "sexual": 0.7})
    assert (d.action, d.category) == ("escalate", "hate")
    assert d.rule == "default@7:hate in [0.4,0.6):escalate"
    assert {r.action for r in d.reasons} == {"escalate", "age_gate"}
    assert policies.decide("default", {"hate": 0.6}).action == "blur"  # the band is [low, high)
    # another category removes the item: no reviewer's time spent on the band
    d = policies.decide("default", {"hate": 0.45, "sexual": 0.95})
    assert (d.action, [r.category for r in d.reasons]) == ("remove", ["sexual"])


def test_region_inherits_and_may_allow_a_category(policies: Policies) -> None:
    assert policies.decide("xx", {"sexual": 1.0}).action == "allow"  # rules: []
    assert policies.decide("default", {"sexual": 1.0}).action == "remove"
    # violence is not listed under xx: default's rule, under xx's name and version
    assert policies.decide("xx", {"violence": 0.7}).rule == "xx@v2:violence>=0.6:blur"
    assert policies.versions() == {"default": "7", "xx": "v2"}


@pytest.mark.parametrize(
    ("scores", "message"),
    [
        ({"nudity": 0.5}, "Unknown category 'nudity'"),
        ({"hate": 1.5}, r"within \[0, 1\]"),
        ({"hate": float("nan")}, r"within \[0, 1\]"),
        ({"hate": "0.5"}, "must be a number"),
    ],
)
def test_hostile_scores_are_refused(
    policies: Policies, scores: dict[str, float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        policies.decide("de", scores)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("      hate:", "      hats:"), r"region 'default': unknown category 'hats'"),
        (
            ("action: blur}]\n        uncertain", "action: hide}]\n        uncertain"),
            r"region 'default': categories.hate.rules\[1\].action must be one of",
        ),
        (
            (
                "threshold: 0.8, action: remove}, {threshold: 0.6, action: blur}]\n        unc",
                "threshold: 1.8, action: remove}, {threshold: 0.6, action: blur}]\n        unc",
            ),
            r"categories.hate.rules\[0\].threshold must be a number within \[0, 1\]. Got 1.8",
        ),
        (
            (
                "threshold: 0.5, action: remove}]",
                "threshold: 0.5, action: remove}, {threshold: 0.7, action: blur}]",
            ),
            r"region 'xx': categories.hate.rules\[1\]: rules must go from the highest",
        ),
        (
            ("{threshold: 0.6, action: age_gate}", "{threshold: 0.6, action: escalate}"),
            r"region 'default': categories.sexual.rules\[1\]: .* no stronger action below",
        ),
        (
            ("uncertain: [0.4, 0.6]", "uncertain: [0.6, 0.4]"),
            r"categories.hate.uncertain must have low < high",
        ),
        (
            ("{threshold: 0.6, action: blur}]\n  xx", "{threshold: 0.6, action: allow}]\n  xx"),
            r"categories.violence.rules\[0\].action must be one of",
        ),
        (("  default:", "  fallback:"), r"with a 'default' region"),
        (("    version: v2", "    version: [2]"), r"region 'xx': 'version' must be"),
    ],
)
def test_invalid_files_are_refused_naming_file_region_and_field(
    tmp_path: Path, edit: tuple[str, str], message: str
) -> None:
    assert edit[0] in POLICY
    path = tmp_path / "bad.yaml"
    path.write_text(POLICY.replace(edit[0], edit[1], 1))
    with pytest.raises(ConfigError, match=message) as info:
        Policies(path)
    assert str(path) in str(info.value)


def test_parse_refuses_what_is_not_yaml() -> None:
    with pytest.raises(ConfigError, match=r"x\.yaml: not valid YAML"):
        parse("regions: [", "x.yaml")


def _write(path: Path, text: str, stamp_ns: int) -> None:
    path.write_text(text)
    os.utime(path, ns=(stamp_ns, stamp_ns))  # a distinct mtime however fast the edits come


def test_hot_reload_keeps_the_last_good_policies(tmp_path: Path) -> None:
    path = tmp_path / "policies.yaml"
    _write(path, POLICY, 1_000_000_000)
    p = Policies(path)
    assert p.refresh() is False  # unchanged: nothing read
    assert p.decide("xx", {"hate": 0.52}).action == "remove"

    _write(path, POLICY.replace("version: v2", "version: v3").replace("0.5, action: remove",
                                                                      "0.55, action: remove"),
           2_000_000_000)  # fmt: skip
    assert p.refresh() is True
    d = p.decide("xx", {"hate": 0.52})
    assert (d.action, p.versions()["xx"]) == ("allow", "v3")

    _write(path, POLICY.replace("action: remove", "action: delete"), 3_000_000_000)
    assert p.refresh() is False
    assert p.last_error is not None
    assert "action must be one of" in p.last_error
    assert p.versions()["xx"] == "v3"  # still in force
    assert p.decide("xx", {"hate": 0.6}).rule == "xx@v3:hate>=0.55:remove"

    path.unlink()
    assert p.refresh() is False
    assert p.last_error is not None
    assert p.versions()["xx"] == "v3"

    _write(path, POLICY.replace("version: 7", "version: 8"), 4_000_000_000)
    assert p.refresh() is True
    assert p.last_error is None
    assert p.versions()["default"] == "8"

"""``loopline serve moderation`` over real HTTP: decisions that explain themselves, hostile
bodies refused with the field named, audio answered later, the review loop feeding labels
back, repeat offenders limited, and the policy file re-read when it changes."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from loopline.apps.moderation.cascade import Readers
from loopline.apps.moderation.media import encode_image, encode_wav, render_text_image, speak
from loopline.apps.moderation.service import ModerationService, ServeOptions, build
from loopline.serving import KeyRing, new_key, running

KEY, STORED = new_key("client", ["score"])
REVIEWER_KEY, REVIEWER = new_key("reviewer", ["label"])

# every text is escalated for harassment, spam is removed at once: deterministic decisions
POLICIES = """
regions:
  default:
    version: 7
    categories:
      harassment:
        rules: []
        uncertain: [0.0, 1.0]
      spam:
        rules: [{threshold: 0.0, action: remove}]
"""


@pytest.fixture
def served(
    tmp_path: Path, registry_uri: str, readers: Readers
) -> Iterator[tuple[ModerationService, httpx.Client]]:
    (tmp_path / "policies.yaml").write_text(POLICIES)
    KeyRing([STORED, REVIEWER]).save(tmp_path / "state" / "keys.json")
    options = ServeOptions(state=tmp_path / "state", registry=registry_uri, watch_s=0,
                           policies=tmp_path / "policies.yaml", offender_limit=2.5)  # fmt: skip
    svc = build(options, readers=readers)
    with (
        running(svc.service) as port,
        httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": KEY}, timeout=60
        ) as client,
    ):
        yield svc, client
    svc.close()


def text(content_id: str, words: str, **extra: Any) -> dict[str, Any]:
    return {"id": content_id, "parts": [{"type": "text", "text": words}], **extra}


def test_a_decision_names_its_category_score_and_rule(served: Any) -> None:
    _, client = served
    r = client.post("/v1/moderate", json=text("c-1", "you are a pathetic loser, go away"))
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["status"] == "done"
    assert answer["action"] == "remove"  # spam's rule fires at any score
    assert answer["rule"] == "default@7:spam>=0:remove"
    assert answer["category"] == "spam"
    assert answer["policy_version"] == "7"
    assert {x["category"] for x in answer["reasons"]} >= {"spam"}
    assert set(answer["scores"]) == {
        "harassment",
        "hate",
        "sexual",
        "violence",
        "self_harm",
        "spam",
    }
    assert answer["stage"] in ("fast", "thorough")
    assert answer["language"] == "en"
    assert answer["model_version"] == "moderation:1"
    again = client.post("/v1/moderate", json=text("c-1", "you are a pathetic loser, go away"))
    assert again.json()["replayed"] is True
    assert client.post("/v1/moderate", json=text("c-1", "changed")).status_code == 422


def test_an_image_is_read_for_its_words_and_look(served: Any) -> None:
    _, client = served
    png = encode_image(render_text_image("congratulations you won a free iPhone", seed=1))
    body = {"id": "img-1", "parts": [{"type": "image", "data": base64.b64encode(png).decode()}]}
    answer = client.post("/v1/moderate", json=body).json()
    assert answer["status"] == "done"
    assert answer["modalities"] == ["image"]
    assert answer["language"] == "en"  # from the words OCR found


@pytest.mark.parametrize(
    ("part", "field"),
    [
        ({"type": "image", "data": "%%%"}, "parts[0].data"),
        ({"type": "image", "data": base64.b64encode(b"not an image").decode()}, "parts[0].data"),
        ({"type": "image", "text": "hello"}, "parts[0].text"),
        ({"type": "text", "text": "hi", "data": "aGk="}, "parts[0].text"),
        ({"type": "audio"}, "parts[0].data"),
        ({"type": "text", "text": " \n "}, "parts[0].text"),
        ({"type": "smell", "text": "x"}, "parts[0].type"),
    ],
)
def test_hostile_parts_are_refused_naming_the_field(
    served: Any, part: dict[str, Any], field: str
) -> None:
    _, client = served
    r = client.post("/v1/moderate", json={"id": "bad-1", "parts": [part]})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field


def test_audio_is_answered_later_by_polling(served: Any) -> None:
    svc, client = served
    wav = encode_wav(speak("this is a short message for everyone", "en"))
    body = {"id": "voice-1", "parts": [{"type": "audio", "data": base64.b64encode(wav).decode()}]}
    first = client.post("/v1/moderate", json=body).json()
    assert first["status"] == "pending"
    deadline = time.monotonic() + 60
    while (polled := client.get("/v1/moderate/voice-1").json())["status"] == "pending":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert polled["status"] == "done"
    assert polled["modalities"] == ["audio"]
    assert polled["language"] == "en"  # identified from what Whisper heard
    assert polled["action"] in ("escalate", "remove")
    assert client.get("/v1/moderate/never-sent").status_code == 404
    joined = svc.log.joined()
    rows = [o for r, o in zip(joined.request_ids, joined.outputs, strict=True) if r == "voice-1"]
    assert {o.get("status", "done") for o in rows} == {"pending", "done"}  # both logged
    final = next(o for o in rows if "fusion" in o)
    assert final["action"] == polled["action"]
    assert final["stage"] in ("fast", "thorough")


def test_broken_audio_fails_its_job_not_the_service(served: Any) -> None:
    _, client = served
    body = {
        "id": "voice-2",
        "parts": [{"type": "audio", "data": base64.b64encode(b"RIFF junk").decode()}],
    }
    assert client.post("/v1/moderate", json=body).json()["status"] == "pending"
    deadline = time.monotonic() + 30
    while (polled := client.get("/v1/moderate/voice-2").json())["status"] == "pending":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert polled["status"] == "failed"
    assert polled["id"] == "voice-2"
    assert polled["error"]


def test_review_verdicts_become_labels_and_appeals_reenter(served: Any) -> None:
    svc, client = served
    # no rule but the band: harassment's score lands in [0, 1), so a person decides
    svc.policies.path.write_text(
        POLICIES.replace("rules: [{threshold: 0.0, action: remove}]", "rules: []")
    )
    svc.policies.refresh()
    answer = client.post(
        "/v1/moderate", json=text("c-9", "nobody likes you, loser", reach=5000)
    ).json()
    assert answer["action"] == "escalate"
    assert answer["review_task"] is not None
    assert answer["review_deadline_ms"] > time.time() * 1000
    reviewer = {"X-API-Key": REVIEWER_KEY}
    assert (
        client.post(
            "/v1/review/claim", json={"request_id": "claim-0", "reviewer": "ann"}
        ).status_code
        == 403
    )
    task = client.post("/v1/review/claim", headers=reviewer,
                       json={"request_id": "claim-1", "reviewer": "ann"}).json()  # fmt: skip
    assert task["item"] == "c-9"
    assert "loser" in task["text"]
    judged = {"request_id": "v-1", "task": task["task"], "reviewer": "ann", "label": "harassment"}
    verdict = client.post("/v1/review/verdict", headers=reviewer, json=judged)
    assert verdict.json()["accepted"] is True
    svc.labels.run_once()
    joined = svc.log.joined()
    labels = dict(zip(joined.request_ids, joined.labels, strict=True))["c-9"]
    assert labels["harassment"] == 1.0
    assert labels["benign"] == 0.0
    appeal = client.post("/v1/appeal", json={"request_id": "a-1", "id": "c-9", "note": "a joke"})
    assert appeal.json()["accepted"] is True
    again = client.post("/v1/review/claim", headers=reviewer,
                        json={"request_id": "claim-2", "reviewer": "bob"}).json()  # fmt: skip
    assert again["appeal"] is True
    judged = {"request_id": "v-2", "task": again["task"], "reviewer": "bob", "label": "benign"}
    client.post("/v1/review/verdict", headers=reviewer, json=judged)
    svc.labels.run_once()
    joined = svc.log.joined()
    labels = dict(zip(joined.request_ids, joined.labels, strict=True))["c-9"]
    assert labels["benign"] == 1.0  # the appeal's verdict supersedes
    assert labels["harassment"] == 0.0
    nothing = client.post("/v1/appeal", json={"request_id": "a-2", "id": "never-judged"}).json()
    assert nothing["accepted"] is False


def test_repeat_offenders_are_rate_limited(served: Any) -> None:
    _, client = served
    statuses = [
        client.post("/v1/moderate", json=text(f"s-{n}", f"buy now {n}", user="spammer")).status_code
        for n in range(6)
    ]
    assert statuses[:3] == [200, 200, 200]  # spam's severity is 1; the limit is 2.5
    limited = client.post("/v1/moderate", json=text("s-9", "hello", user="spammer"))
    assert limited.status_code == 429
    assert limited.json()["field"] == "user"
    assert int(limited.headers["retry-after"]) > 0
    assert (
        client.post("/v1/moderate", json=text("s-10", "hello", user="someone")).status_code == 200
    )


def test_a_policy_edit_takes_effect_and_a_broken_one_is_ignored(served: Any) -> None:
    svc, client = served
    svc.policies.path.write_text(POLICIES.replace("version: 7", "version: 8"))
    svc.policies.refresh()
    assert client.post("/v1/moderate", json=text("p-1", "hello")).json()["policy_version"] == "8"
    svc.policies.path.write_text("regions: [not, a, mapping]")
    assert svc.policies.refresh() is False
    assert svc.policies.last_error
    assert client.post("/v1/moderate", json=text("p-2", "hello")).json()["policy_version"] == "8"

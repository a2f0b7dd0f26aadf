"""Ten thousand requests generated from the OpenAPI schema, valid and invalid, against
the live process: never a 5xx, every error names what is wrong."""

from __future__ import annotations

import json
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode

from loopline.apps.fraud.service import openapi

from .conftest import DETAIL_KEY, Live, note_pans

EXAMPLES = 10_000
schema = schemathesis.openapi.from_dict(openapi())
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=EXAMPLES
)
sent: list[int] = []


@schema.include(method="POST", path="/v1/score").parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_no_request_gets_a_server_error(case: schemathesis.Case, live: Live) -> None:
    note_pans([case.body, dict(case.headers or {})])
    response = case.call(base_url=live.url, headers={"X-API-Key": DETAIL_KEY}, timeout=10)
    sent.append(response.status_code)
    if response.status_code >= 500:
        Path("/tmp/fuzz_fail.json").write_text(
            json.dumps({"body": case.body, "headers": dict(case.headers or {})})
        )
    assert response.status_code < 500, (response.status_code, response.text, case.body)
    if response.status_code >= 400:
        assert "error" in response.json(), "every error names what is wrong"


def test_the_fuzzing_sent_ten_thousand_requests() -> None:
    assert len(sent) >= EXAMPLES, len(sent)
    assert sum(1 for s in sent if s >= 400) > 1000, "invalid requests were among them"
    assert sum(1 for s in sent if s == 200) > 100, "valid ones too"

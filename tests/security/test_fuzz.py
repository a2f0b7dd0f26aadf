"""Thousands of requests generated from the OpenAPI schema, valid and invalid, against a
real server: never a 5xx."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode

from loopline.apps.fraud.service import openapi
from loopline.registry import Registry
from loopline.serving import KeyRing

from .conftest import SCORE, SCORE_KEY
from .test_service_durability import _close, _port, _start

schema = schemathesis.openapi.from_dict(openapi())
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=2000
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, fraud_registry: Registry) -> Iterator[str]:
    root = tmp_path_factory.mktemp("fuzz")
    KeyRing([SCORE]).save(root / "keys.json")
    port = _port()
    proc: subprocess.Popen[bytes] = _start(root / "state", fraud_registry, root / "keys.json", port)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=30)
    _close(proc)


@schema.include(method="POST", path="/v1/score").parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_gets_a_server_error(case: schemathesis.Case, server: str) -> None:
    response = case.call(base_url=server, headers={"X-API-Key": SCORE_KEY}, timeout=10)
    if response.status_code >= 500:
        Path("/tmp/fuzz_fail.json").write_text(
            json.dumps({"body": case.body, "headers": dict(case.headers or {})})
        )
    assert response.status_code < 500, (response.status_code, response.text, case.body)
    if response.status_code >= 400:
        assert "error" in response.json(), "every error names what is wrong"

"""Tracing: a span per request (sampled at its start), the trace id in every response and
in every JSON log line written while the request is handled."""

from __future__ import annotations

import io
import json
import logging
import time

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from loopline.apps.fraud.service import FraudService
from loopline.monitoring.tracing import JsonLogFormatter, Tracing

from .test_service import client, score, tx

pytestmark = pytest.mark.anyio
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_every_response_carries_its_trace_id_and_a_caller_trace_is_continued(
    service: FraudService,
) -> None:
    spans = InMemorySpanExporter()
    service.service.tracing = Tracing(sample_ratio=1.0, exporter=spans)
    async with client(service) as c:
        r = await score(c, tx(1))
        assert r.json()["trace_id"] == r.headers["x-trace-id"]
        assert len(r.headers["x-trace-id"]) == 32
        bad = await c.post("/v1/score", content=b"{", headers={"X-API-Key": "nope"})
        assert bad.status_code == 401
        assert len(bad.headers["x-trace-id"]) == 32
        parent = f"00-{CALLER_TRACE}-00f067aa0ba902b7-01"
        continued = await score(c, tx(2), traceparent=parent)
        assert continued.json()["trace_id"] == CALLER_TRACE
    service.service.tracing.provider.force_flush()  # type: ignore[union-attr]
    done = spans.get_finished_spans()
    assert len(done) == 3, "one span per request"
    by_trace = {f"{s.context.trace_id:032x}": s for s in done}
    assert by_trace[CALLER_TRACE].parent is not None
    assert by_trace[CALLER_TRACE].parent.span_id == 0x00F067AA0BA902B7
    assert by_trace[r.json()["trace_id"]].attributes["http.response.status_code"] == 200
    assert by_trace[bad.headers["x-trace-id"]].attributes["http.response.status_code"] == 401


async def test_unsampled_requests_export_nothing_but_still_have_trace_ids(
    service: FraudService,
) -> None:
    spans = InMemorySpanExporter()
    service.service.tracing = Tracing(sample_ratio=0.0, exporter=spans)
    async with client(service) as c:
        ids = {(await score(c, tx(i))).json()["trace_id"] for i in range(5)}
    service.service.tracing.provider.force_flush()  # type: ignore[union-attr]
    assert spans.get_finished_spans() == ()
    assert len(ids) == 5


async def test_a_callers_sampled_flag_or_chosen_trace_id_does_not_force_sampling(
    service: FraudService,
) -> None:
    # a client once had every request traced by sending "-01" (issue 14, defect 13)
    spans = InMemorySpanExporter()
    service.service.tracing = Tracing(sample_ratio=0.0, exporter=spans)
    async with client(service) as c:
        for i, trace in enumerate((CALLER_TRACE, "0" * 31 + "1")):
            r = await score(c, tx(10 + i), traceparent=f"00-{trace}-00f067aa0ba902b7-01")
            assert r.json()["trace_id"] == trace  # still continued, for correlation
    service.service.tracing.provider.force_flush()  # type: ignore[union-attr]
    assert spans.get_finished_spans() == ()


async def test_log_lines_are_json_with_the_trace_id_of_their_request(service: FraudService) -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonLogFormatter())
    logger = logging.getLogger("loopline.serving")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    breaker = service.pipeline.tabular.store_breaker
    breaker.state, breaker.opened_at = "open", time.monotonic()  # the store is "down"
    try:
        async with client(service) as c:
            r = await score(c, tx(3))
    finally:
        logger.removeHandler(handler)
    assert r.json()["degraded"] == ["features_unavailable", "rules_only"]
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    degraded = [line for line in lines if line["message"] == "degraded answer"]
    assert len(degraded) == 1
    assert degraded[0]["trace_id"] == r.json()["trace_id"]
    assert degraded[0]["level"] == "warning"
    assert degraded[0]["degraded"] == ["features_unavailable", "rules_only"]
    assert degraded[0]["degraded_answers"] == 1, "degraded answers since the last such line"

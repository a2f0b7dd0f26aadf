"""Tracing: one OpenTelemetry span per request, and JSON log lines that carry its trace id.

The sampling decision is made when the span starts: a caller's ``traceparent`` gives the
trace id (so its spans and ours join), never the decision, which is the service's own
ratio (a client could otherwise have all its requests traced). Every request
gets a trace id either way. It is in the response and in every log line written while the
request is handled, so an answer, its log lines and, when sampled, its spans are found by
one id. A span that is not sampled records nothing; only the sampled ones set attributes
(an OpenTelemetry span costs 30-70 µs, which is why the default ratio is 1 %).

Spans go to an OTLP/HTTP collector when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, in
batches off the request path; tests hand in their own exporter.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import random
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

CURRENT_TRACE: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "loopline_trace_id", default=None
)
_propagator = TraceContextTextMapPropagator()


class Tracing:
    """A tracer for one service: ``sample_ratio`` of new traces kept."""

    def __init__(
        self,
        service: str = "loopline",
        *,
        sample_ratio: float = 0.01,
        exporter: SpanExporter | None = None,
    ) -> None:
        if not 0.0 <= sample_ratio <= 1.0:
            raise ValueError(f"sample_ratio must be within 0-1, got {sample_ratio}.")
        # a caller's sampled flag and trace id are its own choice: trusting either would
        # let any client have every one of its requests traced (the trace-id ratio keeps
        # ids whose low bits are small), so a remote parent is sampled by a fresh draw
        untrusted = _RandomRatio(sample_ratio)
        self.provider = TracerProvider(
            sampler=ParentBased(
                TraceIdRatioBased(sample_ratio),
                remote_parent_sampled=untrusted,
                remote_parent_not_sampled=untrusted,
            )
        )
        if exporter is None and os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter()
        if exporter is not None:
            self.provider.add_span_processor(BatchSpanProcessor(exporter))
        self.tracer = self.provider.get_tracer(service)

    @contextmanager
    def request(self, name: str, headers: Mapping[str, str]) -> Iterator[trace.Span]:
        """A server span for one request (continuing the caller's ``traceparent``), its
        trace id current for the log lines written meanwhile."""
        parent = _propagator.extract(headers) if "traceparent" in headers else None
        span = self.tracer.start_span(name, context=parent, kind=trace.SpanKind.SERVER)
        token = CURRENT_TRACE.set(trace_id(span))
        try:
            with trace.use_span(span, end_on_exit=True):
                yield span
        finally:
            CURRENT_TRACE.reset(token)

    def shutdown(self) -> None:
        self.provider.shutdown()


class _RandomRatio(Sampler):
    """Keeps ``ratio`` of spans by a random draw, whatever their trace id."""

    def __init__(self, ratio: float) -> None:
        self.ratio = ratio

    def should_sample(self, *args: Any, **kwargs: Any) -> SamplingResult:
        keep = random.random() < self.ratio
        return SamplingResult(Decision.RECORD_AND_SAMPLE if keep else Decision.DROP)

    def get_description(self) -> str:
        return f"RandomRatio{{{self.ratio}}}"


def trace_id(span: trace.Span) -> str:
    """A span's trace id as 32 hex digits (as in ``traceparent``)."""
    return f"{span.get_span_context().trace_id:032x}"


class JsonLogFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, the current trace id, and the
    record's ``extra`` fields."""

    _plain = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "trace_id": CURRENT_TRACE.get(),
        }
        line.update({k: v for k, v in record.__dict__.items() if k not in self._plain})
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def json_logging(level: int = logging.INFO) -> None:
    """Send ``loopline`` loggers' lines to stderr as JSON."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLogFormatter())
    logger = logging.getLogger("loopline")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False

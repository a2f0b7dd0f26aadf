"""Answers made durable before they are returned: each prediction is written to the
log (group-committed) within the commit timeout, then its pipeline is told and its
duplicates waiting on the same idempotency key get it; a write that outlives the
timeout is a 503 to its caller but goes on, so a retry gets this answer, not a second
decision. Degraded answers are logged here too, a line a second at most."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from loopline.predictions import PredictionLog
from loopline.serving.endpoint import Endpoint, Prediction
from loopline.serving.idempotency import Idempotency
from loopline.serving.limits import Limits
from loopline.serving.loop import within
from loopline.serving.problems import Problem, RequestError
from loopline.serving.routing import Deployment
from loopline.serving.telemetry import Metrics

log = logging.getLogger("loopline.serving")


class Durable:
    """The commit path of one service (see the module)."""

    def __init__(
        self, *, deployment: Deployment, log: PredictionLog, limits: Limits, metrics: Metrics,
        clock: Callable[[], float],
    ) -> None:  # fmt: skip
        self.deployment, self.log, self.limits = deployment, log, limits
        self.metrics, self.clock = metrics, clock
        self.idempotency = Idempotency(log)
        self._degraded_logged, self._degraded_since_log = -float("inf"), 0

    async def commit(
        self, endpoint: Endpoint, p: Prediction[Any], key: str, fingerprint: str, body: bytes,
        answered: asyncio.Future[bytes] | None = None,
    ) -> None:  # fmt: skip
        """Watch the canary, log the prediction durably, then tell the pipeline and the
        duplicates waiting on ``answered``.

        A write that outlives the commit timeout is a 503 to the caller, but it goes on:
        once it is durable the pipeline is told (it learns and publishes once), and a
        retry meanwhile waits for it and gets this answer, not a second decision."""
        self._note_degraded(p)
        self.deployment.observe(p)
        row = p.row(key, fingerprint, int(self.clock() * 1000), body)
        write = asyncio.ensure_future(self.log.write(row))
        if not await within(write, self.limits.commit_timeout_ms / 1000):
            self.metrics.shed()
            write.add_done_callback(
                lambda _: self._durable(endpoint, p, key, body, write, answered)
            )
            raise LateError(
                503,
                Problem(
                    error="The answer was not durable in time: the prediction log is slow.",
                    detail="Retry-After: 1; the retry with the same request id returns it.",
                ),
            ) from None
        write.result()  # a write that failed in time fails the request: never a 200 unlogged
        self._durable(endpoint, p, key, body, write, answered)

    def _durable(
        self, endpoint: Endpoint, p: Prediction[Any], key: str, body: bytes,
        write: asyncio.Future[None], answered: asyncio.Future[bytes] | None,
    ) -> None:  # fmt: skip
        error = write.exception() if not write.cancelled() else asyncio.CancelledError()
        if error is not None:  # only a late write gets here failed: its caller had a 503
            log.warning("a late prediction-log write failed", exc_info=error)
            if answered is not None:
                self.idempotency.release(key, error)
            return
        try:
            endpoint.pipeline.committed(p)
            self.metrics.predicted(p)
        finally:  # durable: its duplicates get this answer, whatever the pipeline did
            if answered is not None:
                answered.set_result(body)
                self.idempotency.release(key)

    async def replay(self, key: str, fingerprint: str) -> bytes | None:
        replay = await self.idempotency.replay(key, fingerprint)
        if replay is not None:
            self.metrics.replayed()
        return replay

    def _note_degraded(self, p: Prediction[Any]) -> None:
        if not p.degraded:
            return
        self._degraded_since_log += 1
        now = time.monotonic()
        if now - self._degraded_logged >= 1.0:  # a line a second, not one per request
            log.warning(
                "degraded answer",
                extra={"degraded": p.degraded, "model_version": p.model_version,
                       "degraded_answers": self._degraded_since_log},
            )  # fmt: skip
            self._degraded_logged, self._degraded_since_log = now, 0


class LateError(RequestError):
    """A 503 whose prediction is still being written: its key stays claimed until then."""

"""The review routes' pipeline: reviewers claim tasks and give verdicts
(``POST /v1/review/claim``, ``POST /v1/review/verdict``, scope ``label``), authors appeal
(``POST /v1/appeal``); each answered from the review queue, one by one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from loopline.apps.moderation.api import Ack, ClaimRequest, ClaimResponse, VerdictRequest
from loopline.apps.moderation.review import ReviewQueue
from loopline.serving import Prediction, Routing, refuse


class ReviewPipeline:
    """Reviewers' claims and verdicts, and authors' appeals, answered one by one."""

    def __init__(self, review: ReviewQueue, kind: str) -> None:
        self.review, self.kind = review, kind

    def request_id(self, request: Any) -> str:
        return str(request.request_id)

    def fingerprint(self, request: Any) -> Any:
        return msgspec.to_builtins(request)

    def predict_many(self, requests: Sequence[Any], trace_ids: Sequence[str],
                     routing: Routing) -> list[Prediction[Any]]:  # fmt: skip
        return [self._one(r) for r in requests]

    def _one(self, request: Any) -> Prediction[Any]:
        response: ClaimResponse | Ack
        if isinstance(request, ClaimRequest):
            task = self.review.claim(request.reviewer, senior=request.senior)
            response = ClaimResponse(request_id=request.request_id)
            if task is not None:
                response = ClaimResponse(
                    request_id=request.request_id, task=str(task.id), item=task.item_id,
                    category=task.category, score=task.score, text=task.summary,
                    deadline_ms=int(task.deadline * 1000), appeal=task.kind == "appeal",
                    escalated=task.escalated,
                )  # fmt: skip
        elif isinstance(request, VerdictRequest):
            if not request.task.isdigit():
                raise refuse(422, "Not a task id.", field="task")
            try:
                self.review.verdict(int(request.task), request.reviewer, request.label)
            except (KeyError, ValueError) as exc:
                raise refuse(409, str(exc), field="task") from None
            response = Ack(request_id=request.request_id, accepted=True)
        else:
            try:
                queued = self.review.appeal(request.id, request.note)
            except KeyError:
                queued = None
            detail = "queued" if queued is not None else "no final verdict to appeal"
            response = Ack(
                request_id=request.request_id, accepted=queued is not None, detail=detail
            )
        return Prediction(response, request_id=request.request_id, routing_key=self.kind,
                          model_version="people", arm="champion", inputs={"kind": self.kind},
                          outputs={}, outcome=self.kind)  # fmt: skip

    def committed(self, prediction: Prediction[Any]) -> None:
        pass

    def close(self) -> None:
        pass

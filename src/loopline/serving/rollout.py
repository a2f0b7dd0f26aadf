"""A challenger's rollout on a running service, in its own process: the serving side of
:class:`loopline.feedback.retraining.RetrainingLoop` (shadow, canary, champion, retire).

Models are loaded by the service's loader (pinned, checksums verified) and swapped by
reassigning the routing, as the admin endpoints do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from loopline.serving.app import Service


class ServiceRollout:
    """Moves a challenger through ``service``'s routing."""

    def __init__(self, service: Service) -> None:
        if service.load_model is None:
            raise ValueError("The service was built without a model loader (registry).")
        self.service = service
        self.load = service.load_model

    def champion(self) -> int:
        return self.service.scorer.routing.champion.version

    def shadow(self, version: int) -> str:
        routing = self.service.scorer.routing
        routing.challenger = self.load(version)
        routing.shadow, routing.canary_percent = True, 0.0
        self.service.canary.reset()
        return routing.challenger.label

    def shadow_flag_ratio(self) -> float:
        return self.service.canary.shadow_flag_ratio()

    def canary(self, percent: float, expected_flag_ratio: float) -> None:
        guard = self.service.canary
        guard.reset()
        guard.expected_flag_ratio = expected_flag_ratio
        self.service.scorer.routing.canary_percent = percent

    def canary_alive(self) -> bool:
        routing = self.service.scorer.routing
        return routing.challenger is not None and routing.canary_percent > 0

    def promote(self) -> None:
        routing = self.service.scorer.routing
        if routing.challenger is None:
            raise ValueError("No challenger to promote.")
        routing.previous, routing.champion = routing.champion, routing.challenger
        self.retire()
        self.service.watch_drift_of(routing.champion)

    def retire(self) -> None:
        routing = self.service.scorer.routing
        routing.challenger, routing.shadow, routing.canary_percent = None, False, 0.0
        self.service.canary.reset()
        self.service.canary.expected_flag_ratio = 1.0

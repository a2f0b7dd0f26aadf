"""Which model answers: an immutable :class:`Routing`, and the :class:`Deployment` that
swaps it.

A routing is never changed in place: every change (an admin call, a blue-green swap
from the registry, a rollout step of the retraining loop, the canary guard's rollback)
builds a new one and swaps it in with one assignment, so a batch that took a snapshot
sees one consistent routing from start to end.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from loopline.exceptions import ConfigError
from loopline.models import ServingModel
from loopline.registry.bundle import UntrustedModelError
from loopline.serving.canary import CanaryGuard
from loopline.serving.endpoint import Prediction

log = logging.getLogger("loopline.serving")


@dataclass(frozen=True)
class Routing:
    """``champion`` answers by default. With a ``challenger``: ``canary_percent`` of
    routing keys (a stable hash of the key, so a key stays on one side) are answered by
    it; ``shadow`` scores every champion request with it too, logged, never returned.
    ``previous`` stays loaded for an instant rollback and as a fallback."""

    champion: ServingModel
    challenger: ServingModel | None = None
    canary_percent: float = 0.0
    shadow: bool = False
    previous: ServingModel | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.canary_percent <= 100:
            raise ConfigError(f"canary_percent must be 0-100, got {self.canary_percent}.")

    def pick(self, key: str) -> tuple[ServingModel, str]:
        """The model for routing key ``key``, and its arm."""
        if self.challenger is not None and self.canary_percent > 0:
            bucket = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=4).digest())
            if bucket % 10_000 < self.canary_percent * 100:
                return self.challenger, "challenger"
        return self.champion, "champion"

    def replace(self, **changes: Any) -> Routing:
        return dataclasses.replace(self, **changes)


Loader = Callable[[str | int], ServingModel]  # an alias or version -> loaded and warmed


class Deployment:
    """The service's routing and every way it changes.

    Args:
        routing: The first routing.
        load: Loads a version (by alias or number), pinned and warmed: admin reloads,
            blue-green swaps and rollouts need it (None: fixed models).
        guard: Judges a canary against the champion and rolls it back.
        on_champion: Told of each new champion (e.g. to compare its inputs with its
            own training reference from then on).
        on_rollback: Told (challenger label, why) when the guard rolls a canary back.
    """

    def __init__(
        self,
        routing: Routing,
        *,
        load: Loader | None = None,
        guard: CanaryGuard | None = None,
        on_champion: Callable[[ServingModel], None] | None = None,
        on_rollback: Callable[[str, str], None] | None = None,
    ) -> None:
        self.routing = routing
        self.load = load
        self.guard = guard or CanaryGuard()
        self.on_champion = on_champion
        self.on_rollback = on_rollback
        self.swaps = 0  # new champions taken from the registry
        # a version the registry watch must not bring back: the one a rollback moved
        # away from, or the one a promotion here replaced (until the registry agrees)
        self.rolled_back: int | None = None
        self.refused: dict[str, int] = {}  # models refused as untrusted, by reason
        self.rollbacks = 0  # canaries the guard rolled back
        self.follow_failures = 0  # failed reads of the registry's champion

    def _loader(self) -> Loader:
        if self.load is None:
            raise ConfigError("This service was started without a registry to load from.")
        return self.load

    def _swap(self, routing: Routing) -> Routing:
        champion = self.routing.champion
        self.routing = routing
        if routing.champion is not champion and self.on_champion is not None:
            self.on_champion(routing.champion)
        return routing

    async def reload(self, ref: str | int = "champion") -> Routing:
        """Blue-green: load and warm ``ref`` off the event loop, then swap it in as the
        champion; the old one stays loaded for an instant rollback."""
        try:
            fresh = await asyncio.to_thread(self._loader(), ref)
        except UntrustedModelError as exc:  # alerted by the registry; counted here
            self.refused[exc.reason] = self.refused.get(exc.reason, 0) + 1
            raise
        self.rolled_back = None  # an explicit reload ends a rollback's hold
        current = self.routing
        if fresh.label == current.champion.label:
            return current
        return self._swap(current.replace(champion=fresh, previous=current.champion))

    def rollback(self) -> Routing:
        """Back to the previous champion (the current one becomes the previous). It
        sticks: the registry watch does not bring the rolled-back version back while
        the registry still names it champion; a new champion or a reload ends that."""
        r = self.routing
        if r.previous is None:
            raise ConfigError("No previous model is loaded to roll back to.")
        self.rolled_back = r.champion.version
        return self._swap(r.replace(champion=r.previous, previous=r.champion))

    async def route(
        self,
        *,
        challenger: str | int | bool | None = False,
        canary_percent: float | None = None,
        shadow: bool | None = None,
    ) -> Routing:
        """A new challenger (a ref; None: none; False: unchanged), canary share and
        shadowing; the guard judges the new routing from its start."""
        r = self.routing
        model = r.challenger
        if challenger is None:
            model = None
        elif challenger is not False:
            model = await asyncio.to_thread(self._loader(), challenger)
        fresh = r.replace(
            challenger=model,
            canary_percent=r.canary_percent if canary_percent is None else canary_percent,
            shadow=r.shadow if shadow is None else shadow,
        )
        self.guard.reset()
        return self._swap(fresh)

    async def follow(
        self, version_of: Callable[[], int | None], every_s: float, *, name: str | None = None
    ) -> None:
        """Blue-green on the registry: every ``every_s``, read the champion alias's
        version (off the event loop); when it moved, load and swap. Forever. A version
        refused as untrusted is not tried again (an admin reload does, once re-signed).
        ``name``: the followed model's, where the champion may be another model's (a
        base model before its first adapter): then a champion of another name is not
        that version. ``version_of`` returns None while there is nothing to follow (no
        alias yet)."""
        untrusted: int | None = None
        while True:
            await asyncio.sleep(every_s)
            try:
                version = await asyncio.to_thread(version_of)
                champion = self.routing.champion
                current = champion.version if name in (None, champion.name) else None
                if version is not None and version not in (current, self.rolled_back, untrusted):
                    await self.reload(version)
                    self.swaps += 1
                    log.info("champion swapped", extra={"champion": self.routing.champion.label})
            except UntrustedModelError as exc:  # alerted by the registry: once, not each tick
                self.follow_failures += 1
                untrusted = exc.version
            except Exception:  # a registry hiccup must not stop the watch
                self.follow_failures += 1
                log.warning("registry watch failed", exc_info=True)

    def observe(self, prediction: Prediction[Any]) -> None:
        """Feed the canary guard while a challenger takes traffic (and its shadow tally
        while it watches); roll it back when the guard says it degraded (judged every
        50 of its predictions)."""
        routing = self.routing
        if routing.challenger is None:
            return
        if prediction.shadow_positive is not None:
            champion_flags, challenger_flags = prediction.shadow_positive
            self.guard.record_shadow(
                champion_flags=champion_flags, challenger_flags=challenger_flags
            )
        if routing.canary_percent <= 0:
            return
        p = prediction
        error = any(d.startswith("model_error") or d == "model_fallback" for d in p.degraded)
        guard = self.guard
        guard.record(
            p.arm, flagged=p.positive, error=error, model_ms=p.timings_ms.get("model", 0.0)
        )
        if p.arm != "challenger" or guard.arms["challenger"].decisions % 50:
            return
        why = guard.verdict()
        if why is not None:
            self._roll_back_canary(why)

    def _roll_back_canary(self, why: str) -> None:
        challenger = self.routing.challenger
        assert challenger is not None
        self._swap(self.routing.replace(challenger=None, canary_percent=0.0))
        self.guard.reset()
        self.rollbacks += 1
        log.warning("canary rolled back", extra={"challenger": challenger.label, "why": why})
        if self.on_rollback is not None:
            self.on_rollback(challenger.label, why)

    # The rollout steps of the retraining loop (loopline.feedback.retraining.Rollout)

    def champion(self) -> int:
        return self.routing.champion.version

    def shadow(self, version: int) -> str:
        """Load ``version`` and score all traffic with it beside the champion."""
        model = self._loader()(version)
        self._swap(self.routing.replace(challenger=model, shadow=True, canary_percent=0.0))
        self.guard.reset()
        return model.label

    def shadow_flag_ratio(self) -> float:
        return self.guard.shadow_flag_ratio()

    def canary(self, percent: float, expected_flag_ratio: float) -> None:
        self.guard.reset()
        self.guard.expected_flag_ratio = expected_flag_ratio
        self._swap(self.routing.replace(canary_percent=percent))

    def canary_alive(self) -> bool:
        r = self.routing
        return r.challenger is not None and r.canary_percent > 0

    def promote(self) -> None:
        r = self.routing
        if r.challenger is None:
            raise ConfigError("No challenger to promote.")
        self.rolled_back = r.champion.version  # the registry may still name it
        self._swap(
            r.replace(
                champion=r.challenger, previous=r.champion, challenger=None, shadow=False,
                canary_percent=0.0,
            )
        )  # fmt: skip
        self._reset_guard()

    def retire(self) -> None:
        self._swap(self.routing.replace(challenger=None, shadow=False, canary_percent=0.0))
        self._reset_guard()

    def _reset_guard(self) -> None:
        self.guard.reset()
        self.guard.expected_flag_ratio = 1.0

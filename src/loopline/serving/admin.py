"""The admin endpoints (admin scope): reload the rules, reload the model (blue-green),
roll it back, and route a challenger (canary, shadow)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec

from loopline.exceptions import ConfigError, LooplineError
from loopline.serving.api import Problem, RequestError
from loopline.serving.model import ServingModel

if TYPE_CHECKING:
    from loopline.serving.app import Service

_json = msgspec.json.Encoder()


class Admin:
    """The admin actions of ``service``, by path: ``rules/reload``, ``model/reload``,
    ``model/rollback`` and ``routing``."""

    def __init__(self, service: Service) -> None:
        self.service = service

    async def handle(
        self, action: str, body: bytes
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        try:
            args = msgspec.json.decode(body) if body.strip() else {}
        except msgspec.DecodeError as exc:
            raise RequestError(400, Problem(error=f"Body is not valid JSON: {exc}")) from None
        if not isinstance(args, dict):
            raise RequestError(422, Problem(error="The body must be a JSON object."))
        handlers = {
            "rules/reload": self.reload_rules,
            "model/reload": self.reload_model,
            "model/rollback": self.rollback,
            "routing": self.set_routing,
        }
        handler = handlers.get(action)
        if handler is None:
            raise RequestError(404, Problem(error=f"No admin action {action!r}."))
        try:
            return 200, _json.encode(await handler(args)), []
        except (ValueError, TypeError, LooplineError) as exc:  # bad arguments: the caller's
            raise RequestError(422, Problem(error=str(exc), detail=f"Arguments: {args}")) from None

    async def reload_rules(self, args: dict[str, Any]) -> dict[str, Any]:
        try:
            rules = self.service.scorer.rules.reload()
        except (ConfigError, OSError) as exc:  # a broken rule file: the caller's to fix
            raise RequestError(422, Problem(error=str(exc), field="rules")) from None
        return {"rules_version": rules.version}

    async def reload_model(self, args: dict[str, Any]) -> dict[str, Any]:
        """Blue-green: load and warm the new version off the event loop, then swap; the
        old one stays loaded for an instant rollback."""
        routing = self.service.scorer.routing
        fresh = await asyncio.to_thread(self._loader(), args.get("version", "champion"))
        if fresh.label != routing.champion.label:
            routing.previous, routing.champion = routing.champion, fresh
            self.service.watch_drift_of(fresh)
        return {"champion": routing.champion.label}

    async def rollback(self, args: dict[str, Any]) -> dict[str, Any]:
        routing = self.service.scorer.routing
        if routing.previous is None:
            raise RequestError(409, Problem(error="No previous model is loaded to roll back to."))
        routing.champion, routing.previous = routing.previous, routing.champion
        self.service.watch_drift_of(routing.champion)
        return {"champion": routing.champion.label}

    async def set_routing(self, args: dict[str, Any]) -> dict[str, Any]:
        routing = self.service.scorer.routing
        self.service.canary.reset()  # a new routing: the guard judges it from its start
        percent = float(args.get("canary_percent", routing.canary_percent))
        if not 0 <= percent <= 100:
            raise RequestError(
                422,
                Problem(
                    error=f"canary_percent must be 0-100, got {percent}.", field="canary_percent"
                ),
            )
        if "challenger" in args:
            ref = args["challenger"]
            routing.challenger = (
                None if ref is None else await asyncio.to_thread(self._loader(), ref)
            )
        routing.canary_percent = percent
        routing.shadow = bool(args.get("shadow", routing.shadow))
        return {
            "champion": routing.champion.label,
            "challenger": routing.challenger.label if routing.challenger else None,
            "canary_percent": routing.canary_percent,
            "shadow": routing.shadow,
        }

    def _loader(self) -> Callable[[str | int], ServingModel]:
        if self.service.load_model is None:
            raise RequestError(409, Problem(error="This service was started without a registry."))
        return self.service.load_model

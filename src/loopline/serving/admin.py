"""The admin endpoints (scope ``admin``): reload the model (blue-green), roll it back,
route a challenger (canary, shadow), promote it, and the application's own actions
(reloading its rules, say)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import msgspec

from loopline.exceptions import LooplineError
from loopline.serving.problems import refuse
from loopline.serving.routing import Deployment, Routing

_json = msgspec.json.Encoder()
Action = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class Admin:
    """The admin actions, by path below ``/admin/``: ``model/reload``,
    ``model/rollback``, ``model/promote`` (the challenger becomes the champion),
    ``routing``, and ``actions`` of the application's."""

    def __init__(self, deployment: Deployment, actions: Mapping[str, Action] | None = None) -> None:
        self.deployment = deployment
        self.actions: dict[str, Action] = {
            "model/reload": self.reload_model,
            "model/rollback": self.rollback,
            "model/promote": self.promote,
            "routing": self.set_routing,
            **(actions or {}),
        }

    async def handle(self, action: str, body: bytes) -> bytes:
        handler = self.actions.get(action)
        if handler is None:
            raise refuse(404, f"No admin action {action!r}; known: {sorted(self.actions)}.")
        try:
            args = msgspec.json.decode(body) if body.strip() else {}
        except msgspec.DecodeError as exc:
            raise refuse(400, f"Body is not valid JSON: {exc}") from None
        if not isinstance(args, dict):
            raise refuse(422, "The body must be a JSON object.")
        try:
            return _json.encode(await handler(args))
        except (ValueError, TypeError, LooplineError) as exc:  # bad arguments: the caller's
            raise refuse(422, str(exc), detail=f"Arguments: {args}") from None

    def _needs_registry(self) -> None:
        if self.deployment.load is None:
            raise refuse(409, "This service was started without a registry.")

    async def reload_model(self, args: dict[str, Any]) -> dict[str, Any]:
        self._needs_registry()
        routing = await self.deployment.reload(args.get("version", "champion"))
        return {"champion": routing.champion.label}

    async def rollback(self, args: dict[str, Any]) -> dict[str, Any]:
        if self.deployment.routing.previous is None:
            raise refuse(409, "No previous model is loaded to roll back to.")
        return {"champion": self.deployment.rollback().champion.label}

    async def promote(self, args: dict[str, Any]) -> dict[str, Any]:
        if self.deployment.routing.challenger is None:
            raise refuse(409, "No challenger is routed to promote.")
        self.deployment.promote()
        return describe(self.deployment.routing)

    async def set_routing(self, args: dict[str, Any]) -> dict[str, Any]:
        percent = float(args.get("canary_percent", self.deployment.routing.canary_percent))
        if not 0 <= percent <= 100:
            raise refuse(
                422, f"canary_percent must be 0-100, got {percent}.", field="canary_percent"
            )
        if args.get("challenger") is not None:
            self._needs_registry()
        routing = await self.deployment.route(
            challenger=args.get("challenger", False),
            canary_percent=percent,
            shadow=bool(args.get("shadow", self.deployment.routing.shadow)),
        )
        return describe(routing)


def describe(routing: Routing) -> dict[str, Any]:
    return {
        "champion": routing.champion.label,
        "challenger": routing.challenger.label if routing.challenger else None,
        "canary_percent": routing.canary_percent,
        "shadow": routing.shadow,
    }

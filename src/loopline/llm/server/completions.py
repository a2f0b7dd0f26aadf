"""``POST /v1/completions`` and ``POST /v1/chat/completions``: a request's prompt into
the routed model's engine, its tokens back as text, streamed or whole.

The model a request names is the service's public name (routed by the deployment: the
champion, or a canary's challenger for a stable share of users), or one loaded model's
label (``gemma-feedback:2``), which bypasses the split (an explicit A/B comparison).
A request reserves ``n * (prompt + max_tokens)`` tokens of its key's per-minute limit
before it runs and gives back what it did not use.

Text is decoded from all of a choice's tokens at each step, and only what cannot change
is sent: a trailing partial character (``\\ufffd``) and any tail that may yet become a
stop string are held back; a stop string and what follows are cut.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

import msgspec

from loopline.llm.engine.runner import RunnerStoppedError
from loopline.llm.engine.sampling import SamplingParams
from loopline.llm.engine.scheduler import QueueFullError
from loopline.llm.server import api
from loopline.llm.server.chat import render
from loopline.llm.server.metrics import LLMMetrics
from loopline.llm.server.models import LLMModel
from loopline.serving import CURRENT_CALLER, Prediction, Quota, Routing, refuse

DEFAULT = 16  # max_tokens by default: OpenAI's for completions
DEFAULT_CHAT = 256
MAX_PENDING_IDS = 4096


Request = api.CompletionRequest | api.ChatRequest


class TextStream:
    """One choice's text as its tokens arrive (see the module)."""

    def __init__(self, decode: Callable[[list[int]], str], stops: tuple[str, ...]) -> None:
        self.decode, self.stops = decode, stops
        self.ids: list[int] = []
        self.text = ""  # sent so far
        self.stopped = False

    def push(self, tokens: tuple[int, ...], final: bool) -> str:
        """The new text these tokens make visible."""
        self.ids += tokens
        text = self.decode(self.ids)
        cut = min((i for s in self.stops if (i := text.find(s)) >= 0), default=-1)
        if cut >= 0:
            text, final, self.stopped = text[:cut], True, True
        if not final:
            text = text.rstrip("\ufffd")
            hold = max((k for s in self.stops for k in range(1, len(s))
                        if text.endswith(s[:k])), default=0)  # fmt: skip
            text = text[: len(text) - hold]
        if len(text) < len(self.text):  # held back before, or cut by a stop
            return ""
        delta, self.text = text[len(self.text) :], text
        return delta


@dataclass
class Choice:
    index: int
    text: str = ""
    tokens: int = 0
    finish_reason: str | None = None


class CompletionsPipeline:
    """The streaming pipeline of one of the two routes (``chat``: the chat one).

    Args:
        public: The service's model name (routed by the deployment).
        metrics: Time to first token, time per output token, tokens.
        quota: Tokens a minute per API key (None: no limit).
        clock: Seconds since 1970, for ``created``.
    """

    def __init__(
        self,
        *,
        chat: bool,
        public: str,
        metrics: LLMMetrics,
        quota: Quota | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.chat, self.public, self.metrics, self.quota, self.clock = (
            chat, public, metrics, quota, clock
        )  # fmt: skip
        self._ids: OrderedDict[int, tuple[api.Sampling, str]] = OrderedDict()

    def request_id(self, request: api.Sampling) -> str:
        """A fresh completion id, the same for the same request object (the kernel
        asks for it before ``stream`` runs; ``stream`` takes it)."""
        held = self._ids.get(id(request))  # held with its request: the id is not reused
        if held is None:
            made = ("chatcmpl-" if self.chat else "cmpl-") + uuid.uuid4().hex
            held = self._ids[id(request)] = (request, made)
            while len(self._ids) > MAX_PENDING_IDS:  # requests refused before they ran
                self._ids.popitem(last=False)
        return held[1]

    def fingerprint(self, request: api.Sampling) -> Any:
        return msgspec.to_builtins(request)

    def pick(self, requested: str, routing: Routing, key: str) -> tuple[LLMModel, str]:
        """The model for ``requested`` and its arm (see the module)."""
        if requested == self.public:
            model, arm = routing.pick(key)
            return cast(LLMModel, model), arm
        for m, arm in ((routing.champion, "champion"), (routing.challenger, "challenger"),
                           (routing.previous, "previous")):  # fmt: skip
            if m is not None and m.label == requested:
                return cast(LLMModel, m), arm
        raise refuse(404, f"No model {requested!r} is served.", field="model",
                     detail="GET /v1/models lists them.")  # fmt: skip

    def prompt(self, request: Request, model: LLMModel) -> tuple[str, list[int], int]:
        """The prompt's text and tokens, and the tokens it may have back."""
        base = model.base
        if isinstance(request, api.ChatRequest):
            text = render(base.template, request.messages, model.label)
            limit = request.max_completion_tokens or request.max_tokens
        else:
            text, limit = request.prompt, request.max_tokens
        ids = base.encode(text)
        room = base.context - len(ids)
        if room < 1:
            raise refuse(
                422, f"The prompt has {len(ids)} tokens; the model's context is {base.context}.",
                field="messages" if self.chat else "prompt",
            )  # fmt: skip
        if limit is not None and limit > room:
            raise refuse(
                422, f"max_tokens {limit} exceeds the {room} tokens left after the prompt.",
                field="max_tokens",
            )  # fmt: skip
        return text, ids, min(limit or (DEFAULT_CHAT if self.chat else DEFAULT), room)

    async def stream(
        self, request: Request, trace_id: str, routing: Routing,
        emit: Callable[[Any], Awaitable[None]],
    ) -> Prediction[Any]:  # fmt: skip
        started = time.perf_counter()
        caller = CURRENT_CALLER.get()
        key = caller.name if caller is not None else "anonymous"
        model, arm = self.pick(request.model, routing, request.user or key)
        prompt, ids, max_tokens = self.prompt(request, model)
        cost = request.n * (len(ids) + max_tokens)
        if self.quota is not None:
            self.quota.take(key, cost)
        answer = _Answer(self.request_id(request), int(self.clock()), model, self.chat, emit)
        self._ids.pop(id(request), None)
        choices = [Choice(i) for i in range(request.n)]
        try:
            await self._generate(request, model, ids, max_tokens, choices, answer)
        finally:
            if self.quota is not None:
                self.quota.give_back(key, cost - sum(len(ids) + c.tokens for c in choices))
        done = time.perf_counter()
        generated = sum(c.tokens for c in choices)
        usage = api.Usage(len(ids), generated, len(ids) + generated)
        if request.stream_options is not None and request.stream_options.include_usage:
            await emit(answer.chunk([], usage))
        ttft = (answer.first - started) if answer.first else done - started
        self.metrics.finished(model.base.label, ttft, done - started, generated, len(ids))
        return Prediction(
            response=answer.whole(choices, usage),
            request_id=answer.id,
            routing_key=request.user or key,
            model_version=model.label,
            arm=arm,
            inputs={"model": request.model, "max_tokens": max_tokens, "n": request.n,
                    "temperature": request.temperature, "top_p": request.top_p,
                    "top_k": request.top_k, "seed": request.seed, "stop": list(request.stops)},
            outputs={"prompt": prompt, "completions": [c.text for c in choices],
                     "finish_reasons": [c.finish_reason for c in choices]},
            outcome=choices[0].finish_reason or "",
            timings_ms={"model": ttft * 1000, "total": (done - started) * 1000},
        )  # fmt: skip

    async def _generate(
        self, request: Request, model: LLMModel, ids: list[int], max_tokens: int,
        choices: list[Choice], answer: _Answer,
    ) -> None:  # fmt: skip
        """Every choice, side by side (their prompts share cached blocks)."""
        if self.chat:
            await answer.emit(answer.chunk([api.ChatDelta(c.index, api.ChatMessage(
                role="assistant", content=""), None) for c in choices]))  # fmt: skip
        model.active += 1
        try:
            async with asyncio.TaskGroup() as tasks:
                for c in choices:
                    params = SamplingParams(
                        temperature=request.temperature, top_p=request.top_p,
                        top_k=request.top_k, max_tokens=max_tokens, stop=request.stops,
                        seed=None if request.seed is None else request.seed + c.index,
                    )  # fmt: skip
                    tasks.create_task(self._choice(model, ids, params, c, answer))
        except* QueueFullError:
            raise refuse(503, "The model's queue is full: retry shortly.") from None
        except* RunnerStoppedError:
            raise refuse(503, "The model is being replaced: retry.") from None
        except* ValueError as group:
            raise refuse(422, str(group.exceptions[0]), field="max_tokens") from None
        finally:
            model.active -= 1

    async def _choice(
        self, model: LLMModel, ids: list[int], params: SamplingParams, c: Choice, answer: _Answer
    ) -> None:
        text = TextStream(model.base.decode, params.stop)
        outputs = model.base.runner.stream(ids, params, adapter=model.adapter)
        try:
            async for out in outputs:
                answer.first = answer.first or time.perf_counter()
                c.tokens += len(out.tokens)
                delta = text.push(out.tokens, out.finish_reason is not None)
                if text.stopped or out.finish_reason == "stop":
                    c.finish_reason = "stop"
                elif out.finish_reason is not None:
                    c.finish_reason = "length"
                c.text += delta
                if delta or c.finish_reason is not None:
                    await answer.delta(c.index, delta, c.finish_reason)
                if c.finish_reason is not None:
                    return  # a stop string ends it here; closing the stream stops the engine
        finally:
            await outputs.aclose()  # type: ignore[attr-defined]

    def committed(self, prediction: Prediction[Any]) -> None:
        pass

    def close(self) -> None:
        pass


class _Answer:
    """One completion's id and shape (text or chat), and its chunks' emitter."""

    def __init__(
        self, id_: str, created: int, model: LLMModel, chat: bool,
        emit: Callable[[Any], Awaitable[None]],
    ) -> None:  # fmt: skip
        self.id, self.created, self.model, self.chat, self.emit = (
            id_,
            created,
            model.label,
            chat,
            emit,
        )
        self.first: float | None = None  # when the first token came
        self._lock = asyncio.Lock()  # choices emit in turn

    async def delta(self, index: int, text: str, finish: str | None) -> None:
        if self.chat:
            message = api.ChatMessage(content=text) if text else api.ChatMessage()
            chunk = self.chunk([api.ChatDelta(index, message, finish)])
        else:
            chunk = api.Completion(self.id, self.created, self.model,
                                   [api.CompletionChoice(index, text, finish)])  # fmt: skip
        async with self._lock:
            await self.emit(chunk)

    def chunk(self, deltas: list[api.ChatDelta], usage: api.Usage | None = None) -> Any:
        if self.chat:
            return api.ChatChunk(self.id, self.created, self.model, deltas, usage)
        return api.Completion(self.id, self.created, self.model, [], usage)

    def whole(self, choices: list[Choice], usage: api.Usage) -> Any:
        if self.chat:
            chat = [api.ChatChoice(c.index, api.ChatMessage("assistant", c.text), c.finish_reason)
                    for c in choices]  # fmt: skip
            return api.ChatCompletion(self.id, self.created, self.model, chat, usage)
        text = [api.CompletionChoice(c.index, c.text, c.finish_reason) for c in choices]
        return api.Completion(self.id, self.created, self.model, text, usage)

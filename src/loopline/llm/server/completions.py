"""``POST /v1/completions`` and ``POST /v1/chat/completions``: a request's prompt into
the routed model's engine, its tokens back as text, streamed or whole.

The model a request names is the service's public name (routed by the deployment: the
champion, or a canary's challenger for a stable share of users), or one loaded model's
label (``gemma-feedback:2``), which bypasses the split (an explicit A/B comparison).
A request reserves ``n * (prompt + max_tokens)`` tokens of its key's per-minute limit
before it runs and gives back what it did not use.

Text is decoded incrementally (a window of the newest tokens after the settled ones, as
vLLM does), and only what cannot change is sent: tokens that end inside a character
(``\\ufffd``) wait for the rest of it, and any tail that may yet become a stop string is
held back; a stop string and what follows are cut.
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
from loopline.serving import CURRENT_CALLER, Prediction, Quota, RequestError, Routing, refuse

DEFAULT = 16  # max_tokens by default: OpenAI's for completions
DEFAULT_CHAT = 256
MAX_PENDING_IDS = 256  # ids made for requests refused before their stream began


Request = api.CompletionRequest | api.ChatRequest


class TextStream:
    """One choice's text as its tokens arrive (see the module)."""

    def __init__(self, decode: Callable[[list[int]], str], stops: tuple[str, ...]) -> None:
        self.decode, self.stops = decode, stops
        self.longest = max((len(s) for s in stops), default=0)
        self.ids: list[int] = []
        self.made = ""  # the text of the tokens decoded so far
        self.text = ""  # sent so far
        self.stopped = False
        self._prefix = self._read = 0  # the window decoded again: ids[prefix:read] settled

    def push(self, tokens: tuple[int, ...], final: bool) -> str:
        """The new text these tokens make visible."""
        self.ids += tokens
        self._extend(final)
        text = self.made
        start = max(0, len(self.text) - self.longest)  # a stop can only end in new text
        cut = min((i for s in self.stops if (i := text.find(s, start)) >= 0), default=-1)
        if cut >= 0:
            text, final, self.stopped = text[:cut], True, True
        if not final:
            hold = max((k for s in self.stops for k in range(1, len(s))
                        if text.endswith(s[:k])), default=0)  # fmt: skip
            text = text[: len(text) - hold]
        if len(text) < len(self.text):  # held back before, or cut by a stop
            return ""
        delta, self.text = text[len(self.text) :], text
        return delta

    def _extend(self, final: bool) -> None:
        """Decode only a window of the newest tokens (a few settled ones before them
        give a tokenizer its context): the text grows by what the new ones add, once
        they end on a whole character."""
        settled = self.decode(self.ids[self._prefix : self._read])
        window = self.decode(self.ids[self._prefix :])
        if len(window) > len(settled) and (final or not window.endswith("\ufffd")):
            self.made += window[len(settled) :]
            self._prefix, self._read = self._read, len(self.ids)


@dataclass
class Choice:
    index: int
    text: str = ""
    tokens: int = 0
    finish_reason: str | None = None
    first: float | None = None  # when its first token came, and its last
    last: float | None = None


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
        asks for it before ``stream`` runs; ``stream`` takes it back at once)."""
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
        for m in (routing.champion, routing.challenger, routing.previous):
            if m is not None and m.label == requested:
                return cast(LLMModel, m), "direct"  # asked by name: outside the split
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
        id_ = self.request_id(request)
        self._ids.pop(id(request), None)
        started = time.perf_counter()
        caller = CURRENT_CALLER.get()
        key = caller.name if caller is not None else "anonymous"
        model, arm = self.pick(request.model, routing, request.user or key)
        if model.retired:  # swapped out since this request's routing was read
            raise refuse(503, "The model was replaced: retry.")
        model.active += 1  # no await since the pick: the sweep sees it (Models.retire)
        answer = _Answer(id_, int(self.clock()), model, self.chat, request.n, emit)
        try:
            prompt, ids, max_tokens = self.prompt(request, model)
            choices = await self._charged(request, key, model, ids, max_tokens, answer)
        finally:
            model.active -= 1
        done = time.perf_counter()
        generated = sum(c.tokens for c in choices)
        usage = api.Usage(len(ids), generated, len(ids) + generated)
        if request.stream_options is not None and request.stream_options.include_usage:
            await emit(answer.chunk([], usage))
        ttft = min((c.first for c in choices if c.first), default=done) - started
        self.metrics.finished(model.label, ttft, _per_token(choices), generated, len(ids))
        return Prediction(
            response=answer.whole(choices, usage),
            request_id=id_,
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

    async def _charged(
        self, request: Request, key: str, model: LLMModel, ids: list[int], max_tokens: int,
        answer: _Answer,
    ) -> list[Choice]:  # fmt: skip
        """Every choice, side by side (their prompts share cached blocks), paid from the
        key's budget: reserved first, what was not used (a choice that never ran, tokens
        not made) given back."""
        cost = request.n * (len(ids) + max_tokens)
        if self.quota is not None:
            self.quota.take(key, cost)
        choices = [Choice(i) for i in range(request.n)]
        try:
            async with asyncio.TaskGroup() as tasks:
                for c in choices:
                    params = SamplingParams(
                        temperature=request.temperature, top_p=request.top_p,
                        top_k=request.top_k, max_tokens=max_tokens, stop=request.stops,
                        seed=None if request.seed is None else request.seed + c.index,
                    )  # fmt: skip
                    tasks.create_task(self._choice(model, ids, params, c, answer))
        except* Exception as group:
            raise _refusal(group.exceptions[0]) from None
        finally:
            if self.quota is not None:
                used = sum(len(ids) + c.tokens for c in choices if c.first is not None)
                self.quota.give_back(key, cost - used)
        return choices

    async def _choice(
        self, model: LLMModel, ids: list[int], params: SamplingParams, c: Choice, answer: _Answer
    ) -> None:
        text = TextStream(model.base.decode, params.stop)
        outputs = model.base.runner.stream(ids, params, adapter=model.adapter)
        try:
            async for out in outputs:
                c.last = time.perf_counter()
                c.first = c.first or c.last
                if out.finish_reason in ("cancelled", "error"):
                    raise refuse(503, "The model stopped before the answer was done: retry.")
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
        self, id_: str, created: int, model: LLMModel, chat: bool, n: int,
        emit: Callable[[Any], Awaitable[None]],
    ) -> None:  # fmt: skip
        self.id, self.created, self.model, self.chat = id_, created, model.label, chat
        self.n, self.emit, self.opened = n, emit, False
        self._lock = asyncio.Lock()  # choices emit in turn

    async def delta(self, index: int, text: str, finish: str | None) -> None:
        """One choice's new text. A chat stream opens with the assistant's role (sent
        with the first text, so a request refused before it gets a plain status)."""
        if self.chat:
            message = api.ChatMessage(content=text) if text else api.ChatMessage()
            chunk = self.chunk([api.ChatDelta(index, message, finish)])
        else:
            chunk = api.Completion(self.id, self.created, self.model,
                                   [api.CompletionChoice(index, text, finish)])  # fmt: skip
        async with self._lock:
            if self.chat and not self.opened:
                self.opened = True
                role = api.ChatMessage(role="assistant", content="")
                await self.emit(self.chunk([api.ChatDelta(i, role, None) for i in range(self.n)]))
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


def _per_token(choices: list[Choice]) -> list[float]:
    """Each choice's time per output token after its first."""
    return [(c.last - c.first) / (c.tokens - 1) for c in choices
            if c.first is not None and c.last is not None and c.tokens > 1]  # fmt: skip


def _refusal(error: BaseException) -> BaseException:
    """What a request is told when its engine refused or failed it."""
    if isinstance(error, RequestError):
        return error
    if isinstance(error, QueueFullError):
        return refuse(503, "The model's queue is full: retry shortly.")
    if isinstance(error, RunnerStoppedError):
        return refuse(503, "The model is being replaced: retry.")
    if isinstance(error, ValueError):  # the engine's checks of a request (its context)
        return refuse(422, str(error))
    return error

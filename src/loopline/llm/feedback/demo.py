"""``loopline demo llm``: the feedback loop of a served language model, end to end on the
CPU in a few minutes.

1. **Serve** Gemma 3 270M (its GGUF file) with ``loopline serve llm``'s service on a
   local port, and **stream** one answer token by token (``/v1/completions``: the file
   holds the pretrained model, not an instruction-tuned one, so questions go in as
   ``Question: ... / Answer:`` text).
2. **Collect feedback** from a simulated user (:mod:`loopline.llm.feedback.simulated`,
   a stated preference for brief, finished answers): two sampled answers a question,
   each rated up or down, and the better one preferred over the other, all posted to
   ``/v1/feedback``.
3. **Fine-tune** a LoRA adapter on the preference pairs with TRL's DPO
   (``loopline train llm-feedback``); it is registered over its base.
4. **A/B**: the adapter is routed as a challenger to half the users, in the same
   engine as the base; held-out questions go to both, and the same simulated judge
   picks a winner of each pair (the win rate), while the users of each arm rate what
   they got.
5. **Promote** the adapter when it wins more than half (else route everyone back to
   the base), and write an HTML report.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from loopline.llm.feedback.simulated import BriefUser, prompts
from loopline.llm.server.models import GEMMA, EngineOptions

if TYPE_CHECKING:
    from loopline.llm.feedback.train import FeedbackOptions

ADAPTER = f"{GEMMA}-feedback"
PROMPT = "Question: {}\nAnswer:"
CONCURRENCY = 16
T = TypeVar("T")


@dataclass
class Asked:
    """What the client saw of one answer."""

    id: str
    choice: int
    text: str
    finish_reason: str | None
    model: str
    ttft_s: float


@dataclass
class Client:
    """The service over HTTP (httpx; what any OpenAI client would send)."""

    base: str
    key: str
    http: Any = field(init=False)

    def __post_init__(self) -> None:
        import httpx

        self.http = httpx.AsyncClient(
            base_url=self.base, headers={"Authorization": f"Bearer {self.key}"}, timeout=600
        )

    async def complete(
        self, question: str, *, model: str, max_tokens: int, **more: Any
    ) -> list[Asked]:
        """An answer to ``question``, streamed (each choice's text; timings from the
        client). The base model is pretrained, not tuned to chat: a question and an
        ``Answer:`` line, stopped at the line's end, is the prompt it answers best."""
        body = {"model": model, "prompt": PROMPT.format(question), "stop": ["\n"],
                "max_tokens": max_tokens, "stream": True, **more}  # fmt: skip
        started = time.perf_counter()
        texts: dict[int, list[str]] = {}
        finish: dict[int, str | None] = {}
        first: float | None = None
        served, cid = model, ""
        async with self.http.stream("POST", "/v1/completions", json=body) as r:
            if r.status_code != 200:
                await r.aread()
                raise RuntimeError(f"{r.status_code}: {r.text}")
            async for line in r.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[6:])
                served, cid = chunk["model"], chunk["id"]
                for c in chunk["choices"]:
                    if c["text"] and first is None:
                        first = time.perf_counter()
                    texts.setdefault(c["index"], []).append(c["text"])
                    finish[c["index"]] = c["finish_reason"] or finish.get(c["index"])
        ttft = (first or time.perf_counter()) - started
        return [Asked(cid, i, "".join(texts[i]).strip(), finish[i], served, ttft)
                for i in sorted(texts)]  # fmt: skip

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        r = await self.http.post(path, json=body)
        if r.status_code != 200:
            raise RuntimeError(f"{path}: {r.status_code} {r.text}")
        return dict(r.json())


async def _gather(jobs: list[Awaitable[T]], limit: int = CONCURRENCY) -> list[T]:
    """Await ``jobs`` (coroutines, not started yet) ``limit`` at a time: the engine
    batches what is in flight."""
    gate = asyncio.Semaphore(limit)

    async def one(job: Awaitable[T]) -> T:
        async with gate:
            return await job

    return list(await asyncio.gather(*(one(j) for j in jobs)))


def run(
    out: Path,
    *,
    train_prompts: int = 64,
    test_prompts: int = 32,
    max_tokens: int = 48,
    steps: int | None = None,
    learning_rate: float = 5e-4,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """The demo (see the module); its summary, and the report at ``out/report.html``."""
    from loopline.llm.feedback.train import FeedbackOptions
    from loopline.llm.server.service import ServeOptions, build
    from loopline.registry import Registry
    from loopline.serving import KeyRing, new_key, running

    out.mkdir(parents=True, exist_ok=True)
    state, url = out / "state", f"sqlite:///{(out / 'registry' / 'mlflow.db').resolve()}"
    key, stored = new_key("demo", ["score", "admin"])
    state.mkdir(parents=True, exist_ok=True)
    KeyRing([stored]).save(state / "keys.json")
    options = ServeOptions(
        state=state, registry=url, adapter=ADAPTER, watch_s=0,
        engine=EngineOptions(num_blocks=1024, max_seqs=32),
    )  # fmt: skip
    user, questions = BriefUser(), prompts(train_prompts + test_prompts, seed=1)
    train, test = questions[:train_prompts], questions[train_prompts:]
    started = time.perf_counter()
    say(f"loading {GEMMA} into the engine")
    built = build(options)
    try:
        with running(built.service) as port:
            found, tuned, ab, after, metrics = asyncio.run(
                _loop(Client(f"http://127.0.0.1:{port}", key), train, test, user, max_tokens,
                      FeedbackOptions(state=state, registry=url, name=ADAPTER, method="dpo",
                                      steps=steps, learning_rate=learning_rate), say)
            )  # fmt: skip
        if ab["win_rate"] > 0.5:
            registry = Registry(url, root=out / "registry")
            registry.promote(ADAPTER, tuned["version"], why=f"A/B win rate {ab['win_rate']:.2f}")
    finally:
        built.close()
    summary = {
        "seconds": round(time.perf_counter() - started, 1),
        **found["summary"], "adapter": f"{ADAPTER}:{tuned['version']}",
        "method": tuned["method"], "train_pairs": tuned["pairs"], "train_steps": tuned["steps"],
        "train_seconds": tuned["seconds"], **ab["summary"],
        "promoted": ab["win_rate"] > 0.5, "answered_after": after.model,
    }  # fmt: skip
    from loopline.llm.feedback.report import write

    summary["report"] = str(write(out / "report.html", summary, found, tuned, ab, metrics))
    return summary


async def _loop(
    client: Client, train: list[str], test: list[str], user: BriefUser, max_tokens: int,
    tune: FeedbackOptions, say: Callable[[str], None],
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], Asked, str]:  # fmt: skip
    """Collect, fine-tune (on a thread: the server goes on), A/B, promote."""
    from loopline.llm.feedback.train import train_feedback

    found = await _serve_and_collect(client, train, user, max_tokens, say)
    say("fine-tuning a LoRA adapter on the preferences (TRL DPO)")
    tuned = await asyncio.to_thread(train_feedback, tune)
    say(f"registered {ADAPTER}:{tuned['version']} ({tuned['steps']} steps, {tuned['seconds']} s)")
    ab = await _ab(client, tuned["version"], test, user, max_tokens, say)
    if ab["win_rate"] > 0.5:
        promoted = await client.post("/admin/model/promote", {})
        say(f"promoted: {promoted['champion']} answers {GEMMA} now")
    else:  # it lost: every user back on the base
        await client.post("/admin/routing", {"challenger": None, "canary_percent": 0})
        say(f"not promoted: {GEMMA}:1 answers everyone again")
    after = (await client.complete(test[0], model=GEMMA, max_tokens=max_tokens, temperature=0))[0]
    metrics = (await client.http.get("/metrics")).text
    await client.http.aclose()
    return found, tuned, ab, after, metrics


async def _serve_and_collect(
    client: Client, train: list[str], user: BriefUser, max_tokens: int,
    say: Callable[[str], None],
) -> dict[str, Any]:  # fmt: skip
    """Stream one answer to show; then two sampled answers a question, judged."""
    first = (await client.complete(train[0], model=GEMMA, max_tokens=max_tokens, temperature=0))[0]
    say(f"streamed ({first.ttft_s * 1000:.0f} ms to the first token): {first.text!r}")
    say(f"collecting feedback on {len(train)} questions, two answers each")
    answers = await _gather([
        client.complete(q, model=GEMMA, max_tokens=max_tokens, n=2, temperature=1.0, seed=i)
        for i, q in enumerate(train)])  # fmt: skip
    posts: list[dict[str, Any]] = []
    for a, b in answers:
        for x in (a, b):
            rating = "up" if user.likes(x.text, x.finish_reason) else "down"
            posts.append({"id": x.id, "choice": x.choice, "rating": rating})
        won = user.prefers((a.text, a.finish_reason), (b.text, b.finish_reason))
        if won:
            w, lost = (a, b) if won > 0 else (b, a)
            posts.append({"id": w.id, "choice": w.choice,
                          "preferred_over": {"id": lost.id, "choice": lost.choice}})  # fmt: skip
    await _gather([client.post("/v1/feedback", p) for p in posts])
    flat = [x for pair in answers for x in pair]
    liked = sum(p.get("rating") == "up" for p in posts)
    return {
        "streamed": first.text,
        "base_words": [len(x.text.split()) for x in flat],
        "ttft_ms": [x.ttft_s * 1000 for x in flat],
        "summary": {"questions": len(train), "answers": len(flat), "liked": liked,
                    "preferences": sum("preferred_over" in p for p in posts),
                    "p50_ttft_ms": round(statistics.median(x.ttft_s for x in flat) * 1000)},
    }  # fmt: skip


async def _ab(
    client: Client, version: int, test: list[str], user: BriefUser, max_tokens: int,
    say: Callable[[str], None],
) -> dict[str, Any]:  # fmt: skip
    """Route the adapter to half the users; compare it with the base on ``test``."""
    routed = await client.post("/admin/routing", {"challenger": version, "canary_percent": 50})
    say(f"A/B: {routed['challenger']} to half the users, beside {routed['champion']}")
    base, tuned = f"{GEMMA}:1", f"{ADAPTER}:{version}"

    async def both(q: str) -> tuple[Asked, Asked]:
        ask = {"max_tokens": max_tokens, "temperature": 0}
        a, b = await asyncio.gather(client.complete(q, model=base, **ask),
                                    client.complete(q, model=tuned, **ask))  # fmt: skip
        return a[0], b[0]

    pairs = await _gather([both(q) for q in test])
    wins = [user.prefers((t.text, t.finish_reason), (b.text, b.finish_reason)) for b, t in pairs]
    win_rate = (sum(w > 0 for w in wins) + 0.5 * sum(w == 0 for w in wins)) / len(wins)
    split = await _gather([
        client.complete(q, model=GEMMA, max_tokens=max_tokens, temperature=0, user=f"user-{i}")
        for i, q in enumerate(test)])  # fmt: skip
    arms: dict[str, list[bool]] = {}
    for (x,) in split:
        arms.setdefault(x.model, []).append(user.likes(x.text, x.finish_reason))
    say(f"win rate of {tuned} over {base}: {win_rate:.2f} on {len(test)} held-out questions")
    return {
        "pairs": [(q, b.text, t.text) for q, (b, t) in zip(test, pairs, strict=True)],
        "base_words": [len(b.text.split()) for b, _ in pairs],
        "tuned_words": [len(t.text.split()) for _, t in pairs],
        "win_rate": win_rate,
        "summary": {"win_rate": round(win_rate, 3), "held_out": len(test),
                    "wins": sum(w > 0 for w in wins), "ties": sum(w == 0 for w in wins),
                    **{f"liked_{m}": f"{sum(v)}/{len(v)}" for m, v in sorted(arms.items())}},
    }  # fmt: skip

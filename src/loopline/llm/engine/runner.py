"""The engine on a thread of its own, for a server: requests come in from the event loop,
each sequence's tokens go back as they are made, a client that goes away cancels its
sequence, and a runner being replaced (a blue-green swap) finishes the streams it has
before it stops. LoRA adapters are loaded and unloaded while it serves: the files are
read on the caller's thread, and the engine's table of adapters changes on its own
thread, between two steps.

One thread steps the engine (PyTorch's kernels use the other cores); the event loop
only queues requests and reads outputs, so it stays free for the HTTP side.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import AsyncIterator, Callable
from collections.abc import Sequence as Seq
from pathlib import Path
from typing import Any, TypeVar

from loopline.llm.engine.adapters import read_adapter
from loopline.llm.engine.engine import Engine
from loopline.llm.engine.sampling import SamplingParams
from loopline.llm.engine.scheduler import QueueFullError
from loopline.llm.engine.sequence import Output, Sequence

IDLE_WAIT_S = 0.05
CALL_CHECK_S = 0.5  # how often a caller waiting on the engine's thread checks it lives
log = logging.getLogger("loopline.llm")
_T = TypeVar("_T")
# work for the engine's thread (a request, an adapter to load), and where its result
# (or error) goes back
_Call = tuple[Callable[[Engine], Any], "queue.SimpleQueue[Any]"]


class RunnerStoppedError(RuntimeError):
    """The runner takes no new requests (stopping, or replaced)."""


class EngineRunner:
    """Steps ``engine`` on a daemon thread (see the module). ``finished(seq)`` is
    called on that thread for each sequence that ends (metrics, logs)."""

    def __init__(
        self, engine: Engine, *, finished: Callable[[Sequence], None] = lambda _: None
    ) -> None:
        self.engine = engine
        self.finished = finished
        self._inbox: queue.SimpleQueue[_Call] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._accepting = True
        self.failed: Exception | None = None  # what stopped the engine's thread, if it broke
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="loopline-llm-engine", daemon=True)
        self._thread.start()

    # --- requests ---------------------------------------------------------------------

    def submit(
        self,
        prompt: Seq[int],
        params: SamplingParams,
        emit: Callable[[Output], Any],
        adapter: str | None = None,
    ) -> Sequence:
        """Queue a sequence, served with the loaded LoRA adapter ``adapter`` (None: the
        base model); ``emit`` is called on the engine's thread with each output.

        Raises:
            QueueFullError: The engine's queue is full (back-pressure: answer 429).
            RunnerStoppedError: The runner is stopping or was replaced.
            ValueError: The request does not fit the model (its context, the cache), or
                no adapter of that name is loaded.
        """
        if not self._accepting:
            raise RunnerStoppedError("this engine is stopping")
        s = self.engine.scheduler
        if len(s.waiting) + self._inbox.qsize() >= s.max_waiting:
            raise QueueFullError(f"{len(s.waiting)} requests are waiting already")

        def add(engine: Engine) -> Sequence:
            seq = engine.add(prompt, params, emit, adapter)
            seq.emit = _watch(seq, emit, self.finished)
            return seq

        return self._call(add)

    def load_adapter(self, name: str, folder: Path) -> None:
        """Serve the PEFT LoRA adapter in ``folder`` as ``name`` (see
        :meth:`Engine.load_adapter`): read here, installed between two steps. Blocks
        until then (call it off the event loop).

        Raises:
            ValueError: ``name`` is taken, or the adapter is not supported.
            RunnerStoppedError: The runner is stopping or was replaced.
        """
        model = self.engine.model
        adapter = read_adapter(folder, spec=model.spec, dtype=model.dtype)
        self._call(lambda engine: engine.load_adapter(name, adapter))

    def unload_adapter(self, name: str) -> None:
        """Stop serving adapter ``name``, between two steps (blocks until then).

        Raises:
            ValueError: No adapter of that name is loaded.
            AdapterInUseError: A waiting or running sequence uses it: a swap unloads
                the old adapter once :meth:`adapter_in_use` turns false.
            RunnerStoppedError: The runner is stopping or was replaced.
        """
        self._call(lambda engine: engine.unload_adapter(name))

    def adapter_in_use(self, name: str) -> bool:
        """Whether a sequence submitted with adapter ``name`` has yet to finish."""
        return self._call(lambda engine: engine.adapter_in_use(name))

    def _call(self, work: Callable[[Engine], _T]) -> _T:
        """``work(engine)`` on the engine's thread, between two steps; its result, or
        its error raised here."""
        if not self._accepting:
            raise RunnerStoppedError("this engine is stopping")
        reply: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._inbox.put((work, reply))
        self._wake.set()
        while True:  # the thread may stop between the check above and the put
            try:
                got = reply.get(timeout=CALL_CHECK_S)
                break
            except queue.Empty:
                if not self._thread.is_alive():
                    self._refuse_waiting_calls()
        if isinstance(got, BaseException):
            raise got
        return got  # type: ignore[no-any-return]

    async def stream(
        self, prompt: Seq[int], params: SamplingParams, adapter: str | None = None
    ) -> AsyncIterator[Output]:
        """The sequence's outputs as they come (served with ``adapter``, None: the base
        model), ending with the one that has a ``finish_reason``; leaving the iteration
        early cancels the sequence."""
        loop = asyncio.get_running_loop()
        outputs: asyncio.Queue[Output] = asyncio.Queue()

        def emit(output: Output) -> None:
            loop.call_soon_threadsafe(outputs.put_nowait, output)

        seq = await asyncio.to_thread(self.submit, prompt, params, emit, adapter)
        try:
            while True:
                output = await outputs.get()
                yield output
                if output.finish_reason is not None:
                    return
        finally:
            if seq.finish_reason is None:
                seq.cancel()  # the client went away: free its blocks at the next step
                self._wake.set()

    # --- lifecycle --------------------------------------------------------------------

    @property
    def stopped(self) -> bool:
        """Whether its thread has ended (stopped, or broken: see ``failed``)."""
        return not self._thread.is_alive()

    @property
    def in_flight(self) -> int:
        s = self.engine.scheduler
        return len(s.waiting) + len(s.running) + self._inbox.qsize()

    def stop(self, *, drain: bool = True, timeout: float | None = None) -> None:
        """Take no new requests; with ``drain``, finish the ones it has first (a swap's
        old side), else cancel them."""
        self._accepting = False
        if not drain:
            for seq in [*self.engine.scheduler.waiting, *self.engine.scheduler.running]:
                seq.cancel()
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    def _loop(self) -> None:
        engine = self.engine
        try:
            while True:
                self._take_requests()
                if engine.scheduler.busy:
                    engine.step()
                    continue
                if self._stop.is_set() and self._inbox.empty():
                    return
                self._wake.wait(IDLE_WAIT_S)
                self._wake.clear()
        except Exception as exc:  # a bug or a broken model: end every stream, not hang it
            log.exception("the engine failed: its sequences end with an error")
            self.failed = exc
            for seq in [*engine.scheduler.waiting, *engine.scheduler.running]:
                if seq.finish_reason is None:
                    seq.finish_reason = "error"
                    seq.emit(Output((), "error"))
        finally:
            self._accepting = False
            self._refuse_waiting_calls()

    def _refuse_waiting_calls(self) -> None:
        while True:
            try:
                _, reply = self._inbox.get_nowait()
            except queue.Empty:
                return
            reply.put(RunnerStoppedError("this engine has stopped"))

    def _take_requests(self) -> None:
        while True:
            try:
                work, reply = self._inbox.get_nowait()
            except queue.Empty:
                return
            try:
                reply.put(work(self.engine))
            except Exception as exc:  # the caller's to raise; the engine goes on
                reply.put(exc)


def _watch(
    seq: Sequence, emit: Callable[[Output], Any], finished: Callable[[Sequence], None]
) -> Callable[[Output], Any]:
    """``emit``, then ``finished(seq)`` once it ends."""

    def watched(output: Output) -> None:
        emit(output)
        if output.finish_reason is not None:
            finished(seq)

    return watched

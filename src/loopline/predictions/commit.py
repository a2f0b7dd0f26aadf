"""Group commit, shared by the prediction log's backends.

A request hands its row over and awaits the commit of the batch that carries it: rows
handed over during one turn of the event loop are committed together, right after it
(``loop.call_soon``), so concurrent requests share one transaction. There is no writer
thread, so no lock hand-offs between the request path and the log (measured: a writer
thread halved throughput through GIL switches on one core, docs/decisions/0003). The
guarantee: a prediction is returned to its caller only after the transaction holding
it committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from loopline.predictions.base import Notify, Row


class GroupCommit:
    """The batching half of a backend, which supplies ``_insert`` and ``_disconnect``.

    Args:
        notify: Called after each commit with the committed rows (e.g. publish some
            of them to a topic); a failure there is counted, never lost silently.
    """

    errors: tuple[type[Exception], ...] = (Exception,)  # a failure of these fails the batch

    def __init__(self, notify: Notify | None = None) -> None:
        self.notify = notify
        self.notify_failures = 0
        self.commits = 0
        self._batch: list[tuple[Row, asyncio.Future[None]]] = []
        self._scheduled = False
        self._closed = False

    async def write(self, row: Row) -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._batch.append((row, done))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        await done

    def write_many(self, rows: Sequence[Row]) -> None:
        self._commit(rows)

    def close(self) -> None:
        """Commit what is pending, then close (again: nothing)."""
        if self._closed:
            return
        if self._batch:
            self._flush()
        self._closed = True
        self._disconnect()

    def _flush(self) -> None:
        self._scheduled = False
        batch, self._batch = self._batch, []
        error: BaseException | None = None
        try:
            self._commit([row for row, _ in batch])
        except self.errors as exc:
            error = exc
        for _, done in batch:
            if done.done():
                continue
            if error is None:
                done.set_result(None)
            else:
                done.set_exception(error)

    def _commit(self, rows: Sequence[Row]) -> None:
        self._insert(rows)
        self.commits += 1
        if self.notify is not None:
            try:
                self.notify(rows)
            except Exception:
                self.notify_failures += 1

    def _insert(self, rows: Sequence[Row]) -> None:
        raise NotImplementedError

    def _disconnect(self) -> None:
        raise NotImplementedError

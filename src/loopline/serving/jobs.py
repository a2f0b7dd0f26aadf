"""Work answered later: a request whose answer takes seconds (a long recording, a video) is
accepted at once, worked on by a background thread, and its answer kept under its key for
polling (a lookup route of the service) and, when the caller gave one, posted to its
callback URL.

Bounded: at most ``max_pending`` jobs wait (a full queue refuses with a 503 and a
retry-after), and at most ``keep`` answers are kept, the oldest dropped first, each for
``ttl_s`` at most. The answers live in one SQLite file, so a restarted service still
answers polls for work it finished; work in flight at a crash is marked failed on start.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from loopline.serving.problems import refuse

log = logging.getLogger("loopline.serving.jobs")
Work = Callable[[], bytes]  # the answer's JSON body
Failed = Callable[[str], bytes]  # the body for a job that raised, from its error

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    key TEXT PRIMARY KEY,
    state TEXT NOT NULL,            -- pending, done
    body BLOB NOT NULL,
    callback TEXT,
    created REAL NOT NULL,
    finished REAL
);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created);
"""


@dataclass(frozen=True, slots=True)
class _Job:
    key: str
    work: Work
    callback: str | None


class Jobs:
    """Background work, one thread, answers kept in SQLite.

    Args:
        path: The answers' database file.
        failed: The answer of a job whose work raised (from the error's message).
        max_pending: Jobs that may wait.
        keep: Answers kept.
        ttl_s: How long an answer is kept.
        callback_timeout_s: How long a callback may take (two tries).
    """

    def __init__(
        self, path: Path | str, *, failed: Failed, max_pending: int = 64, keep: int = 100_000,
        ttl_s: float = 7 * 86_400, callback_timeout_s: float = 5.0,
    ) -> None:  # fmt: skip
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.failed, self.keep, self.ttl_s = failed, keep, ttl_s
        self.callback_timeout_s = callback_timeout_s
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        with self._lock:  # what was in flight when the last process stopped never finishes
            body = self.failed("the service restarted before this job finished")
            self._db.execute("UPDATE jobs SET state = 'done', body = ?, finished = ? "
                             "WHERE state = 'pending'", (body, time.time()))  # fmt: skip
        self._queue: queue.Queue[_Job | None] = queue.Queue(maxsize=max_pending)
        self.done = 0
        self.callbacks_failed = 0
        self._thread = threading.Thread(target=self._run, name="jobs", daemon=True)
        self._thread.start()

    def submit(self, key: str, work: Work, *, pending: bytes, callback: str | None = None) -> None:
        """Queue ``work`` under ``key`` (``pending``: the answer until it is done); a
        full queue is a 503 to the caller."""
        job = _Job(key, work, callback)
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO jobs (key, state, body, callback, created) "
                "VALUES (?, 'pending', ?, ?, ?)", (key, pending, callback, time.time()),
            )  # fmt: skip
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            with self._lock:
                self._db.execute("DELETE FROM jobs WHERE key = ?", (key,))
            raise refuse(503, "Too much work is waiting; try again shortly.",
                         headers=[(b"retry-after", b"5")]) from None  # fmt: skip

    def get(self, key: str) -> bytes | None:
        """The answer kept under ``key`` (the pending one while it runs)."""
        with self._lock:
            row = self._db.execute("SELECT body FROM jobs WHERE key = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            try:
                body = job.work()
            except Exception as exc:  # one bad job must not stop the others
                log.warning("job failed", extra={"key": job.key}, exc_info=True)
                body = self.failed(str(exc)[:300])
            now = time.time()
            with self._lock:
                self._db.execute("UPDATE jobs SET state = 'done', body = ?, finished = ? "
                                 "WHERE key = ?", (body, now, job.key))  # fmt: skip
                self._db.execute("DELETE FROM jobs WHERE created < ?", (now - self.ttl_s,))
                self._db.execute(
                    "DELETE FROM jobs WHERE key IN (SELECT key FROM jobs ORDER BY created DESC "
                    "LIMIT -1 OFFSET ?)", (self.keep,),
                )  # fmt: skip
            self.done += 1
            if job.callback:
                self._call_back(job.callback, body)

    def _call_back(self, url: str, body: bytes) -> None:
        import httpx

        for attempt in range(2):
            try:
                response = httpx.post(url, content=body, timeout=self.callback_timeout_s,
                                      headers={"content-type": "application/json"})  # fmt: skip
                if response.status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5 * (attempt + 1))
        self.callbacks_failed += 1
        log.warning("callback failed", extra={"url": url.split("?")[0]})

    def close(self) -> None:
        """Finish the queued work, then stop."""
        self._queue.put(None)
        self._thread.join(timeout=60)
        self._db.close()

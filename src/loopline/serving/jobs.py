"""Work answered later: a request whose answer takes seconds (a long recording, a video) is
accepted at once, worked on by a background thread, and its answer kept under its key for
polling (a lookup route of the service) and, when the caller gave one, posted to its
callback URL.

Bounded: at most ``max_pending`` jobs wait (a full queue refuses with a 503 and a
retry-after), and at most ``keep`` answers are kept, the oldest dropped first, each for
``ttl_s`` at most. The answers live in one SQLite file, so a restarted service still
answers polls for work it finished; work in flight at a crash is marked failed on start.

An answer is only shown to the caller (API key name) that submitted the work. Callbacks
are posted by a thread of their own (a slow receiver never holds up the work), to public
addresses only unless ``private_callbacks`` (a URL that resolves to a loopback, private
or link-local address is refused: no requests into the service's own network).
"""

from __future__ import annotations

import ipaddress
import logging
import queue
import socket
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from loopline.serving.problems import refuse

log = logging.getLogger("loopline.serving.jobs")
Work = Callable[[], bytes]  # the answer's JSON body
Failed = Callable[[str, str], bytes]  # (key, error) -> the body for a job that raised

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    key TEXT PRIMARY KEY,
    owner TEXT NOT NULL,            -- the API key name that submitted it
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
        private_callbacks: Allow callbacks to loopback and private addresses (tests).
    """

    def __init__(
        self, path: Path | str, *, failed: Failed, max_pending: int = 64, keep: int = 100_000,
        ttl_s: float = 7 * 86_400, callback_timeout_s: float = 5.0,
        private_callbacks: bool = False,
    ) -> None:  # fmt: skip
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.failed, self.keep, self.ttl_s = failed, keep, ttl_s
        self.callback_timeout_s = callback_timeout_s
        self.private_callbacks = private_callbacks
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        with self._lock:  # what was in flight when the last process stopped never finishes
            lost = self._db.execute("SELECT key FROM jobs WHERE state = 'pending'").fetchall()
            for (key,) in lost:
                body = self.failed(key, "the service restarted before this job finished")
                self._db.execute("UPDATE jobs SET state = 'done', body = ?, finished = ? "
                                 "WHERE key = ?", (body, time.time(), key))  # fmt: skip
        self._queue: queue.Queue[_Job | None] = queue.Queue(maxsize=max_pending)
        self._posts: queue.Queue[tuple[str, bytes] | None] = queue.Queue(maxsize=4 * max_pending)
        self.done = 0
        self.callbacks_failed = 0
        self._thread = threading.Thread(target=self._run, name="jobs", daemon=True)
        self._poster = threading.Thread(target=self._post, name="job-callbacks", daemon=True)
        self._thread.start()
        self._poster.start()

    def submit(
        self, key: str, work: Work, *, pending: bytes, owner: str = "", callback: str | None = None
    ) -> None:
        """Queue ``work`` under ``key`` for ``owner`` (``pending``: the answer until it is
        done); a full queue is a 503, a key whose work is still pending a 409."""
        job = _Job(key, work, callback)
        with self._lock:
            busy = self._db.execute(
                "SELECT 1 FROM jobs WHERE key = ? AND state = 'pending'", (key,)
            ).fetchone()
            if busy is not None:
                raise refuse(409, f"Work under {key!r} is still pending.", field="id")
            self._db.execute(
                "INSERT OR REPLACE INTO jobs (key, owner, state, body, callback, created) "
                "VALUES (?, ?, 'pending', ?, ?, ?)", (key, owner, pending, callback, time.time()),
            )  # fmt: skip
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            with self._lock:
                self._db.execute("DELETE FROM jobs WHERE key = ?", (key,))
            raise refuse(503, "Too much work is waiting; try again shortly.",
                         headers=[(b"retry-after", b"5")]) from None  # fmt: skip

    def get(self, key: str, owner: str | None = None) -> bytes | None:
        """The answer kept under ``key`` (the pending one while it runs); with ``owner``,
        only if that caller submitted it."""
        with self._lock:
            row = self._db.execute("SELECT body, owner FROM jobs WHERE key = ?", (key,)).fetchone()
        if row is None or (owner is not None and row[1] != owner):
            return None
        return bytes(row[0])

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    @property
    def full(self) -> bool:
        return self._queue.full()

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            try:
                body = job.work()
            except Exception as exc:  # one bad job must not stop the others
                log.warning("job failed", extra={"key": job.key}, exc_info=True)
                body = self.failed(job.key, str(exc)[:300])
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
                try:
                    self._posts.put_nowait((job.callback, body))
                except queue.Full:
                    self.callbacks_failed += 1

    def _post(self) -> None:
        while (post := self._posts.get()) is not None:
            self._call_back(*post)

    def _call_back(self, url: str, body: bytes) -> None:
        import httpx

        if not self.private_callbacks and not _public(url):
            self.callbacks_failed += 1
            log.warning("callback refused: not a public address", extra={"url": url.split("?")[0]})
            return
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
        """Finish the queued work and its callbacks, then stop."""
        self._queue.put(None)
        self._thread.join(timeout=60)
        self._posts.put(None)
        self._poster.join(timeout=30)
        self._db.close()


def _public(url: str) -> bool:
    """Whether every address ``url``'s host resolves to is a public one."""
    import httpx

    host = httpx.URL(url).host
    try:
        found = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except (socket.gaierror, UnicodeError):
        return False
    addresses = [ipaddress.ip_address(str(a).split("%")[0]) for a in found]
    return bool(addresses) and all(a.is_global for a in addresses)

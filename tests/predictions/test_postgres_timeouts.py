"""The PostgreSQL prediction log fails fast instead of blocking its caller: a server that
never answers the connection, and a statement stuck behind a lock."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from loopline.exceptions import BackendUnavailableError, ConfigError
from loopline.predictions.postgres import PostgresLog
from tests.predictions.test_logs import COLUMNS, fresh_database, row


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A socket that completes TCP handshakes (the kernel's backlog) but never speaks."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"postgresql://loopline@127.0.0.1:{sock.getsockname()[1]}/loopline"


def test_a_server_that_never_answers_fails_within_the_connect_timeout(silent_server: str) -> None:
    started = time.monotonic()
    with pytest.raises(BackendUnavailableError, match="within 2s"):
        PostgresLog(silent_server, connect_timeout_s=2.0)
    assert time.monotonic() - started < 10.0  # libpq: 2 s per address tried, not forever


def test_timeouts_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="statement_timeout_s"):
        PostgresLog("postgresql://127.0.0.1:1/x", statement_timeout_s=0)


@pytest.mark.postgres
def test_a_statement_past_the_statement_timeout_fails_fast(postgres_url: str) -> None:
    import psycopg

    url = fresh_database(postgres_url, "timeouts")
    log = PostgresLog(url, columns=COLUMNS, statement_timeout_s=0.3)
    try:
        with log.connect() as same_settings, pytest.raises(psycopg.errors.QueryCanceled):
            same_settings.execute("SELECT pg_sleep(5)")
        # a write stuck behind another session's lock: canceled, not hung
        with psycopg.connect(url) as holder:
            holder.execute("LOCK TABLE predictions IN ACCESS EXCLUSIVE MODE")
            started = time.monotonic()
            with pytest.raises(psycopg.errors.QueryCanceled):
                log.write_many([row(1)])
            assert time.monotonic() - started < 3.0
        log.write_many([row(2)])  # the lock gone, the same connection works again
        assert log.count() == 1
    finally:
        log.close()

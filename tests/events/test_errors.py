"""Unreachable servers and unusable paths fail fast, naming the address."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from loopline.events import open_log
from loopline.exceptions import BackendUnavailableError, ConfigError
from loopline.servers import free_port


@pytest.mark.parametrize("scheme", ["kafka", "redis"])
def test_an_unreachable_server_is_a_clear_error_in_bounded_time(scheme: str) -> None:
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    started = time.monotonic()
    with pytest.raises(BackendUnavailableError, match=address.replace(".", r"\.")) as excinfo:
        open_log(f"{scheme}://{address}", timeout_s=2)
    assert time.monotonic() - started < 6
    assert "did not answer within 2s" in str(excinfo.value)


def test_an_unusable_embedded_path_names_the_path(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(BackendUnavailableError, match="a-file"):
        open_log(f"file://{blocker}/events.db")


def test_an_unknown_url_scheme_says_which_ones_work() -> None:
    with pytest.raises(ConfigError, match="kafka://host:port"):
        open_log("amqp://localhost")


@pytest.mark.parametrize(("topic", "partitions"), [("bad name", 1), ("", 1), ("ok", 0)])
def test_bad_topic_names_and_partition_counts_are_rejected(
    tmp_path: Path, topic: str, partitions: int
) -> None:
    log = open_log(str(tmp_path / "events.db"))
    with pytest.raises(ConfigError, match="Topic"):
        log.create_topic(topic, partitions=partitions)
    log.close()

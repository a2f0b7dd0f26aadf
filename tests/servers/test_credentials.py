"""Per-run credentials: passwords masked wherever a URL is shown, files private from
their creation."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from loopline.servers.credentials import masked, new_password, write_private
from loopline.settings import Settings


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:s3cret@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("postgresql://postgres:s3cret@h:5432/db", "postgresql://postgres:***@h:5432/db"),
        ("http://admin:s3cret@127.0.0.1:5000", "http://admin:***@127.0.0.1:5000"),
        ("http://admin:p%40ss@h:1/x?y=1", "http://admin:***@h:1/x?y=1"),
        ("kafka://a:9092,b:9092", "kafka://a:9092,b:9092"),
        ("postgresql://loopline@postgres/loopline", "postgresql://loopline@postgres/loopline"),
        ("http://[::1:5000", "***"),  # not parsable: nothing of it shown
    ],
)
def test_masked_hides_only_the_password(url: str, shown: str) -> None:
    assert masked(url) == shown
    assert masked(shown) == shown


def test_new_passwords_are_long_random_and_url_safe() -> None:
    passwords = {new_password() for _ in range(100)}
    assert len(passwords) == 100
    assert all(len(p) == 32 and p.replace("-", "").replace("_", "").isalnum() for p in passwords)


def test_write_private_creates_0600_whatever_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text("old")
    os.chmod(path, 0o644)
    previous = os.umask(0)
    try:
        write_private(path, "new")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == "new"


def test_settings_repr_masks_passwords() -> None:
    settings = Settings.model_validate(
        {
            "events": "kafka://127.0.0.1:9092",
            "features": "redis://:pw-redis@127.0.0.1:6379/0",
            "decisions": "postgresql://postgres:pw-postgres@127.0.0.1:5432/postgres",
            "registry": "http://admin:pw-mlflow@127.0.0.1:5000",
        }
    )
    for shown in (repr(settings), str(settings)):
        assert "pw-" not in shown
        assert "redis://:***@127.0.0.1:6379/0" in shown
    assert settings.features == "redis://:pw-redis@127.0.0.1:6379/0"  # clients get it whole

"""Where a registry's things are: its tracking URI (credentials set aside), the artifact
store a version's files must come from, and the keys folder beside the registry.

The keys live outside the registry's folder and its artifact store on purpose: whoever
can write there could otherwise replace the public keys that the signatures are checked
with.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlparse, urlsplit, urlunsplit

from loopline.exceptions import ConfigError


def is_remote(uri: str) -> bool:
    """A tracking server's URI (its artifacts are downloaded, never read in place)."""
    return urlsplit(uri).scheme in ("http", "https")


def sqlite_folder(uri: str) -> Path | None:
    """The folder of a SQLite registry's database (None: not SQLite)."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(unquote(uri.removeprefix("sqlite:///").split("?")[0])).resolve().parent


def credentials_to_env(uri: str) -> str:
    """``uri`` without its ``user:password@``, which go where MLflow reads them
    (``MLFLOW_TRACKING_USERNAME``, ``MLFLOW_TRACKING_PASSWORD``), so the password is
    never part of a URI that is stored, logged or shown."""
    parts = urlsplit(uri)
    if not is_remote(uri) or "@" not in parts.netloc:
        return uri
    userinfo, _, host = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    os.environ["MLFLOW_TRACKING_USERNAME"] = unquote(user)
    os.environ["MLFLOW_TRACKING_PASSWORD"] = unquote(password)
    return urlunsplit(parts._replace(netloc=host))


def in_store(source: str, store: Path | None) -> bool:
    """Whether a version's ``source`` lies in the artifact store: under ``store``, or,
    with a tracking server (``store`` None), anywhere but a local path."""
    parsed = urlparse(source)
    local = parsed.scheme in ("", "file")
    if store is None:
        return not local
    path = Path(unquote(parsed.path) if parsed.scheme else source)
    return local and path.resolve().is_relative_to(store.resolve())


def check_outside(trusted: tuple[Path, ...], home: Path | None) -> None:
    """Refuse trusted keys kept inside the registry's folder ``home``."""
    for path in trusted:
        if home is not None and path.resolve().is_relative_to(home):
            raise ConfigError(
                f"Trusted key {path} is inside the registry's folder {home}, which whoever "
                "can write to the registry can change. Keep the keys outside it."
            )

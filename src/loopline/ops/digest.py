"""SHA-256 digests of what a run read: files (by name and content) and values in words.
Model CI fingerprints code, features and data with them; batch scoring keys a run by its
input files'."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from loopline.exceptions import ConfigError


def digest_files(paths: Iterable[Path], root: Path | None = None) -> str:
    """One SHA-256 over files (folders: their ``*.py``, ``*.yaml``, ``*.toml`` files),
    each named by its path relative to ``root`` (default: its parent), so a file
    renamed, added or changed changes the digest and nothing else does."""
    h = hashlib.sha256()
    files: list[tuple[str, Path]] = []
    for path in paths:
        base = root or path.parent
        if path.is_dir():
            found = [p for ext in ("py", "yaml", "toml") for p in path.rglob(f"*.{ext}")]
            files += [(p.relative_to(base).as_posix(), p) for p in found]
        elif path.is_file():
            files.append((path.relative_to(base).as_posix(), path))
        else:
            raise ConfigError(f"Cannot fingerprint {path}: no such file or folder.")
    for name, path in sorted(files):
        h.update(f"{name}\0{_file_sha256(path)}\n".encode())
    return h.hexdigest()


def digest_text(*parts: object) -> str:
    """A SHA-256 of values in words (a data spec, hyperparameters)."""
    return hashlib.sha256("\0".join(map(str, parts)).encode()).hexdigest()


def _file_sha256(path: Path) -> str:
    """A file's SHA-256, read a megabyte at a time (input files may be large)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()

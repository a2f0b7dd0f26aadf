"""Files that hold secrets (keys, passwords, settings with credentials)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def write_private(
    path: Path, data: bytes | str, *, mode: int = 0o600, overwrite: bool = True
) -> None:
    """Write ``data`` to ``path``, readable and writable by its owner alone from the first
    byte (``mode``), whatever the umask (a file made and then chmod-ed is readable by
    anyone in between).

    The file is made under a fresh temporary name with ``O_EXCL`` (a link planted there
    makes this fail instead of writing through it), synced, and renamed over ``path``: a
    reader sees the old file or the new one, never half of one. Without ``overwrite`` it
    is linked into place instead, which fails (:class:`FileExistsError`) if ``path``
    exists: a key is never replaced.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)

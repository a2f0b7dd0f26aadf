"""Over-the-air update packages: a model's files and their signed manifest in one tar file.

A device installs a package only if a key it trusts signed its :class:`PackageManifest`
and every byte matches it. The manifest names the package and its version (an integer
that only grows), the hardware it is built for (``compatible``, matched exactly), the
oldest installed version it may replace (``min_version``), and every file's SHA-256 and
size. Signatures are the registry's ed25519 ones (:mod:`loopline.registry.signing`) over
another domain, :data:`PACKAGE_DOMAIN`: a model manifest's signature is never a valid
package signature. A refusal is an :class:`UntrustedPackageError`, logged as an alert.

The tar is uncompressed (it streams, and each member's size is what its header says)::

    manifest.json     the signed bytes (canonical JSON)
    signatures.json   {key id: base64 signature}
    files/PATH        each listed file; nothing else, no links, no ``..``
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import tarfile
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from loopline.exceptions import ConfigError, LooplineError
from loopline.registry.signing import Keys, SigningKey, signed_by

PACKAGE_DOMAIN = b"loopline edge package v1\n"  # never the registry's DOMAIN
FORMAT = "loopline.edge.package/1"
MANIFEST_FILE, SIGNATURES_FILE, FILES = "manifest.json", "signatures.json", "files/"
MAX_MANIFEST = 1 << 20  # bytes read before any signature is checked
MAX_MEMBERS = 1_000  # members of a package, headers read before any signature is checked

log = logging.getLogger("loopline.edge")


class EdgeError(LooplineError):
    """An edge operation that cannot be done as asked (a slot or rollout in the wrong state)."""


class UntrustedPackageError(EdgeError):
    """A package a device must not install.

    Attributes:
        reason: One short word for metrics and alerts: ``malformed``, ``unsafe-path``,
            ``unsigned``, ``unknown-key``, ``bad-signature``, ``incompatible``,
            ``downgrade``, ``min-version``, ``missing-file``, ``unlisted-file``, ``checksum``.
        package: The package's name, or its file's name before its manifest is read.
        version: The version refused, when known.
    """

    def __init__(self, message: str, *, reason: str, package: str, version: int | None) -> None:
        super().__init__(message)
        self.reason = reason
        self.package = package
        self.version = version


def untrusted(
    reason: str, message: str, package: str, version: int | None = None
) -> UntrustedPackageError:
    """The refusal to raise, logged first: ERROR on ``loopline.edge``."""
    extra = {"event": "package_refused", "package": package, "version": version, "reason": reason}
    log.error("refused package %s:%s (%s): %s", package, version, reason, message, extra=extra)
    return UntrustedPackageError(message, reason=reason, package=package, version=version)


@dataclass(frozen=True, kw_only=True, slots=True)
class PackageManifest:
    """What a package's signature covers."""

    name: str
    version: int
    compatible: str
    min_version: int
    files: Mapping[str, tuple[str, int]]  # relative path -> (SHA-256, size in bytes)

    def to_json(self) -> bytes:
        """Canonical JSON: sorted keys, no spaces, ASCII; the bytes that are signed."""
        body = {
            "format": FORMAT, "name": self.name, "version": self.version,
            "compatible": self.compatible, "min_version": self.min_version,
            "files": {f: {"sha256": d, "size": n} for f, (d, n) in self.files.items()},
        }  # fmt: skip
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> PackageManifest:
        """Raises ValueError, KeyError, TypeError or AttributeError on anything else."""
        raw = json.loads(data)
        if raw["format"] != FORMAT:
            raise ValueError(f"format {raw['format']!r}, not {FORMAT!r}")
        files = {str(f): (str(e["sha256"]), int(e["size"])) for f, e in raw["files"].items()}
        return cls(
            name=str(raw["name"]), version=int(raw["version"]), compatible=str(raw["compatible"]),
            min_version=int(raw["min_version"]), files=files,
        )  # fmt: skip


def safe_path(name: str) -> bool:
    """Whether ``name`` is a relative POSIX path that stays inside its folder."""
    parts = name.split("/")
    return "\\" not in name and "\0" not in name and all(p not in ("", ".", "..") for p in parts)


def build_package(
    files: Mapping[str, bytes | Path],
    name: str,
    version: int,
    compatible: str,
    signing_key: SigningKey,
    *,
    out: Path,
    min_version: int = 0,
) -> Path:
    """Write a package of ``files`` (relative path -> bytes, or a file to copy) signed by
    ``signing_key`` to ``out``, atomically (a reader never sees half of one); return ``out``.

    A file must not change while it is packed: the device would refuse the package.
    """
    unsafe = sorted(f for f in files if not safe_path(f))
    if not files or unsafe or not compatible or not 0 <= min_version <= version:
        raise ConfigError(
            f"A package needs files at safe relative paths (got {sorted(files)}; unsafe: "
            f"{unsafe}), a 'compatible' string (got {compatible!r}) and 0 <= min_version <= "
            f"version (got {min_version} and {version})."
        )
    listed = {f: _digest(src) for f, src in sorted(files.items())}
    signed = PackageManifest(
        name=name, version=version, compatible=compatible, min_version=min_version, files=listed
    ).to_json()
    signatures = {signing_key.key_id: signing_key.sign(signed, domain=PACKAGE_DOMAIN)}
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.")
    try:
        with os.fdopen(fd, "wb") as raw:
            with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
                _add(tar, MANIFEST_FILE, signed)
                _add(tar, SIGNATURES_FILE, json.dumps(signatures, sort_keys=True).encode())
                for f in listed:
                    _add(tar, FILES + f, files[f])
            os.fsync(raw.fileno())
        os.replace(tmp, out)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return out


def _digest(src: bytes | Path) -> tuple[str, int]:
    if isinstance(src, bytes):
        return hashlib.sha256(src).hexdigest(), len(src)
    with src.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest(), src.stat().st_size


def _add(tar: tarfile.TarFile, name: str, src: bytes | Path) -> None:
    info = tarfile.TarInfo(name)
    info.mode = 0o644
    info.size = len(src) if isinstance(src, bytes) else src.stat().st_size
    with io.BytesIO(src) if isinstance(src, bytes) else src.open("rb") as f:
        tar.addfile(info, f)


def copy_hashed(src: IO[bytes], dst: IO[bytes] | None = None) -> str:
    """The SHA-256 of what ``src`` holds, copied to ``dst`` on the way (in 1 MiB chunks)."""
    digest = hashlib.sha256()
    while chunk := src.read(1 << 20):
        digest.update(chunk)
        if dst is not None:
            dst.write(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class VerifiedPackage:
    """A package whose signature, target and files :func:`open_package` checked."""

    path: Path
    manifest: PackageManifest
    key_id: str  # the trusted key that signed it

    @property
    def version(self) -> int:
        return self.manifest.version

    def extract(self, folder: Path) -> None:
        """Write every file under ``folder``, each synced, hashing the bytes again as they
        stream: a package changed since it was opened is refused (``checksum``); what it
        left in ``folder`` is the caller's to clear."""
        try:
            with tarfile.open(self.path, "r:") as tar:
                for f, (digest, size) in self.manifest.files.items():
                    member = tar.getmember(FILES + f)  # KeyError: gone, or changed below
                    stream = tar.extractfile(member) if member.isfile() else None
                    if (
                        stream is None
                        or member.size != size
                        or _write(folder / f, stream) != digest
                    ):
                        raise KeyError(f)
        except (KeyError, tarfile.TarError):
            raise untrusted(
                "checksum", f"{self.path} no longer matches the manifest it was opened "
                "with: the package changed after it was verified. Download it again.",
                self.manifest.name, self.version,
            ) from None  # fmt: skip


def _write(path: Path, stream: IO[bytes]) -> str:
    """Write ``stream`` to a new file at ``path``, synced; return its SHA-256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    with os.fdopen(os.open(path, flags, 0o644), "wb") as out:
        digest = copy_hashed(stream, out)
        out.flush()
        os.fsync(out.fileno())
        if hasattr(os, "posix_fadvise"):  # so that a check after this reads the disk
            os.posix_fadvise(out.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    return digest


def open_package(
    path: Path,
    trusted_keys: Keys | Mapping[str, Ed25519PublicKey],
    expect_compatible: str,
    *,
    installed: int | None = None,
) -> VerifiedPackage:
    """The package at ``path``, refused (:class:`UntrustedPackageError`) unless a trusted
    key signed it, it is built for ``expect_compatible``, it may replace version
    ``installed`` (no downgrade), and its files are exactly the signed ones.

    Before the signature is checked, only the members' headers (at most
    :data:`MAX_MEMBERS`) and the manifest's bytes are read; files are hashed as they
    stream, never held in memory.
    """
    trusted = trusted_keys.public_keys() if isinstance(trusted_keys, Keys) else trusted_keys
    label = path.name
    try:
        with tarfile.open(path, "r:") as tar:
            members: dict[str, tarfile.TarInfo] = {}
            for member in tar:  # headers one by one: a flood of them is refused early
                if len(members) == MAX_MEMBERS:
                    raise untrusted(
                        "malformed", f"{label} holds over {MAX_MEMBERS} members.", label
                    )
                if member.name in members:
                    raise untrusted("malformed", f"{label} holds a member twice.", label)
                members[member.name] = _safe(member, label)
            manifest, kid = _signed_manifest(tar, members, trusted, label)
            check_target(manifest, expect_compatible)
            check_replaces(manifest, installed)
            _check_files(tar, members, manifest)
    except tarfile.TarError as exc:
        raise untrusted("malformed", f"{path} is not a package tar: {exc}.", label) from None
    return VerifiedPackage(path, manifest, kid)


def _safe(member: tarfile.TarInfo, label: str) -> tarfile.TarInfo:
    if member.isfile() and safe_path(member.name):
        return member
    raise untrusted(
        "unsafe-path", f"{label} holds {member.name!r}, not a regular file at a relative "
        "path inside the package (a link, a device, '..' or an absolute path could write "
        "outside the slot). Rebuild it with build_package.", label,
    )  # fmt: skip


def _signed_manifest(
    tar: tarfile.TarFile,
    members: Mapping[str, tarfile.TarInfo],
    trusted: Mapping[str, Ed25519PublicKey],
    label: str,
) -> tuple[PackageManifest, str]:
    if MANIFEST_FILE not in members or SIGNATURES_FILE not in members:
        raise untrusted("unsigned", f"{label} has no {MANIFEST_FILE} and {SIGNATURES_FILE}: "
                        "it is not signed. Build it with build_package.", label)  # fmt: skip
    signed, recorded = (_small(tar, members[f], label) for f in (MANIFEST_FILE, SIGNATURES_FILE))
    try:
        signatures = json.loads(recorded)
        if not isinstance(signatures, dict) or not all(map(str.isascii, signatures.values())):
            raise TypeError(signatures)
        kid = signed_by(signed, signatures, trusted, domain=PACKAGE_DOMAIN)
    except (ValueError, TypeError):  # not a JSON object of key id to base64
        raise untrusted("bad-signature", f"{label}'s {SIGNATURES_FILE} is not a JSON object "
                        "of key id to base64 signature.", label) from None  # fmt: skip
    if kid is None and (known := sorted(k for k in signatures if k in trusted)):
        raise untrusted("bad-signature", f"{label}'s signature by trusted key {known} does "
                        "not match its manifest: the manifest or signature was changed after "
                        "signing, or it signed something else.", label)  # fmt: skip
    if kid is None:
        raise untrusted(
            "unknown-key" if signatures else "unsigned", f"{label} is signed by keys "
            f"{sorted(signatures)}, none of which this device trusts ({sorted(trusted)}). "
            "Add the signer's .pub to the device's trusted keys, or sign the package with a "
            "trusted key.", label,
        )  # fmt: skip
    try:
        return PackageManifest.from_json(signed), kid
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise untrusted("malformed", f"{label}'s signed manifest is not a package "
                        f"manifest ({exc!r}).", label) from None  # fmt: skip


def _small(tar: tarfile.TarFile, member: tarfile.TarInfo, label: str) -> bytes:
    stream = tar.extractfile(member)
    if member.size > MAX_MANIFEST or stream is None:
        raise untrusted("malformed", f"{label}'s {member.name} is over {MAX_MANIFEST} B.", label)
    return stream.read()


def check_target(manifest: PackageManifest, compatible: str) -> None:
    """Refuse ``manifest`` unless it was built for hardware ``compatible`` (exact match)."""
    if manifest.compatible != compatible:
        raise untrusted(
            "incompatible", f"{manifest.name}:{manifest.version} is built for "
            f"{manifest.compatible!r}; this device is {compatible!r}. Build a package for it.",
            manifest.name, manifest.version,
        )  # fmt: skip


def check_replaces(manifest: PackageManifest, installed: int | None, *, floor: int = 0) -> None:
    """Refuse to replace version ``installed`` by ``manifest``'s when that is older than it
    or than ``floor`` (the highest version the device confirmed): a downgrade, an old
    signed package replayed (Uptane's rollback protection); or when ``installed`` is below
    the package's ``min_version``."""
    name, version, lowest = manifest.name, manifest.version, max(floor, installed or 0)
    if version < lowest:
        raise untrusted(
            "downgrade", f"{name}:{version} is older than version {lowest}, installed or "
            "confirmed here: refusing a downgrade. Publish the fix as a newer version.",
            name, version,
        )  # fmt: skip
    if installed is not None and installed < manifest.min_version:
        raise untrusted(
            "min-version", f"{name}:{version} replaces versions {manifest.min_version} and "
            f"later; this device runs {installed}. Install an intermediate version first.",
            name, version,
        )  # fmt: skip


def _check_files(
    tar: tarfile.TarFile, members: Mapping[str, tarfile.TarInfo], manifest: PackageManifest
) -> None:
    name, version = manifest.name, manifest.version
    expected = {FILES + f for f in manifest.files} | {MANIFEST_FILE, SIGNATURES_FILE}
    if missing := sorted(expected - set(members)):
        raise untrusted("missing-file", f"{name}:{version} lacks signed files {missing}.",
                        name, version)  # fmt: skip
    if unlisted := sorted(set(members) - expected):
        raise untrusted("unlisted-file", f"{name}:{version} holds files its manifest does "
                        f"not list: {unlisted}. Rebuild the package.", name, version)  # fmt: skip
    for f, (digest, size) in manifest.files.items():
        member = members[FILES + f]
        stream = tar.extractfile(member)
        if stream is None or member.size != size or copy_hashed(stream) != digest:
            raise untrusted("checksum", f"{name}:{version}'s {f!r} does not match its "
                            "signed SHA-256 and size: it was changed after signing.",
                            name, version)  # fmt: skip

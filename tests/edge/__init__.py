"""Tests of loopline.edge. Shared here: signing keys, packages, and the ways an attacker
(or a broken download) changes a package, each with the reason it must be refused for."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from loopline.edge import build_package
from loopline.registry.signing import Keys, Manifest, SigningKey, create_key

HW = "board-x"
FILES = {"model.onnx": b"weights" * 1000, "config/labels.txt": b"class-a\nclass-b\n"}
INSTALLED = 5  # what the device runs when a tampered version 6 arrives


@dataclass(frozen=True)
class Signer:
    key: SigningKey
    trusted: dict[str, Ed25519PublicKey]  # this key alone, as a device trusts it


def signer(folder: Path) -> Signer:
    create_key(folder / "signing.key")
    keys = Keys(signing=folder / "signing.key", trusted=(folder,))
    return Signer(keys.signing_key(), keys.public_keys())


def package(
    folder: Path,
    key: SigningKey,
    version: int,
    *,
    files: dict[str, bytes] | None = None,
    compatible: str = HW,
    min_version: int = 0,
) -> Path:
    """A package of ``files`` (default FILES) named ``model``, in a new file in ``folder``."""
    out = folder / f"pkg-{version}-{len(list(folder.glob('pkg-*')))}.tar"
    return build_package(
        files or FILES, "model", version, compatible, key, out=out, min_version=min_version
    )


def members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]


def rewrite(path: Path, contents: dict[str, bytes], *, links: dict[str, str] | None = None) -> Path:
    """A tar of ``contents`` (names as given, unchecked) and symbolic ``links``."""
    with tarfile.open(path, "w") as tar:
        for name, data in contents.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return path


def flipped(data: bytes) -> bytes:
    return data[:10] + bytes([data[10] ^ 1]) + data[11:]


# tamper(good version-6 package, its signer, another key) -> the package a device receives
Tamper = Callable[[Path, Signer, Signer], Path]


def _flip_byte(p: Path, s: Signer, o: Signer) -> Path:
    m = members(p)
    return rewrite(p, {**m, "files/model.onnx": flipped(m["files/model.onnx"])})


def _replace_manifest(p: Path, s: Signer, o: Signer) -> Path:
    """The flipped file with a manifest made to match it, under the old signature."""
    m = members(p)
    body = json.loads(m["manifest.json"])
    data = flipped(m["files/model.onnx"])
    body["files"]["model.onnx"]["sha256"] = hashlib.sha256(data).hexdigest()
    manifest = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return rewrite(p, {**m, "manifest.json": manifest, "files/model.onnx": data})


def _untrusted_key(p: Path, s: Signer, o: Signer) -> Path:
    return package(p.parent, o.key, 6)


def _unsigned(p: Path, s: Signer, o: Signer) -> Path:
    return rewrite(p, {k: v for k, v in members(p).items() if k != "signatures.json"})


def _registry_signature_of_the_package(p: Path, s: Signer, o: Signer) -> Path:
    """The package's own manifest, signed by the trusted key as a model manifest."""
    m = members(p)
    signature = {s.key.key_id: s.key.sign(m["manifest.json"])}
    return rewrite(p, {**m, "signatures.json": json.dumps(signature).encode()})


def _registry_manifest_replayed(p: Path, s: Signer, o: Signer) -> Path:
    """A genuine model-registry manifest and its signature, put in a package."""
    files = {"model.onnx": ("0" * 64, 1)}
    signed = Manifest(name="model", version=6, task="binary", flavour="onnx-net", files=files)
    body = signed.to_json()
    m = members(p)
    sig = json.dumps({s.key.key_id: s.key.sign(body)}).encode()
    return rewrite(p, {**m, "manifest.json": body, "signatures.json": sig})


def _traversal(p: Path, s: Signer, o: Signer) -> Path:
    return rewrite(p, {**members(p), "files/../../escape.txt": b"x"})


def _absolute(p: Path, s: Signer, o: Signer) -> Path:
    return rewrite(p, {**members(p), "/tmp/escape.txt": b"x"})


def _symlink(p: Path, s: Signer, o: Signer) -> Path:
    return rewrite(p, members(p), links={"files/config/link": "/etc/passwd"})


def _extra_file(p: Path, s: Signer, o: Signer) -> Path:
    return rewrite(p, {**members(p), "files/extra.bin": b"unlisted"})


def _missing_file(p: Path, s: Signer, o: Signer) -> Path:
    return rewrite(p, {k: v for k, v in members(p).items() if k != "files/config/labels.txt"})


def _wrong_hardware(p: Path, s: Signer, o: Signer) -> Path:
    return package(p.parent, s.key, 6, compatible="board-y")


def _downgrade(p: Path, s: Signer, o: Signer) -> Path:
    return package(p.parent, s.key, INSTALLED - 1)


def _min_version(p: Path, s: Signer, o: Signer) -> Path:
    return package(p.parent, s.key, 6, min_version=INSTALLED + 1)


def _not_a_tar(p: Path, s: Signer, o: Signer) -> Path:
    p.write_bytes(b"PK\x03\x04 not a tar at all" * 40)
    return p


TAMPERS: dict[str, tuple[Tamper, str]] = {
    "a flipped byte in a file": (_flip_byte, "checksum"),
    "a replaced manifest": (_replace_manifest, "bad-signature"),
    "a signature by an untrusted key": (_untrusted_key, "unknown-key"),
    "no signature": (_unsigned, "unsigned"),
    "a registry signature of the package's manifest": (
        _registry_signature_of_the_package,
        "bad-signature",
    ),
    "a model-registry manifest and signature replayed": (
        _registry_manifest_replayed,
        "bad-signature",
    ),
    "a '..' member": (_traversal, "unsafe-path"),
    "an absolute member": (_absolute, "unsafe-path"),
    "a symbolic link": (_symlink, "unsafe-path"),
    "an unlisted file": (_extra_file, "unlisted-file"),
    "a missing file": (_missing_file, "missing-file"),
    "other hardware": (_wrong_hardware, "incompatible"),
    "a downgrade": (_downgrade, "downgrade"),
    "an install older than min_version": (_min_version, "min-version"),
    "not a tar": (_not_a_tar, "malformed"),
}

"""A model version's files as one unit: what training writes and serving loads.

A :class:`Bundle` is a set of named files plus a :class:`Signature`: the task, the
flavour that loads it (``onnx-trees``, ``onnx-net``, ...), the names of its inputs and
outputs, and the application's own settings (an operating threshold, say). The
registry signs a manifest of every file's SHA-256 when the version is registered
(:mod:`loopline.registry.signing`); a :class:`Pinned` version carries the checksums of
a verified manifest and reads a file only if it is listed and its bytes still match,
so nothing is ever loaded unchecked. A refusal is an :class:`UntrustedModelError`,
logged as an alert.

MLflow is not imported here: serving and training can pack and read bundles without
it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loopline.exceptions import ConfigError, LooplineError

SIGNATURE_FILE = "signature.json"
DOWNLOADED = ".complete"  # the marker of a finished download, not a bundle file

log = logging.getLogger("loopline.registry")


class RegistryError(LooplineError):
    """A registry operation that cannot be done as asked (unknown model, version, alias),
    or a version's files that fail their checks."""


class UntrustedModelError(RegistryError):
    """A version serving must not load: unsigned, signed by a key this process does not
    trust, a signature that does not match, files that differ from the signed manifest,
    or files outside the registry's artifact store.

    Attributes:
        reason: What failed, one short word for metrics and alerts: ``unsigned``,
            ``unknown-key``, ``bad-signature``, ``mismatch``, ``checksum``,
            ``missing-file``, ``unlisted-file``, ``location``.
        model: The model's name.
        version: The version refused.
    """

    def __init__(self, message: str, *, reason: str, model: str, version: int) -> None:
        super().__init__(message)
        self.reason = reason
        self.model = model
        self.version = version


def untrusted(
    reason: str, message: str, model: str, version: int, key_id: str | None = None
) -> UntrustedModelError:
    """The refusal to raise, logged first as an alert: ERROR on ``loopline.registry``
    with the model, version, reason and signing key id (never key material)."""
    extra = {"event": "model_refused", "model": model, "version": version, "reason": reason,
             "key_id": key_id}  # fmt: skip
    log.error("refused %s:%s (%s): %s", model, version, reason, message, extra=extra)
    return UntrustedModelError(message, reason=reason, model=model, version=version)


@dataclass(frozen=True, kw_only=True)
class Signature:
    """What a bundle holds and how to use it.

    Args:
        task: What the model does: ``binary``, ``ranking``, ``multiclass``, ...
        flavour: Which loader reads it (see :mod:`loopline.models`).
        inputs: Its input features, in column order.
        outputs: Its outputs, in order (class names for a multiclass model).
        meta: The application's own settings, stored with the version (JSON).
    """

    task: str
    flavour: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...] = ("score",)
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.inputs:
            raise ConfigError("A Signature needs at least one input.")
        if len(set(self.inputs)) != len(self.inputs):
            raise ConfigError(f"A Signature's inputs repeat a name: {list(self.inputs)}.")

    def to_json(self) -> bytes:
        body = {
            "task": self.task,
            "flavour": self.flavour,
            "inputs": list(self.inputs),
            "outputs": list(self.outputs),
            "meta": dict(self.meta),
        }
        return json.dumps(body, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Signature:
        raw = json.loads(data)
        return cls(
            task=raw["task"],
            flavour=raw["flavour"],
            inputs=tuple(raw["inputs"]),
            outputs=tuple(raw["outputs"]),
            meta=raw.get("meta", {}),
        )


@dataclass(frozen=True)
class Bundle:
    """A model's files and its signature, ready to register."""

    signature: Signature
    files: Mapping[str, bytes]

    def __post_init__(self) -> None:
        if SIGNATURE_FILE in self.files:
            raise ConfigError(f"{SIGNATURE_FILE} is written by the Bundle; leave it out.")

    def contents(self) -> dict[str, bytes]:
        """Every file to store, the signature included."""
        return {**self.files, SIGNATURE_FILE: self.signature.to_json()}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Pinned:
    """A fixed version's files on this machine and their signed checksums: what serving
    loads (resolved once from an alias, off the request path).

    ``key_id``: the trusted key whose signature the checksums came from (None: built
    from checksums some other way, such as the registry's unsigned tags).
    """

    name: str
    version: int
    path: Path
    checksums: Mapping[str, str]
    key_id: str | None = None

    @property
    def label(self) -> str:
        return f"{self.name}:{self.version}"

    def has(self, file: str) -> bool:
        return file in self.checksums

    def read(self, file: str) -> bytes:
        """The bytes of ``file``, refused unless its checksum was recorded and matches."""
        digest = self.checksums.get(file)
        if digest is None:
            raise self._refuse(
                "unlisted-file", f"{self.label} has no recorded checksum for {file!r}: "
                f"refusing to load it (recorded: {sorted(self.checksums)}). Register the "
                "file with the version."
            )  # fmt: skip
        try:
            data = (self.path / file).read_bytes()
        except FileNotFoundError:
            raise self._refuse(
                "missing-file", f"Artifact {self.path / file} of {self.label} is missing. "
                "Restore the version's files, or register the model again."
            ) from None  # fmt: skip
        if sha256(data) != digest:
            raise self._refuse(
                "checksum", f"Artifact {self.path / file} of {self.label} does not match "
                "its registered checksum: the file changed after registration. Register "
                "the model again."
            )  # fmt: skip
        return data

    def _refuse(self, reason: str, message: str) -> UntrustedModelError:
        return untrusted(reason, message, self.name, self.version, self.key_id)

    @property
    def signature(self) -> Signature:
        if not self.has(SIGNATURE_FILE):
            raise RegistryError(
                f"{self.label} has no {SIGNATURE_FILE}: it was registered before bundles "
                "carried signatures. Train and register it again."
            )
        return Signature.from_json(self.read(SIGNATURE_FILE))

    def verify(self) -> None:
        """Check every recorded file now, and that the folder holds no other file (all
        or nothing, before anything is loaded: a loader handed a folder path would see
        a file slipped in beside the listed ones)."""
        for file in self.checksums:
            self.read(file)
        listed = {*self.checksums, DOWNLOADED}
        unlisted = sorted(
            name
            for p in self.path.rglob("*")
            if not p.is_dir() and (name := p.relative_to(self.path).as_posix()) not in listed
        )
        if unlisted:
            raise self._refuse(
                "unlisted-file", f"{self.label}'s folder {self.path} holds files its "
                f"manifest does not list: {unlisted}. Remove them, or register the model "
                "again."
            )  # fmt: skip

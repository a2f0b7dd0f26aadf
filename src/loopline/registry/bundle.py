"""A model version's files as one unit: what training writes and serving loads.

A :class:`Bundle` is a set of named files plus a :class:`Signature`: the task, the
flavour that loads it (``onnx-trees``, ``onnx-net``, ...), the names of its inputs and
outputs, and the application's own settings (an operating threshold, say). The
registry records a SHA-256 of every file when the version is registered; a
:class:`Pinned` version reads a file only if it has a recorded checksum and the bytes
still match it, so nothing is ever loaded unchecked.

MLflow is not imported here: serving and training can pack and read bundles without
it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loopline.exceptions import ConfigError, LooplineError

SIGNATURE_FILE = "signature.json"


class RegistryError(LooplineError):
    """A registry operation that cannot be done as asked (unknown model, version, alias),
    or a version's files that fail their checks."""


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
    """A fixed version's files on this machine and their registered checksums: what
    serving loads (resolved once from an alias, off the request path)."""

    name: str
    version: int
    path: Path
    checksums: Mapping[str, str]

    @property
    def label(self) -> str:
        return f"{self.name}:{self.version}"

    def has(self, file: str) -> bool:
        return file in self.checksums

    def read(self, file: str) -> bytes:
        """The bytes of ``file``, refused unless its checksum was recorded and matches."""
        digest = self.checksums.get(file)
        if digest is None:
            raise RegistryError(
                f"{self.label} has no recorded checksum for {file!r}: refusing to load it "
                f"(recorded: {sorted(self.checksums)}). Register the file with the version."
            )
        data = (self.path / file).read_bytes()
        if sha256(data) != digest:
            raise RegistryError(
                f"Artifact {self.path / file} of {self.label} does not match its registered "
                "checksum: the file changed after registration."
            )
        return data

    @property
    def signature(self) -> Signature:
        if not self.has(SIGNATURE_FILE):
            raise RegistryError(
                f"{self.label} has no {SIGNATURE_FILE}: it was registered before bundles "
                "carried signatures. Train and register it again."
            )
        return Signature.from_json(self.read(SIGNATURE_FILE))

    def verify(self) -> None:
        """Check every recorded file now (all or nothing, before anything is loaded)."""
        for file in self.checksums:
            self.read(file)

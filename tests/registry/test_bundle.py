"""A version's bundle: its signature travels with it, and nothing is loaded unchecked (a
file without a recorded checksum is refused, a changed one too)."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopline.exceptions import ConfigError
from loopline.models import load
from loopline.registry import Bundle, Registry, RegistryError, Signature

SIGNATURE = Signature(task="binary", flavour="onnx-trees", inputs=("a", "b"), meta={"t": 0.5})


def test_the_signature_round_trips_and_files_are_read_checked(tmp_path: Path) -> None:
    registry = Registry(root=tmp_path / "registry")
    packed = Bundle(SIGNATURE, {"weights.bin": b"\x00\x01"})
    v = registry.register("m", bundle=packed, metrics={}, params={}, tags={})
    pinned = registry.resolve("m", v.version)
    assert pinned.signature == SIGNATURE
    assert pinned.read("weights.bin") == b"\x00\x01"
    (pinned.path / "extra.bin").write_bytes(b"slipped in later")
    with pytest.raises(RegistryError, match=r"no recorded checksum for 'extra\.bin'"):
        pinned.read("extra.bin")
    (pinned.path / "weights.bin").write_bytes(b"\x00\x02")
    with pytest.raises(RegistryError, match="does not match its registered checksum"):
        pinned.read("weights.bin")
    with pytest.raises(RegistryError, match="does not match"):
        registry.resolve("m", v.version)


def test_an_unknown_flavour_is_refused_by_name(tmp_path: Path) -> None:
    registry = Registry(root=tmp_path / "registry")
    gguf = Signature(task="generation", flavour="gguf", inputs=("prompt",))
    v = registry.register("llm", bundle=Bundle(gguf, {"model.gguf": b"GGUF"}), metrics={},
                          params={}, tags={})  # fmt: skip
    with pytest.raises(RegistryError, match="flavour 'gguf'"):
        load(registry.resolve("llm", v.version))
    loaded = load(registry.resolve("llm", v.version), flavours={"gguf": lambda p, **_: p.label})
    assert loaded == "llm:1", "a flavour is a loader passed in"


def test_bundles_and_signatures_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"signature\.json"):
        Bundle(SIGNATURE, {"signature.json": b"{}"})
    with pytest.raises(ConfigError, match="repeat"):
        Signature(task="binary", flavour="onnx-trees", inputs=("a", "a"))

"""Signed over-the-air packages: a good one opens; every tampering is refused with its reason."""

from __future__ import annotations

import json
import logging
import tarfile
from pathlib import Path

import pytest

from loopline.edge import (
    PACKAGE_DOMAIN,
    PackageManifest,
    UntrustedPackageError,
    build_package,
    open_package,
)
from loopline.exceptions import ConfigError
from loopline.registry.signing import DOMAIN, Keys, signed_by
from tests.edge import FILES, HW, INSTALLED, TAMPERS, Signer, members, package, signer


@pytest.fixture
def trusted(tmp_path: Path) -> Signer:
    return signer(tmp_path / "trusted")


@pytest.fixture
def other(tmp_path: Path) -> Signer:
    return signer(tmp_path / "other")


def test_a_good_package_opens_with_its_signed_manifest(tmp_path: Path, trusted: Signer) -> None:
    path = package(tmp_path, trusted.key, 6, min_version=3)
    verified = open_package(path, trusted.trusted, HW, installed=INSTALLED)
    assert verified.key_id == trusted.key.key_id
    assert (verified.manifest.name, verified.version, verified.manifest.compatible) == (
        "model",
        6,
        HW,
    )
    assert verified.manifest.min_version == 3
    assert verified.manifest.files["model.onnx"][1] == len(FILES["model.onnx"])
    assert sorted(members(path)) == [
        "files/config/labels.txt",
        "files/model.onnx",
        "manifest.json",
        "signatures.json",
    ]


def test_trusted_keys_may_be_a_keys_folder(tmp_path: Path, trusted: Signer) -> None:
    keys = Keys(signing=tmp_path / "trusted" / "signing.key", trusted=(tmp_path / "trusted",))
    assert open_package(package(tmp_path, trusted.key, 1), keys, HW).version == 1


def test_a_package_is_built_from_files_on_disk_too(tmp_path: Path, trusted: Signer) -> None:
    (tmp_path / "w.bin").write_bytes(b"\x00" * 3_000_000)  # more than one 1 MiB chunk
    path = build_package(
        {"w.bin": tmp_path / "w.bin"}, "model", 2, HW, trusted.key, out=tmp_path / "p" / "x.tar"
    )
    verified = open_package(path, trusted.trusted, HW)
    assert verified.manifest.files["w.bin"][1] == 3_000_000
    assert [p.name for p in path.parent.iterdir()] == ["x.tar"]  # no temporary file left


@pytest.mark.parametrize("case", sorted(TAMPERS))
def test_each_tampering_is_refused_with_its_reason(
    tmp_path: Path, trusted: Signer, other: Signer, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    tamper, reason = TAMPERS[case]
    bad = tamper(package(tmp_path, trusted.key, 6), trusted, other)
    with caplog.at_level(logging.ERROR, "loopline.edge"), pytest.raises(UntrustedPackageError) as e:
        open_package(bad, trusted.trusted, HW, installed=INSTALLED)
    assert e.value.reason == reason, str(e.value)
    assert [getattr(r, "reason", None) for r in caplog.records] == [reason]


def test_the_replayed_registry_signature_is_genuine_there_and_void_here(
    tmp_path: Path, trusted: Signer, other: Signer
) -> None:
    """The domains differ: the same key's signature counts for the registry only."""
    tamper, _ = TAMPERS["a registry signature of the package's manifest"]
    m = members(tamper(package(tmp_path, trusted.key, 6), trusted, other))
    signatures = json.loads(m["signatures.json"])
    assert signed_by(m["manifest.json"], signatures, trusted.trusted) == trusted.key.key_id
    assert signed_by(m["manifest.json"], signatures, trusted.trusted, domain=PACKAGE_DOMAIN) is None
    assert PACKAGE_DOMAIN != DOMAIN


def test_a_member_twice_is_refused(tmp_path: Path, trusted: Signer) -> None:
    path = package(tmp_path, trusted.key, 6)
    with tarfile.open(path, "a") as tar:  # a second model.onnx, which extraction would keep
        info = tarfile.TarInfo("files/model.onnx")
        tar.addfile(info)
    with pytest.raises(UntrustedPackageError) as e:
        open_package(path, trusted.trusted, HW)
    assert e.value.reason == "malformed"


def test_no_downgrade_check_without_an_installed_version(tmp_path: Path, trusted: Signer) -> None:
    path = package(tmp_path, trusted.key, 1, min_version=1)
    assert open_package(path, trusted.trusted, HW).version == 1
    assert open_package(path, trusted.trusted, HW, installed=1).version == 1  # same: allowed


@pytest.mark.parametrize(
    ("files", "compatible", "min_version"),
    [
        ({}, HW, 0),
        ({"../up.bin": b"x"}, HW, 0),
        ({"/abs.bin": b"x"}, HW, 0),
        ({"a//b": b"x"}, HW, 0),
        ({"m.bin": b"x"}, "", 0),
        ({"m.bin": b"x"}, HW, 3),  # above the version itself
    ],
)
def test_build_refuses_what_no_device_could_install(
    tmp_path: Path, trusted: Signer, files: dict[str, bytes], compatible: str, min_version: int
) -> None:
    with pytest.raises(ConfigError, match="A package needs"):
        build_package(
            files, "model", 2, compatible, trusted.key, out=tmp_path / "x.tar",
            min_version=min_version,
        )  # fmt: skip
    assert not (tmp_path / "x.tar").exists()


def test_the_manifest_round_trips_and_is_canonical() -> None:
    manifest = PackageManifest(
        name="m", version=3, compatible=HW, min_version=1, files={"a": ("0" * 64, 5)}
    )
    data = manifest.to_json()
    assert PackageManifest.from_json(data) == manifest
    assert data == json.dumps(json.loads(data), sort_keys=True, separators=(",", ":")).encode()
    with pytest.raises(ValueError, match="format"):
        PackageManifest.from_json(data.replace(b"package/1", b"package/9"))


def test_a_flood_of_members_is_refused_before_any_signature_is_read(
    tmp_path: Path, trusted: Signer
) -> None:
    import io

    from loopline.edge.package import MAX_MEMBERS

    flood = tmp_path / "flood.tar"
    with tarfile.open(flood, "w") as tar:
        for i in range(MAX_MEMBERS + 1):
            info = tarfile.TarInfo(f"f{i}")
            tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(UntrustedPackageError) as refused:
        open_package(flood, trusted.trusted, HW)
    assert refused.value.reason == "malformed"
    assert str(MAX_MEMBERS) in str(refused.value)

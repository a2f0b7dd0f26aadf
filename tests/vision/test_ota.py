"""Over-the-air updates of the detector: a registry version packed, verified and installed
on a vehicle's A/B slots; a broken build fails the vehicle's health check and the slot
switches back; a tampered or foreign package is refused; and ``loopline train vision``
registers, gates and promotes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from typer.testing import CliRunner

from loopline.apps.vision import ota, pipeline, scenes
from loopline.apps.vision.detector.calibrate import Calibration
from loopline.apps.vision.detector.evaluate import Quality
from loopline.apps.vision.detector.train import TrainConfig
from loopline.edge import UntrustedPackageError, build_package, open_package
from loopline.registry import Registry


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, untrained_onnx: Path) -> Registry:
    root = tmp_path_factory.mktemp("registry")
    reg = Registry(f"sqlite:///{root / 'mlflow.db'}")
    none = Quality(0.0, 0.0, {})
    model = untrained_onnx.read_bytes()
    built = pipeline.Built(
        TrainConfig(width=8), model, model, b"weights", Calibration(1.5, 0.2, 0.1, 100),
        none, none, 1.0, 1.0, [1.0],
    )  # fmt: skip
    pipeline.register(reg, built)
    pipeline.register(reg, built)
    return reg


@pytest.fixture(scope="module")
def frames() -> list[NDArray[np.uint8]]:
    return [f.image for f in scenes.frames(3, 3)]


def test_a_registry_version_installs_and_its_detector_loads_from_the_slot(
    registry: Registry, frames: list[NDArray[np.uint8]], tmp_path: Path
) -> None:
    fleet = ota.fleet(tmp_path / "fleet", 1, registry, frames)
    vehicle = fleet.devices["vehicle-000"]
    report = vehicle.update(ota.package(registry, 1, tmp_path))
    assert report.ok, report.problems
    assert vehicle.slots.status().version == 1
    detector = ota.load(vehicle.slots.path(str(vehicle.slots.status().active)))
    assert detector.temperature == 1.5  # from the signed signature.json
    assert len(detector(frames[0]).boxes.shape) == 2
    assert pipeline.load(registry.resolve(pipeline.MODEL, 1)).temperature == 1.5


def test_a_broken_build_fails_the_health_check_and_the_slot_switches_back(
    registry: Registry, frames: list[NDArray[np.uint8]], tmp_path: Path
) -> None:
    fleet = ota.fleet(tmp_path / "fleet", 1, registry, frames)
    vehicle = fleet.devices["vehicle-000"]
    assert vehicle.update(ota.package(registry, 1, tmp_path)).ok
    vehicle.slots.confirm()
    broken = vehicle.update(ota.package(registry, 2, tmp_path, model=b"not a model"))
    assert not broken.ok
    assert "does not run" in broken.problems[0]
    assert vehicle.slots.status().version == 1, "back on the version that worked"
    assert ota.health_check(frames)(vehicle.slots.path(str(vehicle.slots.status().active))) == []


def test_a_tampered_or_foreign_package_is_refused(registry: Registry, tmp_path: Path) -> None:
    good = ota.package(registry, 1, tmp_path)
    data = bytearray(good.read_bytes())
    at = data.find(b"detector.int8.onnx") + 2048  # inside the model's bytes in the tar
    data[at] ^= 0xFF
    tampered = tmp_path / "tampered.tar"
    tampered.write_bytes(bytes(data))
    keys = registry.keys.public_keys()
    with pytest.raises(UntrustedPackageError) as refused:
        open_package(tampered, keys, ota.COMPATIBLE)
    assert refused.value.reason == "checksum"
    other = build_package({"detector.int8.onnx": b"x"}, pipeline.MODEL, 3, "another/board",
                          registry.keys.signing_key(), out=tmp_path / "other.tar")  # fmt: skip
    with pytest.raises(UntrustedPackageError) as foreign:
        open_package(other, keys, ota.COMPATIBLE)
    assert foreign.value.reason == "incompatible"


def test_train_vision_registers_gates_and_promotes(tmp_path: Path) -> None:
    from loopline.cli import app

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = ["train", "vision", "--frames", "64", "--epochs", "1", "--width", "8",
            "--registry", uri, "--json"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout.strip().splitlines()[-1])
    assert record["version"] == 1
    assert record["promoted"] is True, "nothing to regress against: the first one passes"
    assert "no regression" in record["gate"]
    assert Registry(uri).resolve(pipeline.MODEL, "champion").version == 1

"""A device's A/B slots: a good package installs beside the running one and takes over
atomically; a refused, broken or unhealthy one leaves (or puts back) the previous slot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loopline.edge import EdgeError, Slots, UntrustedPackageError, build_package, open_package
from loopline.edge.slots import verify_folder
from tests.edge import FILES, HW, INSTALLED, TAMPERS, Signer, package, signer


def healthy(folder: Path) -> list[str]:
    return [] if (folder / "model.onnx").read_bytes() == FILES["model.onnx"] else ["bad model"]


def broken(folder: Path) -> list[str]:
    return ["the model does not load"]


def crashing(folder: Path) -> list[str]:
    raise RuntimeError("segfault in the runtime")


@pytest.fixture
def key(tmp_path: Path) -> Signer:
    return signer(tmp_path / "keys")


@pytest.fixture
def slots(tmp_path: Path, key: Signer) -> Slots:
    """Slots running version INSTALLED, confirmed."""
    slots = Slots(tmp_path / "device", history=10, clock=lambda: 1000.0)
    slots.install(open_package(package(tmp_path, key.key, INSTALLED), key.trusted, HW),
                  health_check=healthy)  # fmt: skip
    slots.confirm()
    return slots


def snapshot(slots: Slots) -> dict[str, bytes]:
    active = slots.path(str(slots.status().active))
    return {
        p.relative_to(active).as_posix(): p.read_bytes() for p in active.rglob("*") if p.is_file()
    }


def test_a_good_package_installs_in_the_other_slot_and_takes_over(
    tmp_path: Path, slots: Slots, key: Signer
) -> None:
    before = slots.status()
    assert (before.active, before.version, before.floor, before.probation) == ("a", 5, 5, False)
    files = {**FILES, "model.onnx": b"new weights"}
    new = open_package(package(tmp_path, key.key, 6, files=files), key.trusted, HW, installed=5)
    slots.install(new, health_check=lambda folder: [])
    after = slots.status()
    assert (after.active, after.versions, after.probation) == ("b", {"a": 5, "b": 6}, True)
    assert (slots.path("b") / "model.onnx").read_bytes() == b"new weights"
    assert (slots.path("a") / "model.onnx").read_bytes() == FILES["model.onnx"]  # kept
    slots.confirm()
    done = slots.status()
    assert (done.probation, done.floor) == (False, 6)
    assert [e.action for e in done.history] == ["install", "confirm", "install", "confirm"]
    state = json.loads((slots.root / "state.json").read_text())
    assert state["active"] == "b"
    assert sorted(p.name for p in slots.root.iterdir()) == ["a", "b", "state.json"]  # no temp


@pytest.mark.parametrize("case", sorted(TAMPERS))
def test_a_tampered_package_leaves_the_active_slot_untouched(
    tmp_path: Path, slots: Slots, key: Signer, case: str
) -> None:
    tamper, reason = TAMPERS[case]
    bad = tamper(package(tmp_path, key.key, 6), key, signer(tmp_path / "other"))
    before, files = slots.status(), snapshot(slots)
    with pytest.raises(UntrustedPackageError) as e:
        slots.install(open_package(bad, key.trusted, HW, installed=before.version),
                      health_check=healthy)  # fmt: skip
    assert e.value.reason == reason
    assert slots.status() == before
    assert snapshot(slots) == files


def test_a_package_changed_after_it_was_opened_is_refused_while_written(
    tmp_path: Path, slots: Slots, key: Signer
) -> None:
    path = package(tmp_path, key.key, 6)
    verified = open_package(path, key.trusted, HW, installed=5)
    tamper, _ = TAMPERS["a flipped byte in a file"]
    tamper(path, key, key)  # swapped on disk between the check and the install
    files = snapshot(slots)
    with pytest.raises(UntrustedPackageError) as e:
        slots.install(verified, health_check=healthy)
    assert e.value.reason == "checksum"
    status = slots.status()
    assert (status.active, status.version, status.versions["b"]) == ("a", 5, None)
    assert snapshot(slots) == files


def test_the_slots_refuse_a_downgrade_below_what_they_confirmed(
    tmp_path: Path, slots: Slots, key: Signer
) -> None:
    """Even when the caller forgot to pass the installed version to open_package."""
    old = open_package(package(tmp_path, key.key, 4), key.trusted, HW)
    with pytest.raises(UntrustedPackageError) as e:
        slots.install(old, health_check=healthy)
    assert e.value.reason == "downgrade"
    assert slots.status().version == 5


@pytest.mark.parametrize(
    ("check", "problem"),
    [(broken, "the model does not load"), (crashing, "raised RuntimeError: segfault")],
)
def test_a_failing_health_check_rolls_back_automatically(
    tmp_path: Path, slots: Slots, key: Signer, check: object, problem: str
) -> None:
    new = open_package(package(tmp_path, key.key, 6), key.trusted, HW, installed=5)
    slots.install(new, health_check=check)  # type: ignore[arg-type]
    status = slots.status()
    assert (status.active, status.version, status.probation, status.floor) == ("a", 5, False, 5)
    assert status.last is not None
    assert status.last.action == "rollback"
    assert problem in status.last.problems[0]
    assert snapshot(slots) == FILES  # the previous version's files, as they were


def test_failures_on_probation_roll_back_and_after_confirm_do_not(
    tmp_path: Path, key: Signer
) -> None:
    slots = Slots(tmp_path / "device", max_failures=2)
    for version in (1, 2):
        slots.install(open_package(package(tmp_path, key.key, version), key.trusted, HW),
                      health_check=healthy)  # fmt: skip
        if version == 1:
            slots.confirm()
    slots.report_failure("timeout")
    assert (slots.status().version, slots.status().probation) == (2, True)  # 1 of 2
    slots.report_failure("timeout")
    assert (slots.status().version, slots.status().probation) == (1, False)
    with pytest.raises(EdgeError, match="Nothing to confirm"):
        slots.confirm()
    slots.report_failure("late failure")  # confirmed version 1: recorded, no rollback
    assert slots.status().version == 1
    assert slots.status().last.action == "failure"  # type: ignore[union-attr]


def test_no_second_install_while_on_probation(tmp_path: Path, slots: Slots, key: Signer) -> None:
    """The other slot holds the version to roll back to: it must not be overwritten."""
    slots.install(
        open_package(package(tmp_path, key.key, 6), key.trusted, HW), health_check=healthy
    )
    with pytest.raises(EdgeError, match="on probation"):
        slots.install(open_package(package(tmp_path, key.key, 7), key.trusted, HW),
                      health_check=healthy)  # fmt: skip
    assert slots.status().versions == {"a": 5, "b": 6}


def test_a_failed_first_install_leaves_nothing_active(tmp_path: Path, key: Signer) -> None:
    slots = Slots(tmp_path / "device")
    slots.install(open_package(package(tmp_path, key.key, 1), key.trusted, HW), health_check=broken)
    assert (slots.status().active, slots.status().version) == (None, None)
    with pytest.raises(EdgeError, match="No version to roll back to"):
        slots.rollback("operator")


def test_a_first_install_on_probation_rolls_back_to_nothing(tmp_path: Path, key: Signer) -> None:
    slots = Slots(tmp_path / "device")
    slots.install(
        open_package(package(tmp_path, key.key, 1), key.trusted, HW), health_check=healthy
    )
    assert slots.status().probation
    slots.rollback("rollout halted")  # a halted rollout undoes a first install too
    assert (slots.status().active, slots.status().version) == (None, None)
    slots.install(
        open_package(package(tmp_path, key.key, 2), key.trusted, HW), health_check=healthy
    )
    assert slots.status().version == 2, "and the device takes the next package"


def test_a_confirmed_version_rolls_back_on_request(
    tmp_path: Path, slots: Slots, key: Signer
) -> None:
    slots.install(
        open_package(package(tmp_path, key.key, 6), key.trusted, HW), health_check=healthy
    )
    slots.confirm()
    slots.rollback("rollout halted")
    status = slots.status()
    assert (status.active, status.version, status.floor) == ("a", 5, 6)
    assert status.last is not None
    assert status.last.problems == ("rollout halted",)


def test_state_survives_a_restart_and_history_is_bounded(
    tmp_path: Path, slots: Slots, key: Signer
) -> None:
    for version in range(6, 12):
        slots.install(open_package(package(tmp_path, key.key, version), key.trusted, HW),
                      health_check=healthy)  # fmt: skip
        slots.confirm()
    status = slots.status()
    assert len(status.history) == 10
    assert status.history[-1].action == "confirm"
    again = Slots(slots.root).status()
    assert again == status
    assert (again.version, again.floor) == (11, 11)
    verify_folder(
        open_package(package(tmp_path, key.key, 11), key.trusted, HW).manifest,
        slots.path(str(again.active)),
    )


def test_verify_folder_finds_a_file_slipped_in(tmp_path: Path, slots: Slots, key: Signer) -> None:
    manifest = open_package(package(tmp_path, key.key, 5), key.trusted, HW).manifest
    verify_folder(manifest, slots.path("a"))
    (slots.path("a") / "config" / "extra.py").write_text("print('hi')")
    with pytest.raises(UntrustedPackageError) as e:
        verify_folder(manifest, slots.path("a"))
    assert e.value.reason == "unlisted-file"


def test_a_package_of_another_name_never_replaces_the_installed_one(
    tmp_path: Path, slots: Slots, key: Signer
) -> None:
    before = slots.status()
    other = build_package(FILES, "another-model", 9, HW, key.key, out=tmp_path / "other.tar")
    with pytest.raises(UntrustedPackageError) as refused:
        slots.install(open_package(other, key.trusted, HW), health_check=healthy)
    assert refused.value.reason == "name"
    assert slots.status().active == before.active
    assert slots.status().version == before.version

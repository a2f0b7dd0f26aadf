"""A device's two model slots (A/B): install beside the running version, switch atomically,
roll back on its own.

:meth:`Slots.install` writes a :class:`~loopline.edge.package.VerifiedPackage` into the
slot not in use, syncs it, checks every byte again from disk, then switches the active
pointer (``state.json``, replaced in one rename: a power cut leaves the old pointer or the
new one) and runs the caller's health check on the new slot. The new version is then on
probation: a failed check, or failures reported (:meth:`Slots.report_failure`) before
:meth:`Slots.confirm`, switch back to the previous slot. The running slot is never
written, so a refused or broken package leaves the device as it was.

The state also records each slot's signed manifest, the highest confirmed version (the
floor no later package may go below) and a bounded history of what happened.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from loopline.edge.package import (
    EdgeError,
    PackageManifest,
    VerifiedPackage,
    check_replaces,
    untrusted,
)
from loopline.exceptions import ConfigError
from loopline.files import write_private

HealthCheck = Callable[[Path], Sequence[str]]  # a slot's folder -> problems (none: healthy)
SLOTS = ("a", "b")
STATE_FILE = "state.json"


@dataclass(frozen=True, kw_only=True, slots=True)
class SlotEvent:
    """One thing that happened to the slots: ``install``, ``rollback``, ``confirm`` or
    ``failure``, on ``slot`` (the slot active afterwards, for a rollback)."""

    action: str
    slot: str | None
    version: int | None
    ok: bool
    problems: tuple[str, ...] = ()
    at: float


@dataclass(frozen=True, kw_only=True, slots=True)
class SlotStatus:
    """Where the device stands: its active slot, each slot's version, whether the active
    version is on probation, the confirmed floor, the last event and the recent ones."""

    active: str | None
    versions: dict[str, int | None]
    probation: bool
    floor: int
    history: tuple[SlotEvent, ...]

    @property
    def version(self) -> int | None:
        """The active slot's version (None: nothing installed)."""
        return self.versions[self.active] if self.active else None

    @property
    def last(self) -> SlotEvent | None:
        return self.history[-1] if self.history else None


class Slots:
    """The A/B slots under ``root`` (``root/a``, ``root/b``, ``root/state.json``).

    Args:
        root: The folder; made if absent, its state read back after a restart.
        history: How many events the status keeps.
        max_failures: Failures reported on probation that roll the version back.
        clock: Seconds since the epoch, for the events' times.
    """

    def __init__(
        self,
        root: Path,
        *,
        history: int = 50,
        max_failures: int = 1,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if history < 1 or max_failures < 1:
            raise ConfigError(f"Slots need history >= 1 and max_failures >= 1; got {history} "
                              f"and {max_failures}.")  # fmt: skip
        self.root = root
        self.history = history
        self.max_failures = max_failures
        self.clock = clock
        root.mkdir(parents=True, exist_ok=True)

    def path(self, slot: str) -> Path:
        return self.root / slot

    def status(self) -> SlotStatus:
        state = self._load()
        versions = {s: _manifest(state, s).version if state["slots"][s] else None for s in SLOTS}
        history = (SlotEvent(**{**e, "problems": tuple(e["problems"])}) for e in state["history"])
        return SlotStatus(
            active=state["active"], versions=versions, probation=state["probation"] is not None,
            floor=state["floor"], history=tuple(history),
        )  # fmt: skip

    def install(self, package: VerifiedPackage, *, health_check: HealthCheck) -> None:
        """Install ``package`` in the inactive slot, switch to it, and check its health:
        a failed check (problems, or an exception) switches back at once.

        Raises:
            UntrustedPackageError: A package of another name than the installed one, a
                downgrade below the confirmed floor, or files that did not land intact;
                the active slot is untouched.
            EdgeError: The active version is still on probation.
        """
        state = self._load()
        if state["probation"]:
            raise EdgeError(f"Slot {state['active']!r} is on probation: confirm() or "
                            "rollback() it before installing another version.")  # fmt: skip
        active = state["active"]
        installed = _manifest(state, active) if active else None
        if installed is not None and installed.name != package.manifest.name:
            raise untrusted(
                "name", f"{package.manifest.name!r} cannot replace the installed "
                f"{installed.name!r}: a package only replaces its own kind.",
                package.manifest.name, package.manifest.version,
            )  # fmt: skip
        check_replaces(package.manifest, installed.version if installed else None,
                       floor=state["floor"])  # fmt: skip
        target = SLOTS[1] if active == SLOTS[0] else SLOTS[0]
        state["slots"][target] = None  # not trusted while it is written
        self._save(state)
        folder = self.path(target)
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        package.extract(folder)
        verify_folder(package.manifest, folder)
        _sync_dir(folder)
        state["slots"][target] = {"manifest": package.manifest.to_json().decode(),
                                  "key_id": package.key_id}  # fmt: skip
        state["active"], state["probation"] = target, {"previous": active, "failures": 0}
        self._save(state, self._event("install", target, package.version, ok=True))
        problems = _run(health_check, folder)
        if problems:
            self._switch_back(problems)

    def report_failure(self, problem: str) -> None:
        """Record a failure of the running version; on probation, ``max_failures`` of
        them roll it back."""
        state = self._load()
        active = state["active"]
        version = _manifest(state, active).version if active else None
        if state["probation"]:
            state["probation"]["failures"] += 1
        self._save(state, self._event("failure", active, version, ok=False, problems=(problem,)))
        if state["probation"] and state["probation"]["failures"] >= self.max_failures:
            self._switch_back((problem,))

    def confirm(self) -> None:
        """End the active version's probation: it stays, and no package older than it is
        accepted from now on."""
        state = self._load()
        if not state["probation"]:
            raise EdgeError(f"Nothing to confirm in {self.root}: no version is on probation.")
        version = _manifest(state, state["active"]).version
        state["probation"], state["floor"] = None, max(state["floor"], version)
        self._save(state, self._event("confirm", state["active"], version, ok=True))

    def rollback(self, reason: str) -> None:
        """Switch back to what ran before (confirmed or not), e.g. when a rollout is
        halted: on probation, the slot the new version replaced, nothing at all after a
        first install; else the other slot's version. Raises EdgeError when there is
        nothing to go back from or to."""
        state = self._load()
        other = SLOTS[1] if state["active"] == SLOTS[0] else SLOTS[0]
        if state["active"] is not None and state["probation"]:
            self._switch_back((reason,))
            return
        if state["active"] is None or not state["slots"][other]:
            raise EdgeError(f"No version to roll back to in {self.root}: nothing is "
                            "installed, or only one version ever was.")  # fmt: skip
        self._switch_back((reason,))

    def _switch_back(self, problems: Sequence[str]) -> None:
        state = self._load()
        active = state["active"]
        other = SLOTS[1] if active == SLOTS[0] else SLOTS[0]
        # on probation: the slot it replaced (None after a first install); else the other
        previous = state["probation"]["previous"] if state["probation"] else other
        state["active"], state["probation"] = previous, None
        version = _manifest(state, previous).version if previous else None
        self._save(state, self._event("rollback", previous, version, ok=False, problems=problems))

    def _event(self, action: str, slot: str | None, version: int | None, *, ok: bool,
               problems: Sequence[str] = ()) -> SlotEvent:  # fmt: skip
        return SlotEvent(action=action, slot=slot, version=version, ok=ok,
                         problems=tuple(problems), at=self.clock())  # fmt: skip

    def _load(self) -> dict[str, Any]:
        try:
            state: dict[str, Any] = json.loads((self.root / STATE_FILE).read_bytes())
        except FileNotFoundError:
            return {"active": None, "slots": dict.fromkeys(SLOTS), "probation": None,
                    "floor": 0, "history": []}  # fmt: skip
        return state

    def _save(self, state: dict[str, Any], event: SlotEvent | None = None) -> None:
        if event is not None:
            state["history"] = [*state["history"], asdict(event)][-self.history :]
        write_private(self.root / STATE_FILE, json.dumps(state, sort_keys=True), mode=0o644)
        _sync_dir(self.root)


def _manifest(state: dict[str, Any], slot: str) -> PackageManifest:
    return PackageManifest.from_json(state["slots"][slot]["manifest"].encode())


def _run(health_check: HealthCheck, folder: Path) -> tuple[str, ...]:
    try:
        return tuple(health_check(folder))
    except Exception as exc:  # a check that crashes is a failed check
        return (f"the health check raised {type(exc).__name__}: {exc}",)


def _sync_dir(folder: Path) -> None:
    """Make a folder's new entries (files, renames) durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def verify_folder(manifest: PackageManifest, folder: Path) -> None:
    """Check ``folder`` holds exactly ``manifest``'s files, every byte matching (read
    from disk, after the write): ``missing-file``, ``checksum``, ``unlisted-file``."""
    name, version = manifest.name, manifest.version
    for f, (digest, size) in manifest.files.items():
        path = folder / f
        if path.is_symlink() or not path.is_file():
            raise untrusted("missing-file", f"{path} of {name}:{version} is missing.",
                            name, version)  # fmt: skip
        with path.open("rb") as data:
            same = os.fstat(data.fileno()).st_size == size
            if not same or hashlib.file_digest(data, "sha256").hexdigest() != digest:
                raise untrusted("checksum", f"{path} of {name}:{version} does not match "
                                "its signed manifest on disk: a write failed or the storage "
                                "corrupts data.", name, version)  # fmt: skip
    extra = sorted(
        rel for p in folder.rglob("*")
        if not p.is_dir() and (rel := p.relative_to(folder).as_posix()) not in manifest.files
    )  # fmt: skip
    if extra:
        raise untrusted("unlisted-file", f"{folder} holds files its manifest does not list: "
                        f"{extra}.", name, version)  # fmt: skip

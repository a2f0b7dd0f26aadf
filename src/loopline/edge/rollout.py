"""Staged rollout of a package over a fleet: a canary cohort first, then wider ones, with a
gate between stages.

A device's cohort is a number in [0, 1) hashed from its id (:func:`cohort`): the same on
every run and machine, so a device joins the rollout at the same stage each time. Stage
``i`` of a :class:`RolloutPlan` holds the devices whose cohort is below ``stages[i]``, and
at least ``min_reports`` new ones while the fleet has them (a 1 % canary of 100 devices
would otherwise be judged on one). After each stage the gate reads the stage's reports:
the share of its devices that refused the package, failed their health check or failed
on probation must be at most ``max_failure_rate``; if it is not, the rollout halts and
every device it updated (earlier, confirmed stages too) rolls back. Devices of a passed
stage confirm the version.

:class:`Device` and :class:`Fleet` are in-process: each device has its own
:class:`~loopline.edge.slots.Slots` folder, enough to drive a rollout without a network.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from loopline.edge.package import EdgeError, UntrustedPackageError, open_package
from loopline.edge.slots import HealthCheck, Slots
from loopline.exceptions import ConfigError
from loopline.registry.signing import Keys


def cohort(device_id: str, *, salt: str = "") -> float:
    """The device's place in [0, 1), uniform over ids: the first 8 bytes of
    SHA-256(salt NUL id). A salt per rollout draws other canaries each time."""
    digest = hashlib.sha256(f"{salt}\0{device_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass(frozen=True, kw_only=True, slots=True)
class RolloutPlan:
    """How a rollout widens and when it stops.

    Args:
        stages: Cumulative fractions of the fleet, increasing, the last 1.0.
        max_failure_rate: The highest share of a stage's reports that may be failures.
        min_reports: The fewest reports a gate judges (each stage takes at least this
            many new devices while there are some).
        salt: Mixed into every device's cohort.
    """

    stages: tuple[float, ...] = (0.01, 0.1, 0.5, 1.0)
    max_failure_rate: float = 0.05
    min_reports: int = 5
    salt: str = ""

    def __post_init__(self) -> None:
        s = self.stages
        if not s or s[-1] != 1.0 or any(a >= b for a, b in zip((0.0, *s), s, strict=False)):
            raise ConfigError(f"A RolloutPlan's 'stages' must increase within (0, 1] and end "
                              f"at 1.0. Got {s}.")  # fmt: skip
        if not 0 <= self.max_failure_rate < 1 or self.min_reports < 1:
            raise ConfigError(
                f"A RolloutPlan needs 0 <= 'max_failure_rate' < 1 and 'min_reports' >= 1. "
                f"Got {self.max_failure_rate} and {self.min_reports}."
            )


@dataclass(frozen=True, kw_only=True, slots=True)
class Report:
    """What a device says after an update: whether it runs the new version (``ok``),
    the version it runs, and its problems."""

    device_id: str
    ok: bool
    version: int | None
    problems: tuple[str, ...] = ()


class Device:
    """A simulated device: its slots, hardware and trusted keys, and what it sees.

    Args:
        device_id: Its id (its cohort is hashed from it).
        root: Its slots' folder.
        compatible: Its hardware string, matched against a package's.
        trusted_keys: The keys whose packages it installs.
        health_check: Run on a new slot right after the switch.
        probation: What it meets while the new version is on probation (problems are
            reported as failures), or None.
    """

    def __init__(
        self,
        device_id: str,
        *,
        root: Path,
        compatible: str,
        trusted_keys: Keys | Mapping[str, Ed25519PublicKey],
        health_check: HealthCheck,
        probation: HealthCheck | None = None,
    ) -> None:
        self.device_id = device_id
        self.compatible = compatible
        self.trusted_keys = trusted_keys
        self.health_check = health_check
        self.probation = probation
        self.slots = Slots(root)

    def update(self, package: Path) -> Report:
        """Verify, install and try ``package``; a refusal is a failure report."""
        installed = self.slots.status().version
        try:
            verified = open_package(
                package, self.trusted_keys, self.compatible, installed=installed
            )
            self.slots.install(verified, health_check=self.health_check)
        except (EdgeError, OSError) as exc:  # a refusal, or a disk that failed the write
            why = exc.reason if isinstance(exc, UntrustedPackageError) else type(exc).__name__
            return Report(device_id=self.device_id, ok=False, version=installed,
                          problems=(f"refused ({why}): {exc}",))  # fmt: skip
        status = self.slots.status()
        if status.probation and self.probation is not None:
            for problem in self.probation(self.slots.path(str(status.active))):
                self.slots.report_failure(problem)
        status = self.slots.status()
        ok = status.probation and status.version == verified.version
        problems = () if ok or status.last is None else status.last.problems
        return Report(device_id=self.device_id, ok=ok, version=status.version, problems=problems)


class Fleet:
    """Devices by id, in cohort order for a given salt."""

    def __init__(self, devices: Iterable[Device]) -> None:
        self.devices = {d.device_id: d for d in devices}

    def __len__(self) -> int:
        return len(self.devices)

    def ordered(self, salt: str = "") -> list[Device]:
        return sorted(self.devices.values(), key=lambda d: cohort(d.device_id, salt=salt))


@dataclass(frozen=True, kw_only=True, slots=True)
class StageResult:
    """A stage's gate: its devices, the reports judged, failures among them, the verdict."""

    stage: int
    fraction: float
    devices: tuple[str, ...]
    reports: int
    failures: int
    passed: bool

    @property
    def failure_rate(self) -> float:
        return self.failures / self.reports if self.reports else 0.0


class Rollout:
    """One package's staged rollout over ``fleet`` by ``plan``; :meth:`run` drives it.

    Attributes:
        state_: ``ready``, then ``complete`` or ``halted``.
        results_: Each stage's gate, in order (the last failed if halted).
        reports_: Each updated device's report, by id.
    """

    def __init__(self, fleet: Fleet, package: Path, *, plan: RolloutPlan) -> None:
        if len(fleet) < plan.min_reports:
            raise ConfigError(f"A fleet of {len(fleet)} devices cannot give the "
                              f"{plan.min_reports} reports a gate needs.")  # fmt: skip
        self.fleet = fleet
        self.package = package
        self.plan = plan
        self.state_ = "ready"
        self.results_: list[StageResult] = []
        self.reports_: dict[str, Report] = {}

    def run(self) -> None:
        """Update stage after stage until the last passes (``complete``) or a gate fails
        (``halted``, every updated device rolled back)."""
        if self.state_ != "ready":
            raise EdgeError(f"This rollout already ran ({self.state_}); start a new one.")
        order = self.fleet.ordered(self.plan.salt)
        salt, done = self.plan.salt, 0
        for i, fraction in enumerate(self.plan.stages):
            below = sum(cohort(d.device_id, salt=salt) < fraction for d in order)
            end = min(len(order), max(below, done + self.plan.min_reports))
            stage = order[done:end]
            reports = [d.update(self.package) for d in stage]
            self.reports_.update((r.device_id, r) for r in reports)
            done = end
            self.results_.append(result := self._judge(i, fraction, stage, reports))
            if not result.passed:
                self._halt()
                return
            for d, r in zip(stage, reports, strict=True):
                if r.ok:
                    d.slots.confirm()
        self.state_ = "complete"

    def _judge(
        self, i: int, fraction: float, stage: Sequence[Device], reports: Sequence[Report]
    ) -> StageResult:
        judged = reports if len(reports) >= self.plan.min_reports else list(self.reports_.values())
        failures = sum(not r.ok for r in judged)
        return StageResult(
            stage=i, fraction=fraction, devices=tuple(d.device_id for d in stage),
            reports=len(judged), failures=failures,
            passed=failures <= self.plan.max_failure_rate * len(judged),
        )  # fmt: skip

    def _halt(self) -> None:
        self.state_ = "halted"
        for device_id, report in self.reports_.items():
            slots = self.fleet.devices[device_id].slots
            if report.ok:
                with contextlib.suppress(EdgeError):  # a first install has nothing to go back to
                    slots.rollback(f"rollout halted at stage {len(self.results_) - 1}")

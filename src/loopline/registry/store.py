"""The model registry on MLflow: versions with their lineage, aliases, promotion, rollback.

Embedded default: MLflow's SQLite backend and a local artifact folder under
``.loopline/registry``; at scale, the same code against an MLflow tracking server with
PostgreSQL and an object store (docs/registry.md). The registry is the control plane
only: serving resolves an alias once to a pinned version, path and checksums
(:meth:`Registry.resolve`) and never calls MLflow on the request path. ``import
loopline`` does not import MLflow; this module does, when it is used.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from loopline.registry.bundle import Bundle, Pinned, RegistryError, sha256

DEFAULT_ROOT = Path(".loopline/registry")
HISTORY_TAG = "loopline.history."  # + alias: the versions it pointed at before, newest last
STEP_TAG = "loopline.step."  # + nanoseconds: one recorded Step (JSON)
CHECKSUM_TAG = "sha256."  # + file name


@dataclass(frozen=True)
class ModelVersion:
    """One registered version and everything recorded with it."""

    name: str
    version: int
    aliases: tuple[str, ...]
    run_id: str
    path: Path  # the local folder of its artifacts
    metrics: dict[str, float]
    params: dict[str, str]
    tags: dict[str, str]
    created_ms: int

    @property
    def checksums(self) -> dict[str, str]:
        """File name -> SHA-256 of each artifact, as registered."""
        return {
            k[len(CHECKSUM_TAG) :]: v for k, v in self.tags.items() if k.startswith(CHECKSUM_TAG)
        }


@dataclass(frozen=True)
class Step:
    """One recorded step: what was done to which version, triggered by what, and why it
    passed or failed."""

    at_ms: int
    version: int
    action: str
    trigger: str
    passed: bool
    why: str


class Registry:
    """Registered models of one MLflow tracking store.

    Args:
        uri: An MLflow tracking URI (``sqlite:///...``, ``postgresql://...``,
            ``http://mlflow:5000``); default: SQLite under ``root``.
        root: The embedded default's folder (database and artifacts).
    """

    def __init__(self, uri: str | None = None, *, root: Path = DEFAULT_ROOT) -> None:
        if uri is None:
            root.mkdir(parents=True, exist_ok=True)
            uri = f"sqlite:///{root.resolve() / 'mlflow.db'}"
        self.uri = uri
        self.root = root
        self.client = MlflowClient(tracking_uri=uri, registry_uri=uri)

    def _experiment(self, name: str) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return str(found.experiment_id)
        location = None
        if self.uri.startswith("sqlite:"):
            location = (self.root.resolve() / "artifacts").as_uri()
        return str(self.client.create_experiment(name, artifact_location=location))

    def register(
        self,
        name: str,
        *,
        bundle: Bundle,
        metrics: Mapping[str, float],
        params: Mapping[str, object],
        tags: Mapping[str, str],
    ) -> ModelVersion:
        """Log a training run (metrics, parameters, lineage tags, the bundle's files) and
        register it as the next version of ``name``; every file's checksum goes with it."""
        files = bundle.contents()
        run = self.client.create_run(self._experiment(name), tags={"loopline.model": name})
        run_id = run.info.run_id
        now = int(time.time() * 1000)
        checksums = {f"{CHECKSUM_TAG}{f}": sha256(b) for f, b in files.items()}
        self.client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()],
            params=[Param(k, str(v)[:6000]) for k, v in params.items()],
            tags=[RunTag(k, v) for k, v in {**tags, **checksums}.items()],
        )
        with tempfile.TemporaryDirectory() as tmp:
            for fname, data in files.items():
                (Path(tmp) / fname).write_bytes(data)
            self.client.log_artifacts(run_id, tmp)
        self.client.set_terminated(run_id)
        try:
            self.client.get_registered_model(name)
        except MlflowException:
            self.client.create_registered_model(name)
        mv = self.client.create_model_version(
            name, source=run.info.artifact_uri, run_id=run_id, tags={**tags, **checksums}
        )
        return self.get(name, int(mv.version))

    def names(self) -> list[str]:
        return sorted(m.name for m in self.client.search_registered_models())

    def versions(self, name: str) -> list[ModelVersion]:
        """Every version of ``name``, oldest first."""
        self._model(name)
        found = self.client.search_model_versions(f"name = '{name}'")
        return sorted((self.get(name, int(v.version)) for v in found), key=lambda v: v.version)

    def get(self, name: str, ref: int | str) -> ModelVersion:
        """A version by number, or by alias (``champion``, ``challenger``)."""
        self._model(name)
        try:
            if isinstance(ref, int) or str(ref).isdigit():
                mv = self.client.get_model_version(name, str(ref))
            else:
                mv = self.client.get_model_version_by_alias(name, str(ref))
        except MlflowException:
            raise RegistryError(
                f"Model {name!r} has no version or alias {ref!r}; "
                f"see `loopline models list {name}`."
            ) from None
        run_id = str(mv.run_id)
        run = self.client.get_run(run_id)
        return ModelVersion(
            name=name,
            version=int(mv.version),
            aliases=tuple(sorted(mv.aliases)),
            run_id=run_id,
            path=self._local(str(mv.source), run_id),
            metrics=dict(run.data.metrics),
            params=dict(run.data.params),
            tags=dict(mv.tags),
            created_ms=int(mv.creation_timestamp),
        )

    def promote(
        self,
        name: str,
        version: int,
        alias: str = "champion",
        *,
        trigger: str = "manual",
        why: str = "",
        at_ms: int | None = None,
    ) -> ModelVersion:
        """Point ``alias`` at ``version``; the version it pointed at is remembered for
        :meth:`rollback`. The step is recorded (see :meth:`history`)."""
        target = self.get(name, version)
        previous = self._alias_version(name, alias)
        if previous == target.version:
            return target
        if previous is not None:
            history = self._history(name, alias)
            self._set_history(name, alias, [*history, previous])
        self.client.set_registered_model_alias(name, alias, str(target.version))
        self.record(
            name, target.version, f"promote to {alias}", trigger=trigger, why=why, at_ms=at_ms
        )
        return self.get(name, target.version)

    def rollback(
        self, name: str, alias: str = "champion", *, trigger: str = "manual", why: str = ""
    ) -> ModelVersion:
        """Point ``alias`` back at the version it pointed at before the last promotion."""
        history = self._history(name, alias)
        if not history:
            raise RegistryError(
                f"Alias {alias!r} of model {name!r} has no earlier version to roll back to."
            )
        *rest, back = history
        self.client.set_registered_model_alias(name, alias, str(back))
        self._set_history(name, alias, rest)
        self.record(name, back, f"roll {alias} back", trigger=trigger, why=why)
        return self.get(name, back)

    def record(
        self,
        name: str,
        version: int,
        action: str,
        *,
        trigger: str,
        passed: bool = True,
        why: str = "",
        at_ms: int | None = None,
    ) -> Step:
        """Record a step of ``name``'s life (a promotion, a gate, a rollback): what it
        did, what triggered it, whether it passed and why. ``at_ms``: when it happened,
        if not now (a simulation's clock)."""
        stamp = time.time_ns()
        when = stamp // 1_000_000 if at_ms is None else at_ms
        step = Step(when, version, action, trigger, passed, why)
        key = f"{STEP_TAG}{stamp:020d}"  # sorts in time order
        self.client.set_registered_model_tag(name, key, json.dumps(asdict(step)))
        return step

    def history(self, name: str) -> list[Step]:
        """Every recorded step of ``name``, oldest first."""
        self._model(name)
        tags = self.client.get_registered_model(name).tags
        return [Step(**json.loads(v)) for k, v in sorted(tags.items()) if k.startswith(STEP_TAG)]

    def resolve(self, name: str, ref: str | int = "champion") -> Pinned:
        """Pin ``ref`` (an alias: its current version; or a version number), checking its
        files against their registered checksums (serving loads this once, off the
        request path; each file is checked again when it is read)."""
        mv = self.get(name, ref)
        pinned = Pinned(name, mv.version, mv.path, mv.checksums)
        pinned.verify()
        return pinned

    def _model(self, name: str) -> None:
        try:
            self.client.get_registered_model(name)
        except MlflowException:
            raise RegistryError(
                f"No registered model {name!r}; registered: {self.names() or 'none'}. "
                f"Train and register one (e.g. `loopline train {name}`)."
            ) from None

    def _alias_version(self, name: str, alias: str) -> int | None:
        aliases = self.client.get_registered_model(name).aliases
        found = aliases.get(alias)
        return int(found) if found is not None else None

    def _history(self, name: str, alias: str) -> list[int]:
        tags = self.client.get_registered_model(name).tags
        return [int(v) for v in json.loads(tags.get(HISTORY_TAG + alias, "[]"))]

    def _set_history(self, name: str, alias: str, history: list[int]) -> None:
        self.client.set_registered_model_tag(name, HISTORY_TAG + alias, json.dumps(history))

    def _local(self, uri: str, run_id: str) -> Path:
        """The artifacts' folder on this machine: where they are, or, from a tracking
        server, a copy under ``root/downloads`` (fetched once: a version's files never
        change, and :meth:`resolve` checks them)."""
        parsed = urlparse(uri)
        if parsed.scheme in ("", "file"):
            return Path(unquote(parsed.path) if parsed.scheme else os.fspath(uri))
        folder = self.root.resolve() / "downloads" / run_id
        if not (folder / ".complete").exists():
            import mlflow.artifacts

            partial = folder.with_suffix(f".{os.getpid()}.partial")
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
            got = mlflow.artifacts.download_artifacts(
                artifact_uri=uri, dst_path=str(partial), tracking_uri=self.uri
            )  # partial/<the artifact folder's name>
            (Path(got) / ".complete").touch()
            shutil.rmtree(folder, ignore_errors=True)
            Path(got).rename(folder)
            shutil.rmtree(partial)
        return folder

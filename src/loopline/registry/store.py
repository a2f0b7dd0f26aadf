"""The model registry on MLflow: versions with their lineage, aliases, promotion, rollback.

Embedded default: MLflow's SQLite backend and a local artifact folder under
``.loopline/registry``; at scale, the same code against an MLflow tracking server with
PostgreSQL and an object store (docs/registry.md). The registry is the control plane
only: serving resolves an alias once to a pinned version, path and checksums
(:meth:`Registry.resolve`) and never calls MLflow on the request path. ``import
loopline`` does not import MLflow; this module does, when it is used.

Nothing MLflow says is trusted on its own: a version is signed when it is registered
and :meth:`Registry.resolve` checks the signature with this process's public keys
(:mod:`loopline.registry.signing`).
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
from mlflow.entities.model_registry import ModelVersion as ModelVersionEntity
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from loopline.registry import location
from loopline.registry.bundle import DOWNLOADED, Bundle, Pinned, RegistryError, sha256, untrusted
from loopline.registry.signing import Keys, Manifest, SigningKey, signed_tags, verify
from loopline.registry.tracking import TrackedRun

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
    source: str  # where MLflow says they are
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
            ``http://mlflow:5000``); default: SQLite under ``root``. A tracking
            server's URI may carry ``user:password@``: they go to MLflow through
            ``MLFLOW_TRACKING_USERNAME`` and ``MLFLOW_TRACKING_PASSWORD`` and are
            dropped from :attr:`uri`, so they never reach a log line or a message.
        root: The embedded default's folder (database and artifacts), and where a
            tracking server's artifacts are downloaded to.
        keys: The signing key and trusted public keys (default:
            :meth:`Keys.from_env` on a ``keys`` folder beside the registry's folder,
            the signing key created on first use with SQLite only).
    """

    def __init__(
        self, uri: str | None = None, *, root: Path = DEFAULT_ROOT, keys: Keys | None = None
    ) -> None:
        if uri is None:
            root.mkdir(parents=True, exist_ok=True)
            uri = f"sqlite:///{root.resolve() / 'mlflow.db'}"
        self.uri = location.credentials_to_env(uri)
        self.root = root
        # SQLite: the artifacts sit beside the database, wherever this process's root is
        home = location.sqlite_folder(self.uri)
        remote = location.is_remote(self.uri)
        self.store = None if remote else (home or root.resolve()) / "artifacts"
        folder = (home.parent if home else root.resolve().parent) / "keys"
        self.keys = keys if keys is not None else Keys.from_env(folder, create=home is not None)
        location.check_outside(self.keys.trusted, home)
        self.client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)

    def _experiment(self, name: str) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return str(found.experiment_id)
        location = None if self.store is None else self.store.as_uri()
        return str(self.client.create_experiment(name, artifact_location=location))

    def register(
        self,
        name: str,
        *,
        bundle: Bundle,
        metrics: Mapping[str, float],
        params: Mapping[str, object],
        tags: Mapping[str, str],
        run: TrackedRun | None = None,
    ) -> ModelVersion:
        """Log a training run (metrics, parameters, lineage tags, the bundle's files) and
        register it as the next version of ``name``, signed: every file's checksum goes
        with it in a manifest signed with this process's key.

        ``run``: the training's own run (:meth:`track`), which then holds the files and
        stays open for its owner to finish; by default a run is made and closed here.
        """
        key = self.keys.signing_key()  # before anything is written: no unsigned leftovers
        files = bundle.contents()
        if run is None:
            info = self.client.create_run(self._experiment(name), tags={"loopline.model": name})
        else:
            info = self.client.get_run(run.run_id)
        run_id = info.info.run_id
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
        if run is None:
            self.client.set_terminated(run_id)
        try:
            self.client.get_registered_model(name)
        except MlflowException:
            self.client.create_registered_model(name)
        mv = self.client.create_model_version(
            name, source=info.info.artifact_uri, run_id=run_id, tags={**tags, **checksums}
        )
        version = int(mv.version)
        self._sign(Manifest.of(name, version, bundle.signature, files), key)
        return self.get(name, version)

    def track(
        self,
        name: str,
        *,
        params: Mapping[str, object] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> TrackedRun:
        """Open a run in ``name``'s experiment for a training to log its steps to (and
        to register its version from, see :meth:`register`)."""
        info = self.client.create_run(
            self._experiment(name), tags={"loopline.model": name, **(tags or {})}
        )
        run = TrackedRun(self.client, info.info.run_id)
        run.log_params(params or {})
        return run

    def sign(
        self, name: str, version: int, *, key: Path | None = None, from_files: bool = False
    ) -> str:
        """Add a signature by this process's signing key (or ``key``) to a version, and
        return the key's id.

        For key rotation: the manifest must already carry a signature by a key this
        process trusts, and is signed as it is. ``from_files``: for a version no trusted
        key signed (registered before signing, or its key lost), the manifest is made
        from its files as they are now, checked against the checksums MLflow recorded;
        whoever runs this vouches for those files.
        """
        signer = SigningKey.load(key) if key is not None else self.keys.signing_key()
        if from_files:
            mv = self.get(name, version)
            self._check_location(name, mv.version, mv.source)
            recorded = Pinned(name, mv.version, mv.path, mv.checksums)
            recorded.verify()
            files = {f: recorded.read(f) for f in mv.checksums}
            manifest = Manifest.of(name, mv.version, recorded.signature, files)
        else:
            manifest, _ = self._verified(self._version(name, version))
        self._sign(manifest, signer)
        return signer.key_id

    def _sign(self, manifest: Manifest, key: SigningKey) -> None:
        name, version = manifest.name, str(manifest.version)
        tags = self.client.get_model_version(name, version).tags
        for tag, value in signed_tags(manifest, key, tags).items():
            self.client.set_model_version_tag(name, version, tag, value)

    def names(self) -> list[str]:
        return sorted(m.name for m in self.client.search_registered_models())

    def versions(self, name: str) -> list[ModelVersion]:
        """Every version of ``name``, oldest first."""
        self._model(name)
        found = self.client.search_model_versions(f"name = '{name}'")
        return sorted((self.get(name, int(v.version)) for v in found), key=lambda v: v.version)

    def get(self, name: str, ref: int | str) -> ModelVersion:
        """A version by number, or by alias (``champion``, ``challenger``)."""
        mv = self._version(name, ref)
        run_id = str(mv.run_id)
        run = self.client.get_run(run_id)
        return ModelVersion(
            name=name,
            version=int(mv.version),
            aliases=tuple(sorted(mv.aliases)),
            run_id=run_id,
            path=self._local(str(mv.source), run_id),
            source=str(mv.source),
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

    def clear(self, name: str, alias: str, *, trigger: str = "manual", why: str = "") -> None:
        """Remove ``alias`` (a challenger that failed its rollout, say); the version it
        named stays registered. The step is recorded; no alias, nothing done."""
        version = self._alias_version(name, alias)
        if version is None:
            return
        self.client.delete_registered_model_alias(name, alias)
        self.record(name, version, f"clear {alias}", trigger=trigger, why=why)

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
        """Pin ``ref`` (an alias: its current version; or a version number) for serving,
        which loads this once, off the request path.

        Refused with :class:`UntrustedModelError` (and an alert logged) unless its files
        are in this registry's artifact store, a trusted key signed its manifest, and
        every file matches the manifest with no file beside them; each file is checked
        again when it is read.
        """
        mv = self._version(name, ref)
        manifest, key_id = self._verified(mv)
        path = self._local(str(mv.source), str(mv.run_id))
        pinned = Pinned(name, manifest.version, path, manifest.checksums, key_id)
        pinned.verify()
        return pinned

    def _verified(self, mv: ModelVersionEntity) -> tuple[Manifest, str]:
        """The version's signed manifest and its signer's key id."""
        name, version = str(mv.name), int(mv.version)
        self._check_location(name, version, str(mv.source))
        return verify(dict(mv.tags), self.keys, name=name, version=version)

    def _check_location(self, name: str, version: int, source: str) -> None:
        """Refuse files outside the artifact store: MLflow lets a version's source be
        any path, such as one on the serving machine that its owner never vetted."""
        if not location.in_store(source, self.store):
            where = "the tracking server's" if self.store is None else str(self.store)
            raise untrusted(
                "location", f"{name}:{version}'s files are at {source}, outside the "
                f"registry's artifact store ({where}): refusing to load them. Register "
                "the model again through the registry.", name, version,
            )  # fmt: skip

    def _version(self, name: str, ref: int | str) -> ModelVersionEntity:
        self._model(name)
        try:
            if isinstance(ref, int) or str(ref).isdigit():
                return self.client.get_model_version(name, str(ref))
            return self.client.get_model_version_by_alias(name, str(ref))
        except MlflowException:
            raise RegistryError(
                f"Model {name!r} has no version or alias {ref!r}; "
                f"see `loopline models list {name}`."
            ) from None

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
        if not (folder / DOWNLOADED).exists():
            # no progress bar: MLflow draws one with tqdm (when installed) into the
            # output of whatever command resolves a model, a service's logs included
            os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
            import mlflow.artifacts

            partial = folder.with_suffix(f".{os.getpid()}.partial")
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
            got = mlflow.artifacts.download_artifacts(
                artifact_uri=uri, dst_path=str(partial), tracking_uri=self.uri
            )  # partial/<the artifact folder's name>
            (Path(got) / DOWNLOADED).touch()
            shutil.rmtree(folder, ignore_errors=True)
            Path(got).rename(folder)
            shutil.rmtree(partial)
        return folder

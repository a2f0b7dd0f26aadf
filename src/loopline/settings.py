"""Where loopline's parts live: one settings file, or environment variables.

Every part has an embedded default (``None`` here); a URL moves it to a server::

    # loopline.toml (or the file that $LOOPLINE_SETTINGS names)
    events = "kafka://broker-0:9092,broker-1:9092"
    features = "redis://redis:6379/0"
    decisions = "postgresql://loopline@postgres/loopline"
    registry = "http://mlflow:5000"
    partitions = 16
    scorers = 4
    workers = 4

An environment variable overrides the file: ``LOOPLINE_EVENTS``, ``LOOPLINE_FEATURES``,
``LOOPLINE_DECISIONS``, ``LOOPLINE_REGISTRY``, ``LOOPLINE_PARTITIONS``, ... (the field's
name in capitals after ``LOOPLINE_``). ``loopline up --profile scale`` writes the file
for the local servers it starts.

A URL may carry a password (``redis://:PASSWORD@redis:6379/0``); the settings' ``repr``
and error messages show it masked (``redis://:***@redis:6379/0``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from loopline.exceptions import ConfigError
from loopline.servers.credentials import masked

DEFAULT_FILE = Path("loopline.toml")


class Settings(BaseSettings):
    """The parts' URLs (``None``: embedded) and how many processes run each stage."""

    model_config = SettingsConfigDict(env_prefix="LOOPLINE_", extra="forbid", frozen=True)

    events: str | None = Field(None, description="event log: kafka://host:port[,host:port]")
    features: str | None = Field(None, description="online store: redis://host:port/db")
    decisions: str | None = Field(None, description="prediction log: postgresql://...")
    registry: str | None = Field(None, description="model registry: http://mlflow:5000")
    subject_keys: str | None = Field(
        None, description="per-subject keys of crypto-shredding (default: the decisions db)"
    )
    state: Path = Field(Path(".loopline/serving"), description="local files of a service")
    partitions: int = Field(1, ge=1, description="partitions of the transactions topic")
    scorers: int = Field(1, ge=1, description="scoring processes")
    workers: int = Field(1, ge=1, description="feature worker processes (<= partitions)")
    # retention, in days per store (None: kept for ever); loopline.privacy.Retention
    retention_events_days: float | None = Field(None, gt=0, description="event-log topics")
    retention_predictions_days: float | None = Field(None, gt=0, description="prediction log")
    retention_labels_days: float | None = Field(None, gt=0, description="labels")
    retention_dead_letters_days: float | None = Field(None, gt=0, description="dead letters")
    retention_period_s: float = Field(3600.0, gt=0, description="how often retention runs")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # explicit arguments, then the environment, then the file (model_config's toml_file)
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    def __repr_args__(self) -> Iterable[tuple[str | None, Any]]:
        """Its fields for ``repr`` and ``str``, URLs with their passwords masked."""
        for name, value in super().__repr_args__():
            yield name, masked(value) if isinstance(value, str) else value

    @property
    def scale_out(self) -> bool:
        """Whether every part is on a server (the scale-out profile)."""
        return None not in (self.events, self.features, self.decisions, self.registry)


def _file() -> Path | None:
    named = os.environ.get("LOOPLINE_SETTINGS")
    if named:
        return Path(named)
    return DEFAULT_FILE if DEFAULT_FILE.exists() else None


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """The settings from ``path`` (else ``$LOOPLINE_SETTINGS``, else ``./loopline.toml``
    if present) and the environment; a bad value is an error naming the field and fix."""
    file = path or _file()
    if file is not None and not file.exists():
        raise ConfigError(f"Settings file {file} does not exist.")

    class FromFile(Settings):
        model_config = SettingsConfigDict(toml_file=file)

    try:
        settings: Settings = FromFile(**overrides)
        if settings.workers > settings.partitions:
            raise ConfigError(
                f"workers = {settings.workers} but partitions = {settings.partitions}: a "
                "partition has one owner, so at most one worker per partition; raise "
                "partitions or lower workers."
            )
        return settings
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        got = first.get("input")
        shown = masked(got) if isinstance(got, str) else got
        raise ConfigError(
            f"Setting {where!r} = {shown!r}: {first['msg']} "
            f"(in {file or 'the environment'}; see loopline.settings)."
        ) from None

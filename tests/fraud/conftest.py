"""A registry with two trained fraud models and a service built on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from loopline.apps.fraud.service import FraudService, ServeOptions, build
from loopline.apps.fraud.train import TrainOptions, run
from loopline.registry import Registry
from loopline.serving import KeyRing, Limits, new_key

SCORE_KEY, SCORE = new_key("scorer", ["score", "detail"])
ADMIN_KEY, ADMIN = new_key("ops", ["score", "admin"])


@pytest.fixture(scope="session")
def fraud_registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    root = tmp_path_factory.mktemp("serving-registry")
    registry = Registry(root=root / "registry")
    for seed in (5, 6):  # v1 champion, v2 challenger
        run(
            TrainOptions(
                source="simulator",
                seed=seed,
                customers=300,
                days=90,
                out=root / "models",
                registry=registry,
                progress=False,
            )
        )
    return registry


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "lists:\n  blocked_cards: [tok_blocked]\n"
        "rules:\n"
        "  - id: blocked-card\n    action: block\n"
        "    when: {field: card_token, in: blocked_cards}\n"
    )
    return path


def make_service(
    tmp_path: Path, registry: Registry, rules: Path, limits: Limits | None = None
) -> FraudService:
    keys = tmp_path / "keys.json"
    KeyRing([SCORE, ADMIN]).save(keys)
    options = ServeOptions(
        state=tmp_path / "state",
        registry=registry.uri,
        rules=rules,
        keys=keys,
        limits=limits or Limits(),
    )
    return build(options)


@pytest.fixture
def service(tmp_path: Path, fraud_registry: Registry, rules_file: Path) -> Iterator[FraudService]:
    svc = make_service(tmp_path, fraud_registry, rules_file)
    yield svc
    svc.close()

"""Package-wide rules from the house style, checked."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "loopline"
HEAVY = (
    "mlflow",
    "torch",
    "lightgbm",
    "onnxruntime",
    "sklearn",
    "pandas",
    "numpy",
    "confluent_kafka",
    "redis",
    "duckdb",
    "numba",
    "matplotlib",
)


def test_import_loopline_is_light() -> None:
    code = f"import sys, loopline; print([m for m in {HEAVY!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_command_line_starts_without_the_ml_stack() -> None:
    code = (
        "import sys, loopline.cli; "
        "print([m for m in ('mlflow', 'lightgbm', 'sklearn', 'onnxruntime') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "module",
    [
        "loopline",
        "loopline.events",
        "loopline.features",
        "loopline.servers",
        "loopline.training",
        "loopline.registry",
        "loopline.serving",
        "loopline.monitoring",
        "loopline.feedback",
    ],
)
def test_public_names_are_sorted_and_importable(module: str) -> None:
    mod = importlib.import_module(module)
    assert list(mod.__all__) == sorted(mod.__all__)
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.__all__ names {name}, which is missing"


def test_events_public_surface_is_pinned() -> None:
    import loopline.events

    assert loopline.events.__all__ == [
        "Codec", "Consumer", "DeadLetter", "DeadLetterQueue", "EmbeddedLog", "Event",
        "EventLog", "Message", "OffsetReset", "Record", "TopicPartition",
        "assign_round_robin", "dead_letter_topic", "decode_or_dead_letter", "open_log",
        "partition_for",
    ]  # fmt: skip


def test_no_module_is_oversized() -> None:
    sizes = {p.relative_to(SRC): len(p.read_text().splitlines()) for p in SRC.rglob("*.py")}
    assert {p: n for p, n in sizes.items() if n > 800} == {}


def test_apps_import_only_public_names() -> None:
    offenders = []
    for path in (SRC / "apps").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("loopline"):
                assert node.module is not None
                private_module = any(part.startswith("_") for part in node.module.split("."))
                private_names = [a.name for a in node.names if a.name.startswith("_")]
                if private_module or private_names:
                    offenders.append(f"{path.name}: from {node.module} import {private_names}")
    assert offenders == []

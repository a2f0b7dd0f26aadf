"""Package-wide rules from the house style, checked."""

from __future__ import annotations

import ast
import importlib
import re
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


# Each stage's public surface, pinned: a change here is a change of loopline's API.
PUBLIC = {
    "events": [
        "Codec", "Consumer", "DeadLetter", "DeadLetterQueue", "EmbeddedLog", "Event",
        "EventLog", "Message", "OffsetReset", "Record", "TopicPartition", "assign_round_robin",
        "dead_letter_topic", "decode_or_dead_letter", "open_log", "partition_for"
    ],
    "features": [
        "Aggregation", "BatchReads", "Checkpoint", "Distance", "EmbeddedStore", "Entity",
        "Feature", "FeatureSet", "FeatureValues", "FeatureView", "FeatureWorker", "Filter",
        "OnlineEngine", "OnlineStore", "Ratio", "RedisStore", "RequestFeature", "Source",
        "Speed", "Table", "WorkerStats", "ZScore", "days", "hours", "minutes", "mismatch_rates",
        "seconds", "training_set", "validate"
    ],
    "training": [
        "BoostingConfig", "Calibration", "Objective", "Operating", "SegmentThresholds",
        "TimeSplit", "TwoStage", "at_threshold", "bundle", "calibration", "checked_onnx",
        "distill", "entity_precision_at_k", "logit", "max_abs_difference", "model_bytes",
        "ranking", "svg",
        "task_of", "threshold_for_precision", "threshold_for_recall", "to_onnx", "train",
        "write_report"
    ],
    "privacy": [
        "PAN_IN_TEXT", "ErasureLog", "ErasureReport", "Expiry", "Identifiers", "KeyStore",
        "Retention", "RetentionJob", "ShreddedLog", "Subject", "Target", "dead_letters_target",
        "erase", "event_log_target", "expiries", "find_identifiers", "find_pans",
        "looks_like_pan", "luhn_ok", "offline_store_target", "online_store_target",
        "prediction_log_target", "redact_pans", "redact_reports", "reports_target",
        "shredded_log_target"
    ],
    "registry": [
        "Bundle", "Keys", "ModelVersion", "Pinned", "Registry", "RegistryError", "Signature",
        "Step", "UntrustedModelError"
    ],
    "serving": [
        "CURRENT_CALLER", "NO_MODEL", "ApiKey", "CanaryGuard", "CircuitBreaker",
        "ColumnPipeline", "Deployment", "Endpoint", "Jobs", "KeyRing", "Limits", "Metrics",
        "Outbox", "OutboxCollector", "Outcome", "Pipeline", "Prediction", "Problem", "Quota",
        "RequestError", "Routing", "RuleBook", "RuleSet", "Scored", "Service", "StreamScorer",
        "StreamingPipeline", "TabularCollector", "TabularScorer", "as_rows", "every", "lap",
        "new_key", "openapi_document", "parse", "payload_hash", "predict_ordered", "refuse",
        "running"
    ],
    "monitoring": [
        "REFERENCE_FILE", "BatchQuality", "Change", "DataQualityError", "Drift",
        "DriftCollector", "DriftEvent", "DriftMonitor", "DriftReport", "DriftWatch",
        "Expectations", "FixedBins", "Health", "Level", "MonitorPage", "Sampler", "Status",
        "Tracing", "Watchdog", "WorkerCollector", "categorical", "compare", "json_logging",
        "monotonic_ms", "numeric", "psi", "reference_of"
    ],
    "feedback": [
        "ABResult", "DayPerformance", "Evidence", "GateResult", "Interleaved",
        "InterleavingResult", "LabelFeed", "Policy", "RetrainingLoop", "Rollout", "Stage",
        "Trigger", "ab_test", "assign", "credit", "gate", "interleaving_test",
        "matured_performance", "paired_p99_ms", "shadow_evidence", "team_draft"
    ],
    "predictions": [
        "Column", "Joined", "Keep", "Label", "Log", "Notify", "Outcomes", "PredictionLog",
        "Recent", "Row", "ShadowPairs", "SqliteLog", "Stored", "open_prediction_log"
    ],
    "tasks": [
        "NDCG", "Accuracy", "AveragePrecision", "Binary", "LabelValues", "MacroF1", "Metric",
        "Multiclass", "Outputs", "Ranking", "RecallAtK", "Task", "average_precision", "dcg",
        "ndcg_at_k"
    ],
    "models": [
        "FLAVOURS", "Explains", "Loader", "SentenceEncoder", "ServingModel", "load",
        "sentence_encoder"
    ],
    "testing": [
        "HttpReplay", "SoakResult", "check", "rss_mb", "soak"
    ],
    "servers": [
        "LocalServer", "free_port", "masked", "milvus_server", "noida_broker",
        "postgres_server", "redis_server", "tansu_broker"
    ],
    "capacity": [
        "Distribution", "Outage", "Pool", "Region", "Result", "Shards", "Sink", "Stream",
        "Traffic", "erlang_c", "fifo_waits", "mmc_mean_wait", "simulate"
    ],
    "edge": [
        "PACKAGE_DOMAIN", "Device", "EdgeError", "Fleet", "HealthCheck", "PackageManifest",
        "Report", "Rollout", "RolloutPlan", "SlotEvent", "SlotStatus", "Slots", "Stage",
        "StagePipeline", "StageResult", "UntrustedPackageError", "Upload", "UploadCounters",
        "UploadQueue", "VerifiedPackage", "build_package", "cohort", "open_package", "pinned"
    ],
    "ops": [
        "ROW_KEY", "BatchResult", "Candidate", "Chunk", "CiApplication", "CiOptions",
        "Evaluation", "Figure", "Figures", "Lever", "Load", "Plan", "PlanInputs", "Point",
        "Prices", "Replay", "Role", "RolePlan", "Saved", "ScoreSink", "Scores", "SqlType",
        "Storage", "Timing", "Tolerances", "Workload", "candidate_model", "check_name",
        "check_output", "check_regression",
        "chunk_ranges", "cost_per_million", "digest_files", "digest_text", "fingerprint",
        "invoked_as", "load_prices", "load_result", "machine", "paired_bootstrap",
        "pareto_front", "plan", "plan_command", "points_table", "run_ci", "run_ci_and_report",
        "run_key", "save_result", "score_batches", "show_ci", "time_calls", "write_front_report"
    ],
    "vectors": [
        "Answer", "Backfill", "CollectionNotFoundError", "EmbeddedVectors", "Matches",
        "MilvusVectors", "ShadowReport", "Snapshot", "VectorIndex", "VectorStore",
        "VersionedIndex", "open_vectors"
    ],
}  # fmt: skip


def _isort_key(name: str) -> tuple[int, str]:
    """ruff's order of ``__all__`` (RUF022): CONSTANTS, then Classes, then functions."""
    return (0 if name.isupper() else 1 if name[:1].isupper() else 2, name)


@pytest.mark.parametrize("stage", sorted(PUBLIC))
def test_each_stage_has_a_sorted_importable_pinned_surface(stage: str) -> None:
    mod = importlib.import_module(f"loopline.{stage}")
    assert list(mod.__all__) == sorted(mod.__all__, key=_isort_key)
    for name in mod.__all__:
        assert getattr(mod, name, None) is not None, f"loopline.{stage}.__all__ names {name}"
    assert list(mod.__all__) == PUBLIC[stage]


def test_no_module_is_oversized() -> None:
    sizes = {p.relative_to(SRC): len(p.read_text().splitlines()) for p in SRC.rglob("*.py")}
    assert {p: n for p, n in sizes.items() if n > 800} == {}


def _imports(root: Path) -> list[tuple[Path, str, list[str]]]:
    return [
        (path, node.module, [a.name for a in node.names])
        for path in root.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("loopline")
    ]


@pytest.mark.parametrize("root", ["apps", "demos"])
def test_applications_and_demos_import_only_public_names(root: str) -> None:
    """From a stage (or a top-level module), only what its ``__all__`` lists; never a
    stage's inner module. An application's own modules are its own."""
    offenders = []
    for path, module, names in _imports(SRC / root):
        if module.startswith(("loopline.apps", "loopline.demos")):
            continue
        if module.count(".") > 1:
            offenders.append(f"{path.name}: from {module} (an inner module)")
            continue
        public = getattr(importlib.import_module(module), "__all__", None)
        hidden = [n for n in names if n.startswith("_") or (public is not None and n not in public)]
        if hidden:
            offenders.append(f"{path.name}: from {module} import {hidden}")
    assert offenders == []


# the fraud application's words, which no platform stage may use in its code (an
# identifier, a SQL statement, a string); docstrings and comments may say them
APPLICATION_WORDS = re.compile(r"(?<![a-z])(fraud|card(?!inal)|approve|review|decline)", re.I)
PLATFORM = ["events", "features", "training", "registry", "serving", "monitoring", "feedback",
            "predictions", "tasks", "models", "testing", "privacy", "vectors",
            "capacity", "edge", "ops"]  # fmt: skip


def _names(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        return [node.attr]
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [node.name]
    if isinstance(node, ast.arg):
        return [node.arg]
    if isinstance(node, ast.keyword) and node.arg:
        return [node.arg]
    if isinstance(node, ast.alias):
        return [node.name, node.asname or ""]
    return []


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = body[0] if body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _application_words(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    docs = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        for name in _names(node):
            if any(APPLICATION_WORDS.match(w) for w in re.findall(r"[a-z]+|[A-Z][a-z]*", name)):
                found.append(f"{path.name}:{node.lineno}: {name}")  # type: ignore[attr-defined]
        text = node.value if isinstance(node, ast.Constant) else None
        if isinstance(text, str) and id(node) not in docs and APPLICATION_WORDS.search(text):
            found.append(f"{path.name}:{node.lineno}: {text[:60]!r}")
    return found


@pytest.mark.parametrize("stage", PLATFORM)
def test_no_application_vocabulary_in_the_platform(stage: str) -> None:
    assert [w for p in sorted((SRC / stage).rglob("*.py")) for w in _application_words(p)] == []


PROBE = '''"""A docstring may say fraud."""
def score_card(review_threshold: float) -> str:
    return "SELECT decision FROM t WHERE decision = 'decline'"
cardinality = 1
'''


def test_the_vocabulary_check_catches_what_it_should(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    found = [f.split(": ", 1)[1] for f in _application_words(probe)]
    assert found == [
        "score_card",
        "review_threshold",
        "\"SELECT decision FROM t WHERE decision = 'decline'\"",
    ]

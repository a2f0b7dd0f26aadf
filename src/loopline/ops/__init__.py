"""Operations: capacity and cost plans from the benchmarks' saved results
(:mod:`loopline.ops.plan`), latency/quality/cost trade-offs as measured Pareto fronts
(:mod:`loopline.ops.pareto`), batch scoring into a database, resumable
(:mod:`loopline.ops.batch`), and model CI: train, check against the champion on a fixed
set and its slices, register, shadow and canary (:mod:`loopline.ops.ci`).

Each name is imported from its module when first used, so registering a command that
names one (``loopline plan APP``) imports no NumPy, no registry and no serving kernel.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopline.ops.batch import (
        ROW_KEY,
        BatchResult,
        Chunk,
        Scores,
        ScoreSink,
        SqlType,
        check_name,
        check_output,
        chunk_ranges,
        fingerprint,
        run_key,
        score_batches,
    )
    from loopline.ops.ci import (
        Candidate,
        CiApplication,
        CiOptions,
        candidate_model,
        run_ci,
        run_ci_and_report,
        show_ci,
    )
    from loopline.ops.digest import digest_files, digest_text
    from loopline.ops.pareto import (
        Point,
        Timing,
        cost_per_million,
        pareto_front,
        points_table,
        time_calls,
        write_front_report,
    )
    from loopline.ops.plan import Lever, Load, Plan, Role, Storage, Workload, plan
    from loopline.ops.plan_cli import PlanInputs, plan_command
    from loopline.ops.plan_sizing import RolePlan
    from loopline.ops.prices import Prices, load_prices
    from loopline.ops.regression import Evaluation, Figure, Figures, Tolerances, paired_bootstrap
    from loopline.ops.regression import check as check_regression
    from loopline.ops.replay import Replay
    from loopline.ops.results import Saved, invoked_as, machine
    from loopline.ops.results import load as load_result
    from loopline.ops.results import save as save_result

# public name -> (module, its name there)
_WHERE = {
    **{n: ("batch", n) for n in (
        "ROW_KEY", "BatchResult", "Chunk", "Scores", "ScoreSink", "SqlType", "check_name",
        "check_output", "chunk_ranges", "fingerprint", "run_key", "score_batches",
    )},
    **{n: ("ci", n) for n in (
        "Candidate", "CiApplication", "CiOptions", "candidate_model", "run_ci",
        "run_ci_and_report", "show_ci",
    )},
    "digest_files": ("digest", "digest_files"),
    "digest_text": ("digest", "digest_text"),
    **{n: ("pareto", n) for n in (
        "Point", "Timing", "cost_per_million", "pareto_front", "points_table", "time_calls",
        "write_front_report",
    )},
    **{n: ("plan", n) for n in ("Lever", "Load", "Plan", "Role", "Storage", "Workload", "plan")},
    "PlanInputs": ("plan_cli", "PlanInputs"),
    "plan_command": ("plan_cli", "plan_command"),
    "RolePlan": ("plan_sizing", "RolePlan"),
    "Prices": ("prices", "Prices"),
    "load_prices": ("prices", "load_prices"),
    **{n: ("regression", n) for n in (
        "Evaluation", "Figure", "Figures", "Tolerances", "paired_bootstrap",
    )},
    "check_regression": ("regression", "check"),
    "Replay": ("replay", "Replay"),
    "Saved": ("results", "Saved"),
    "invoked_as": ("results", "invoked_as"),
    "machine": ("results", "machine"),
    "load_result": ("results", "load"),
    "save_result": ("results", "save"),
}  # fmt: skip

__all__ = [
    "ROW_KEY",
    "BatchResult",
    "Candidate",
    "Chunk",
    "CiApplication",
    "CiOptions",
    "Evaluation",
    "Figure",
    "Figures",
    "Lever",
    "Load",
    "Plan",
    "PlanInputs",
    "Point",
    "Prices",
    "Replay",
    "Role",
    "RolePlan",
    "Saved",
    "ScoreSink",
    "Scores",
    "SqlType",
    "Storage",
    "Timing",
    "Tolerances",
    "Workload",
    "candidate_model",
    "check_name",
    "check_output",
    "check_regression",
    "chunk_ranges",
    "cost_per_million",
    "digest_files",
    "digest_text",
    "fingerprint",
    "invoked_as",
    "load_prices",
    "load_result",
    "machine",
    "paired_bootstrap",
    "pareto_front",
    "plan",
    "plan_command",
    "points_table",
    "run_ci",
    "run_ci_and_report",
    "run_key",
    "save_result",
    "score_batches",
    "show_ci",
    "time_calls",
    "write_front_report"
]  # fmt: skip


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'loopline.ops' has no attribute {name!r}")
    module, attr = _WHERE[name]
    return getattr(importlib.import_module(f"loopline.ops.{module}"), attr)

"""What a model CI run leaves behind for its workflow to upload: ``summary.json`` (the
run's summary as :func:`loopline.ops.ci.run_ci` returns it) and ``report.md`` (the steps,
and the figures overall and per slice, in a table a pull request can show)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

SUMMARY_FILE = "summary.json"
REPORT_FILE = "report.md"


def write(summary: dict[str, Any], out: Path) -> tuple[Path, Path]:
    """Write ``summary.json`` and ``report.md`` under ``out``; return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = out / SUMMARY_FILE, out / REPORT_FILE
    paths[0].write_text(json.dumps(summary, indent=2, default=str) + "\n")
    paths[1].write_text(markdown(summary))
    return paths


def markdown(summary: dict[str, Any]) -> str:
    """The run as Markdown: verdict, steps, evaluation per slice, shadow and canary."""
    verdict = "passed" if summary["passed"] else "FAILED"
    lines = [
        f"# Model CI: {summary['model']}",
        "",
        f"**{verdict}**: {summary['status']} in {summary['seconds']:.1f} s "
        f"(champion before the run: {_version(summary.get('champion'))}; "
        f"registered: {_version(summary.get('version'))}).",
        "",
        "| step | version | passed | why |",
        "|---|---|---|---|",
    ]
    for step in summary["steps"]:
        passed = "yes" if step["passed"] else "**no**"
        version = _version(step.get("version"))
        lines.append(f"| {step['action']} | {version} | {passed} | {_cell(step['why'])} |")
    if "evaluation" in summary:
        lines += _evaluation(summary["evaluation"])
    for stage in ("shadow", "canary"):
        if stage in summary:
            lines += ["", f"## {stage.capitalize()}", "", _cell(summary[stage]["why"])]
    lines += ["", "Fingerprint:", ""]
    lines += [f"- {k}: `{v[:16]}`" for k, v in summary.get("fingerprint", {}).items()]
    return "\n".join(lines) + "\n"


def _evaluation(e: dict[str, Any]) -> list[str]:
    lines = [
        "",
        f"## Evaluation: {e['metric']}",
        "",
        f"Fixed set: {e['set']} (SHA-256 `{e['set_sha256'][:16]}`). Tolerance "
        f"{e['tolerance']:g} overall, {e['slice_tolerance']:g} per slice with a support of "
        f"at least {e['min_slice_support']}.",
        "",
        "| scope | support | champion | candidate | difference | judged | passed |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in e["checks"]:
        champion = c.get("champion", math.nan)
        judged = "yes" if c.get("judged") else "no"
        passed = "yes" if c.get("passed", True) else "**no**"
        lines.append(
            f"| {c['scope']} | {c['support']} | {_num(champion)} | {_num(c['candidate'])} | "
            f"{_num(c.get('difference', math.nan), sign=True)} | {judged} | {passed} |"
        )
    if "bootstrap" in e:
        b = e["bootstrap"]
        lines += [
            "",
            f"Paired bootstrap of the overall difference ({b['resamples']} resamples): 90% "
            f"interval [{_num(b['low'], sign=True)}, {_num(b['high'], sign=True)}]; "
            f"{b['below_tolerance']:.1%} of resamples below the tolerance.",
        ]
    for who in ("champion", "candidate"):
        extra = e.get(f"{who}_extra")
        if extra:
            shown = ", ".join(f"{k} {_num(v)}" for k, v in extra.items())
            lines += ["", f"{who.capitalize()}: {shown}."]
    return lines


def _num(x: float, *, sign: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:+.4f}" if sign else f"{x:.4f}"


def _version(v: int | None) -> str:
    return "none" if not v else f"v{v}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")

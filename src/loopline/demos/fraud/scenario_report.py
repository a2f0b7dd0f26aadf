"""What the drift scenario and the demo show: an HTML report (recall by day on the new
pattern and on the others, which model answered, the alerts and every recorded step, in
one self-contained file), and the same as tables in the terminal."""

from __future__ import annotations

import html
from dataclasses import asdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pyarrow as pa

from loopline.apps.fraud.simulator import START_MS
from loopline.registry import Step
from loopline.training import svg
from loopline.units import DAY_MS, HOUR_MS

MARKS = {  # step action -> line colour on the timeline
    "request retraining": "tab:orange",
    "train challenger": "tab:purple",
    "gate": "tab:brown",
    "start canary": "tab:olive",
    "promote to champion": "tab:green",
}


def daily(decided: pa.Table, new_scenario: str, start_ms: int) -> dict[str, np.ndarray]:
    """Per simulated day: flagged share of the new scenario's frauds and of the other
    frauds, and the share of decisions each model version answered."""
    day = (decided["decided_ms"].to_numpy() - 1 - start_ms) // DAY_MS  # an hour's end: its day
    flagged = np.asarray(decided["decision"].to_numpy(zero_copy_only=False)) != "approve"
    scenario = np.asarray(decided["scenario"].to_numpy(zero_copy_only=False))
    version = np.asarray(decided["model_version"].to_numpy(zero_copy_only=False))
    days = np.arange(int(day.min()), int(day.max()) + 1)
    out: dict[str, np.ndarray] = {"day": days}
    for name, mask in (
        ("recall_new", scenario == new_scenario),
        ("recall_other", (scenario != new_scenario) & (scenario != "genuine")),
    ):
        hits = np.bincount(day[mask] - days[0], weights=flagged[mask], minlength=len(days))
        total = np.bincount(day[mask] - days[0], minlength=len(days))
        out[name] = np.where(total > 0, hits / np.maximum(total, 1), np.nan)
    total = np.bincount(day - days[0], minlength=len(days))
    for v in sorted(set(version.tolist())):
        mine = np.bincount(day[version == v] - days[0], minlength=len(days))
        out[f"answered_by {v}"] = mine / np.maximum(total, 1)
    return out


CONTROL = "The control stream has no change: its alerts are false alarms."


def write(
    path: Path,
    result: dict[str, Any],
    series: dict[str, np.ndarray],
    *,
    title: str = "Drift scenario (simulated)",
    more: str = CONTROL,
) -> Path:
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(10, 6), sharex=True, height_ratios=[2, 1], layout="constrained"
    )
    days = series["day"]
    settings = result["settings"]
    top.plot(days, series["recall_new"], marker="o", ms=3, label=settings["new_scenario"])
    top.plot(days, series["recall_other"], marker="o", ms=3, label="other fraud scenarios")
    top.set(ylabel="flagged share of frauds", ylim=(-0.02, 1.02), title="recall by day")
    top.axvline(settings["change_day"], color="crimson", ls="--", label="new pattern starts")
    for step in result["history"]:
        colour = MARKS.get(step["action"])
        if colour is not None and step["day"] >= days[0]:
            top.axvline(step["day"], color=colour, lw=1, label=step["action"])
    handles, labels = top.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    top.legend(unique.values(), unique.keys(), loc="center left", fontsize=8)
    answered = [k for k in series if k.startswith("answered_by ")]
    bottom.stackplot(
        days, *[series[k] for k in answered], labels=[k.split(" ", 1)[1] for k in answered]
    )
    bottom.set(xlabel="simulated day", ylabel="decisions answered", ylim=(0, 1))
    bottom.legend(loc="center left", fontsize=8)
    figures = {k: v for k, v in result.items() if not isinstance(v, list | dict)}
    rows = "".join(
        f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(_fmt(v))}</td></tr>"
        for k, v in figures.items()
    )
    steps = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(str(s[c]))}</td>"
            for c in ("at", "version", "action", "trigger", "passed", "why")
        )
        + "</tr>"
        for s in result["history"]
    )
    alerts = "".join(
        f"<tr><td>{html.escape(run)}</td><td>{html.escape(a['at'])}</td>"
        f"<td>{html.escape(a['kind'])}</td><td>{html.escape(a['why'])}</td></tr>"
        for run, key in (("change", "alerts"), ("control", "control_alerts"))
        for a in result.get(key, [])
    )
    page = f"""<!doctype html><html><head><meta charset="utf-8">
<title>loopline: {html.escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}
td{{padding:2px 8px;vertical-align:top}}tr:nth-child(even){{background:#f4f4f4}}</style>
</head><body><h1>{html.escape(title)}</h1>
<p>A card-enumeration wave starts on day {settings["change_day"]}; the platform detects it,
retrains on mature data, shadows, gates, canaries and promotes without a human.
{html.escape(more)}</p>
{svg(fig)}
<h2>Figures</h2><table>{rows}</table>
<h2>Alerts</h2><table><tr><th>run</th><th>at</th><th>kind</th><th>why</th></tr>{alerts}
</table>
<h2>Steps (registry history)</h2><table><tr><th>at</th><th>version</th><th>action</th>
<th>trigger</th><th>passed</th><th>why</th></tr>{steps}</table>
</body></html>"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)
    return path


def _fmt(v: Any) -> str:
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def steps_of(steps: list[Step]) -> list[dict[str, Any]]:
    """Registry steps as rows for the summary and the report (simulated times)."""
    return [
        {"at": sim_time(s.at_ms), "day": (s.at_ms - START_MS) / DAY_MS, **asdict(s)} for s in steps
    ]


def alert_row(alert: tuple[int, str, str]) -> dict[str, Any]:
    at, kind, why = alert
    return {"at": sim_time(at), "kind": kind, "why": why}


def sim_time(ms: int) -> str:
    """Simulated time as 'day D hh:00' (days of the simulation)."""
    day, rest = divmod(ms - START_MS, DAY_MS)
    return f"day {day} {rest // HOUR_MS:02d}:00"


def show(result: dict[str, Any]) -> None:
    """The figures and the steps, as tables."""
    from rich.console import Console
    from rich.table import Table

    figures = Table(title="drift scenario (simulated)")
    figures.add_column("figure")
    figures.add_column("value")
    for key, value in result.items():
        if not isinstance(value, list | dict):
            figures.add_row(key, f"{value:.3f}" if isinstance(value, float) else str(value))
    steps = Table(title="recorded steps")
    for col in ("at", "version", "action", "trigger", "passed", "why"):
        steps.add_column(col)
    for s in result["history"]:
        steps.add_row(s["at"], str(s["version"]), s["action"], s["trigger"],
                      "yes" if s["passed"] else "no", s["why"])  # fmt: skip
    console = Console(width=160)
    console.print(figures)
    console.print(steps)

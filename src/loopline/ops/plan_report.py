"""The HTML report of a plan: totals, roles, storage, what-ifs (each with a chart), the
measured figures it used and the prices, on one self-contained page."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopline.reports import table, write_page

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from loopline.ops.plan import Plan


def _svg(fig: Figure) -> str:
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]


def _bars(labels: list[str], values: list[float], title: str, *, base: float | None) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 0.45 * len(labels) + 1.2))
    ax.barh(labels, values, color="#4878a8")
    if base is not None:
        ax.axvline(base, color="crimson", lw=1, ls="--", label="the plan")
        ax.legend(loc="lower right")
    ax.invert_yaxis()
    ax.set(xlabel="US dollars a month", title=title)
    for y, v in enumerate(values):
        ax.text(v, y, f" {v:,.0f}", va="center", fontsize=8)
    return _svg(fig)


def write_report(made: Plan, path: Path, *, title: str) -> Path:
    """Write ``made`` as an HTML page at ``path``."""
    r = made.to_dict()
    roles = r["roles"]
    role_rows = [
        [n, x["cores"], x["gpus"], x["instances"], x["memory_gib"], x["utilisation"],
         x["sizing"], x["meets_objective"], x["monthly_cost"], x["source"]]
        for n, x in roles.items()
    ]  # fmt: skip
    parts = [*(f"role {n}" for n in roles), "storage", "network"]
    costs = [*(x["monthly_cost"] for x in roles.values()), r["costs"]["storage"]]
    costs.append(r["costs"]["network"])
    priced = [w for w in r["what_ifs"] if w["monthly_cost"] is not None]
    sections: list[tuple[str, str]] = [
        ("Cost by part", _bars(parts, costs, "monthly cost by part", base=None)),
        (
            "Roles",
            table(
                role_rows,
                [
                    "role",
                    "cores",
                    "gpus",
                    "instances",
                    "memory GiB",
                    "utilisation",
                    "sizing",
                    "meets p99",
                    "$/month",
                    "measured by",
                ],
            ),
        ),
        ("Storage (GiB, all regions)", table(list(r["storage"].items()), ["item", "GiB"])),
        (
            "What if",
            _bars(
                [w["name"] for w in priced],
                [w["monthly_cost"] for w in priced],
                "monthly cost, one lever pulled",
                base=r["monthly_cost"],
            )
            + table(
                [
                    [
                        w["name"],
                        w["monthly_cost"] if w["monthly_cost"] is not None else "-",
                        w["cores"] if w["cores"] is not None else "-",
                        w["note"],
                    ]
                    for w in r["what_ifs"]
                ],
                ["lever", "$/month", "cores", "note"],
            ),
        ),
        (
            "Measured figures used",
            table(
                [
                    [
                        s["benchmark"],
                        s["date"],
                        s["machine"].get("cpu", ""),
                        s["machine"].get("cores", ""),
                        s["command"],
                    ]
                    for s in r["sources"]
                ],
                ["benchmark", "date", "cpu", "cores", "command"],
            ),
        ),
        ("Prices", table([[k, _plain(v)] for k, v in r["prices"].items()], ["price", "value"])),
    ]
    extras = {k: v for k, v in r.items() if k == "break_even"}
    if extras:
        sections.append(("Hosted API against self-hosted", table(_flat(extras["break_even"]))))
    summary = {
        "cores": r["cores"],
        "gpus": r["gpus"],
        "memory GiB": r["memory_gib"],
        "storage GiB": r["storage_gib"],
        "monthly cost (USD)": r["monthly_cost"],
        "load": _plain(r["load"]),
    }
    return write_page(path, title=title, summary=summary, notes=r["notes"], sections=sections)


def _plain(value: Any) -> str:
    return json.dumps(value) if isinstance(value, dict | list) else str(value)


def _flat(record: dict[str, Any]) -> list[list[object]]:
    return [[k, _plain(v)] for k, v in record.items()]

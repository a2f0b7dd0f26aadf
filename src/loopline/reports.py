"""Static HTML reports: one self-contained page (no outside resources) of a summary
table, notes, and sections of figures (inline SVG) or tables. Commands that produce
results people look at write one (training runs, demos)."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path

STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}"
    "table{border-collapse:collapse}td,th{border-bottom:1px solid #ddd;padding:4px 12px;"
    "text-align:left;vertical-align:top}svg{max-width:100%;height:auto}"
)


def fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    return str(value)


def table(rows: Sequence[Sequence[object]], header: Sequence[str] = ()) -> str:
    """An HTML table of ``rows`` (each cell escaped)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(fmt(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table>{f'<tr>{head}</tr>' if head else ''}{body}</table>"


def write_page(
    path: Path,
    *,
    title: str,
    summary: Mapping[str, object],
    notes: Sequence[str] = (),
    sections: Sequence[tuple[str, str]] = (),
) -> Path:
    """Write the page; ``sections`` are (heading, HTML: an SVG figure or a table)."""
    items = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    parts = "".join(f"<h2>{html.escape(h)}</h2>{content}" for h, content in sections)
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{STYLE}</style></head><body>
<h1>{html.escape(title)}</h1>
{table(list(summary.items()))}
<ul>{items}</ul>
{parts}
</body></html>
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body)
    return path

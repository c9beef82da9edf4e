"""Self-contained HTML reports: figures embedded as base64 PNG, so the file opens offline.

The report computes nothing of its own: callers pass text, tables and figures.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

_STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 1000px;
       margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #4C72B0; padding-bottom: .3em; }
h2 { margin-top: 1.8em; color: #2a4a7f; }
table { border-collapse: collapse; margin: 1em 0; font-size: .92em; }
th, td { border: 1px solid #ccc; padding: .35em .7em; text-align: right; }
th { background: #eef2f8; } td:first-child, th:first-child { text-align: left; }
figure { margin: 1em 0; } img { max-width: 100%; }
figcaption { color: #555; font-size: .9em; }
.note { background: #f7f7f2; border-left: 4px solid #c8b560; padding: .5em 1em; }
"""


def figure_to_png(fig: Figure, dpi: int = 110) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def figure_to_data_uri(fig: Figure | bytes, dpi: int = 110) -> str:
    """A figure (or PNG bytes already rendered) as an embeddable ``data:`` URI."""
    png = fig if isinstance(fig, bytes) else figure_to_png(fig, dpi)
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


@dataclass
class Section:
    """A report section: a heading, paragraphs, tables (header + rows) and figures."""

    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[tuple[Sequence[str], Sequence[Sequence[Any]]]] = field(default_factory=list)
    figures: list[tuple[Figure | bytes, str]] = field(default_factory=list)  # bytes: PNG
    notes: list[str] = field(default_factory=list)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def render_html(title: str, sections: Sequence[Section], subtitle: str = "") -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if subtitle:
        parts.append(f"<p>{html.escape(subtitle)}</p>")
    for section in sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        parts.extend(f"<p>{html.escape(p)}</p>" for p in section.paragraphs)
        parts.extend(f'<p class="note">{html.escape(n)}</p>' for n in section.notes)
        for header, rows in section.tables:
            parts.append("<table><tr>" + "".join(f"<th>{_cell(h)}</th>" for h in header) + "</tr>")
            for row in rows:
                parts.append("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>")
            parts.append("</table>")
        for fig, caption in section.figures:
            parts.append(
                f'<figure><img alt="{html.escape(caption)}" src="{figure_to_data_uri(fig)}">'
                f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            )
    parts.append("</body></html>")
    return "\n".join(parts)


def write_html(
    path: str | Path, title: str, sections: Sequence[Section], subtitle: str = ""
) -> Path:
    """Render and write the report; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(title, sections, subtitle), encoding="utf-8")
    return path


__all__ = ["Section", "figure_to_data_uri", "figure_to_png", "render_html", "write_html"]

"""Report: results -> self-contained HTML (+ JSON); computes nothing of its own."""

from posterax.report.html import (
    Section,
    figure_to_data_uri,
    figure_to_png,
    render_html,
    write_html,
)

__all__ = ["Section", "figure_to_data_uri", "figure_to_png", "render_html", "write_html"]

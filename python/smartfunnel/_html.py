"""Small helpers for the notebook representations (``_repr_html_``) of the public results.

Everything user-provided (stage, rep, funnel names) is escaped; tables stay compact.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

import pandas as pd

from . import _core


def fields(rows: Iterable[tuple[str, Any]]) -> str:
    """A two-column table of labels and values (values formatted with thousands separators)."""

    def fmt(v: Any) -> str:
        if isinstance(v, bool) or v is None:
            return str(v)
        if isinstance(v, int):
            return f"{v:,}"
        if isinstance(v, float):
            return f"{v:,.4g}"
        return str(v)

    body = "".join(
        f"<tr><th style='text-align:left'>{html.escape(str(k))}</th>"
        f"<td style='text-align:left'>{html.escape(fmt(v))}</td></tr>"
        for k, v in rows
    )
    return f"<table>{body}</table>"


def frame(df: pd.DataFrame, digits: int = 3, max_rows: int = 20) -> str:
    """A DataFrame as an escaped HTML table, at most `max_rows` rows (the rest counted)."""
    shown = df.head(max_rows)
    out = shown.to_html(float_format=lambda x: f"{x:,.{digits}f}", escape=True, na_rep="")
    if len(df) > len(shown):
        out += f"<p>… {len(df) - len(shown):,} more rows</p>"
    return out


def box(title: str, subtitle: str, body: str) -> str:
    """The common frame: a bold title, an escaped one-line subtitle, then the body (HTML)."""
    return f"<div><strong>{html.escape(title)}</strong> {html.escape(subtitle)}{body}</div>"


def _funnel_html(self: _core.Funnel) -> str:
    stages = " → ".join(self.stages)
    return box(
        "Funnel",
        repr(self.name),
        fields(
            [
                ("stages", stages),
                ("won", ", ".join(self.won)),
                ("lost", ", ".join(self.lost)),
            ]
        ),
    )


# The compiled Funnel has its __repr__ from the bindings; its notebook view is added here.
setattr(_core.Funnel, "_repr_html_", _funnel_html)  # noqa: B010 - a compiled class

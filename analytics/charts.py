"""Plotly figures for the dashboard, built from plain series (lists of labels and numbers), never querysets.

Each builder returns a figure as a plain dict in plotly.js's JSON schema; the template embeds it with
`json_script` and static/dashboard/dashboard.js draws it with the plotly.js we serve from our static files.
plotly.js renders a subset of HTML in text (`<a href>`, `<b>`, `<br>`, entities), so every label that comes
from data (feature names, plans, days, series names) goes through `label`, which HTML-escapes it.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

PRIMARY = "#417690"  # the Django admin's --primary
PRIOR = "#c4d7e0"
WEEKDAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]

_LAYOUT = {
    "margin": {"l": 40, "r": 10, "t": 10, "b": 40},
    "font": {"family": "-apple-system, 'Segoe UI', Roboto, sans-serif", "size": 12},
    "paper_bgcolor": "rgba(0,0,0,0)",
    "plot_bgcolor": "rgba(0,0,0,0)",
    "legend": {"orientation": "h", "y": -0.25},
}


def _layout(**extra) -> dict:
    return {**_LAYOUT, **extra}


def label(text: object) -> str:
    """A text plotly.js shows as it is: `<a href="x">` becomes `&lt;a href="x"&gt;`, `&` becomes `&amp;`."""
    return html.escape(str(text), quote=False)


# The top-features chart opens on a log axis when the largest bar is this many times the smallest, so one heavy
# feature does not flatten the rest; buttons on the chart switch between the two scales either way.
LOG_SCALE_SPREAD = 20


def _scale_buttons(*, axis: str, log: bool) -> list[dict]:
    return [
        {
            "type": "buttons",
            "direction": "left",
            "showactive": True,
            "active": 1 if log else 0,
            "x": 1,
            "xanchor": "right",
            "y": 1.02,
            "yanchor": "bottom",
            "pad": {"r": 0, "t": 0},
            "font": {"size": 11},
            "buttons": [
                {"label": "Linear", "method": "relayout", "args": [{f"{axis}.type": "linear", f"{axis}.dtick": None}]},
                {"label": "Log scale", "method": "relayout", "args": [{f"{axis}.type": "log", f"{axis}.dtick": 1}]},
            ],
        }
    ]


def top_features_bar(*, names: Sequence[str], current: Sequence[int], prior: Sequence[int]) -> dict:
    """Horizontal bars: uses in the window beside uses in the prior window, largest on top, each labelled with
    its value; a log axis when the values spread widely (see LOG_SCALE_SPREAD), with a Linear / Log toggle."""
    names, current, prior = [label(n) for n in reversed(names)], list(reversed(current)), list(reversed(prior))
    positive = [v for v in (*current, *prior) if v > 0]
    log = bool(positive) and max(positive) >= LOG_SCALE_SPREAD * min(positive)

    def bars(name: str, values: list[int], color: str) -> dict:
        return {
            "type": "bar",
            "orientation": "h",
            "name": name,
            "y": names,
            "x": values,
            "text": [f"{v:,}" for v in values],
            "textposition": "outside",
            "cliponaxis": False,
            "marker": {"color": color},
            "hovertemplate": "%{y}: %{x:,} uses<extra>" + name + "</extra>",
        }

    return {
        "data": [bars("Prior window", prior, PRIOR), bars("This window", current, PRIMARY)],
        "layout": _layout(
            barmode="group",
            height=max(240, 34 * len(names) + 100),
            margin={"l": 150, "r": 40, "t": 30, "b": 40},
            # On the log axis one tick per power of ten (1, 10, 100, …); plotly's 2 and 5 ticks crowd the labels.
            xaxis={
                "type": "log" if log else "linear",
                "dtick": 1 if log else None,
                "tickformat": ",",
                "title": {"text": "Net uses"},
            },
            yaxis={"automargin": True},
            updatemenus=_scale_buttons(axis="xaxis", log=log),
        ),
    }


def heatmap(*, grid: Sequence[Sequence[int]], timezone: str) -> dict:
    """7×24 uses, rows Sunday..Saturday, columns hours of the workspace's timezone."""
    return {
        "data": [
            {
                "type": "heatmap",
                "z": [list(row) for row in grid],
                "x": [f"{h:02d}" for h in range(24)],
                "y": WEEKDAYS,
                "colorscale": [[0, "#f8f8f8"], [1, PRIMARY]],
                "hoverongaps": False,
                "hovertemplate": "%{y} %{x}:00 — %{z:,} uses<extra></extra>",
                "colorbar": {"title": {"text": "Net uses", "side": "right"}, "thickness": 12},
            }
        ],
        "layout": _layout(
            height=280,
            yaxis={"autorange": "reversed", "fixedrange": True},
            xaxis={"title": {"text": label(f"Hour ({timezone})")}, "fixedrange": True},
        ),
    }


def daily_lines(
    *, days: Sequence[str], series: dict[str, Sequence[float]], y_title: str = "", dashed: Sequence[str] = ()
) -> dict:
    """One line per named series over the same days (dashed ones for comparisons such as the prior window)."""
    data = []
    for i, (name, values) in enumerate(series.items()):
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": label(name),
                "x": [label(day) for day in days],
                "y": list(values),
                "line": {
                    "color": PRIMARY if i == 0 else "#79aec8" if name not in dashed else "#999",
                    "dash": "dot" if name in dashed else "solid",
                },
            }
        )
    return {
        "data": data,
        "layout": _layout(
            height=260, yaxis={"title": {"text": y_title}, "rangemode": "tozero", "tickformat": ",", "automargin": True}
        ),
    }


def plan_bars(*, plans: Sequence[str], accounts: Sequence[int]) -> dict:
    return {
        "data": [
            {
                "type": "bar",
                "x": [label(plan) for plan in plans],
                "y": list(accounts),
                "marker": {"color": PRIMARY},
                "name": "Accounts",
            }
        ],
        "layout": _layout(height=220, yaxis={"title": {"text": "Accounts"}, "tickformat": ",", "automargin": True}),
    }


def sparkline_points(values: Sequence[int], *, width: int = 120, height: int = 24) -> str:
    """SVG polyline points for an inline sparkline (lighter than a plotly chart per table row)."""
    if not values:
        return ""
    low, high = min(0, min(values)), max(values)
    span = (high - low) or 1
    step = width / max(len(values) - 1, 1)
    return " ".join(f"{i * step:.1f},{height - (v - low) / span * (height - 2) - 1:.1f}" for i, v in enumerate(values))

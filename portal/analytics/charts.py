"""Chart.js configurations of the analytics page, built from the same tables the page and the CSVs show."""
from __future__ import annotations
from ..health import metrics
from . import reports

PALETTE = ("#2f5bd3", "#0e7a4f", "#b7791f", "#c53030", "#6b46c1", "#2c7a7b", "#97266d", "#4a5568")


def line_chart(labels: list[str], series: dict[str, list], y_axis: dict) -> dict:
    datasets = [{"label": name, "data": values, "borderColor": PALETTE[index % len(PALETTE)],
                 "backgroundColor": PALETTE[index % len(PALETTE)], "pointRadius": 2, "borderWidth": 2, "spanGaps": False}
                for index, (name, values) in enumerate(series.items())]
    return {"type": "line", "data": {"labels": labels, "datasets": datasets},
            "options": {"interaction": {"mode": "index", "intersect": False},
                        "plugins": {"legend": {"display": len(datasets) > 1, "position": "bottom"}},
                        "scales": {"x": {"ticks": {"maxRotation": 0, "autoSkip": True}}, "y": y_axis}}}


def retention(table: reports.Table) -> dict:
    curve = reports.retention_curve(table)
    return line_chart([f"Week {n}" for n in range(reports.RETENTION_WEEKS)], {"Active customers (%)": curve},
                      {"min": 0, "max": 100})


def funnel(table: reports.Table) -> dict:
    steps = len(metrics.STEPS)
    datasets = [{"label": row[0], "data": row[2:2 + steps], "backgroundColor": PALETTE[index % len(PALETTE)]}
                for index, row in enumerate(table.rows)]
    return {"type": "bar", "data": {"labels": [metrics.label(step) for step in metrics.STEPS], "datasets": datasets},
            "options": {"plugins": {"legend": {"position": "bottom"}}, "scales": {"y": {"min": 0, "max": 100}}}}


def trend(table: reports.Table, column: int, y_axis: dict) -> dict:
    weeks = sorted({row[0] for row in table.rows})
    series: dict[str, list] = {}
    for row in table.rows:
        series.setdefault(row[1], [None] * len(weeks))[weeks.index(row[0])] = row[column]
    return line_chart(weeks, series, y_axis)


def for_tables(tables: dict[str, reports.Table]) -> dict[str, dict]:
    counts = {"beginAtZero": True, "ticks": {"precision": 0}}
    return {
        "retention": retention(tables["retention"]),
        "funnel": funnel(tables["funnel"]),
        "success": trend(tables["trends"], 5, {"min": 0, "max": 100}),
        "issues": trend(tables["trends"], 2, counts),
        "prs": trend(tables["trends"], 3, counts),
    }

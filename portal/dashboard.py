"""The dashboard: KPIs, the funnel, bands, stages and 90-day trends as charts, and who is at risk.

Charts are Chart.js configurations built here and emitted as JSON (static/js/portal.js draws them):
the CSP allows no inline script, so no chart is configured in the template.
"""
from __future__ import annotations

from flask import Blueprint, current_app, render_template, url_for
from flask_login import login_required

from . import analytics
from .health import metrics, risk

bp = Blueprint("dashboard", __name__)

# The band colours of static/css/portal.css (--champion, --healthy, ...): a canvas cannot read CSS variables.
BAND_COLOURS = {"champion": "#0e7a4f", "healthy": "#3c9d5d", "needs_attention": "#b7791f", "at_risk": "#c53030"}
ACCENT = "#2f5bd3"


@bp.app_template_global()
def customer_url(customer) -> str | None:
    """The customer's page, or None while no 'customers.detail' endpoint is registered: link only when set.

    A template global rather than a context processor, so macros imported without context can use it too.
    """
    if "customers.detail" not in current_app.view_functions:
        return None
    return url_for("customers.detail", customer_id=customer.public_id)


@bp.get("/")
@login_required
def index():
    board = analytics.dashboard()
    return render_template("dashboard/index.html", board=board, charts=charts(board), titles=risk.TITLES)


def charts(board: analytics.Dashboard) -> dict[str, dict]:
    """The Chart.js configuration of every chart on the page, by name."""
    funnel = board.onboarding.steps
    trend_labels = [f"{day:%b} {day.day}" for day in board.trends.days]
    return {
        "funnel": bar_chart([metrics.label(step) for step, _, _ in funnel], [count for _, count, _ in funnel],
                            "Customers", top=board.onboarding.total),
        "bands": {
            "type": "doughnut",
            "data": {
                "labels": [metrics.label(band) for band in board.bands],
                "datasets": [{"label": "Customers", "data": list(board.bands.values()),
                              "backgroundColor": [BAND_COLOURS[band] for band in board.bands]}],
            },
            "options": {"plugins": {"legend": {"position": "bottom"}}},
        },
        "stages": bar_chart([metrics.label(stage) for stage in board.stages], list(board.stages.values()), "Customers"),
        "average": line_chart(trend_labels, board.trends.average_score, "Average health score", ACCENT,
                              {"min": 0, "max": 100}),
        "at_risk": line_chart(trend_labels, board.trends.at_risk, "Customers at risk", BAND_COLOURS["at_risk"],
                              {"beginAtZero": True, "ticks": {"precision": 0}}),
    }


def bar_chart(labels: list[str], values: list[int], label: str, top: int | None = None) -> dict:
    """Horizontal bars: step and stage names stay readable on a phone."""
    axis = {"beginAtZero": True, "ticks": {"precision": 0}}
    if top:
        axis["suggestedMax"] = top
    return {
        "type": "bar",
        "data": {"labels": labels, "datasets": [{"label": label, "data": values, "backgroundColor": ACCENT}]},
        "options": {"indexAxis": "y", "plugins": {"legend": {"display": False}}, "scales": {"x": axis}},
    }


def line_chart(labels: list[str], values: list, label: str, colour: str, y_axis: dict) -> dict:
    """One point a day; None values leave a gap (spanGaps off) instead of a fall to zero."""
    return {
        "type": "line",
        "data": {
            "labels": labels,
            "datasets": [{"label": label, "data": values, "borderColor": colour, "backgroundColor": colour,
                          "pointRadius": 1.5, "borderWidth": 2, "spanGaps": False}],
        },
        "options": {
            "interaction": {"mode": "index", "intersect": False},
            "plugins": {"legend": {"display": False}},
            "scales": {"x": {"ticks": {"maxTicksLimit": 6, "maxRotation": 0}}, "y": y_axis},
        },
    }

"""The feedback page `/feedback`: NPS by month, cohort and owner, CSAT by month, and what comments talk about."""
from __future__ import annotations

from flask import Blueprint, abort, render_template, request

from ..analytics.charts import line_chart
from ..analytics.views import csv_response, link_args, read_filters
from ..auth import login_required
from ..customers import queries as customer_queries
from . import reports

bp = Blueprint("feedback", __name__, url_prefix="/feedback")
DEFAULT_DAYS = 365


def feedback_tables():
    filters, errors = read_filters(request.args, DEFAULT_DAYS)
    return filters, errors, reports.tables(filters)


@bp.get("")
@login_required
def index():
    filters, errors, tables = feedback_tables()
    months, csat = tables["nps_by_month"].rows, tables["csat_by_month"].rows
    charts = {
        "nps": line_chart([row[0] for row in months], {"NPS": [row[-1] for row in months]}, {"min": -100, "max": 100}),
        "csat": line_chart([row[0] for row in csat], {"Average CSAT": [row[2] for row in csat]}, {"min": 1, "max": 5}),
    }
    return render_template("feedback/index.html", filters=filters, errors=errors, tables=tables, charts=charts,
                           cohorts=customer_queries.cohorts(), team=customer_queries.team(),
                           args=link_args(filters))


@bp.get("/<name>.csv")
@login_required
def download(name: str):
    filters, _, tables = feedback_tables()
    if name not in tables:
        abort(404)
    return csv_response(tables[name], f"{name}-{filters.start}-{filters.end}.csv")

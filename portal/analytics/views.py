"""The analytics page `/analytics`: four reports with their charts, each table downloadable as CSV."""
from __future__ import annotations

import csv
import datetime as dt
import io

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from werkzeug.datastructures import MultiDict

from .. import clock
from ..health import metrics
from ..auth import login_required
from ..customers import queries as customer_queries
from ..transfer.csvformat import cell
from ..validation import EARLIEST_DATE, ValidationError, iso_date, within
from . import charts, reports

bp = Blueprint("analytics", __name__, url_prefix="/analytics")
DEFAULT_DAYS = 84  # twelve weeks
MAX_DAYS = 731
TABLES = {"retention": reports.retention, "funnel": reports.funnel, "migration": reports.migration,
          "trends": reports.trends}


def read_filters(args: MultiDict, default_days: int = DEFAULT_DAYS) -> tuple[reports.Filters, dict[str, str]]:
    """The filters of the query string; a bad date is reported by field and the default used instead. Without a
    start, the range is the default_days up to the end (today unless given)."""
    errors: dict[str, str] = {}
    dates = {"end": clock.today(), "start": None}
    for name in ("end", "start"):
        if args.get(name, "").strip():
            try:
                # Reports reach back to the first plausible day and a year ahead: dates worked out from a far-off
                # day would not be dates.
                dates[name] = within(iso_date(args[name], name), name, EARLIEST_DATE,
                                     clock.today() + dt.timedelta(days=366))
            except ValidationError as error:
                errors[name] = str(error)
    dates["start"] = dates["start"] or dates["end"] - dt.timedelta(days=default_days - 1)
    if dates["start"] > dates["end"] or (dates["end"] - dates["start"]).days >= MAX_DAYS:
        errors["start"] = f"start must be on or before end, at most {MAX_DAYS} days before it"
        dates["start"] = dates["end"] - dt.timedelta(days=default_days - 1)
    text = {name: args.get(name, "").strip()[:100] for name in ("cohort", "owner", "industry")}
    return reports.Filters(dates["start"], dates["end"], **text), errors


def grouping(args: MultiDict) -> str:
    return args.get("by") if args.get("by") in reports.GROUPINGS else "overall"


def link_args(filters: reports.Filters, **extra) -> dict:
    values = {"start": filters.start.isoformat(), "end": filters.end.isoformat(), "cohort": filters.cohort,
              "owner": filters.owner, "industry": filters.industry, **extra}
    return {key: value for key, value in values.items() if value}


@bp.get("")
@login_required
def index():
    filters, errors = read_filters(request.args)
    by = grouping(request.args)
    tables = {name: (report(filters, by) if name == "trends" else report(filters)) for name, report in TABLES.items()}
    return render_template(
        "analytics/index.html", filters=filters, errors=errors, by=by, tables=tables,
        charts=charts.for_tables(tables), groupings=reports.GROUPINGS, bands=(*metrics.STATUSES, reports.NO_SNAPSHOT),
        cohorts=customer_queries.cohorts(), team=customer_queries.team(), industries=customer_queries.industries(),
        args=link_args(filters, by="" if by == "overall" else by),
        migration_link=lambda before, after: url_for(".migration_customers", **link_args(filters, **{"from": before, "to": after})),
    )


@bp.get("/<name>.csv")
@login_required
def download(name: str):
    if name not in TABLES:
        abort(404)
    filters, _ = read_filters(request.args)
    table = TABLES[name](filters, grouping(request.args)) if name == "trends" else TABLES[name](filters)
    return csv_response(table, f"{name}-{filters.start}-{filters.end}.csv")


def csv_response(table: reports.Table, filename: str) -> Response:
    """A report's table as the CSV download: the headers and rows the page shows, empty cells for no value, and
    text that a spreadsheet would run as a formula (a cohort named `=HYPERLINK(...)`) neutralised as the export's."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([cell(header) for header in table.headers])
    writer.writerows([[cell(value) for value in row] for row in table.rows])
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@bp.get("/migration")
@login_required
def migration_customers():
    filters, _ = read_filters(request.args)
    bands = (*metrics.STATUSES, reports.NO_SNAPSHOT)
    before, after = request.args.get("from", ""), request.args.get("to", "")
    if before not in bands or after not in bands:  # a bookmark or a typed address: send them to the table
        flash("Choose a count in the band migration table to list its customers.", "info")
        return redirect(url_for(".index", **link_args(filters), _anchor="migration-heading"), 303)
    customers = reports.migration_customers(filters, before, after)
    return render_template("analytics/migration.html", filters=filters, before=before, after=after,
                           customers=customers, limit=200, since=filters.end - dt.timedelta(days=reports.MIGRATION_DAYS),
                           back=url_for(".index", **link_args(filters)))

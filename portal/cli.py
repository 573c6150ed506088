"""`customer-tracking`: the early-access script's commands, on the portal's database.

Every error is one line on stderr and a non-zero exit, and changes nothing.
"""
from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import Flask
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError

from . import create_app, files, outage, validation
from .health import metrics, snapshots
from .analytics import engagement_summary, onboarding_summary
from .churn import cli as churn_cli
from .cli_errors import fail
from .customers import erasure, service
from .emails import service as email_service
from .extensions import db
from .models import Customer
from .transfer import exports, imports
from .transfer.csvformat import ImportRejected
from .transfer.limits import FileRefused
from .validation import ValidationError

ACTOR = "cli"
REPORT_DAYS = 36_525  # a century, far more than the portal holds; billions of days would reach back past year 1


class OneLineErrors(click.Group):
    """Click prints usage and hints over several lines; the script's callers expect one."""

    def main(self, args=None, prog_name=None, **extra):
        extra.pop("standalone_mode", None)
        try:
            code = super().main(args, prog_name or "customer-tracking", standalone_mode=False, **extra)
        except click.exceptions.Abort:
            click.echo("customer-tracking: aborted", err=True)
            sys.exit(1)
        except click.ClickException as error:
            click.echo(f"customer-tracking: {error.format_message()}", err=True)
            sys.exit(error.exit_code)
        except (OperationalError, InterfaceError) as error:  # the database is down, unreachable or refuses us
            click.echo(f"customer-tracking: the database cannot be used ({outage.first_line(error)}); "
                       "nothing was changed", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


def customer_or_fail(customer_id: str) -> Customer:
    """The customer, or exit non-zero with one line saying that it is unknown."""
    try:
        return service.get_customer(customer_id)
    except ValidationError as error:
        fail(str(error))


def commit_and_rescore(*customer_ids: int) -> None:
    snapshots.recalculate(customer_ids or None)
    try:
        db.session.commit()
    except IntegrityError as error:
        fail(f"the database refused the change: {error.orig}")


@click.group(cls=OneLineErrors)
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Track early-access customers: onboarding, engagement, reports and CSV export."""
    app: Flask = ctx.obj or create_app()
    ctx.with_resource(app.app_context())


# A leading "-" (a negative count, a bad login) is a value to refuse with a clear message, not an option.
NUMBERS = {"ignore_unknown_options": True}


@cli.command("add-customer", context_settings=NUMBERS)
@click.argument("email")
@click.argument("organization")
@click.argument("github_username")
@click.argument("cohort")
@click.argument("industry")
@click.argument("team_size")
def add_customer(email, organization, github_username, cohort, industry, team_size):
    """Add a customer and print its id (c1001...)."""
    fields = dict(email=email, organization=organization, github_username=github_username,
                  cohort=cohort, industry=industry, team_size=team_size)
    try:
        customer = service.add_customer(fields, ACTOR)
    except ValidationError as error:
        fail(str(error))
    commit_and_rescore(customer.id)
    click.echo(customer.public_id)


@cli.command("update-onboarding")
@click.argument("customer_id")
@click.argument("step")
@click.argument("value", metavar="true|false")
def update_onboarding(customer_id, step, value):
    """Set one of the five onboarding steps to true or false."""
    try:
        customer = service.get_customer(customer_id)
        if step not in metrics.STEPS:
            raise ValidationError(f"unknown step {step!r}: expected one of {', '.join(metrics.STEPS)}")
        changed = service.set_step(customer, step, validation.boolean(value, "value"), ACTOR)
    except ValidationError as error:
        fail(str(error))
    commit_and_rescore(customer.id)
    click.echo(f"{customer.public_id} {step}={value.lower()}" + ("" if changed else " (unchanged)"))


@cli.command("record-engagement", context_settings=NUMBERS)
@click.argument("customer_id")
@click.argument("issues_tagged")
@click.argument("prs_generated")
@click.argument("prs_merged")
@click.argument("prs_rejected")
@click.argument("support_requests")
def record_engagement(customer_id, **counts):
    """Add today's counts to the customer's engagement."""
    try:
        customer = service.get_customer(customer_id)
        row = service.record_engagement(customer, service.clean_counts(counts), ACTOR)
    except ValidationError as error:
        fail(str(error))
    commit_and_rescore(customer.id)
    totals = " ".join(f"{count}={getattr(row, count)}" for count in row.COUNTS)
    click.echo(f"{row.public_id} {customer.public_id} {row.date} {totals}")


@cli.command("onboarding-report")
def onboarding_report():
    """Completion, each step's count and percent, average days to complete, blockers."""
    summary = onboarding_summary()
    click.echo("Onboarding report")
    click.echo(f"  Total customers:       {summary.total}")
    click.echo(f"  Completed onboarding:  {summary.completed}")
    click.echo(f"  Completion rate:       {summary.completion_rate}%")
    average = "n/a" if summary.average_days_to_complete is None else f"{summary.average_days_to_complete} days"
    click.echo(f"  Avg days to complete:  {average}")
    click.echo("  Steps:")
    for step, count, percent in summary.steps:
        click.echo(f"    {step:<25} {count:>6}  {percent:>3}%")
    click.echo("  Blockers:")
    for blocker, count in summary.blockers.items() or [("none open", "")]:
        click.echo(f"    {blocker:<25} {count:>6}")


@cli.command("engagement-report", context_settings=NUMBERS)
@click.argument("days", default="7")
def engagement_report(days):
    """Per customer, the totals and success rate of the last DAYS days (default 7: today and the 6 before)."""
    try:
        days = validation.integer(days, "DAYS", minimum=1, maximum=REPORT_DAYS)
    except ValidationError as error:
        fail(str(error))
    header = ("customer", "organization", "issues", "prs", "merged", "rejected", "support", "success")
    click.echo(f"Engagement report: last {days} day(s)")
    click.echo(f"{header[0]:<9} {header[1]:<28} " + " ".join(f"{h:>8}" for h in header[2:]))
    for row in engagement_summary(days):
        counts = " ".join(f"{row[count]:>8}" for count in ("issues_tagged", "prs_generated", "prs_merged",
                                                          "prs_rejected", "support_requests"))
        click.echo(f"{row['customer_id']:<9} {row['organization'][:28]:<28} {counts} {row['success_rate']:>7}%")


@cli.command("export-data")
@click.option("--output", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="Where to write the zip (default: a dated file in the current directory).")
def export_data(output):
    """Write customers, onboarding, engagement and combined metrics CSVs to a zip; print its path."""
    output = output or exports.default_path(Path.cwd())
    try:
        with files.written_whole(output) as out:
            exports.write_zip(out)
    except OSError as error:
        fail(f"cannot write {output}: {error.strerror or error}; nothing was written")
    click.echo(str(output.resolve()))


@cli.command("import-data")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_data(path):
    """Import an export zip or one of customers.csv, onboarding.csv, engagement.csv; all or nothing."""
    try:
        result = imports.import_path(path, actor="import")
    except ImportRejected as rejected:
        db.session.rollback()
        for line in [*rejected.lines(), rejected.more()]:
            if line:
                click.echo(line, err=True)
        fail(str(rejected))
    except FileRefused as refused:
        fail(str(refused))
    except (ValueError, *imports.UNREADABLE) as error:  # UnicodeDecodeError among them
        fail(f"cannot read {path.name}: {error}")
    db.session.commit()
    click.echo(result.summary())


@cli.command("api-key")
@click.argument("customer_id")
def api_key(customer_id):
    """Print a new metrics-API key for the customer; it replaces the old one and only its hash is kept."""
    customer = customer_or_fail(customer_id)
    key = service.issue_api_key(customer, ACTOR)
    db.session.commit()
    click.echo(key)


@cli.command("nps-survey")
@click.argument("customer_id")
def nps_survey(customer_id):
    """Queue this quarter's NPS survey email for the customer (one per customer per quarter)."""
    customer = customer_or_fail(customer_id)
    if not email_service.queue_nps(customer, ACTOR):
        fail(f"{customer.public_id} already has this quarter's NPS survey")
    db.session.commit()
    click.echo(f"{customer.public_id} NPS survey queued")


@cli.command("erase")
@click.argument("customer_id")
@click.option("--yes", is_flag=True, help="Erase without asking; needed when stdin is not a terminal.")
def erase(customer_id, yes):
    """Erase the customer's personal data for good; its anonymous counts and scores stay."""
    customer = customer_or_fail(customer_id)
    if customer.erased_at is not None:
        fail(f"{customer.public_id} was already erased on {customer.erased_at:%Y-%m-%d}")
    if not yes:
        if not sys.stdin.isatty():
            fail("erasing cannot be undone: add --yes to erase without a question")
        click.confirm(f"Erase the personal data of {customer.public_id} ({customer.organization})? It cannot be undone",
                      abort=True)
    erasure.erase(customer, ACTOR)
    db.session.commit()
    click.echo(f"{customer.public_id} erased")


cli.add_command(churn_cli.model)


def main() -> None:
    cli.main()

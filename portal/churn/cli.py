"""`customer-tracking model train|backtest|show` and `flask churn-demo`: one-line errors, non-zero exits."""
from __future__ import annotations

import datetime as dt

import click
from flask.cli import with_appcontext

from .. import clock
from ..cli_errors import fail
from ..extensions import db
from . import DATES, HORIZON, STEP, NotEnoughData, load, synthetic


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


@click.group("model")
def model() -> None:
    """The churn-risk model: train a new version, backtest it on a time split, show the current one."""


@model.command("train")
@click.option("--dates", default=DATES, type=click.IntRange(1, 52), show_default=True,
              help=f"as-of dates to sample, {STEP} days apart, ending 30 days ago")
def train(dates: int) -> None:
    """Train on the history whose 30-day outcome is known, and store it as a new version."""
    from . import service  # numpy and scikit-learn: only the model's commands load them

    try:
        stored = service.train("cli", count=dates)
    except NotEnoughData as reason:
        fail(f"cannot train: {reason}")
    db.session.commit()
    fitted = stored.metrics["training"]
    click.echo(f"model v{stored.version}: {stored.samples} samples ({stored.positives} churned within 30 days), "
               f"as of {stored.window_start} to {stored.window_end}; training AUC {fitted['auc']:.3f}")


@model.command("backtest")
@click.option("--cutoff", type=click.DateTime(["%Y-%m-%d"]), help="default: 30 days ago")
def backtest(cutoff: dt.datetime | None) -> None:
    """Train up to a cutoff, score every active customer at it, compare with who churned in the next 30 days."""
    from . import service

    day = cutoff.date() if cutoff else clock.today() - dt.timedelta(days=HORIZON)
    try:
        report = service.backtest(day)
    except NotEnoughData as reason:
        fail(f"cannot backtest: {reason}")
    for line in report_lines(report):
        click.echo(line)


def report_lines(report: dict) -> list[str]:
    held = report["model"]
    lines = [f"Backtest at {report['cutoff']}: trained on {report['training_samples']} samples "
             f"({report['training_positives']} churned); scored {held['samples']} active customers, "
             f"{held['positives']} churned within 30 days",
             f"{'':<28} {'AUC':>6} {'precision, riskiest 10%':>24}"]
    for name, key in (("churn model", "model"), ("health score (100 - score)", "baseline")):
        figures = report[key]
        auc = "n/a" if figures["auc"] is None else f"{figures['auc']:.3f}"
        lines.append(f"{name:<28} {auc:>6} {percent(figures['precision_top_10']):>24}")
    for name, key, scale in (("churn model", "model", percent), ("health score", "baseline", "{:.1f} pts".format)):
        lines.append(f"Calibration, {name} (bins from least to most at risk): predicted, observed, count")
        lines.extend(f"  {scale(part['predicted']):>10} {percent(part['observed']):>8} {part['count']:>6}"
                     for part in report[key]["calibration"])
    return lines


@model.command("show")
def show() -> None:
    """The current version, how it was trained, and its coefficients by feature (per standard deviation)."""
    from . import service

    current = service.current()
    if current is None:
        fail("no churn model yet: run `customer-tracking model train`")
    click.echo(f"model v{current.version} ({current.algorithm}), trained {current.created_at:%Y-%m-%d %H:%M} UTC "
               f"by {current.trained_by}")
    click.echo(f"as of {current.window_start} to {current.window_end}: {current.samples} samples, "
               f"{current.positives} churned within 30 days")
    pairs = sorted(zip(current.features, current.parameters["coefficients"]), key=lambda pair: -abs(pair[1]))
    click.echo(f"intercept {current.parameters['intercept']:+.3f}")
    for name, coefficient in pairs:
        click.echo(f"  {name:<26} {coefficient:+.3f}")


@click.command("churn-demo")
@with_appcontext
@click.option("--customers", default=600, type=click.IntRange(1, 100_000), show_default=True)
@click.option("--days", default=240, type=click.IntRange(60, 1_000), show_default=True)
@click.option("--seed", default=7, type=int, show_default=True)
def churn_demo(customers: int, days: int, seed: int) -> None:
    """Fill an empty database with synthetic history whose churn follows known mechanics (portal.churn.synthetic)."""
    params = synthetic.Params(customers=customers, days=days, seed=seed, today=clock.today())
    try:
        counts = load.load(params)
    except ValueError as error:
        fail(str(error))
    db.session.commit()
    click.echo(", ".join(f"{count} {table}" for table, count in counts.items()))
    click.echo("now train the model: customer-tracking model train")




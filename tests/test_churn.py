"""The churn model on a synthetic history with planted mechanics: it finds them and beats the plain score; the
commands, the weekly job and the customer page."""
import datetime as dt
import subprocess
import sys

import pytest
from flask_migrate import upgrade
from sqlalchemy import event, select

from portal.churn import cli as churn_cli, features, load, service, synthetic
from portal.cli import cli
from portal.extensions import db
from portal.models import AuditLog, Customer, Engagement

from .conftest import Auth, make_app

TODAY = dt.datetime.now(dt.timezone.utc).date()  # the portal's today (UTC): the page and the CLI use it
HISTORY = synthetic.Params(customers=400, days=180, seed=3, today=TODAY)
PLANTED = {"blocker_days", "last_nps", "rejection_rate", "rejection_rate_change", "days_since_activity"}


@pytest.fixture(scope="module")
def history_url(databases):
    """One database with the synthetic history for the whole module: loading it is the slow part."""
    url = databases.new()
    app = make_app(url)
    with app.app_context():
        upgrade()
        load.load(HISTORY)
        db.session.commit()
        db.engine.dispose()
    return url


@pytest.fixture
def history(history_url):
    app = make_app(history_url)
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def run(app, *args):
    return app.test_cli_runner().invoke(cli, [str(arg) for arg in args], obj=app)


def test_the_model_beats_the_plain_score_on_a_held_out_month(history):
    report = service.backtest(TODAY - dt.timedelta(days=30))
    model, baseline = report["model"], report["baseline"]
    assert model["positives"] >= 10 and report["training_positives"] >= 50
    assert model["auc"] > 0.65 and model["auc"] > baseline["auc"] + 0.1
    assert model["precision_top_10"] > baseline["precision_top_10"]
    assert sum(part["count"] for part in model["calibration"]) == model["samples"]
    printed = "\n".join(churn_cli.report_lines(report))
    assert f"churn model                  {model['auc']:6.3f}" in printed and printed.count("Calibration") == 2


def test_the_weekly_training_recovers_the_planted_mechanics(history):
    counts = service.train_job()
    stored = service.current()
    assert counts == {"version": stored.version, "samples": stored.samples, "positives": stored.positives}
    weights = dict(zip(stored.features, stored.parameters["coefficients"]))
    assert weights["blocker_days"] > 0 and weights["rejection_rate"] > 0 and weights["days_since_activity"] > 0
    assert weights["last_nps"] < 0
    strongest = sorted(weights, key=lambda name: -abs(weights[name]))[:8]
    assert len(PLANTED & set(strongest)) >= 3, strongest
    assert stored.window_end == TODAY - dt.timedelta(days=30) and 0 < stored.positives < stored.samples
    assert db.session.scalar(select(AuditLog.actor).where(AuditLog.table_name == "churn_models")) == "schedule"


def test_commands_show_train_and_refuse_a_cutoff_without_outcome(history):
    if service.current() is None:  # run on its own, without the training test before it
        service.train_job()
    before = service.current()
    shown = run(history, "model", "show")
    assert shown.exit_code == 0 and f"model v{before.version}" in shown.output and "blocker_days" in shown.output
    trained = run(history, "model", "train", "--dates", "3")
    assert trained.exit_code == 0 and trained.output.startswith(f"model v{before.version + 1}:")
    for args in (("--cutoff", TODAY.isoformat()), ("--cutoff", "yesterday")):
        refused = run(history, "model", "backtest", *args)
        assert refused.exit_code != 0 and len(refused.output.strip().splitlines()) == 1


def count_queries(action) -> int:
    statements = []

    def record(*_):
        statements.append(1)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        action()
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    return len(statements)


def test_the_customer_page_shows_risk_trend_and_drivers(history):
    if service.current() is None:
        service.train("test")
        db.session.commit()
    client = history.test_client()
    Auth(history, client).login("viewer")
    active = db.session.scalars(select(Customer).where(Customer.status == "active").order_by(Customer.id)).all()
    html = client.get(f"/customers/{active[0].public_id}").get_data(as_text=True)
    assert "Churn risk" in html and "within 30 days" in html and "days ago." in html
    assert html.count("<strong>Raises</strong>") + html.count("<strong>Lowers</strong>") == 3
    newest = max(active, key=lambda customer: customer.signup_date)
    oldest, new = (count_queries(lambda: service.risk_of(key)) for key in (active[0].id, newest.id))
    assert oldest == new <= 12


def test_engagement_windows_whatever_the_spacing_of_the_dates(ctx):
    customer = Customer(email="a@example.com", organization="Acme", github_username="acme",
                        signup_date=TODAY - dt.timedelta(days=200))
    db.session.add(customer)
    db.session.flush()
    for days_ago, rejected, merged, support in ((3, 3, 1, 1), (20, 0, 2, 0), (35, 1, 3, 2), (70, 5, 5, 0)):
        day = TODAY - dt.timedelta(days=days_ago)
        db.session.add(Engagement(customer_id=customer.id, date=day, prs_generated=rejected + merged,
                                  prs_rejected=rejected, prs_merged=merged, support_requests=support))
    db.session.commit()
    page = [TODAY - dt.timedelta(days=30), TODAY - dt.timedelta(days=7), TODAY]
    training = [TODAY - dt.timedelta(days=14), TODAY]
    for dates in (page, training):
        found = features.engagement(dates, [customer.id])
        assert found[customer.id, TODAY] == (3, 3, 1, 3, 1, 3)  # last 4 weeks: 3 rejected, 3 merged; before: 1 and 3
    assert features.engagement(page, [customer.id])[customer.id, page[0]] == (1, 3, 5, 5, 2, 5)
    assert features.engagement(training, [customer.id])[customer.id, training[0]] == (1, 5, 0, 0, 2, 6)


def test_without_a_model_the_page_says_how_to_train_one(app, client, auth, tracking):
    with app.app_context():
        customer = Customer(email="a@example.com", organization="Acme", github_username="acme", signup_date=TODAY)
        db.session.add(customer)
        db.session.commit()
        public_id = customer.public_id
    auth.login("viewer")
    html = client.get(f"/customers/{public_id}").get_data(as_text=True)
    assert "No churn model has been trained yet" in html and "customer-tracking model train" in html
    for command in ("train", "show", "backtest"):
        result = tracking("model", command)
        assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1, result.output


def test_churn_demo_fills_an_empty_database_only(app, runner):
    result = runner.invoke(args=["churn-demo", "--customers", "12", "--days", "60"])
    assert result.exit_code == 0 and "12 customers" in result.output
    again = runner.invoke(args=["churn-demo", "--customers", "12", "--days", "60"])
    assert again.exit_code != 0 and "already has customers" in again.output


def test_the_app_and_the_command_line_start_without_numpy_scikit_learn_or_cryptography(tmp_path):
    """They weigh over 100 MB and most of a second on every process: only training and scoring load the first
    two, checking a signed email event the third, METRICS_TOKEN prometheus_client (the export must stay under
    100 MB)."""
    script = ("import sys; from portal import create_app; import portal.cli; "
              f"create_app({{'SQLALCHEMY_DATABASE_URI': 'sqlite:///{tmp_path}/x.db', 'SCHEDULER_ENABLED': False}}); "
              "print(sorted(name for name in ('numpy', 'sklearn', 'scipy', 'cryptography', 'prometheus_client') "
              "if name in sys.modules))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", result.stderr

"""CSV import and export (SPEC section 5): exact files, all-or-nothing imports, idempotence, round trips."""
from __future__ import annotations

import csv
import datetime as dt
import gc
import io
import re
import tracemalloc
import types
import zipfile

import pytest
from hypothesis import given, strategies as st
from sqlalchemy import func, insert, select

from portal import clock
from portal.health import metrics, snapshots
from portal.customers import service
from portal.extensions import db
from portal.models import AuditLog, Customer, Engagement, HealthScore, Onboarding
from portal.transfer import csvformat, exports, imports
from portal.transfer.csvformat import ImportRejected

from .conftest import clean

# Written out from the SPEC rather than taken from the code under test.
SPEC_HEADERS = {
    "customers.csv": "id,email,organization,github_username,signup_date,cohort,industry,team_size,status",
    "onboarding.csv": "id,customer_id,welcome_email_sent,account_created,github_action_installed,first_issue_tagged,"
                      "first_pr_generated,completed_date,days_to_complete,blocker_type,notes",
    "engagement.csv": "id,customer_id,date,issues_tagged,prs_generated,prs_merged,prs_rejected,support_requests",
    "combined_metrics.csv": "customer_id,organization,cohort,signup_date,onboarding_complete,onboarding_percent,"
                            "days_to_complete,blocker_type,total_issues_tagged,total_prs_generated,total_prs_merged,"
                            "success_rate,days_active,health_score,health_status",
}
COLUMNS = {name: tuple(header.split(",")) for name, header in SPEC_HEADERS.items()}
C, O, E = "customers.csv", "onboarding.csv", "engagement.csv"
# One good row per file, for customers the seed does not have; a case changes only what it tests.
DEFAULTS = {
    C: dict(id="c1010", email="new@delta.example", organization="Delta", github_username="delta-dev",
            signup_date="2024-03-01", cohort="GA", industry="Retail", team_size="5", status="active"),
    O: dict(id="o1003", customer_id="c1003", welcome_email_sent="true", **dict.fromkeys(metrics.STEPS[1:], "false"),
            completed_date="", days_to_complete="", blocker_type="billing", notes=""),
    E: dict(id="", customer_id="c1003", date="2024-03-05", issues_tagged="1", prs_generated="1", prs_merged="1",
            prs_rejected="0", support_requests="0"),
}
SIGNUP = dt.date(2024, 1, 10)
COMPLETED_AT = dt.datetime(2024, 1, 15, 9, 30, tzinfo=dt.timezone.utc)


def counts(*values):
    return dict(zip(Engagement.COUNTS, values))


def seed():
    """c1001 onboarded and active; c1002 with formula-like text; c1003 churned, untouched."""
    today = clock.today()
    acme = service.add_customer(dict(email="dev@acme.example", organization="Acme", github_username="acme-dev",
                                     cohort="Beta", industry="SaaS", team_size="12"), "test", SIGNUP)
    for step in metrics.STEPS:
        service.set_step(acme, step, True, "test", when=COMPLETED_AT)
    beta = service.add_customer(dict(email="ops@beta.example", organization="=HYPERLINK(evil)", github_username="beta-co",
                                     cohort="+VIP", industry="@home", team_size="3"), "test", SIGNUP, status="paused")
    service.set_step(beta, "welcome_email_sent", True, "test", when=COMPLETED_AT)
    beta.onboarding.blocker_type, beta.onboarding.notes = "technical", "-1 on the call\n'quoted"
    service.add_customer(dict(email="cfo@gamma.example", organization="'Gamma", github_username="Gamma-HQ",
                              cohort="GA", industry="Finance", team_size="40"), "test", SIGNUP, status="churned")
    service.record_engagement(acme, counts(3, 2, 1, 1, 0), "test", today)
    service.record_engagement(acme, counts(1, 2, 2, 0, 1), "test", today - dt.timedelta(days=3))
    service.record_engagement(beta, counts(0, 1, 0, 1, 0), "test", today - dt.timedelta(days=40))  # outside the window
    snapshots.recalculate()
    db.session.commit()


@pytest.fixture
def seeded(app):
    with app.app_context():
        seed()
    return app


@pytest.fixture
def seeded_ctx(seeded):
    with seeded.app_context():
        yield seeded
        db.session.remove()


def csv_text(name, *rows, header=None):
    """A file: each row is a dict of changes to DEFAULTS[name], or a list of raw cells."""
    header = header or COLUMNS[name]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(row if isinstance(row, list) else [{**DEFAULTS[name], **row}.get(column, "") for column in header])
    return out.getvalue()


def zip_of(path, files):
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return path


def import_text(name, text):
    return imports.import_files({name: io.StringIO(text, newline="")})


def unzip(source):
    with zipfile.ZipFile(source) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def exported(app):
    buffer = io.BytesIO()
    with app.app_context():
        exports.write_zip(buffer)
    return {name: content.decode() for name, content in unzip(buffer).items()}


def records(text):
    return list(csv.DictReader(io.StringIO(text, newline="")))


def snapshot():
    """Every row of every table: what a rejected or repeated import must leave alone."""
    return {
        table.name: db.session.execute(select(table).order_by(*table.primary_key.columns)).all()
        for table in db.metadata.sorted_tables
    }


def today_scores():
    return db.session.execute(
        select(HealthScore.customer_id, HealthScore.score, HealthScore.status, HealthScore.stage, HealthScore.days_active)
        .where(HealthScore.date == clock.today()).order_by(HealthScore.customer_id)
    ).all()


def audit_count():
    return db.session.scalar(select(func.count()).select_from(AuditLog))


# csvformat ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("value, text", [
    (None, ""), (True, "true"), (False, "false"), (dt.date(2024, 2, 9), "2024-02-09"), (12, "12"), ("Acme", "Acme"),
    ("=1+2", "'=1+2"), ("+VIP", "'+VIP"), ("-x", "'-x"), ("@home", "'@home"), ("'quoted", "''quoted"), ("a=b", "a=b"),
])
def test_cell_writes_iso_dates_lowercase_booleans_and_neutralises_formulas(value, text):
    assert csvformat.cell(value) == text


@given(st.text())
def test_restore_undoes_cell_for_any_text(text):
    assert csvformat.restore(csvformat.cell(text)) == text


# export ------------------------------------------------------------------------------------------


def test_export_writes_the_four_spec_files_exactly(seeded_ctx):
    files = exported(seeded_ctx)
    today = clock.today()
    assert sorted(files) == sorted(SPEC_HEADERS)
    for name, header in SPEC_HEADERS.items():
        assert files[name].split("\n", 1)[0] == header
    rows = {name: list(csv.reader(io.StringIO(text, newline="")))[1:] for name, text in files.items()}
    assert rows[C] == [
        ["c1001", "dev@acme.example", "Acme", "acme-dev", "2024-01-10", "Beta", "SaaS", "12", "active"],
        ["c1002", "ops@beta.example", "'=HYPERLINK(evil)", "beta-co", "2024-01-10", "'+VIP", "'@home", "3", "paused"],
        ["c1003", "cfo@gamma.example", "''Gamma", "Gamma-HQ", "2024-01-10", "GA", "Finance", "40", "churned"],
    ]
    assert rows[O] == [
        ["o1001", "c1001", *["true"] * 5, "2024-01-15", "5", "none", ""],
        ["o1002", "c1002", "true", *["false"] * 4, "", "", "technical", "'-1 on the call\n'quoted"],
        ["o1003", "c1003", *["false"] * 5, "", "", "none", ""],
    ]
    days_ago = lambda days: (today - dt.timedelta(days=days)).isoformat()  # noqa: E731
    assert rows[E] == [
        ["e1001", "c1001", today.isoformat(), "3", "2", "1", "1", "0"],
        ["e1002", "c1001", days_ago(3), "1", "2", "2", "0", "1"],
        ["e1003", "c1002", days_ago(40), "0", "1", "0", "1", "0"],
    ]
    # c1001: 30 + 2 days x 5 + 75% x 0.25 + 4 PRs x 2 = 66.75; c1002: 20% x 0.3 + 1 PR x 2 = 8
    assert rows["combined_metrics.csv"] == [
        ["c1001", "Acme", "Beta", "2024-01-10", "true", "100", "5", "none", "4", "4", "3", "75", "2", "66", "needs_attention"],
        ["c1002", "'=HYPERLINK(evil)", "'+VIP", "2024-01-10", "false", "20", "", "technical", "0", "1", "0", "0", "0", "8",
         "at_risk"],
        ["c1003", "''Gamma", "GA", "2024-01-10", "false", "0", "", "none", "0", "0", "0", "0", "0", "0", "at_risk"],
    ]


def test_combined_metrics_scores_follow_from_their_own_columns(seeded_ctx):
    rows = records(exported(seeded_ctx)["combined_metrics.csv"])
    for row in rows:
        generated, merged, rate = (int(row[c]) for c in ("total_prs_generated", "total_prs_merged", "success_rate"))
        assert rate == metrics.success_rate(merged, generated)
        parts = metrics.components(int(row["onboarding_percent"]), row["onboarding_complete"] == "true",
                                   int(row["days_active"]), rate, generated)
        score = metrics.truncate(sum(parts))
        assert (int(row["health_score"]), row["health_status"]) == (score, metrics.health_status(score))
    assert [(row["customer_id"], int(row["health_score"])) for row in rows] == [
        (f"c{1000 + score.customer_id}", score.score) for score in today_scores()
    ]


def test_engagement_export_streams_in_chunks(ctx):
    customer = service.add_customer(dict(email="big@zeta.example", organization="Zeta", github_username="zeta"), "test")
    first = dt.date(1970, 1, 1)
    rows = [{"customer_id": customer.id, "date": first + dt.timedelta(days=n), **counts(n % 7, 1, 0, 0, 0)}
            for n in range(20_000)]
    db.session.execute(insert(Engagement.__table__), rows)
    db.session.commit()
    chunks = exports.csv_chunks(E)
    assert isinstance(chunks, types.GeneratorType)
    chunks = list(chunks)
    whole = io.StringIO()
    exports.write_csv(E, whole)
    assert "".join(chunks) == whole.getvalue()
    assert len([chunk for chunk in chunks if chunk]) >= 20_000 // exports.BATCH
    assert all(chunk.endswith("\n") for chunk in chunks if chunk)
    assert whole.getvalue().count("\n") == 20_001
    assert whole.getvalue().endswith(f"\ne21000,c1001,{first + dt.timedelta(days=19_999)},0,1,0,0,0\n")


def test_engagement_from_the_database_s_own_csv_is_what_cell_writes(ctx):
    """PostgreSQL's COPY writes engagement.csv's text itself: the same bytes as each value through csvformat.cell()."""
    customer = service.add_customer(dict(email="big@zeta.example", organization="Zeta", github_username="zeta"), "test")
    first = dt.date(2000, 1, 1)
    db.session.execute(insert(Engagement.__table__), [
        {"customer_id": customer.id, "date": first + dt.timedelta(days=n), **counts(n, 2_147_483_647, 0, n % 3, 1)}
        for n in range(12_000)])
    db.session.commit()
    columns = [getattr(Engagement, column) for column in COLUMNS[E]]
    rows = [(f"e{key + 1000}", f"c{customer + 1000}", *rest)
            for key, customer, *rest in db.session.execute(select(*columns).order_by(Engagement.id))]
    by_cell = io.StringIO()
    csv.writer(by_cell, lineterminator="\n").writerows([csvformat.cell(value) for value in row] for row in rows)
    whole = io.StringIO()
    exports.write_csv(E, whole)
    assert whole.getvalue() == SPEC_HEADERS[E] + "\n" + by_cell.getvalue()
    assert "".join(exports.csv_chunks(E)) == whole.getvalue()


# rejected imports --------------------------------------------------------------------------------


def header_without(name, column):
    return [c for c in COLUMNS[name] if c != column]


BAD_FILES = [
    ("missing column", C, csv_text(C, {}, header=header_without(C, "cohort")), [(1, "cohort", "missing column")]),
    ("extra column", E, csv_text(E, {}, header=[*COLUMNS[E], "plan"]), [(1, "plan", "unexpected column")]),
    ("empty file", C, "", [(1, "", "the file is empty")]),
    ("bad signup date", C, csv_text(C, {"signup_date": "2024-02-30"}), [(2, "signup_date", "YYYY-MM-DD")]),
    ("bad engagement date", E, csv_text(E, {"date": "05/03/2024"}), [(2, "date", "YYYY-MM-DD")]),
    ("bad completed date", O, csv_text(O, {"completed_date": "yesterday"}), [(2, "completed_date", "YYYY-MM-DD")]),
    ("bad boolean", O, csv_text(O, {"account_created": "yes"}), [(2, "account_created", "true or false")]),
    ("bad blocker", O, csv_text(O, {"blocker_type": "weather"}), [(2, "blocker_type", "must be one of")]),
    ("duplicate customer id", C, csv_text(C, {}, {"email": "b@delta.example", "github_username": "delta-2"}),
     [(3, "id", "duplicate of line 2")]),
    ("duplicate engagement id", E, csv_text(E, {"id": "e1010"}, {"id": "E1010", "date": "2024-03-06"}),
     [(3, "id", "duplicate of line 2")]),
    ("duplicate onboarding row", O, csv_text(O, {}, {}), [(3, "customer_id", "duplicate of line 2")]),
    ("same customer and day twice", E, csv_text(E, {}, {"issues_tagged": "4"}), [(3, "date", "also on line 2")]),
    ("unknown customer in onboarding", O, csv_text(O, {"id": "o1099", "customer_id": "c1099"}),
     [(2, "customer_id", "unknown customer c1099")]),
    ("two unknown customers in onboarding", O, csv_text(O, {"id": "", "customer_id": "c1098"},
                                                          {"id": "", "customer_id": "c1099"}),
     [(2, "customer_id", "unknown customer c1098"), (3, "customer_id", "unknown customer c1099")]),
    ("unknown customer in engagement", E, csv_text(E, {"customer_id": "c1099"}),
     [(2, "customer_id", "unknown customer c1099")]),
    ("onboarding of another customer", O, csv_text(O, {"id": "o1001"}), [(2, "id", "not the onboarding of c1003")]),
    ("engagement id of another row", E, csv_text(E, {"id": "e1001"}), [(2, "id", "in the portal")]),
    ("negative count", E, csv_text(E, {"prs_generated": "-1"}), [(2, "prs_generated", "at least 0")]),
    ("non-integer count", E, csv_text(E, {"issues_tagged": "2.5"}), [(2, "issues_tagged", "whole number")]),
    ("invalid email", C, csv_text(C, {"email": "not-an-email"}), [(2, "email", "invalid email")]),
    ("duplicate email in the file", C, csv_text(C, {}, {"id": "c1011", "email": "NEW@Delta.example",
                                                        "github_username": "delta-2"}),
     [(3, "email", "duplicate of line 2")]),
    ("duplicate email in the database", C, csv_text(C, {"email": "Dev@ACME.example"}),
     [(2, "email", "already belongs to c1001")]),
    ("duplicate login in the file", C, csv_text(C, {}, {"id": "c1011", "email": "b@delta.example",
                                                        "github_username": "DELTA-DEV"}),
     [(3, "github_username", "duplicate of line 2")]),
    ("duplicate login in the database", C, csv_text(C, {"github_username": "Acme-DEV"}),
     [(2, "github_username", "already belongs to c1001")]),
    ("team size 0", C, csv_text(C, {"team_size": "0"}), [(2, "team_size", "at least 1")]),
    ("team size past an INTEGER", C, csv_text(C, {"team_size": "2147483648"}), [(2, "team_size", "from 1 to 1,000,000")]),
    ("count past an INTEGER", E, csv_text(E, {"issues_tagged": "2147483648"}),
     [(2, "issues_tagged", "at most 2,147,483,647")]),
    ("count of 5,000 digits", E, csv_text(E, {"prs_merged": "9" * 5000}), [(2, "prs_merged", "from 0 to 2,147,483,647")]),
    ("days to complete past an INTEGER", O, csv_text(O, {"days_to_complete": "99999999999"}),
     [(2, "days_to_complete", "from 0 to 2,147,483,647")]),
    ("signup date of 1900", C, csv_text(C, {"signup_date": "1900-01-01"}),
     [(2, "signup_date", "must be from 2000-01-01 to")]),
    ("engagement date of 2283", E, csv_text(E, {"date": "2283-01-01"}), [(2, "date", "must be from 2000-01-01 to")]),
    ("engagement date of 1999", E, csv_text(E, {"date": "1999-12-31"}), [(2, "date", "must be from 2000-01-01 to")]),
    ("completed date of 1900", O, csv_text(O, {"completed_date": "1900-01-01"}),
     [(2, "completed_date", "must be from 2000-01-01 to")]),
    ("cohort too long", C, csv_text(C, {"cohort": "x" * 51}), [(2, "cohort", "longer than 50")]),
    ("too few cells", C, csv_text(C, ["c1010", "x@delta.example"]), [(2, "", "expected 9 cells, found 2")]),
    ("too many cells", E, csv_text(E, [*DEFAULTS[E].values(), "9"]), [(2, "", "expected 8 cells, found 9")]),
    ("several bad lines", C, csv_text(
        C, {}, {"id": "c1011", "email": "bad", "github_username": "d2"},
        {"id": "c1012", "email": "c@delta.example", "github_username": "d3", "team_size": "0", "signup_date": "soon"},
        {"id": "c1013", "email": "d@delta.example", "github_username": "d4"}, {"id": "c1014", "github_username": "d5"}),
     [(3, "email", "invalid email"), (4, "signup_date", "YYYY-MM-DD"), (4, "team_size", "at least 1"),
      (6, "email", "duplicate of line 2")]),
]


def problems_of(line: str) -> list[str]:
    """`f.csv line 4: a: x; b: y` (one bad row a line) as `f.csv line 4, a: x` and `f.csv line 4, b: y`."""
    where, _, problems = re.match(r"(\S+ line \d+): (.*)", line).group(1, 0, 2)
    split = []
    for problem in problems.split("; "):
        column, _, reason = problem.partition(": ")
        split.append(f"{where}, {problem}" if column.isidentifier() and reason else f"{where}: {problem}")
    return split


@pytest.fixture(params=["service", "cli"])
def reject(request, seeded, tracking, tmp_path):
    """Import a bad file one way or the other; return the reported errors, one string a problem."""

    def by_service(name, text):
        with seeded.app_context():
            with pytest.raises(ImportRejected) as rejected:
                import_text(name, text)
            db.session.commit()  # nothing was left pending either
        return [str(error) for error in rejected.value.errors]

    def by_cli(name, text):
        path = tmp_path / name
        path.write_text(text)
        result = tracking("import-data", path)
        assert result.exit_code != 0 and result.stdout == ""
        *lines, summary = result.stderr.splitlines()
        assert summary == f"customer-tracking: {len(lines)} bad line(s); nothing was imported"
        return [problem for line in lines for problem in problems_of(line)]

    return by_service if request.param == "service" else by_cli


@pytest.mark.parametrize("name, text, expected", [case[1:] for case in BAD_FILES], ids=[case[0] for case in BAD_FILES])
def test_a_bad_file_is_rejected_whole_with_every_bad_line(seeded, reject, name, text, expected):
    with seeded.app_context():
        before = snapshot()
    reported = reject(name, text)
    assert len(reported) == len(expected), reported
    for (line, column, reason), message in zip(expected, reported):
        where = f"{name} line {line}" + (f", {column}" if column else "")
        assert message.startswith(where + ": ") and reason in message, (message, where, reason)
    with seeded.app_context():
        assert snapshot() == before


def test_one_bad_file_in_a_zip_rejects_the_others_too(seeded_ctx, tmp_path):
    before = snapshot()
    path = zip_of(tmp_path / "mixed.zip", {C: csv_text(C, {}), E: csv_text(E, {"date": "2024-13-01"})})
    with pytest.raises(ImportRejected) as rejected:
        imports.import_path(path)
    assert [str(error) for error in rejected.value.errors] == [
        "engagement.csv line 2, date: date must be a date as YYYY-MM-DD, not '2024-13-01'"
    ]
    db.session.commit()
    assert snapshot() == before


def test_a_file_that_is_not_one_of_the_three_is_refused(seeded_ctx, tmp_path):
    path = tmp_path / "clients.csv"
    path.write_text(csv_text(C, {}))
    with pytest.raises(ImportRejected, match="1 bad line"):
        imports.import_path(path)


# accepted imports --------------------------------------------------------------------------------


def test_round_trip_through_an_empty_database_changes_no_byte(seeded, tracking, tmp_path):
    first, second = tmp_path / "first.zip", tmp_path / "second.zip"
    assert tracking("export-data", "--output", first).exit_code == 0
    with seeded.app_context():
        scores = today_scores()
    clean(seeded)
    result = tracking("import-data", first)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == ("customers.csv: 3 created, 0 updated, 0 unchanged; "
                                     "onboarding.csv: 0 created, 2 updated, 1 unchanged; "
                                     "engagement.csv: 3 created, 0 updated, 0 unchanged")
    assert tracking("export-data", "--output", second).exit_code == 0
    assert unzip(second) == unzip(first) and len(unzip(first)) == 4
    with seeded.app_context():
        assert today_scores() == scores
        beta, gamma = db.session.get(Customer, 2), db.session.get(Customer, 3)
        restored = (beta.organization, beta.cohort, beta.industry, gamma.organization)
        assert restored == ("=HYPERLINK(evil)", "+VIP", "@home", "'Gamma")
        assert beta.onboarding.notes == "-1 on the call\n'quoted"
    # The sequences were moved past the imported ids (PostgreSQL; SQLite does it on its own).
    added = tracking("add-customer", "next@eta.example", "Eta", "eta", "GA", "Media", 2)
    assert (added.exit_code, added.stdout.strip()) == (0, "c1004"), added.stderr
    recorded = tracking("record-engagement", "c1004", 1, 0, 0, 0, 0)
    assert recorded.exit_code == 0 and recorded.stdout.startswith("e1004 c1004"), recorded.stderr


def test_new_rows_after_imported_ids_take_the_next_ids(app, tracking, tmp_path):
    path = zip_of(tmp_path / "ids.zip", {C: csv_text(C, {"id": "c1050"}),
                                         E: csv_text(E, {"id": "e1050", "customer_id": "c1050"})})
    assert tracking("import-data", path).exit_code == 0
    with app.app_context():
        keyless = import_text(C, csv_text(C, {"id": "", "email": "keyless@delta.example", "github_username": "keyless"}))
        db.session.commit()
    assert keyless.created == {C: 1}
    assert tracking("add-customer", "next@eta.example", "Eta", "eta", "GA", "Media", 2).stdout.strip() == "c1052"
    assert tracking("record-engagement", "c1051", 1, 0, 0, 0, 0).stdout.startswith("e1051 c1051")


def test_importing_the_same_file_twice_changes_nothing(seeded, tracking, tmp_path):
    with seeded.app_context():
        today = clock.today().isoformat()
    path = zip_of(tmp_path / "changes.zip", {
        C: csv_text(C, {}, {"id": "c1001", "email": "dev@acme.example", "organization": "Acme Corp",
                            "github_username": "acme-dev", "signup_date": "2024-01-10"}),
        O: csv_text(O, {"blocker_type": "permissions", "notes": "=needs admin"}),
        E: csv_text(E, {"customer_id": "c1010", "date": today}, {"id": "e1001", "customer_id": "c1001", "date": today}),
        "combined_metrics.csv": "ignored,on,import\n",
    })
    first = tracking("import-data", path)
    assert first.exit_code == 0, first.stderr
    with seeded.app_context():
        after_first, audits = snapshot(), audit_count()
    second = tracking("import-data", path)
    assert second.exit_code == 0, second.stderr
    assert second.stdout.strip() == ("customers.csv: 0 created, 0 updated, 2 unchanged; "
                                     "onboarding.csv: 0 created, 0 updated, 1 unchanged; "
                                     "engagement.csv: 0 created, 0 updated, 2 unchanged")
    with seeded.app_context():
        assert (snapshot(), audit_count()) == (after_first, audits)


def test_rows_are_keyed_by_id_and_customers_without_id_by_email(seeded_ctx):
    result = import_text(C, csv_text(
        C, {"id": "", "email": "DEV@ACME.example", "organization": "Acme Corp", "github_username": "acme-dev",
            "signup_date": "2024-01-10", "cohort": "Beta", "industry": "SaaS", "team_size": "12"},
        {"id": "c1002", "email": "billing@beta.example", "organization": "Beta Ltd", "github_username": "beta-co",
         "signup_date": "2024-01-10", "cohort": "+VIP", "industry": "", "status": "paused"},
        {"id": ""},
    ))
    db.session.commit()
    assert (result.created, result.updated) == ({C: 1}, {C: 2})
    rows = db.session.execute(select(Customer.id, Customer.email, Customer.organization).order_by(Customer.id)).all()
    assert rows == [(1, "dev@acme.example", "Acme Corp"), (2, "billing@beta.example", "Beta Ltd"),
                    (3, "cfo@gamma.example", "'Gamma"), (4, "new@delta.example", "Delta")]
    assert db.session.get(Onboarding, 4).customer_id == 4
    changes = db.session.execute(select(AuditLog.record_id, AuditLog.field, AuditLog.old_value, AuditLog.new_value)
                                 .filter_by(actor="import").order_by(AuditLog.id)).all()
    assert changes == [("c1001", "organization", "Acme", "Acme Corp"),
                       ("c1002", "email", "ops@beta.example", "billing@beta.example"),
                       ("c1002", "organization", "=HYPERLINK(evil)", "Beta Ltd"),
                       ("c1002", "industry", "@home", ""),
                       ("c1002", "team_size", "3", "5"),
                       ("c1004", "record", None, "created")]


def test_an_engagement_row_replaces_that_days_totals_and_rescores(seeded_ctx):
    today = clock.today()
    before = today_scores()
    import_text(E, csv_text(
        E, {"id": "e1001", "customer_id": "c1001", "date": today.isoformat(), **counts("1", "1", "1", "0", "0")},
        {"customer_id": "c1001", "date": (today - dt.timedelta(days=3)).isoformat(), **counts(*"00000")},
        {"customer_id": "c1003", "date": today.isoformat(), **counts("2", "2", "2", "0", "0")},
    ))
    db.session.commit()
    columns = [Engagement.id, Engagement.customer_id, *(getattr(Engagement, count) for count in Engagement.COUNTS)]
    rows = db.session.execute(select(*columns).order_by(Engagement.id)).all()
    assert rows == [(1, 1, 1, 1, 1, 0, 0), (2, 1, 0, 0, 0, 0, 0), (3, 2, 0, 1, 0, 1, 0), (4, 3, 2, 2, 2, 0, 0)]
    changes = db.session.execute(select(AuditLog.record_id, AuditLog.field, AuditLog.old_value, AuditLog.new_value)
                                 .filter_by(actor="import", table_name="engagement").order_by(AuditLog.id)).all()
    assert ("e1001", "issues_tagged", "3", "1") in changes and ("e1002", "support_requests", "1", "0") in changes
    assert ("engagement.csv", "rows_created", None, "1") in changes
    # c1001: 30 + 1 day x 5 + 100% x 0.25 + 1 PR x 2 = 62; c1003 is churned: 5 + 25 + 4 = 34
    assert today_scores() == [(1, 62, "needs_attention", "regular_usage", 1), before[1],
                              (3, 34, "at_risk", "churned", 1)]


def test_a_file_with_more_ids_than_one_statement_can_bind_imports(seeded_ctx):
    """70,000 new ids: more than PostgreSQL's 65,535 parameters a statement, so no IN list of them."""
    first, days = dt.date(2000, 1, 1), 7_000  # ten customers' days within the plausible dates
    for number in range(10):
        service.add_customer(dict(email=f"bulk{number}@eta.example", organization="Eta", github_username=f"eta-{number}"),
                             "test")
    rows = [[f"e{2000 + number}", f"c{1004 + number // days}", (first + dt.timedelta(days=number % days)).isoformat(),
             "1", "0", "0", "0", "0"] for number in range(70_000)]
    result = import_text(E, csv_text(E, *rows))
    db.session.commit()
    assert result.created == {E: 70_000}
    assert db.session.scalar(select(func.max(Engagement.id))) == 1000 + 69_999


def test_counts_with_spaces_or_a_plus_sign_land_in_their_own_columns(seeded_ctx):
    import_text(E, csv_text(E, counts(" 3", "+4", "1", "0 ", "5")))
    row = db.session.scalars(select(Engagement).filter_by(customer_id=3)).one()
    assert [getattr(row, count) for count in Engagement.COUNTS] == [3, 4, 1, 0, 5]


ALL_TRUE = dict.fromkeys(metrics.STEPS, "true")


@pytest.mark.parametrize("row, expected", [
    ({**ALL_TRUE, "completed_date": "2024-02-01", "days_to_complete": "30"}, (dt.date(2024, 2, 1), 30)),
    ({**ALL_TRUE, "completed_date": "2024-02-01"}, (dt.date(2024, 2, 1), 22)),
    (ALL_TRUE, ("today", "since signup")),
    ({"account_created": "true", "completed_date": "2024-02-01", "days_to_complete": "22"}, (None, None)),
], ids=["kept", "days from signup", "completed today", "dropped when a step is false"])
def test_completion_is_kept_only_when_all_five_steps_are_true(seeded_ctx, row, expected):
    import_text(O, csv_text(O, row))
    db.session.commit()
    today = clock.today()
    if expected[0] == "today":
        expected = (today, (today - SIGNUP).days)
    onboarding = db.session.get(Onboarding, 3)
    assert (onboarding.completed_date, onboarding.days_to_complete) == expected
    assert onboarding.account_created_at is not None and onboarding.blocker_type == "billing"
    changed = set(db.session.scalars(select(AuditLog.field).filter_by(actor="import", record_id="o1003")))
    assert {"welcome_email_sent", "account_created", "blocker_type"} <= changed


def test_dates_from_2000_to_tomorrow_are_accepted_and_the_day_after_is_not(seeded_ctx):
    tomorrow = clock.today() + dt.timedelta(days=1)
    result = import_text(E, csv_text(E, {"date": "2000-01-01"}, {"date": tomorrow.isoformat()}))
    assert result.created == {E: 2}
    import_text(C, csv_text(C, {"signup_date": "2000-01-01"}))
    import_text(O, csv_text(O, {**ALL_TRUE, "completed_date": tomorrow.isoformat()}))
    with pytest.raises(ImportRejected) as rejected:
        import_text(E, csv_text(E, {"date": (tomorrow + dt.timedelta(days=1)).isoformat()}))
    assert rejected.value.lines() == [f"engagement.csv line 2: date: date must be from 2000-01-01 to {tomorrow}, "
                                      f"not {tomorrow + dt.timedelta(days=1)}"]


def test_an_excel_file_with_bom_and_crlf_imports(seeded_ctx, tmp_path):
    path = tmp_path / C
    path.write_bytes(csv_text(C, {}).replace("\n", "\r\n").encode("utf-8-sig"))
    assert imports.import_path(path).created == {C: 1}
    assert db.session.get(Customer, 10).email == "new@delta.example"


# large imports -----------------------------------------------------------------------------------


def bulk_files(today: dt.date) -> dict[str, str]:
    """A zip's worth of rows spanning many small batches: new customers with and without ids, existing ones
    updated by id and by email, onboarding steps reached, engagement rows created, replaced and left as they are."""
    customers = [{"id": "c1001", "email": "dev@acme.example", "organization": "Acme Corp", "github_username": "acme-dev",
                  "signup_date": "2024-01-10", "cohort": "Beta", "industry": "SaaS", "team_size": "12"},
                 {"id": "", "email": "CFO@gamma.example", "organization": "Gamma", "github_username": "Gamma-HQ",
                  "signup_date": "2024-01-10", "cohort": "=GA", "industry": "Finance", "team_size": "41",
                  "status": "churned"}]
    customers += [{"id": f"c{1010 + n}", "email": f"team{n}@bulk.example", "organization": f"Bulk {n}",
                   "github_username": f"bulk-{n}", "cohort": ("VIP", "Beta", "GA")[n % 3], "team_size": str(1 + n)}
                  for n in range(25)]
    customers += [{"id": "", "email": f"nokey{n}@bulk.example", "organization": f"No key {n}",
                   "github_username": f"nokey-{n}"} for n in range(6)]
    onboarding = [{"id": f"o{1010 + n}", "customer_id": f"c{1010 + n}",
                   **{step: "true" if index <= n % 6 else "false" for index, step in enumerate(metrics.STEPS)},
                   "blocker_type": ("none", "billing", "technical")[n % 3], "notes": f"-note {n}" if n % 4 else ""}
                  for n in range(25)]
    onboarding.append({"id": "", "customer_id": "c1002", **ALL_TRUE, "completed_date": "2024-02-01",
                       "blocker_type": "none"})
    days = [(today - dt.timedelta(days=offset)).isoformat() for offset in range(12)]
    engagement = [{"id": f"e{1100 + n}" if n % 3 else "", "customer_id": f"c{1010 + n % 25}", "date": days[n // 25],
                   **counts(*(str((n * factor) % 7) for factor in (1, 2, 3, 5, 11)))} for n in range(250)]
    engagement += [{"id": "e1001", "customer_id": "c1001", "date": today.isoformat(), **counts(*"90000")},
                   {"id": "", "customer_id": "c1001", "date": days[3], **counts(*"12201")},
                   {"id": "e1003", "customer_id": "c1002", "date": (today - dt.timedelta(days=40)).isoformat(),
                    **counts(*"01010")}]
    return {C: csv_text(C, *customers), O: csv_text(O, *onboarding), E: csv_text(E, *engagement)}


MOMENT = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d")


def without_times(tables: dict) -> dict:
    """A snapshot with its timestamps blanked (the audit's text of them too): they say when the import ran, not
    what it wrote."""
    def blank(value):
        moment = isinstance(value, dt.datetime) or isinstance(value, str) and MOMENT.match(value)
        return "<time>" if moment else value

    return {name: [tuple(blank(value) for value in row) for row in rows] for name, rows in tables.items()}


def import_bulk(app, tmp_path, batch_rows, extra=None):
    """Import bulk_files() (with extra rows appended to some files) in batches of batch_rows, commit."""
    with app.app_context():
        files = bulk_files(clock.today())
        for name, text in (extra or {}).items():
            files[name] += text
        path = zip_of(tmp_path / f"bulk-{batch_rows}.zip", files)
        app.config["IMPORT_BATCH_ROWS"] = batch_rows
        try:
            return imports.import_path(path)
        finally:
            db.session.commit()


def test_an_import_in_many_small_batches_writes_what_one_batch_does(app, tmp_path):
    """Thirty batches of 7 rows and one batch hold the same customers, onboarding, engagement, audit trail, emails and
    scores (the row-by-row import before batches wrote the same, timestamps aside)."""
    with app.app_context():
        seed()
    small = import_bulk(app, tmp_path, 7)
    with app.app_context():
        written = without_times(snapshot())
    clean(app)
    with app.app_context():
        seed()
    whole = import_bulk(app, tmp_path, 100_000)
    with app.app_context():
        assert without_times(snapshot()) == written
    assert small == whole
    assert (small.created, small.updated, small.unchanged) == (
        {C: 31, E: 250}, {C: 2, O: 26, E: 1}, {E: 2})
    assert len(written["audit_log"]) == 294 and len(written["email_notifications"]) == 83


@pytest.mark.parametrize("extra", [
    {E: ",c1010,2026-01-01,1,1,1,0,0\n,c1010,2026-01-01,2,1,1,0,0\n"},
    {C: "c1090,late@bulk.example,Late,late-one,2024-01-01,GA,SaaS,0,active\n"},
    {O: "o1011,c1011,true,true,maybe,false,false,,,none,\n"},
], ids=["duplicate day in a later batch", "bad customer in a later batch", "bad onboarding in a later batch"])
def test_a_bad_line_in_a_later_batch_changes_nothing(app, tmp_path, extra):
    with app.app_context():
        seed()
        before = snapshot()
    with pytest.raises(ImportRejected) as rejected:
        import_bulk(app, tmp_path, 7, extra)
    assert rejected.value.bad.count == 1
    with app.app_context():
        assert snapshot() == before


def test_an_import_holds_no_rows_in_memory(ctx, tmp_path):
    """Four times the rows, about the same peak: rows wait on disk or in the database, a batch at a time in memory."""
    ctx.config["IMPORT_BATCH_ROWS"] = 500
    first = dt.date(2020, 1, 1)
    db.session.execute(insert(Customer.__table__), [
        {"id": key, "email": f"m{key}@mem.example", "organization": "Mem", "github_username": f"mem-{key}",
         "signup_date": first} for key in range(1, 21)])
    db.session.commit()

    def peak(rows):
        path = tmp_path / E
        path.write_text(csv_text(E, *({"customer_id": f"c{1001 + n % 20}",
                                       "date": (first + dt.timedelta(days=n // 20)).isoformat()} for n in range(rows))))
        db.session.execute(Engagement.__table__.delete())
        gc.collect()
        tracemalloc.start()
        try:
            result = imports.import_path(path)
            top = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        db.session.rollback()
        assert result.created == {E: rows}
        return top

    peak(300)  # the first import's statements and caches are built once
    small, large = peak(1_500), peak(6_000)
    assert large < small * 1.5, f"{small:,} bytes for 1,500 rows, {large:,} for 6,000"

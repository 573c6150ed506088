"""The schema: one Alembic chain that matches the models, and rules the database itself enforces."""
from __future__ import annotations

import datetime as dt
import warnings

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from portal.extensions import db
from portal.models import Customer, Engagement, Event, HealthScore, Onboarding, User

from .conftest import POSTGRES, make_app


@pytest.fixture
def empty_app(databases):
    app = make_app(databases.new())
    yield app
    with app.app_context():
        db.engine.dispose()


def test_upgrade_builds_everything_and_downgrade_undoes_it(empty_app):
    with empty_app.app_context():
        upgrade()
        tables = set(inspect(db.engine).get_table_names())
        assert {table.name for table in db.metadata.sorted_tables} <= tables
        with db.engine.connect() as connection:
            assert connection.execute(text("SELECT window_days FROM health_settings")).scalar() == 30
        downgrade(revision="base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        upgrade()
        assert "customers" in inspect(db.engine).get_table_names()


def test_users_from_before_session_tokens_get_one_each(empty_app):
    with empty_app.app_context():
        upgrade(revision="0009_health_scores_score_index")
        with db.engine.begin() as connection:
            for email in ("a@example.com", "b@example.com"):
                connection.execute(text("INSERT INTO users (email, name, password_hash, role, active, created_at) "
                                        "VALUES (:email, 'A', 'x', 'member', true, CURRENT_TIMESTAMP)"), {"email": email})
        upgrade()
        with db.engine.connect() as connection:
            tokens = connection.execute(text("SELECT session_token FROM users")).scalars().all()
        assert len(tokens) == len(set(tokens)) == 2 and all(len(token) >= 40 for token in tokens)
        downgrade(revision="0009_health_scores_score_index")
        with db.engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM users")).scalar() == 2
        assert "session_token" not in {column["name"] for column in inspect(db.engine).get_columns("users")}


def test_models_and_migrations_agree(empty_app):
    with empty_app.app_context():
        upgrade()
        with db.engine.connect() as connection, warnings.catch_warnings():
            # SQLite cannot reflect the expression index on lower(github_username); PostgreSQL compares it.
            warnings.filterwarnings("ignore", "autogenerate skipping metadata-specified expression-based index")
            warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based index")
            differences = compare_metadata(MigrationContext.configure(connection), db.metadata)
        assert differences == []


@pytest.mark.skipif(not POSTGRES, reason="a PostgreSQL storage setting (TEST_POSTGRES_URL)")
def test_event_payloads_are_compressed_with_lz4_where_the_server_has_it(ctx):
    with db.engine.connect() as connection:
        has_lz4 = connection.execute(text(
            "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")).scalar()
        method = connection.execute(text(
            "SELECT attcompression FROM pg_attribute WHERE attrelid = 'events'::regclass AND attname = 'payload'")).scalar()
    assert method == ("l" if has_lz4 else "")


def customer(number=1, **fields):
    values = dict(email=f"c{number}@example.com", organization="Org", github_username=f"login{number}",
                  signup_date=dt.date(2026, 1, 1), cohort="GA", industry="SaaS", team_size=1, status="active")
    values.update(fields)
    return Customer(**values)


def refused(*rows):
    db.session.add_all(rows)
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


@pytest.mark.parametrize(
    "second",
    [
        dict(email="c1@example.com"),
        dict(github_username="LOGIN1"),
        dict(team_size=0),
        dict(status="lost"),
    ],
    ids=["duplicate email", "login in other case", "team size 0", "unknown status"],
)
def test_database_refuses_bad_customers(ctx, second):
    db.session.add(customer(1))
    db.session.commit()
    refused(customer(2, **second))


def test_database_refuses_bad_engagement_and_events(ctx):
    db.session.add(customer(1))
    db.session.commit()
    day = dict(customer_id=1, date=dt.date(2026, 1, 2), issues_tagged=1, prs_generated=0, prs_merged=0,
               prs_rejected=0, support_requests=0)
    db.session.add(Engagement(**day))
    db.session.commit()
    refused(Engagement(**day))
    refused(Engagement(**{**day, "date": dt.date(2026, 1, 3), "prs_merged": -1}))
    refused(Engagement(**{**day, "customer_id": 999}))
    event = dict(source="github", delivery_id="d-1", event_type="ping", payload={})
    db.session.add(Event(**event))
    db.session.commit()
    refused(Event(**event))
    refused(Event(**{**event, "delivery_id": "d-2", "source": "fax"}))


def test_database_refuses_bad_steps_roles_and_scores(ctx):
    db.session.add(customer(1))
    db.session.commit()
    refused(Onboarding(id=1, customer_id=1, blocker_type="weather"))
    refused(User(email="u@example.com", name="U", password_hash="x", role="owner"))
    score = dict(customer_id=1, date=dt.date(2026, 1, 1), status="healthy", stage="onboarding",
                 onboarding_component=0, activity_component=0, success_component=0, volume_component=0,
                 onboarding_percent=0, days_active=0, success_rate=0, prs_generated=0, prs_merged=0, settings_version=1)
    refused(HealthScore(score=101, **score))
    refused(HealthScore(score=50, **{**score, "stage": "dormant"}))


def test_public_ids_round_trip():
    assert Customer(id=1).public_id == "c1001"
    assert Customer.key_of("c1001") == 1 and Customer.key_of(" C1042 ") == 42
    assert Customer.key_of("c1000") is None and Customer.key_of("o1001") is None and Customer.key_of("c") is None
    assert Engagement.key_of("e1005") == 5

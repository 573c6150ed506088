"""The schema: SPEC section 2, with its rules held by the database as well as by the code."""
from __future__ import annotations

import datetime as dt
import secrets
from decimal import Decimal

from flask_login import UserMixin
from sqlalchemy import (
    JSON, BigInteger, Boolean, CheckConstraint, Date, DateTime, ForeignKey, Index, Integer, Numeric,
    SmallInteger, String, Text, UniqueConstraint, func, text as sql, types,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from .extensions import db
from .health.metrics import BLOCKER_TYPES, STAGES, STATUSES as HEALTH_STATUSES, STEPS
from .validation import LARGEST_KEY, whole_number

ROLES = ("admin", "member", "viewer")
CUSTOMER_STATUSES = ("active", "paused", "churned")
EVENT_SOURCES = ("github", "action", "landing", "email_provider", "manual")
EVENT_OUTCOMES = ("processed", "unmatched", "ignored", "failed")
EMAIL_CHANNELS = ("convertkit", "smtp")
EMAIL_STATUSES = ("queued", "sent", "delivered", "opened", "clicked", "bounced", "dropped", "failed")
FEEDBACK_SOURCES = ("survey", "call", "email", "support")
INTERVENTION_KINDS = ("note", "call", "email", "task")
INTERVENTION_STATUSES = ("open", "done", "snoozed", "cancelled")
INTERVENTION_TRIGGERS = ("person", "rule")
SENTIMENTS = ("positive", "neutral", "negative")
JOB_OUTCOMES = ("running", "succeeded", "failed", "skipped")
JOB_TRIGGERS = ("schedule", "manual")
PUBLIC_ID_OFFSET = 1000


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def one_of(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{value}'" for value in values)
    return f"{column} IN ({quoted})"


class UTCDateTime(types.TypeDecorator):
    """Aware UTC datetimes on every database (SQLite drops the offset on its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given where an aware one is required")
        return value.astimezone(dt.timezone.utc) if value is not None else None

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        return value


def format_id(prefix: str, key: int) -> str:
    return f"{prefix}{key + PUBLIC_ID_OFFSET}"


def parse_id(prefix: str, public_id: str) -> int | None:
    """The integer key behind a public id such as c1001, or None when it is not one."""
    text = public_id.strip().lower()
    number = whole_number(text[len(prefix):], LARGEST_KEY + PUBLIC_ID_OFFSET) if text.startswith(prefix) else None
    return number - PUBLIC_ID_OFFSET if number is not None and number > PUBLIC_ID_OFFSET else None


class PublicId:
    """Short human ids (c1001, o1001, e1001) derived from the integer key."""

    PREFIX = ""
    id: Mapped[int]

    @property
    def public_id(self) -> str:
        return format_id(self.PREFIX, self.id)

    @classmethod
    def key_of(cls, public_id: str) -> int | None:
        return parse_id(cls.PREFIX, public_id)


def new_session_token() -> str:
    return secrets.token_urlsafe(32)


class User(UserMixin, db.Model):
    """A team member. The session and the remember-me cookie carry `session_token` rather than the id (Flask-Login's
    alternative tokens), so giving the user a new token ends every session and remember cookie they hold."""

    __tablename__ = "users"
    __table_args__ = (CheckConstraint(one_of("role", ROLES), name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16), default="member")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    session_token: Mapped[str] = mapped_column(String(64), unique=True, default=new_session_token)

    def get_id(self) -> str:
        return self.session_token

    def end_sessions(self) -> None:
        """Sign the user out on every device: the cookies they hold name a token no user has any more."""
        self.session_token = new_session_token()

    def set_password(self, password: str) -> None:
        """A new password also ends the sessions opened with the old one."""
        self.password_hash = generate_password_hash(password)
        self.end_sessions()

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    @property
    def is_active(self) -> bool:
        return self.active


class Customer(PublicId, db.Model):
    __tablename__ = "customers"
    PREFIX = "c"
    __table_args__ = (
        CheckConstraint("team_size >= 1", name="team_size_positive"),
        CheckConstraint(one_of("status", CUSTOMER_STATUSES), name="status"),
        Index("ix_customers_status_cohort", "status", "cohort"),
        Index("ix_customers_industry", "industry"),  # the industries in use, stepped through (queries.values_in_use)
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    organization: Mapped[str] = mapped_column(String(200))
    # NULL only once the customer's personal data is erased (portal.customers.erasure).
    github_username: Mapped[str | None] = mapped_column(String(100))
    signup_date: Mapped[dt.date] = mapped_column(Date, index=True)
    cohort: Mapped[str] = mapped_column(String(50), default="", index=True)
    industry: Mapped[str] = mapped_column(String(100), default="")
    team_size: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(16), default="active")
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    api_key_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    unsubscribed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    erased_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    owner: Mapped[User | None] = relationship()
    onboarding: Mapped[Onboarding] = relationship(back_populates="customer", uselist=False)

    @property
    def owner_name(self) -> str:
        return self.owner.name if self.owner else ""


# Expression indexes, declared once the columns exist: GitHub logins are unique whatever their letter
# case, and the customers table sorts by organization without sorting every row.
Index("uq_customers_github_login", func.lower(Customer.github_username), unique=True)
Index("ix_customers_organization_lower", func.lower(Customer.organization), Customer.id)


class Onboarding(PublicId, db.Model):
    __tablename__ = "onboarding"
    PREFIX = "o"
    __table_args__ = (
        CheckConstraint(one_of("blocker_type", BLOCKER_TYPES), name="blocker_type"),
        CheckConstraint("days_to_complete >= 0", name="days_to_complete_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), unique=True)
    welcome_email_sent: Mapped[bool] = mapped_column(Boolean, default=False)
    welcome_email_sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    account_created: Mapped[bool] = mapped_column(Boolean, default=False)
    account_created_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    github_action_installed: Mapped[bool] = mapped_column(Boolean, default=False)
    github_action_installed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    first_issue_tagged: Mapped[bool] = mapped_column(Boolean, default=False)
    first_issue_tagged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    first_pr_generated: Mapped[bool] = mapped_column(Boolean, default=False)
    first_pr_generated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    completed_date: Mapped[dt.date | None] = mapped_column(Date)
    days_to_complete: Mapped[int | None] = mapped_column(Integer)
    blocker_type: Mapped[str] = mapped_column(String(20), default="none")
    notes: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    customer: Mapped[Customer] = relationship(back_populates="onboarding")

    def steps(self) -> dict[str, bool]:
        return {step: getattr(self, step) for step in STEPS}


class Engagement(PublicId, db.Model):
    __tablename__ = "engagement"
    PREFIX = "e"
    COUNTS = ("issues_tagged", "prs_generated", "prs_merged", "prs_rejected", "support_requests")
    __table_args__ = (
        UniqueConstraint("customer_id", "date", name="uq_engagement_customer_date"),
        *(CheckConstraint(f"{count} >= 0", name=f"{count}_positive") for count in COUNTS),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    date: Mapped[dt.date] = mapped_column(Date, index=True)
    issues_tagged: Mapped[int] = mapped_column(Integer, default=0)
    prs_generated: Mapped[int] = mapped_column(Integer, default=0)
    prs_merged: Mapped[int] = mapped_column(Integer, default=0)
    prs_rejected: Mapped[int] = mapped_column(Integer, default=0)
    support_requests: Mapped[int] = mapped_column(Integer, default=0)


class EngagementTotal(db.Model):
    """A day's engagement totals over the customers of one shard (customer_id % SHARDS), and how many of them have
    an engagement row that day, kept exact by database triggers (migration 0025) on every write to engagement,
    whatever its path: a day's totals are the sum of its shards (analytics.reports.daily_totals)."""

    __tablename__ = "engagement_totals"
    SHARDS = 64

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    customers: Mapped[int] = mapped_column(BigInteger, server_default="0")
    issues_tagged: Mapped[int] = mapped_column(BigInteger, server_default="0")
    prs_generated: Mapped[int] = mapped_column(BigInteger, server_default="0")
    prs_merged: Mapped[int] = mapped_column(BigInteger, server_default="0")
    prs_rejected: Mapped[int] = mapped_column(BigInteger, server_default="0")
    support_requests: Mapped[int] = mapped_column(BigInteger, server_default="0")


class RetentionWeek(db.Model):
    """A week (0..11 after the customer's own signup date, days 7N..7N+6) in which the customer had engagement, kept
    by database triggers (migration 0022) on every write to engagement and to a customer's signup date."""

    __tablename__ = "retention_weeks"

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    week: Mapped[int] = mapped_column(SmallInteger, primary_key=True)


class RetentionDay(db.Model):
    """Per signup day: how many customers signed up (week SIGNED_UP) and how many of them have each week in
    retention_weeks, kept by the same triggers; the cohort retention adds these up."""

    __tablename__ = "retention_days"
    SIGNED_UP = -1

    signup_day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    week: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    customers: Mapped[int] = mapped_column(Integer, server_default="0")


class FunnelDay(db.Model):
    """Per signup day and cohort, what its customers add to the funnel, kept by database triggers (migration 0023)
    on every write to onboarding and to a customer's signup date or cohort: measure CUSTOMERS the customers, DONE + i
    those with step i done, GAP + i how many took `days` days over gap i (UTC calendar days)."""

    __tablename__ = "funnel_days"
    CUSTOMERS, DONE, GAP = 0, 1, 6

    signup_day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    cohort: Mapped[str] = mapped_column(String(50), primary_key=True)
    measure: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    days: Mapped[int] = mapped_column(Integer, primary_key=True)
    customers: Mapped[int] = mapped_column(Integer, server_default="0")


class Event(db.Model):
    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("source", "delivery_id", name="uq_events_source_delivery"),
        CheckConstraint(one_of("source", EVENT_SOURCES), name="source"),
        CheckConstraint(one_of("outcome", EVENT_OUTCOMES), name="outcome"),
        Index("ix_events_outcome_received", "outcome", "received_at"),
        Index("ix_events_received", "received_at", "id"),
        # A customer's latest event of a type (the risk signal of an uninstalled Action) in one descent.
        Index("ix_events_customer_type_received", "customer_id", "event_type", "received_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(20))
    delivery_id: Mapped[str] = mapped_column(String(120))
    event_type: Mapped[str] = mapped_column(String(80))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"), index=True)
    payload: Mapped[dict] = mapped_column(JSON)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    outcome: Mapped[str] = mapped_column(String(16), default="processed")
    detail: Mapped[str] = mapped_column(Text, default="")


class HealthSettings(db.Model):
    """Weights, bands and window; a change adds a version so history stays explainable."""

    __tablename__ = "health_settings"
    __table_args__ = (
        CheckConstraint("window_days >= 1", name="window_positive"),
        CheckConstraint(
            "champion_min > healthy_min AND healthy_min > needs_attention_min AND needs_attention_min > 0",
            name="bands_ordered",
        ),
    )

    version: Mapped[int] = mapped_column(primary_key=True)
    onboarding_weight: Mapped[Decimal] = mapped_column(Numeric(6, 2), default=Decimal("30"))
    activity_per_day: Mapped[Decimal] = mapped_column(Numeric(6, 2), default=Decimal("5"))
    activity_max: Mapped[Decimal] = mapped_column(Numeric(6, 2), default=Decimal("30"))
    success_weight: Mapped[Decimal] = mapped_column(Numeric(6, 2), default=Decimal("0.25"))
    volume_per_pr: Mapped[Decimal] = mapped_column(Numeric(6, 2), default=Decimal("2"))
    volume_max: Mapped[Decimal] = mapped_column(Numeric(6, 2), default=Decimal("15"))
    champion_min: Mapped[int] = mapped_column(Integer, default=85)
    healthy_min: Mapped[int] = mapped_column(Integer, default=70)
    needs_attention_min: Mapped[int] = mapped_column(Integer, default=50)
    window_days: Mapped[int] = mapped_column(Integer, default=30)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(120), default="system")


class HealthScore(db.Model):
    __tablename__ = "health_scores"
    __table_args__ = (
        UniqueConstraint("customer_id", "date", name="uq_health_scores_customer_date"),
        CheckConstraint("score BETWEEN 0 AND 100", name="score_range"),
        CheckConstraint(one_of("status", HEALTH_STATUSES), name="status"),
        CheckConstraint(one_of("stage", STAGES), name="stage"),
        Index("ix_health_scores_date_status", "date", "status"),
        # The customers table sorted by health reads the day's snapshots in this order and stops at its page.
        Index("ix_health_scores_date_score", "date", "score", "customer_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    date: Mapped[dt.date] = mapped_column(Date)
    score: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))
    stage: Mapped[str] = mapped_column(String(20))
    onboarding_component: Mapped[Decimal] = mapped_column(Numeric(6, 2))
    activity_component: Mapped[Decimal] = mapped_column(Numeric(6, 2))
    success_component: Mapped[Decimal] = mapped_column(Numeric(6, 2))
    volume_component: Mapped[Decimal] = mapped_column(Numeric(6, 2))
    onboarding_percent: Mapped[int] = mapped_column(Integer)
    days_active: Mapped[int] = mapped_column(Integer)
    success_rate: Mapped[int] = mapped_column(Integer)
    prs_generated: Mapped[int] = mapped_column(Integer)
    prs_merged: Mapped[int] = mapped_column(Integer)
    settings_version: Mapped[int] = mapped_column(ForeignKey("health_settings.version"))
    calculated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The onboarding steps done (bit i: metrics.STEPS[i]) and the risk signals raised (bit i: risk.KINDS[i]) that
    # day: the dashboard's funnel and signal counts are rolled up from them.
    steps: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    signals: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The customer's blocker and days to complete that day: the dashboard's blocker counts and average time to
    # complete are rolled up from them (NULL on snapshots taken before they were kept).
    blocker: Mapped[str | None] = mapped_column(String(20))
    days_to_complete: Mapped[int | None] = mapped_column(Integer)


class HealthCurrent(db.Model):
    """Each customer's latest snapshot, what the customers table and the dashboard's lists read: one row per
    customer, updated in place when a recalculation changes it, so that no page joins a history-sized table."""

    __tablename__ = "health_current"
    __table_args__ = (
        CheckConstraint(one_of("band", HEALTH_STATUSES), name="band"),
        CheckConstraint(one_of("stage", STAGES), name="stage"),
        # The customers table sorted by health, and the dashboard's at-risk list (a band, lowest scores first).
        Index("ix_health_current_score", "score", "customer_id"),
        Index("ix_health_current_band_score", "band", "score", "customer_id"),
        Index("ix_health_current_stage", "stage", "customer_id"),
    )

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    date: Mapped[dt.date] = mapped_column(Date)
    score: Mapped[int] = mapped_column(Integer)
    band: Mapped[str] = mapped_column(String(20))
    stage: Mapped[str] = mapped_column(String(20))
    signals: Mapped[int] = mapped_column(Integer, default=0)
    signal_count: Mapped[int] = mapped_column(Integer, default=0)


# The dashboard's signal list: most signals first, then the lowest score, read in index order.
Index("ix_health_current_signal_count", HealthCurrent.signal_count.desc(), HealthCurrent.score,
      HealthCurrent.customer_id)


class HealthRollup(db.Model):
    """A day's figures over that day's snapshots, one row per measure ("customers", "score_total", "band:at_risk",
    "stage:onboarding", "signal:inactive", "step:account_created", ...): kept current by every recalculation, each
    adding what it changed, and read by the dashboard and the trends instead of the snapshots."""

    __tablename__ = "health_rollups"

    date: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    measure: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class EmailCount(db.Model):
    """How many emails of one status and kind have ids in one shard (id % SHARDS), kept exact by database triggers
    (migration 0026) on every write to email_notifications: the email log's head and pager read them."""

    __tablename__ = "email_counts"
    SHARDS = 8

    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40), primary_key=True)
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    emails: Mapped[int] = mapped_column(BigInteger, server_default="0")


class EmailNotification(db.Model):
    __tablename__ = "email_notifications"
    __table_args__ = (
        CheckConstraint(one_of("status", EMAIL_STATUSES), name="status"),
        CheckConstraint(f"channel IS NULL OR {one_of('channel', EMAIL_CHANNELS)}", name="channel"),
        CheckConstraint("attempts >= 0", name="attempts_positive"),
        Index("ix_email_notifications_status_next", "status", "next_attempt_at"),
        # A customer's emails of one kind since a moment (re-engagement's one per 14 days) in one probe.
        Index("ix_email_notifications_customer_kind_queued", "customer_id", "kind", "queued_at"),
        # The log's newest first, of every status or of one.
        Index("ix_email_notifications_queued", "queued_at", "id"),
        Index("ix_email_notifications_status_queued", "status", "queued_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    recipient: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(200), default="")
    channel: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    provider_message_id: Mapped[str | None] = mapped_column(String(200), index=True)
    # What the templates are rendered from, and what was rendered when the message went out.
    payload: Mapped[dict] = mapped_column(JSON, default=dict)
    body_text: Mapped[str] = mapped_column(Text, default="")
    body_html: Mapped[str] = mapped_column(Text, default="")
    # A delivery run claims rows by writing its token and a lease; an expired lease frees the row.
    claim_token: Mapped[str | None] = mapped_column(String(36), index=True)
    claimed_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Written (and committed) before the email is handed to SMTP or ConvertKit, cleared with the outcome: set on a
    # row whose lease has ended, it says the run died mid-handoff and the message may have gone out.
    sending_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    queued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    def shown_status(self, now: dt.datetime) -> str:
        """The status as the email log shows it: a queued email with a sending mark is being handed over while its
        run's lease lasts; once the lease has ended the run died mid-handoff, and the email stays "sending
        (interrupted)" until the next run sends it again."""
        if self.status != "queued" or self.sending_at is None:
            return self.status
        return "sending" if self.claimed_until is not None and self.claimed_until >= now else "sending (interrupted)"


# Erasure finds the emails sent to an address whatever its letter case.
Index("ix_email_notifications_recipient_lower", func.lower(EmailNotification.recipient))


class Feedback(db.Model):
    __tablename__ = "feedback"
    __table_args__ = (
        CheckConstraint("nps IS NULL OR nps BETWEEN 0 AND 10", name="nps_range"),
        CheckConstraint("csat IS NULL OR csat BETWEEN 1 AND 5", name="csat_range"),
        CheckConstraint(one_of("source", FEEDBACK_SOURCES), name="source"),
        Index("ix_feedback_created", "created_at"),
        Index("ix_feedback_customer_latest", "customer_id", "id"),  # a customer's latest answer in one descent
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    nps: Mapped[int | None] = mapped_column(Integer)
    csat: Mapped[int | None] = mapped_column(Integer)
    comment: Mapped[str] = mapped_column(Text, default="")
    feature_request: Mapped[str] = mapped_column(Text, default="")
    bug_report: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(16), default="call")
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class FeedbackDay(db.Model):
    """The NPS and CSAT counts of one UTC day's feedback from the customers of one cohort and owner (owner_key 0 for
    nobody), kept by database triggers (migration 0020) on every write to feedback and to a customer's cohort or
    owner: the feedback page adds these up instead of counting every answer of its period."""

    __tablename__ = "feedback_days"

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    cohort: Mapped[str] = mapped_column(String(50), primary_key=True)
    owner_key: Mapped[int] = mapped_column(Integer, primary_key=True)
    promoters: Mapped[int] = mapped_column(Integer, server_default="0")
    passives: Mapped[int] = mapped_column(Integer, server_default="0")
    detractors: Mapped[int] = mapped_column(Integer, server_default="0")
    csat_answers: Mapped[int] = mapped_column(Integer, server_default="0")
    csat_sum: Mapped[int] = mapped_column(Integer, server_default="0")


class Intervention(db.Model):
    __tablename__ = "interventions"
    __table_args__ = (
        CheckConstraint(one_of("kind", INTERVENTION_KINDS), name="kind"),
        CheckConstraint(one_of("status", INTERVENTION_STATUSES), name="status"),
        CheckConstraint(one_of("trigger", INTERVENTION_TRIGGERS), name="trigger"),
        Index("ix_interventions_assignee_status", "assignee_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    due_date: Mapped[dt.date | None] = mapped_column(Date)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(10), default="open")
    trigger: Mapped[str] = mapped_column(String(10), default="person")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # The rule that created a task (trigger "rule"), so a rule does not repeat while its task is open.
    rule: Mapped[str | None] = mapped_column(String(60), index=True)


# The database, not a check before the insert, keeps one pending task per rule and customer: two runs racing
# each other both pass any check, and only the second's insert is refused.
PENDING_TASK = "kind = 'task' AND status IN ('open', 'snoozed') AND rule IS NOT NULL"
Index("uq_interventions_pending_rule", Intervention.customer_id, Intervention.rule, unique=True,
      sqlite_where=sql(PENDING_TASK), postgresql_where=sql(PENDING_TASK))
# The tasks page reads its first page of pending tasks in list order (due date, none last, then id), of everyone or
# of one assignee (or nobody), whatever the number of tasks closed before.
PENDING_TASKS = "kind = 'task' AND status IN ('open', 'snoozed')"
Index("ix_interventions_pending_due", Intervention.due_date, Intervention.id,
      sqlite_where=sql(PENDING_TASKS), postgresql_where=sql(PENDING_TASKS))
Index("ix_interventions_pending_assignee_due", Intervention.assignee_id, Intervention.due_date, Intervention.id,
      sqlite_where=sql(PENDING_TASKS), postgresql_where=sql(PENDING_TASKS))


class Playbook(db.Model):
    """Who qualifies (condition) and what starting the playbook does for each of them (steps); its tasks carry
    rule = "playbook:<id>". The last run's result is kept for the page's cap warning."""

    __tablename__ = "playbooks"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    condition: Mapped[dict] = mapped_column(JSON, default=dict)
    steps: Mapped[list] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(120), default="system")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    last_run_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_result: Mapped[dict] = mapped_column(JSON, default=dict)

    @property
    def rule(self) -> str:
        return f"playbook:{self.id}"


class AuditLog(db.Model):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_record", "table_name", "record_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    actor: Mapped[str] = mapped_column(String(120))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    table_name: Mapped[str] = mapped_column(String(40))
    record_id: Mapped[str] = mapped_column(String(40))
    field: Mapped[str] = mapped_column(String(60))
    old_value: Mapped[str | None] = mapped_column(Text)
    new_value: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class LoginAttempt(db.Model):
    """Failed sign-ins, kept a while so that guessing passwords is throttled across workers."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        Index("ix_login_attempts_email_at", "email", "attempted_at"),
        Index("ix_login_attempts_address_at", "address", "attempted_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    address: Mapped[str] = mapped_column(String(64))
    attempted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class AppSetting(db.Model):
    """Portal settings other than the health formula's (those are versioned in health_settings)."""

    __tablename__ = "app_settings"

    key: Mapped[str] = mapped_column(String(60), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    updated_by: Mapped[str] = mapped_column(String(120), default="system")


class NpsSurvey(db.Model):
    """One NPS question sent to a customer; its signed links record a single answer."""

    __tablename__ = "nps_surveys"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    period: Mapped[str] = mapped_column(String(20))
    sent_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    answered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    feedback_id: Mapped[int | None] = mapped_column(ForeignKey("feedback.id", ondelete="SET NULL"), unique=True)

    __table_args__ = (UniqueConstraint("customer_id", "period", name="uq_nps_surveys_customer_period"),)


class JobRun(db.Model):
    """One run of a scheduled job: what ran, when, how it ended, and how far it got."""

    __tablename__ = "job_runs"
    __table_args__ = (
        CheckConstraint(one_of("outcome", JOB_OUTCOMES), name="outcome"),
        CheckConstraint(one_of("trigger", JOB_TRIGGERS), name="trigger"),
        Index("ix_job_runs_job_started", "job", "started_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(String(60))
    trigger: Mapped[str] = mapped_column(String(10), default="schedule")
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(String(10), default="running")
    progress_done: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int | None] = mapped_column(Integer)
    counts: Mapped[dict] = mapped_column(JSON, default=dict)
    error: Mapped[str] = mapped_column(Text, default="")
    runner: Mapped[str] = mapped_column(String(120), default="")


class JobLease(db.Model):
    """The one-runner lock where the database has no advisory locks (SQLite): a lease row per job."""

    __tablename__ = "job_leases"

    job: Mapped[str] = mapped_column(String(60), primary_key=True)
    holder: Mapped[str] = mapped_column(String(120))
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class Assessment(db.Model):
    """The team's own judgement beside the computed score: the customer's sentiment, and a band override with
    its reason and expiry. Recalculation writes health_scores only, so nothing here is ever dropped by it."""

    __tablename__ = "assessments"
    __table_args__ = (
        CheckConstraint(f"sentiment IS NULL OR {one_of('sentiment', SENTIMENTS)}", name="sentiment"),
        CheckConstraint(f"band_override IS NULL OR {one_of('band_override', HEALTH_STATUSES)}", name="band_override"),
        CheckConstraint("band_override IS NULL OR (override_until IS NOT NULL AND override_reason <> '')",
                        name="override_explained"),
    )

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    sentiment: Mapped[str | None] = mapped_column(String(10))
    sentiment_by: Mapped[str | None] = mapped_column(String(120))
    sentiment_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    band_override: Mapped[str | None] = mapped_column(String(20))
    override_reason: Mapped[str] = mapped_column(Text, default="")
    override_until: Mapped[dt.date | None] = mapped_column(Date)
    override_by: Mapped[str | None] = mapped_column(String(120))
    override_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    def override_on(self, day: dt.date) -> str | None:
        """The overriding band on that day, or None when there is none or it has expired."""
        return override_in_force(self.band_override, self.override_until, day)


def override_in_force(band_override: str | None, override_until: dt.date | None, day: dt.date) -> str | None:
    """An assessment's band override on that day, from its two columns (the customers table reads only those)."""
    if band_override and override_until and day <= override_until:
        return band_override
    return None


class ChurnModel(db.Model):
    """One trained version of the churn-risk model. The fit is stored as plain numbers (coefficients, intercept,
    scaler means and scales) so that loading a model never runs code, unlike a pickle."""

    __tablename__ = "churn_models"
    __table_args__ = (CheckConstraint("samples >= positives AND positives >= 0", name="sample_counts"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(Integer, unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    trained_by: Mapped[str] = mapped_column(String(120))
    algorithm: Mapped[str] = mapped_column(String(60))
    features: Mapped[list] = mapped_column(JSON)
    parameters: Mapped[dict] = mapped_column(JSON)
    window_start: Mapped[dt.date] = mapped_column(Date)
    window_end: Mapped[dt.date] = mapped_column(Date)
    samples: Mapped[int] = mapped_column(Integer)
    positives: Mapped[int] = mapped_column(Integer)
    metrics: Mapped[dict] = mapped_column(JSON, default=dict)

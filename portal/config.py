"""Settings read from the environment (SPEC section 10); none is needed to try the portal."""
import datetime as dt
import os
import secrets
from pathlib import Path


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _whole(name: str, default: int, minimum: int = 0) -> int:
    """A whole-number setting; a bad value stops the portal at start-up with a message naming the variable."""
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        number = int(value)
    except ValueError:
        number = None
    if number is None or number < minimum:
        raise ValueError(f"{name} must be a whole number of {minimum} or more, not {value!r}")
    return number


ONE_YEAR = 365 * 24 * 60 * 60


def _secret_key(instance_path: Path) -> str:
    """A key generated once into instance/, so sessions survive restarts without any set-up."""
    key_file = instance_path / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    key = secrets.token_hex(32)
    key_file.write_text(key)
    key_file.chmod(0o600)
    return key


def from_environment(instance_path: Path, overrides: dict | None = None) -> dict:
    env = os.environ.get
    overrides = overrides or {}
    database_url = env("DATABASE_URL") or f"sqlite:///{instance_path / 'portal.db'}"
    if database_url.startswith("postgres://"):
        database_url = "postgresql+psycopg://" + database_url.removeprefix("postgres://")
    elif database_url.startswith("postgresql://"):
        database_url = "postgresql+psycopg://" + database_url.removeprefix("postgresql://")
    base_url = env("PORTAL_BASE_URL", "http://127.0.0.1:5000")
    # Served over HTTPS (as customers reach it), cookies travel only over HTTPS and browsers are told to stay on it.
    https = base_url.lower().startswith("https://")
    secure_cookies = _bool(env("SESSION_COOKIE_SECURE"), https)
    return {
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SECRET_KEY": overrides.get("SECRET_KEY") or env("SECRET_KEY") or _secret_key(instance_path),
        "PORTAL_TIMEZONE": env("PORTAL_TIMEZONE", "UTC"),
        "GITHUB_WEBHOOK_SECRET": env("GITHUB_WEBHOOK_SECRET"),
        "LANDING_WEBHOOK_SECRET": env("LANDING_WEBHOOK_SECRET"),
        "SENDGRID_WEBHOOK_PUBLIC_KEY": env("SENDGRID_WEBHOOK_PUBLIC_KEY"),
        "WEBHOOK_MAX_AGE_SECONDS": int(env("WEBHOOK_MAX_AGE_SECONDS", "300")),
        "MAIL_SERVER": env("MAIL_SERVER"),
        "MAIL_PORT": int(env("MAIL_PORT", "25")),
        "MAIL_USE_TLS": _bool(env("MAIL_USE_TLS"), False),
        "MAIL_USERNAME": env("MAIL_USERNAME"),
        "MAIL_PASSWORD": env("MAIL_PASSWORD"),
        "MAIL_DEFAULT_SENDER": env("MAIL_DEFAULT_SENDER"),
        "CONVERTKIT_API_SECRET": env("CONVERTKIT_API_SECRET"),
        "CONVERTKIT_BASE_URL": env("CONVERTKIT_BASE_URL", "https://api.convertkit.com/v3"),
        "CONVERTKIT_TIMEOUT_SECONDS": float(env("CONVERTKIT_TIMEOUT_SECONDS", "5")),
        # Links in emails (unsubscribe, NPS answers, the getting-started guide) are absolute: the portal's address.
        "PORTAL_BASE_URL": base_url,
        "SCHEDULER_ENABLED": _bool(env("SCHEDULER_ENABLED"), True),
        # The health job pauses after each batch of customers for this share of the batch's time (100: as long),
        # so that webhooks and pages keep the cores while it recalculates everyone; 0 on a machine with cores to spare.
        "HEALTH_JOB_REST_PERCENT": _whole("HEALTH_JOB_REST_PERCENT", 100),
        # /metrics (Prometheus) answers only a scraper that sends this token; unset, it is off.
        "METRICS_TOKEN": env("METRICS_TOKEN"),
        # Backups (portal.backups): where the daily job writes them and how many it keeps.
        "BACKUP_DIR": env("BACKUP_DIR") or str(instance_path / "backups"),
        "BACKUP_KEEP_DAILY": _whole("BACKUP_KEEP_DAILY", 7),
        "BACKUP_KEEP_WEEKLY": _whole("BACKUP_KEEP_WEEKLY", 4),
        # The folder of pg_dump and pg_restore when they are not on the PATH nor in /usr/lib/postgresql/*/bin.
        "PG_BIN_DIR": env("PG_BIN_DIR"),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": secure_cookies,
        # Flask-Login's "Keep me signed in" cookie: as strict as the session's, and kept a month rather than a year.
        "REMEMBER_COOKIE_SECURE": secure_cookies,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_DURATION": dt.timedelta(days=_whole("REMEMBER_COOKIE_DAYS", 30, minimum=1)),
        "HSTS_SECONDS": _whole("HSTS_SECONDS", ONE_YEAR if https else 0),
        # How many reverse proxies stand in front: their X-Forwarded-* headers are believed, a client's are not.
        "TRUSTED_PROXIES": _whole("TRUSTED_PROXIES", 0),
    }

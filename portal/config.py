"""Settings read from the environment (SPEC section 10); none is needed to try the portal."""
import os
import secrets
from pathlib import Path


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


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
        "PORTAL_BASE_URL": env("PORTAL_BASE_URL", "http://127.0.0.1:5000"),
        "SCHEDULER_ENABLED": _bool(env("SCHEDULER_ENABLED"), True),
        # Backups (portal.backups): where the daily job writes them and how many it keeps.
        "BACKUP_DIR": env("BACKUP_DIR") or str(instance_path / "backups"),
        "BACKUP_KEEP_DAILY": int(env("BACKUP_KEEP_DAILY", "7")),
        "BACKUP_KEEP_WEEKLY": int(env("BACKUP_KEEP_WEEKLY", "4")),
        # The folder of pg_dump and pg_restore when they are not on the PATH nor in /usr/lib/postgresql/*/bin.
        "PG_BIN_DIR": env("PG_BIN_DIR"),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
    }

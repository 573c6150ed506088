"""The customer-success portal: app factory."""
from pathlib import Path

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from . import config, database, monitoring, outage, security
from .extensions import csrf, db, htmx, login_manager, mail, migrate

ROOT = Path(__file__).resolve().parent.parent
ALL_ROLES = ("admin", "member", "viewer")
# The main navigation after the dashboard: (endpoint, text, roles that see it, endpoints it is current for).
NAV_LINKS = [
    ("customers.index", "Customers", ALL_ROLES, "customers."),
    ("tasks.index", "Tasks", ALL_ROLES, "tasks."),
    ("playbooks.index", "Playbooks", ALL_ROLES, "playbooks."),
    ("transfer.import_page", "Import / export", ALL_ROLES, "transfer."),
    ("admin.settings", "Settings", ("admin",), "admin.settings"),
    ("admin.users", "Team", ("admin",), "admin.user"),
    ("events.index", "Events", ALL_ROLES, "events."),
    ("analytics.index", "Analytics", ALL_ROLES, "analytics."),
    ("feedback.index", "Feedback", ALL_ROLES, "feedback."),
    ("jobs.index", "Jobs", ("admin",), "jobs."),
    ("emails.index", "Emails", ALL_ROLES, "emails."),
]


def navigation() -> dict:
    return {"nav_links": NAV_LINKS}


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(
        __name__,
        instance_path=str(ROOT / "instance"),
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.config.from_mapping(config.from_environment(Path(app.instance_path), test_config))
    app.config.from_pyfile("config.py", silent=True)
    if test_config:
        app.config.from_mapping(test_config)
    proxies = app.config["TRUSTED_PROXIES"]
    if proxies:
        # Behind that many proxies the client's address, scheme and host are the ones the proxies forwarded;
        # without any, X-Forwarded-* headers are the client's own words and are ignored.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)

    security.bound_url_numbers(app)
    db.init_app(app)
    database.init_app(app)
    outage.init_app(app)
    monitoring.init_app(app)  # first, so that its timing covers the other hooks
    migrate.init_app(app, db, directory=str(database.MIGRATIONS), render_as_batch=True)
    login_manager.init_app(app)
    csrf.init_app(app)
    mail.init_app(app)
    htmx.init_app(app)

    from . import auth, commands, dashboard, errors, pages, probes

    from .health import metrics
    from .backups import commands as backup_commands

    app.add_template_filter(metrics.label)
    app.add_template_filter(pages.count)
    app.context_processor(navigation)
    app.register_blueprint(probes.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(dashboard.bp)
    from .transfer import views as transfer_views

    app.register_blueprint(transfer_views.bp)
    from .admin import views as admin_views  # the views add the admin routes to admin.bp

    app.register_blueprint(admin_views.bp)
    from .customers import erase_page, page, table  # noqa: F401  (importing them adds their pages to table.bp)

    app.register_blueprint(table.bp)
    from .integrations import views as integrations_views

    app.register_blueprint(integrations_views.bp)
    from .events import views as events_views

    app.register_blueprint(events_views.bp)
    from .analytics import views as analytics_views
    from .feedback import views as feedback_views
    from .jobs import commands as job_commands, views as jobs_views
    from .jobs.scheduler import scheduler
    from .playbooks import views as playbooks_views
    from .tasks import views as tasks_views

    app.register_blueprint(analytics_views.bp)
    app.register_blueprint(feedback_views.bp)
    app.register_blueprint(tasks_views.bp)
    app.register_blueprint(playbooks_views.bp)
    app.register_blueprint(jobs_views.bp)
    from .emails import public as emails_public, views as emails_views

    app.register_blueprint(emails_public.bp)
    app.register_blueprint(emails_views.bp)
    errors.init_app(app)
    security.init_app(app)
    commands.init_app(app)
    job_commands.init_app(app)
    backup_commands.init_app(app)
    scheduler.init_app(app)
    return app

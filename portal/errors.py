"""Error pages: JSON for API clients, HTML for people; the session is rolled back on a 500, and a database that
is down answers 503 with Retry-After (portal.outage)."""
from flask import Flask, g, jsonify, render_template, request
from werkzeug.exceptions import HTTPException, InternalServerError, ServiceUnavailable

from . import outage
from .extensions import db, login_manager


# Called by machines, whatever they accept: a sender's log should show JSON, not a page.
API_PREFIXES = ("/webhooks/", "/metrics/")


def wants_json() -> bool:
    if request.path.startswith(API_PREFIXES):
        return True
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return request.is_json or best == "application/json"


def render_error(error: HTTPException, extra_headers: tuple = ()):
    headers = [(name, value) for name, value in error.get_headers() if name.lower() != "content-type"]  # 405's Allow
    headers.extend(extra_headers)
    if wants_json():
        return jsonify(error=error.name, message=error.description), error.code, headers
    return render_template("errors/error.html", error=error), error.code, headers


def rollback_quietly() -> None:
    try:
        db.session.rollback()
    except outage.UNAVAILABLE:
        pass  # the connection is gone with the server; the pool replaces it


DATABASE_DOWN = ("The portal's database is not answering. Nothing was changed; "
                 "please try again in a few seconds.")


def init_app(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        return render_error(error)

    def database_unavailable(error: Exception):
        rollback_quietly()
        outage.of(app).refused_request(error)
        # Flask-Login would ask the database who is signed in to draw the header: the page is drawn signed out.
        g._login_user = login_manager.anonymous_user()
        return render_error(ServiceUnavailable(DATABASE_DOWN), (("Retry-After", str(outage.RETRY_AFTER_SECONDS)),))

    for unavailable in outage.UNAVAILABLE:
        app.register_error_handler(unavailable, database_unavailable)

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        db.session.rollback()
        app.logger.exception("unhandled error")
        return render_error(InternalServerError())

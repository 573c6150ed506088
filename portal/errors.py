"""Error pages: JSON for API clients, HTML for people; the session is rolled back on a 500."""
from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import HTTPException, InternalServerError

from .extensions import db


# Called by machines, whatever they accept: a sender's log should show JSON, not a page.
API_PREFIXES = ("/webhooks/", "/metrics/")


def wants_json() -> bool:
    if request.path.startswith(API_PREFIXES):
        return True
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return request.is_json or best == "application/json"


def render_error(error: HTTPException):
    headers = [(name, value) for name, value in error.get_headers() if name.lower() != "content-type"]  # 405's Allow
    if wants_json():
        return jsonify(error=error.name, message=error.description), error.code, headers
    return render_template("errors/error.html", error=error), error.code, headers


def init_app(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        return render_error(error)

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        db.session.rollback()
        app.logger.exception("unhandled error")
        return render_error(InternalServerError())

"""The inbound endpoints: verify, then parse, then apply in one transaction (portal.integrations.service).

They are called by machines, so they are exempt from CSRF and every answer, errors included, is JSON.
"""
from __future__ import annotations

import time
from urllib.parse import parse_qs

from flask import Blueprint, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from ..extensions import csrf
from ..models import Customer
from ..validation import ValidationError
from . import email_events, landing, service, signatures, track
from .payloads import identifier, parse_json

MAX_BODY = 1024 * 1024
FORM = "application/x-www-form-urlencoded"
STATUS_CODES = {"processed": 200, "duplicate": 200, "pong": 200, "unmatched": 202, "ignored": 202}

bp = Blueprint("integrations", __name__)
csrf.exempt(bp)


class ApiError(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


@bp.errorhandler(ApiError)
def api_error(error: ApiError):
    return jsonify(error=str(error)), error.code


@bp.errorhandler(ValidationError)
def invalid(error: ValidationError):
    return jsonify(error=str(error), field=error.field), 400


@bp.errorhandler(service.Conflict)
def conflict(_error):
    return jsonify(error="the event conflicted with another being applied at the same moment; retry it"), 409


@bp.errorhandler(HTTPException)
def http_error(error: HTTPException):
    return jsonify(error=error.name, message=error.description), error.code


def raw_body() -> bytes:
    request.max_content_length = MAX_BODY  # larger bodies raise 413 before being read
    return request.get_data(cache=True)


def signed_body(secret_name: str, signature_header: str) -> bytes:
    """The raw body, once its HMAC signature is checked: 503 with no secret, 413 too big, 401 bad."""
    secret = current_app.config.get(secret_name)
    if not secret:
        raise ApiError(503, f"this webhook is not configured: {secret_name} is not set")
    body = raw_body()
    if not signatures.verify(secret, body, request.headers.get(signature_header)):
        raise ApiError(401, f"missing or invalid {signature_header} signature")
    return body


def github_json(body: bytes) -> bytes:
    """The JSON text of a GitHub delivery: the body for application/json, its one `payload` field for GitHub's
    other setting, application/x-www-form-urlencoded. Any other Content-Type answers 415 naming the two."""
    if request.mimetype == "application/json":
        return body
    if request.mimetype != FORM:
        raise ApiError(415, f"Content-Type must be application/json (or {FORM} with a payload field)")
    try:
        values = parse_qs(body, keep_blank_values=True, max_num_fields=20).get(b"payload", [])
    except ValueError:
        values = []
    if len(values) != 1:
        raise ValidationError("the form must have one payload field holding the JSON", "payload")
    return values[0]


def header(name: str) -> str:
    return identifier(request.headers.get(name), name)


def reply(receipt: service.Receipt, status: str | None = None):
    status = status or receipt.status
    body = {"status": status, "customer_id": receipt.customer_id} if receipt.customer_id else {"status": status}
    return jsonify(body), STATUS_CODES[status]


@bp.post("/webhooks/github")
def github_webhook():
    raw = github_json(signed_body("GITHUB_WEBHOOK_SECRET", "X-Hub-Signature-256"))
    payload = parse_json(raw)
    delivery_id, event_name = header("X-GitHub-Delivery"), header("X-GitHub-Event")
    receipt = service.receive_github(delivery_id, event_name, payload, raw)
    pong = event_name == "ping" and receipt.status != "duplicate"
    return reply(receipt, "pong" if pong else None)


@bp.post("/metrics/track")
def metrics_track():
    customer = service.customer_by_key(request.headers.get("x-api-key", ""))
    if customer is None:
        raise ApiError(401, "missing or invalid x-api-key")
    raw = raw_body()
    payload = parse_json(raw)
    event = track.parse(payload, request.headers.get("Idempotency-Key"))
    if Customer.key_of(event.customer_id) != customer.id:
        raise ApiError(403, "this API key may only post events for its own customer")
    return reply(service.receive_track(customer, event, payload, raw))


@bp.post("/webhooks/landing")
def landing_webhook():
    raw = signed_body("LANDING_WEBHOOK_SECRET", "X-Signature-256")
    payload = parse_json(raw)
    delivery_id = header("X-Event-Id")
    return reply(service.receive_landing(delivery_id, landing.parse(payload), payload, raw))


def ecdsa_signed_body() -> bytes:
    """The raw body, once the provider's ECDSA signature and timestamp are checked (503, 413, 401)."""
    configured = current_app.config.get("SENDGRID_WEBHOOK_PUBLIC_KEY")
    if not configured:
        raise ApiError(503, "this webhook is not configured: SENDGRID_WEBHOOK_PUBLIC_KEY is not set")
    try:
        key = email_events.public_key(configured)
    except ValueError as error:
        raise ApiError(503, f"SENDGRID_WEBHOOK_PUBLIC_KEY is not usable: {error}") from None
    body = raw_body()
    signature = request.headers.get(email_events.SIGNATURE_HEADER)
    timestamp = request.headers.get(email_events.TIMESTAMP_HEADER)
    if not email_events.verify(key, body, signature, timestamp):
        raise ApiError(401, f"missing or invalid {email_events.SIGNATURE_HEADER} signature")
    max_age = int(current_app.config.get("WEBHOOK_MAX_AGE_SECONDS") or 0)
    if not email_events.fresh(timestamp, time.time(), max_age):
        raise ApiError(401, f"{email_events.TIMESTAMP_HEADER} must be an integer within {max_age} seconds of now")
    return body


@bp.post("/webhooks/email-events")
def email_events_webhook():
    events = email_events.parse(ecdsa_signed_body())
    return jsonify(service.receive_email_events(events)), 200

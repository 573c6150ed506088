"""The two baselines of the webhooks benchmark, served by gunicorn with the portal's settings.

hello: (a) a bare Flask route, the cost of gunicorn and Flask alone.
floor: (b) the unavoidable work of a GitHub delivery: check the HMAC, parse the JSON (for the event's type,
login and day), insert the raw event (a replay is a duplicate) and add one to the customer's counter for the
day, in one commit, with plain psycopg (one connection per gunicorn thread) on tables of its own. The event
is stored as the portal stores it (portal.integrations.payloads.stored_text, migration 0008): the body as
received, as text into a `json` column (not parsed and written out again into jsonb), compressed with lz4
where the server has it.

FLOOR_DATABASE_URL is a libpq URL (postgresql://...). FLOOR_SECRET is the HMAC secret.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading

import psycopg
from flask import Flask, jsonify, request

SCHEMA = """
CREATE TABLE IF NOT EXISTS floor_events (
    id bigserial PRIMARY KEY, source text NOT NULL, delivery_id text NOT NULL, event_type text NOT NULL,
    payload json NOT NULL, received_at timestamptz NOT NULL DEFAULT now(), UNIQUE (source, delivery_id));
CREATE TABLE IF NOT EXISTS floor_engagement (
    id bigserial PRIMARY KEY, customer text NOT NULL, date date NOT NULL,
    issues_tagged integer NOT NULL DEFAULT 0, UNIQUE (customer, date));
"""
HAS_LZ4 = "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
INSERT_EVENT = """INSERT INTO floor_events (source, delivery_id, event_type, payload) VALUES ('github', %s, %s, %s::json)
ON CONFLICT (source, delivery_id) DO NOTHING RETURNING id"""
COUNT_ISSUE = """INSERT INTO floor_engagement (customer, date, issues_tagged) VALUES (%s, %s, 1)
ON CONFLICT (customer, date) DO UPDATE SET issues_tagged = floor_engagement.issues_tagged + 1"""

hello = Flask("hello")
floor = Flask("floor")
local = threading.local()


@hello.get("/hello")
def say_hello():
    return "Hello, World!"


def connection() -> psycopg.Connection:
    if getattr(local, "connection", None) is None:
        local.connection = psycopg.connect(os.environ["FLOOR_DATABASE_URL"], autocommit=True)
    return local.connection


@floor.post("/webhooks/github")
def receive():
    body = request.get_data()
    expected = "sha256=" + hmac.new(os.environ["FLOOR_SECRET"].encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, request.headers.get("X-Hub-Signature-256", "")):
        return jsonify(error="bad signature"), 401
    payload = json.loads(body)
    event_type = f"{request.headers['X-GitHub-Event']}.{payload['action']}"
    with connection().transaction() as transaction:
        cursor = transaction.connection.execute(
            INSERT_EVENT, (request.headers["X-GitHub-Delivery"], event_type, body.decode("utf-8")))
        if cursor.fetchone() is None:
            return jsonify(status="duplicate")
        day = payload["issue"]["updated_at"][:10]
        transaction.connection.execute(COUNT_ISSUE, (payload["repository"]["owner"]["login"].lower(), day))
    return jsonify(status="processed")


def create_schema(url: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute("DROP TABLE IF EXISTS floor_events, floor_engagement")
        conn.execute(SCHEMA)
        if conn.execute(HAS_LZ4).fetchone()[0]:
            conn.execute("ALTER TABLE floor_events ALTER COLUMN payload SET COMPRESSION lz4")

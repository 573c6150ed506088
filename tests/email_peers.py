"""Real peers for the email tests: an SMTP server (aiosmtpd) and a ConvertKit stand-in (http.server).

Both run in threads of the test process on free local ports and record what they receive.
"""
from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from aiosmtpd.controller import Controller

from portal.extensions import db
from tests.conftest import clean, make_app

SECRET = "ck-secret-7f3a9c"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Collector:
    """aiosmtpd handler: keeps every message as (envelope recipients, parsed message)."""

    def __init__(self):
        self.messages: list[tuple[list[str], email.message.EmailMessage]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        parsed = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append((list(envelope.rcpt_tos), parsed))
        return "250 OK"


class KillingCollector(Collector):
    """Keeps every message, and SIGKILLs the delivering process once message number `at` is in, before answering
    it: the server has the message, and the process dies waiting to hear it was accepted. Set `process` first."""

    def __init__(self, at: int):
        super().__init__()
        self.at, self.process = at, None

    async def handle_DATA(self, server, session, envelope):
        answer = await super().handle_DATA(server, session, envelope)
        if len(self.messages) == self.at:
            self.process.kill()
            self.process.wait()  # dead before any answer goes out
        return answer


class AnsweringCollector(Collector):
    """Keeps every message it accepts, and answers chosen recipients otherwise, once per listed answer:
    answers = {address: [(stage, answer), ...]}, stage "RCPT" or "DATA", answer an SMTP reply line or "drop",
    which closes the connection without a reply (the message is then kept in `dropped`, unaccepted)."""

    def __init__(self, answers: dict[str, list[tuple[str, str]]]):
        super().__init__()
        self.answers = {address: list(planned) for address, planned in answers.items()}
        self.dropped: list[tuple[list[str], email.message.EmailMessage]] = []

    def take(self, address: str, stage: str) -> str | None:
        planned = self.answers.get(address)
        if planned and planned[0][0] == stage:
            return planned.pop(0)[1]
        return None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        answer = self.take(address, "RCPT")
        if answer is not None:
            return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        answer = self.take(envelope.rcpt_tos[0], "DATA")
        if answer is None:
            return await super().handle_DATA(server, session, envelope)
        if answer == "drop":
            data = envelope.original_content or envelope.content
            with self.lock:
                self.dropped.append((list(envelope.rcpt_tos),
                                     email.message_from_bytes(data, policy=email.policy.default)))
            server.transport.abort()
            return "421 4.4.2 never heard: the connection is gone"
        return answer


class SmtpServer:
    def __init__(self, port: int | None = None, collector: Collector | None = None):
        self.port = port or free_port()
        self.collector = collector or Collector()
        self.controller: Controller | None = None

    @property
    def messages(self):
        return self.collector.messages

    def start(self) -> SmtpServer:
        self.controller = Controller(self.collector, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


class ConvertKitStandIn:
    """The v3 tag API: GET /tags, POST /tags, POST /tags/<id>/subscribe. mode: ok, fail (500), slow (1.5 s, then
    500) or sluggish (0.4 s, then a good answer)."""

    def __init__(self):
        self.calls: list[tuple[str, str, dict]] = []
        self.tags: dict[str, int] = {}
        self.subscriptions: list[tuple[int, str]] = []
        self.mode = "ok"
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep the test output clean
                pass

            def do_GET(self):
                stand_in.handle(self, "GET")

            def do_POST(self):
                stand_in.handle(self, "POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/v3"

    def handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(request.path)
        length = int(request.headers.get("Content-Length") or 0)
        body = json.loads(request.rfile.read(length) or b"{}") if method == "POST" else {
            key: values[0] for key, values in parse_qs(parts.query).items()}
        self.calls.append((method, parts.path, body))
        if self.mode in ("slow", "sluggish"):
            time.sleep(1.5 if self.mode == "slow" else 0.4)
        working = self.mode in ("ok", "sluggish")
        if not working or body.get("api_secret") != SECRET:
            return self.answer(request, 500 if not working else 401, {"error": "no"})
        path = parts.path.removeprefix("/v3")
        if method == "GET" and path == "/tags":
            return self.answer(request, 200, {"tags": [{"id": key, "name": name} for name, key in self.tags.items()]})
        if method == "POST" and path == "/tags":
            name = body["tag"]["name"]
            self.tags.setdefault(name, 100 + len(self.tags))
            return self.answer(request, 201, {"id": self.tags[name], "name": name})
        if method == "POST" and path.startswith("/tags/") and path.endswith("/subscribe"):
            tag_id = int(path.split("/")[2])
            self.subscriptions.append((tag_id, body["email"]))
            return self.answer(request, 200, {"subscription": {"id": len(self.subscriptions), "subscriber": {"id": 7}}})
        return self.answer(request, 404, {"error": "not found"})

    @staticmethod
    def answer(request: BaseHTTPRequestHandler, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        try:
            request.send_response(status)
            request.send_header("Content-Type", "application/json")
            request.send_header("Content-Length", str(len(data)))
            request.end_headers()
            request.wfile.write(data)
        except OSError:
            pass  # the client gave up waiting (the slow mode)

    def tagged(self) -> list[tuple[str, str]]:
        names = {key: name for name, key in self.tags.items()}
        return [(names[tag_id], address) for tag_id, address in self.subscriptions]

    def start(self) -> ConvertKitStandIn:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def mail_config(port: int, **extra) -> dict:
    return {"MAIL_SERVER": "127.0.0.1", "MAIL_PORT": port, "MAIL_SUPPRESS_SEND": False,
            "MAIL_DEFAULT_SENDER": "Customer success <cs@example.com>", "PORTAL_BASE_URL": "http://portal.test",
            **extra}


@pytest.fixture
def smtp_server():
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def convertkit():
    stand_in = ConvertKitStandIn().start()
    yield stand_in
    stand_in.stop()


@pytest.fixture(name="app")
def smtp_app(database_url, smtp_server):
    """Import this into a test module to give its `app` (and so `client`, `auth`, `ctx`) the SMTP server."""
    app = app_with(database_url, **mail_config(smtp_server.port))
    yield app
    dispose(app)


def app_with(database_url: str, **config):
    """An app with extra settings whose database is emptied afterwards, as the conftest app's is."""
    return make_app(database_url, **config)


def dispose(app) -> None:
    clean(app)
    with app.app_context():
        db.engine.dispose()

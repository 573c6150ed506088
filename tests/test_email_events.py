"""The email provider's signed event webhook: POST /webhooks/email-events (SPEC section 6, issue 5)."""
import base64
import json
import random
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st
from sqlalchemy import select

from portal.customers import service as customers
from portal.extensions import db
from portal.integrations import email_events
from portal.integrations.views import MAX_BODY
from portal.models import EmailNotification, Event
from tests.conftest import POSTGRES

PRIVATE = ec.generate_private_key(ec.SECP256R1())
PUBLIC = base64.b64encode(PRIVATE.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)).decode()
URL = "/webhooks/email-events"

# The provider's published example (sendgrid-python, test/unit/test_eventwebhook.py): key, signature,
# timestamp and payload; the payload is compact, key-sorted JSON followed by CRLF.
SENDGRID_PUBLIC_KEY = ("MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3GRqe62gw+2fNNR"
                       "aINXvVpiglSI8eNEc6wEA3F+g==")
SENDGRID_SIGNATURE = "MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+uOe5W0JuG+luQAbPIqHh89M15TluLtEZtM="
SENDGRID_TIMESTAMP = "1600112502"
SENDGRID_PAYLOAD = (json.dumps([{
    "email": "hello@world.com", "event": "dropped", "reason": "Bounced Address",
    "sg_event_id": "ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA",
    "sg_message_id": "LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0",
    "smtp-id": "<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>", "timestamp": 1600112492,
}], sort_keys=True, separators=(",", ":")) + "\r\n").encode()


@pytest.fixture
def app(app):
    app.config.update(SENDGRID_WEBHOOK_PUBLIC_KEY=PUBLIC, WEBHOOK_MAX_AGE_SECONDS=300)
    return app


def sign(body: bytes, timestamp: str) -> str:
    return base64.b64encode(PRIVATE.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()


def post(client, events, timestamp=None, signature=None, **headers):
    body = events if isinstance(events, bytes) else json.dumps(events).encode()
    timestamp = timestamp if timestamp is not None else str(int(time.time()))
    sent = {email_events.TIMESTAMP_HEADER: timestamp,
            email_events.SIGNATURE_HEADER: signature if signature is not None else sign(body, timestamp),
            "Content-Type": "application/json", **headers}
    return client.post(URL, data=body, headers={k: v for k, v in sent.items() if v is not None})


def event(kind: str, message_id="msg1.filter0001.1234.0", event_id=None, **extra) -> dict:
    return {"event": kind, "sg_event_id": event_id or uuid.uuid4().hex, "sg_message_id": message_id,
            "email": "ada@example.com", "timestamp": 1700000000, **extra}


@pytest.fixture
def email(ctx):
    """A sent email whose provider message id is msg1, and its customer."""
    customer = customers.add_customer({"email": "ada@example.com", "organization": "Ada", "github_username": "ada"},
                                      "test")
    db.session.flush()
    notification = EmailNotification(customer_id=customer.id, kind="welcome", dedupe_key="welcome:ada",
                                     recipient="ada@example.com", status="sent", provider_message_id="msg1")
    db.session.add(notification)
    db.session.commit()
    return notification.id


def status(notification_id: int) -> str:
    db.session.expire_all()
    return db.session.get(EmailNotification, notification_id).status


def stored() -> list[Event]:
    db.session.expire_all()
    return list(db.session.scalars(select(Event).order_by(Event.id)))


# The pure parts.

def test_the_providers_published_example_verifies():
    key = email_events.public_key(SENDGRID_PUBLIC_KEY)
    assert email_events.verify(key, SENDGRID_PAYLOAD, SENDGRID_SIGNATURE, SENDGRID_TIMESTAMP)
    assert email_events.fresh(SENDGRID_TIMESTAMP, time.time(), 0)  # the check off: an old example still passes
    assert not email_events.fresh(SENDGRID_TIMESTAMP, time.time(), 300)
    assert not email_events.verify(key, SENDGRID_PAYLOAD.rstrip(), SENDGRID_SIGNATURE, SENDGRID_TIMESTAMP)
    assert not email_events.verify(key, SENDGRID_PAYLOAD, SENDGRID_SIGNATURE, "1600112503")
    assert not email_events.verify(email_events.public_key(PUBLIC), SENDGRID_PAYLOAD, SENDGRID_SIGNATURE,
                                   SENDGRID_TIMESTAMP)


@pytest.mark.parametrize("signature", [None, "", "not base64!", base64.b64encode(b"junk").decode(), "é"])
def test_verify_refuses_missing_and_malformed_signatures(signature):
    assert not email_events.verify(email_events.public_key(PUBLIC), b"[]", signature, "1")


@pytest.mark.parametrize("configured", ["", "not base64", base64.b64encode(b"junk").decode(),
                                        base64.b64encode(ec.generate_private_key(ec.SECP384R1()).public_key()
                                                         .public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)).decode()])
def test_a_key_that_is_not_base64_der_p256_is_refused(configured):
    with pytest.raises(ValueError):
        email_events.public_key(configured)


def test_statuses_only_move_forward():
    assert email_events.advance("sent", "delivered") == "delivered"
    assert email_events.advance("opened", "delivered") == "opened"
    assert email_events.advance("clicked", "opened") == "clicked"
    assert email_events.advance("opened", "bounced") == "bounced"
    assert email_events.advance("bounced", "clicked") == "bounced"
    assert email_events.advance("dropped", "bounced") == "dropped"
    assert email_events.advance("delivered", None) == "delivered"
    assert email_events.candidates("abc.filter.0") == ("abc.filter.0", "abc")
    assert email_events.candidates("abc") == ("abc",)
    assert email_events.candidates(None) == ()


# The endpoint: signature, timestamp, size, body.

def test_the_published_example_is_accepted_with_the_timestamp_check_off(app, client, ctx):
    app.config.update(SENDGRID_WEBHOOK_PUBLIC_KEY=SENDGRID_PUBLIC_KEY, WEBHOOK_MAX_AGE_SECONDS=0)
    response = post(client, SENDGRID_PAYLOAD, SENDGRID_TIMESTAMP, SENDGRID_SIGNATURE)
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"processed": 0, "duplicate": 0, "unmatched": 1}
    [stored_event] = stored()
    assert (stored_event.source, stored_event.event_type, stored_event.outcome) == ("email_provider", "dropped",
                                                                                    "unmatched")


def test_the_published_example_is_stale_with_the_check_on(app, client):
    app.config.update(SENDGRID_WEBHOOK_PUBLIC_KEY=SENDGRID_PUBLIC_KEY)
    assert post(client, SENDGRID_PAYLOAD, SENDGRID_TIMESTAMP, SENDGRID_SIGNATURE).status_code == 401


@pytest.mark.parametrize("headers", [
    {"signature": ""}, {"signature": base64.b64encode(b"junk").decode()}, {"timestamp": ""},
    {email_events.SIGNATURE_HEADER: None}, {email_events.TIMESTAMP_HEADER: None},
])
def test_missing_or_bad_signatures_are_refused(client, email, headers):
    body = json.dumps([event("delivered")]).encode()
    extra = {k: v for k, v in headers.items() if k not in ("signature", "timestamp")}
    response = post(client, body, headers.get("timestamp"), headers.get("signature"), **extra)
    assert response.status_code == 401
    assert "error" in response.get_json()
    assert stored() == [] and status(email) == "sent"


def test_a_body_changed_after_signing_is_refused(client, email):
    timestamp = str(int(time.time()))
    signature = sign(json.dumps([event("open")]).encode(), timestamp)
    assert post(client, [event("click")], timestamp, signature).status_code == 401


@pytest.mark.parametrize("timestamp", [str(int(time.time()) - 301), str(int(time.time()) + 3600), "1.5", "abc",
                                       "-5", "١٢٣"])
def test_stale_or_non_integer_timestamps_are_refused(client, email, timestamp):
    assert post(client, [event("delivered")], timestamp).status_code == 401
    assert status(email) == "sent"


def test_the_timestamp_check_is_off_with_zero(app, client, email):
    app.config.update(WEBHOOK_MAX_AGE_SECONDS=0)
    assert post(client, [event("delivered")], "1000").status_code == 200
    assert post(client, [event("delivered")], "abc").status_code == 401  # still an integer
    assert status(email) == "delivered"


def test_no_key_configured_answers_503(app, client):
    app.config.update(SENDGRID_WEBHOOK_PUBLIC_KEY=None)
    response = post(client, [event("delivered")])
    assert response.status_code == 503
    assert "SENDGRID_WEBHOOK_PUBLIC_KEY" in response.get_json()["error"]


def test_an_unusable_key_answers_503(app, client):
    app.config.update(SENDGRID_WEBHOOK_PUBLIC_KEY="not a key")
    assert post(client, [event("delivered")]).status_code == 503


def test_an_oversize_body_answers_413(client, ctx):
    response = post(client, b"[" + b" " * MAX_BODY + b"]")
    assert response.status_code == 413
    assert stored() == []


@pytest.mark.parametrize("body, field", [
    (b"not json", "body"), (b"{}", "body"), (b'{"event": "open"}', "body"), (b"[1]", "[0]"), (b"[NaN]", "body"),
    (json.dumps([{"event": "open"}]).encode(), "[0].sg_event_id"),
    (json.dumps([{"sg_event_id": "e1"}]).encode(), "[0].event"),
    (json.dumps([{"sg_event_id": "e1", "event": ""}]).encode(), "[0].event"),
    (json.dumps([{"sg_event_id": "x" * 121, "event": "open"}]).encode(), "[0].sg_event_id"),
    (json.dumps([{"sg_event_id": "e1", "event": "open", "sg_message_id": 5}]).encode(), "[0].sg_message_id"),
    (json.dumps([{"sg_event_id": "e1", "event": "open", "sg_message_id": "a\x00b"}]).encode(), "[0].sg_message_id"),
])
def test_malformed_bodies_answer_400_naming_the_problem(client, email, body, field):
    response = post(client, body)
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["field"] == field
    assert stored() == []


def test_a_bad_event_rejects_the_whole_array(client, email):
    response = post(client, [event("delivered"), {"event": "open"}])
    assert response.status_code == 400
    assert stored() == [] and status(email) == "sent"


# The effects: forward-only statuses, duplicates, unmatched.

def test_delivered_then_open_then_delivered_again_stays_opened(client, email):
    for kind, expected in (("delivered", "delivered"), ("open", "opened"), ("delivered", "opened")):
        response = post(client, [event(kind)])
        assert response.get_json() == {"processed": 1, "duplicate": 0, "unmatched": 0}
        assert status(email) == expected
    last = stored()[-1]
    assert last.outcome == "processed" and "not applied" in last.detail
    assert last.customer_id == db.session.get(EmailNotification, email).customer_id


def test_one_array_is_applied_whatever_its_order(client, email):
    response = post(client, [event("click"), event("delivered"), event("open"), event("processed")])
    assert response.get_json() == {"processed": 4, "duplicate": 0, "unmatched": 0}
    assert status(email) == "clicked"


@pytest.mark.parametrize("final", ["bounce", "dropped"])
def test_bounced_and_dropped_are_final(client, email, final):
    post(client, [event("open")])
    post(client, [event(final)])
    post(client, [event("click"), event("delivered"), event("bounce" if final == "dropped" else "dropped")])
    assert status(email) == {"bounce": "bounced", "dropped": "dropped"}[final]


def test_a_spam_report_is_recorded_and_keeps_the_status(client, email):
    post(client, [event("delivered")])
    assert post(client, [event("spamreport")]).get_json() == {"processed": 1, "duplicate": 0, "unmatched": 0}
    assert status(email) == "delivered"
    assert "spam" in stored()[-1].detail


@pytest.mark.parametrize("kind", ["processed", "deferred", "group_unsubscribe"])
def test_other_events_are_recorded_only(client, email, kind):
    assert post(client, [event(kind)]).get_json() == {"processed": 1, "duplicate": 0, "unmatched": 0}
    assert status(email) == "sent"
    assert [e.event_type for e in stored()] == [kind]


def test_the_message_id_matches_whole_or_before_the_first_dot(client, email, ctx):
    db.session.get(EmailNotification, email).provider_message_id = "msg1.whole"
    db.session.commit()
    post(client, [event("delivered", message_id="msg1.whole")])
    assert status(email) == "delivered"
    db.session.get(EmailNotification, email).provider_message_id = "msg1"
    db.session.commit()
    post(client, [event("open", message_id="msg1")])
    assert status(email) == "opened"


def test_the_message_id_header_the_portal_set_matches_when_the_provider_id_does_not(client, email, ctx):
    """SMTP delivery records the Message-ID it set; the provider echoes it as smtp-id beside its own id."""
    db.session.get(EmailNotification, email).provider_message_id = "1a2b3c@portal.example"
    db.session.commit()
    item = {**event("delivered", message_id="provider-own-id.filter0001"), "smtp-id": "<1a2b3c@portal.example>"}
    assert post(client, [item]).get_json() == {"processed": 1, "duplicate": 0, "unmatched": 0}
    assert status(email) == "delivered"


def test_a_repeated_sg_event_id_changes_nothing(client, email):
    first = post(client, [event("delivered", event_id="e1")])
    assert first.get_json() == {"processed": 1, "duplicate": 0, "unmatched": 0}
    again = post(client, [event("click", event_id="e1"), event("delivered", event_id="e1"), event("open", event_id="e2")])
    assert again.status_code == 200
    assert again.get_json() == {"processed": 1, "duplicate": 2, "unmatched": 0}
    assert status(email) == "opened"
    assert [(e.delivery_id, e.event_type) for e in stored()] == [("e1", "delivered"), ("e2", "open")]


def test_an_event_for_no_email_is_stored_as_unmatched(client, email):
    response = post(client, [event("delivered", message_id="other.filter"), event("open", message_id=None),
                             event("click")])
    assert response.get_json() == {"processed": 1, "duplicate": 0, "unmatched": 2}
    unmatched = [e for e in stored() if e.outcome == "unmatched"]
    assert len(unmatched) == 2 and all(e.customer_id is None for e in unmatched)
    assert status(email) == "clicked"


def test_an_empty_array_is_answered_with_zero_counts(client, ctx):
    assert post(client, []).get_json() == {"processed": 0, "duplicate": 0, "unmatched": 0}


# No input answers 500.

FUZZ = hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
HEADER_TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=255, blacklist_characters="\x7f"), max_size=80)
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
                    max_leaves=12)
EVENT = st.fixed_dictionaries({"event": st.one_of(st.sampled_from(["delivered", "open", "click", "bounce", "dropped",
                                                                   "spamreport", "processed"]), st.text(max_size=90), JSON),
                               "sg_event_id": st.one_of(st.text(max_size=130), JSON),
                               "sg_message_id": st.one_of(st.sampled_from(["msg1", "msg1.x", "msg1."]),
                                                          st.text(max_size=210), JSON)},
                              optional={"timestamp": JSON, "email": JSON})


@FUZZ
@given(body=st.binary(max_size=300), signature=st.one_of(st.none(), HEADER_TEXT),
       timestamp=st.one_of(st.none(), HEADER_TEXT))
def test_any_body_and_headers_never_answer_500(client, email, body, signature, timestamp):
    headers = {email_events.SIGNATURE_HEADER: signature, email_events.TIMESTAMP_HEADER: timestamp}
    response = client.post(URL, data=body, headers={k: v for k, v in headers.items() if v is not None})
    assert response.status_code < 500


@FUZZ
@given(events=st.one_of(st.lists(EVENT, max_size=5), JSON))
def test_any_signed_body_never_answers_500(client, email, events):
    response = post(client, json.dumps(events).encode())
    assert response.status_code < 500, response.get_json()


def test_odd_text_in_other_fields_is_stored(client, email):
    odd = event("open", email="a\x00b\u2028c", reason="\ud7ff \U0001f600", sg_event_id="e\u00e9\u4e2d")
    assert post(client, [odd]).get_json() == {"processed": 1, "duplicate": 0, "unmatched": 0}
    assert stored()[0].payload["email"] == "a\x00b\u2028c"


@pytest.mark.skipif(not POSTGRES, reason="concurrent writers need PostgreSQL (TEST_POSTGRES_URL)")
def test_concurrent_senders_apply_each_event_once(live_server, email):
    """Four senders post the same 12 events, each in its own order, at once; a 409 is retried."""
    events = [event(kind, event_id=f"e{i}") for i, kind in enumerate(["delivered", "open", "click", "processed"] * 3)]

    def send(seed: int) -> dict:
        batch = random.Random(seed).sample(events, len(events))
        for _ in range(20):
            timestamp = str(int(time.time()))
            body = json.dumps(batch).encode()
            request = urllib.request.Request(live_server + URL, data=body, method="POST", headers={
                email_events.TIMESTAMP_HEADER: timestamp, email_events.SIGNATURE_HEADER: sign(body, timestamp)})
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    return json.loads(response.read())
            except urllib.error.HTTPError as error:
                assert error.code == 409, error.read()
        raise AssertionError("still conflicting after 20 tries")

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(send, range(4)))
    assert sum(answer["processed"] for answer in answers) == len(events)
    assert sum(answer["duplicate"] for answer in answers) == 3 * len(events)
    assert len(stored()) == len(events)
    assert status(email) == "clicked"

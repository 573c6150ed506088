"""The email log page, re-sending, the customer page's email card, and NPS surveys answered from a real email."""
from __future__ import annotations

import datetime as dt
import re
from urllib.parse import urlsplit

from sqlalchemy import select, update

from portal.customers import service
from portal.emails import delivery
from portal.extensions import db
from portal.models import AuditLog, EmailCount, EmailNotification, Feedback, NpsSurvey
from tests.conftest import csrf_token
from tests.email_peers import smtp_app, smtp_server  # noqa: F401  (the app with an SMTP server)

EN = EmailNotification


def add(name="ada"):
    customer = service.add_customer({"email": f"{name}@example.com", "organization": name.title(),
                                     "github_username": name}, "test")
    db.session.commit()
    return customer


def failed_email(customer, key="broken") -> EN:
    email = EN(customer_id=customer.id, kind="reengagement", dedupe_key=key, recipient=customer.email,
               status="failed", attempts=8, last_error="SMTP: ConnectionRefusedError", payload={"days": 9})
    db.session.add(email)
    db.session.commit()
    return email


def test_the_log_filters_by_status_kind_and_customer_and_shows_the_failed_count(ctx, client, auth):
    ada, bob = add("ada"), add("bob")
    failed_email(ada)
    auth.login("viewer")
    page = client.get("/emails").get_data(as_text=True)
    assert "1 failed" in page and page.count("<tr>") == 4  # header and three emails
    failed = client.get("/emails?status=failed").get_data(as_text=True)
    assert failed.count("<tr>") == 2 and "SMTP: ConnectionRefusedError" in failed
    assert client.get("/emails?kind=milestone").get_data(as_text=True).count("<tr>") == 3
    by_customer = client.get(f"/emails?customer={bob.public_id}").get_data(as_text=True)
    assert by_customer.count("<tr>") == 2 and "bob@example.com" in by_customer
    assert client.get("/emails?customer=nonsense&status=bogus&kind=x&page=-4").status_code == 200
    fragment = client.get("/emails?status=failed", headers={"HX-Request": "true"})
    assert fragment.get_data(as_text=True).lstrip().startswith('<section id="emails-table"')
    assert "<html" not in fragment.get_data(as_text=True) and "HX-Request" in fragment.headers["Vary"]


def test_the_head_and_the_pager_count_from_email_counts(ctx, client, auth, monkeypatch):
    """The failed and queued badges and the pager's total are email_counts' (kept by triggers), exact: no email
    row is counted unless the log is narrowed to a customer."""
    ada = add("ada")
    for key in ("one", "two", "three"):
        failed_email(ada, key)
    auth.login("viewer")
    page = client.get("/emails").get_data(as_text=True)
    assert "3 failed" in page and "1 queued" in page  # and the welcome email
    # Three failed emails, consecutive ids: three shards' rows, now as with 12,000 of them.
    db.session.execute(update(EmailCount).where(EmailCount.status == "failed").values(emails=4_000))
    db.session.commit()
    monkeypatch.setattr("portal.pages.COUNT_CAP", 60)  # a pager of two pages
    page = client.get("/emails").get_data(as_text=True)
    assert "12,000 failed" in page and "of the first 2" in page
    assert "of the first" not in client.get(f"/emails?customer={ada.public_id}").get_data(as_text=True)


def test_a_sent_message_shows_both_parts_safely(ctx, client, auth, smtp_server):
    add("ada")
    delivery.deliver_due()
    email = db.session.scalars(select(EN)).one()
    auth.login("viewer")
    page = client.get(f"/emails/{email.id}").get_data(as_text=True)
    assert "Welcome to the early-access programme" in page and email.provider_message_id in page
    assert "<pre class=\"email-text\">Hello Ada team," in page
    # The HTML part is shown in a sandboxed frame, and as escaped source; never as the page's own markup.
    assert f'<iframe class="email-preview" sandbox src="/emails/{email.id}/html"' in page
    assert "&lt;p&gt;Hello Ada team,&lt;/p&gt;" in page and "<p>Hello Ada team,</p>" not in page
    part = client.get(f"/emails/{email.id}/html")
    assert part.status_code == 200 and "<p>Hello Ada team,</p>" in part.get_data(as_text=True)
    assert part.headers["Content-Security-Policy"].startswith("sandbox; default-src 'none'")
    assert part.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert client.get("/emails/999").status_code == 404


def test_resend_puts_a_failed_email_back_in_the_queue_for_members_only(ctx, client, auth, smtp_server):
    email = failed_email(add("ada"))
    auth.login("viewer")
    assert "Re-send" not in client.get(f"/emails/{email.id}").get_data(as_text=True)
    token = csrf_token(client, f"/emails/{email.id}")
    assert client.post(f"/emails/{email.id}/resend", data={"csrf_token": token}).status_code == 403
    client.post("/logout", data={"csrf_token": token})
    auth.login("member")
    assert client.post(f"/emails/{email.id}/resend").status_code == 400  # no CSRF token
    token = csrf_token(client, f"/emails/{email.id}")
    response = client.post(f"/emails/{email.id}/resend", data={"csrf_token": token})
    assert response.status_code == 303
    db.session.expire_all()
    email = db.session.get(EN, email.id)
    assert (email.status, email.attempts, email.last_error) == ("queued", 0, "")
    changes = {row.field: (row.old_value, row.new_value) for row in
               db.session.scalars(select(AuditLog).filter_by(table_name="email_notifications"))}
    assert changes == {"status": ("failed", "queued"), "attempts": ("8", "0")}
    again = client.post(f"/emails/{email.id}/resend", data={"csrf_token": token}, follow_redirects=True)
    assert "not failed: nothing to re-send" in again.get_data(as_text=True)
    delivery.deliver_due()
    assert "ada@example.com" in {r[0] for r, _ in smtp_server.messages if r}
    assert db.session.get(EN, email.id).status == "sent"


def test_the_customer_page_lists_emails_and_shows_unsubscribed(ctx, client, auth):
    ada = add("ada")
    auth.login("viewer")
    page = client.get(f"/customers/{ada.public_id}").get_data(as_text=True)
    assert "Welcome to the early-access programme" in page and "Subscribed to the programme" in page
    assert "Send NPS survey" not in page
    ada.unsubscribed_at = dt.datetime.now(dt.timezone.utc)
    db.session.commit()
    assert "Unsubscribed</span> since" in client.get(f"/customers/{ada.public_id}").get_data(as_text=True)


def path_of(url: str) -> str:
    return urlsplit(url).path


def test_nps_survey_from_the_customer_page_answered_on_confirmation(ctx, client, auth, smtp_server):
    ada = add("ada")
    auth.login("member")
    token = csrf_token(client, f"/customers/{ada.public_id}")
    for _ in range(2):
        response = client.post(f"/customers/{ada.public_id}/nps-survey", data={"csrf_token": token})
        assert response.status_code == 303
    survey = db.session.scalars(select(NpsSurvey)).one()  # one per quarter
    assert db.session.scalars(select(EN).filter_by(kind="nps_survey")).one().payload["survey_id"] == survey.id
    client.post("/logout", data={"csrf_token": token})

    delivery.deliver_due()
    [message] = [m for _, m in smtp_server.messages if m["Subject"] == "How likely are you to recommend us?"]
    html = message.get_body(("html",)).get_content()
    links = re.findall(r'<a href="(http://portal.test/nps/[^"]+)"[^>]*>(\d+)</a>', html)
    assert [int(score) for _, score in links] == list(range(11))
    assert all(url in message.get_body(("plain",)).get_content() for url, _ in links)

    nine, three = links[9][0], links[3][0]
    # A mail scanner fetches every link: nothing is recorded until the customer confirms a score.
    for url, _ in links:
        assert client.get(path_of(url)).status_code == 200
    assert db.session.scalars(select(Feedback)).all() == [] and survey.answered_at is None
    shown = client.get(path_of(nine)).get_data(as_text=True)
    assert re.search(r'value="9" checked', shown) and len(re.findall(r'type="radio" name="score"', shown)) == 11
    token = csrf_token(client, path_of(nine))
    assert client.post(path_of(nine), data={"score": "9"}).status_code == 400  # CSRF
    for bad in ("11", "-1", "x", "", "²", "9" * 5000):
        refused = client.post(path_of(nine), data={"score": bad, "csrf_token": token})
        assert refused.status_code == 422 and "Pick a score from 0 to 10." in refused.get_data(as_text=True)
    assert db.session.scalars(select(Feedback)).all() == []
    answered = client.post(path_of(nine), data={"score": "9", "csrf_token": token})
    assert answered.status_code == 200 and "We recorded your score: 9 out of 10" in answered.get_data(as_text=True)
    second = client.post(path_of(three), data={"score": "3", "csrf_token": token})
    assert "already answered with a score of 9" in second.get_data(as_text=True)
    assert "already answered with a score of 9" in client.get(path_of(three)).get_data(as_text=True)
    feedback = db.session.scalars(select(Feedback)).one()
    assert (feedback.nps, feedback.source, feedback.customer_id) == (9, "survey", ada.id)

    comment_url = path_of(nine) + "/comment"
    assert client.post(comment_url, data={"comment": "Great"}).status_code == 400  # CSRF
    thanks = client.post(comment_url, data={"comment": "  Fast fixes!  ", "csrf_token": token})
    assert thanks.status_code == 200 and "Your comment is recorded" in thanks.get_data(as_text=True)
    assert client.post(comment_url, data={"comment": "More", "csrf_token": token}).status_code == 400
    db.session.expire_all()
    assert db.session.scalars(select(Feedback)).one().comment == "Fast fixes!"

    auth.login("viewer")
    assert "NPS 9 (survey)" in client.get(f"/customers/{ada.public_id}").get_data(as_text=True)


def test_bad_expired_and_unknown_survey_links_get_a_friendly_page(ctx, client, tracking):
    from portal.emails import tokens

    ada = add("ada")
    assert tracking("nps-survey", ada.public_id).exit_code == 0
    refused = tracking("nps-survey", ada.public_id)
    assert refused.exit_code != 0 and "already has this quarter's NPS survey" in refused.output
    assert tracking("nps-survey", "c9999").exit_code != 0
    survey = db.session.scalars(select(NpsSurvey)).one()
    with ctx.test_request_context():
        good, unknown = tokens.nps_token(survey.id, 7), tokens.nps_token(999, 7)
        out_of_range = tokens._serializer("nps").dumps([survey.id, 11])
    for token in (good[:-3] + "abc", "x", unknown, out_of_range):
        response = client.get(f"/nps/{token}")
        assert response.status_code == 400 and "This link cannot be used" in response.get_data(as_text=True)
    survey.expires_at = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)
    db.session.commit()
    closed = client.get(f"/nps/{good}")
    assert closed.status_code == 400 and "has closed" in closed.get_data(as_text=True)
    assert db.session.scalars(select(Feedback)).all() == []


def test_the_customer_may_confirm_another_score_than_the_link_chose(ctx, client, tracking):
    from portal.emails import tokens

    ada = add("ada")
    assert tracking("nps-survey", ada.public_id).exit_code == 0
    survey = db.session.scalars(select(NpsSurvey)).one()
    with ctx.test_request_context():
        link = f"/nps/{tokens.nps_token(survey.id, 0)}"
    token = csrf_token(client, link)
    answered = client.post(link, data={"score": "8", "csrf_token": token})
    assert "We recorded your score: 8 out of 10" in answered.get_data(as_text=True)
    feedback = db.session.scalars(select(Feedback)).one()
    assert (feedback.nps, feedback.source) == (8, "survey")


def test_an_email_being_handed_over_shows_as_sending_and_as_interrupted_once_its_lease_ended(ctx, client, auth):
    now = dt.datetime.now(dt.timezone.utc)
    ada = add("ada")
    [welcome] = db.session.scalars(select(EN)).all()
    welcome.sending_at, welcome.claim_token, welcome.claimed_until = now, "run", now + dt.timedelta(minutes=4)
    welcome.channel, welcome.provider_message_id = "smtp", "0123abcd@portal.test"
    dead = EN(customer_id=ada.id, kind="reengagement", dedupe_key="dead", recipient=ada.email, payload={"days": 9},
              sending_at=now - dt.timedelta(hours=1), claim_token="dead run", channel="smtp",
              claimed_until=now - dt.timedelta(minutes=55), provider_message_id="4567cdef@portal.test")
    db.session.add(dead)
    db.session.commit()
    auth.login("viewer")
    live = client.get(f"/emails/{welcome.id}").get_data(as_text=True)
    assert ">sending</span>" in live and "&lt;0123abcd@portal.test&gt;" in live
    stopped = client.get(f"/emails/{dead.id}").get_data(as_text=True)
    assert ">sending (interrupted)</span>" in stopped and "&lt;4567cdef@portal.test&gt;" in stopped
    assert "the next run sends it again under the same Message-ID" in stopped
    log = client.get("/emails").get_data(as_text=True)
    assert log.count(">sending</span>") == 1 and log.count(">sending (interrupted)</span>") == 1

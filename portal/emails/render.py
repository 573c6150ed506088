"""An outbox row as a message: subject, text and HTML parts from templates/emails, and its headers."""
from __future__ import annotations

from dataclasses import dataclass, field

from flask import render_template
from ..health import metrics
from ..models import Customer, EmailNotification
from . import content, tokens


@dataclass
class Rendered:
    subject: str
    text: str
    html: str
    headers: dict[str, str] = field(default_factory=dict)


def next_step(customer: Customer | None) -> str | None:
    if customer is None or customer.onboarding is None:
        return None
    return next((step for step in metrics.STEPS if not getattr(customer.onboarding, step)), None)


def context(notification: EmailNotification, customer: Customer | None) -> dict:
    payload = notification.payload or {}
    values = {"email": notification, "payload": payload, "customer": customer, "unsubscribe_url": None,
              "link": tokens.absolute_url,
              "guide_url": tokens.absolute_url("emails_public.guide")}
    if customer is not None:
        values["unsubscribe_url"] = tokens.absolute_url("emails_public.unsubscribe",
                                                        token=tokens.unsubscribe_token(customer.id))
        step = next_step(customer)
        values["next_step"] = step
        values["next_step_url"] = tokens.absolute_url("emails_public.guide", _anchor=step) if step else None
    if notification.kind == "nps_survey":
        values["scores"] = [(score, tokens.absolute_url("emails_public.nps_answer",
                                                        token=tokens.nps_token(payload["survey_id"], score)))
                            for score in range(11)]
    return values


def render(notification: EmailNotification, customer: Customer | None) -> Rendered:
    values = context(notification, customer)
    payload = notification.payload or {}
    headers = {}
    if values["unsubscribe_url"]:
        # RFC 2369 and RFC 8058: mail clients offer unsubscribe and may POST to the link in one click.
        headers = {"List-Unsubscribe": f"<{values['unsubscribe_url']}>",
                   "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    return Rendered(
        subject=content.subject(notification.kind, payload),
        text=render_template(content.template(notification.kind, payload, "txt"), **values),
        html=render_template(content.template(notification.kind, payload, "html"), **values),
        headers=headers,
    )

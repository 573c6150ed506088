"""The landing site's webhook body (SPEC section 6), checked: pure."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..validation import ValidationError
from .payloads import text, timestamp

EVENTS = ("signup", "account_created")
CUSTOMER_FIELDS = ("email", "organization", "github_username", "cohort", "industry", "team_size")


@dataclass(frozen=True)
class LandingEvent:
    event: str
    occurred_at: dt.datetime
    email: str
    fields: Mapping[str, str] = field(default_factory=dict)  # as text, for customers.service.add_customer


def customer_fields(customer: dict) -> dict[str, str]:
    fields = {}
    for name in CUSTOMER_FIELDS:
        value: Any = customer.get(name)
        if value is None:
            continue
        if name == "team_size" and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or "\x00" in value:
            raise ValidationError(f"customer.{name} must be text", name)
        fields[name] = value
    return fields


def parse(body: dict) -> LandingEvent:
    event = body.get("event")
    if event not in EVENTS:
        raise ValidationError(f"event must be one of {', '.join(EVENTS)}", "event")
    occurred_at = timestamp(body.get("occurred_at"), "occurred_at")
    customer = body.get("customer")
    if not isinstance(customer, dict):
        raise ValidationError("customer must be a JSON object", "customer")
    email = text(customer.get("email"), "email")
    fields = customer_fields(customer) if event == "signup" else {}
    return LandingEvent(event, occurred_at, email, fields)

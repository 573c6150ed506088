"""The product metrics API body (SPEC section 6), checked and turned into effects: pure."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from ..health.metrics import STEPS
from ..validation import ValidationError
from .payloads import identifier, text

STEP_PREFIX = "onboarding_step_"
EVENT_TYPES = (*(STEP_PREFIX + step for step in STEPS), "issue_resolution")


@dataclass(frozen=True)
class TrackEvent:
    customer_id: str
    event_type: str
    delivery_id: str | None
    step: str | None = None
    counts: Mapping[str, int] = field(default_factory=dict)


def resolution_counts(metadata: dict) -> dict[str, int]:
    """An issue tagged; with a PR, also a PR generated, and merged or rejected by success."""
    text(metadata.get("issue_url"), "metadata.issue_url")
    duration = metadata.get("duration_ms")
    if duration is not None and (isinstance(duration, bool) or not isinstance(duration, (int, float)) or duration < 0):
        raise ValidationError("metadata.duration_ms must be a number of milliseconds, at least 0", "metadata.duration_ms")
    if text(metadata.get("pr_url"), "metadata.pr_url", required=False) is None:
        return {"issues_tagged": 1}
    success = metadata.get("success")
    if not isinstance(success, bool):
        raise ValidationError("metadata.success must be true or false when pr_url is set", "metadata.success")
    return {"issues_tagged": 1, "prs_generated": 1, ("prs_merged" if success else "prs_rejected"): 1}


def parse(body: dict, idempotency_key: str | None = None) -> TrackEvent:
    """idempotency_key: the Idempotency-Key header, used when the body has no event_id."""
    customer_id = text(body.get("customer_id"), "customer_id")
    event_type = body.get("event_type")
    if event_type not in EVENT_TYPES:
        raise ValidationError(f"event_type must be one of {', '.join(EVENT_TYPES)}", "event_type")
    metadata = body.get("metadata", {})
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise ValidationError("metadata must be a JSON object", "metadata")
    if "event_id" in body:
        delivery_id = identifier(body["event_id"], "event_id")
    else:
        delivery_id = identifier(idempotency_key, "Idempotency-Key") if idempotency_key else None
    if event_type == "issue_resolution":
        return TrackEvent(customer_id, event_type, delivery_id, counts=resolution_counts(metadata))
    return TrackEvent(customer_id, event_type, delivery_id, step=event_type.removeprefix(STEP_PREFIX))

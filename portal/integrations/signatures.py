"""HMAC-SHA256 signatures in GitHub's scheme: "sha256=" + hex of HMAC(secret, raw body)."""
from __future__ import annotations

import hashlib
import hmac


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """Constant-time comparison of the header with the expected signature; a missing header fails."""
    if not header:
        return False
    return hmac.compare_digest(sign(secret, body).encode(), header.strip().encode("utf-8", "replace"))


def key_hash(api_key: str) -> str:
    """How metrics-API keys are stored (customer-tracking api-key): sha256 hex of the key."""
    return hashlib.sha256(api_key.encode("utf-8", "replace")).hexdigest()

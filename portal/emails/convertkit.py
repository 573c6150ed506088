"""ConvertKit's v3 tag API over urllib: pure, no Flask. Tagging a subscriber starts the tag's sequence.

GET /tags?api_secret= lists tags; POST /tags {"api_secret", "tag": {"name"}} creates one;
POST /tags/<id>/subscribe {"api_secret", "email"} tags (and if need be adds) the subscriber.
The API secret travels in every request, so no error message built here ever contains a URL or a body.
"""
from __future__ import annotations

import json
import socket
import urllib.error
import urllib.parse
import urllib.request


class ConvertKitError(Exception):
    """A request that failed; the message names the request and the reason, never the secret."""


class ConvertKit:
    def __init__(self, base_url: str, api_secret: str, timeout: float = 5.0):
        self.base_url, self.secret, self.timeout = base_url.rstrip("/"), api_secret, timeout
        self.tag_ids: dict[str, int] | None = None  # fetched once per client (one delivery run)

    def scrub(self, text: str) -> str:
        return text.replace(self.secret, "[secret]") if self.secret else text

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        url = f"{self.base_url}{path}"
        data = None
        if method == "GET":
            url += "?" + urllib.parse.urlencode({"api_secret": self.secret})
        else:
            data = json.dumps({"api_secret": self.secret, **(body or {})}).encode()
        request = urllib.request.Request(url, data=data, method=method,
                                         headers={"Content-Type": "application/json", "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            raise ConvertKitError(f"{method} {path}: HTTP {error.code}") from None
        except (socket.timeout, TimeoutError):
            raise ConvertKitError(f"{method} {path}: no answer within {self.timeout:g} s") from None
        except urllib.error.URLError as error:
            raise ConvertKitError(self.scrub(f"{method} {path}: {error.reason}")) from None
        except (ValueError, OSError) as error:
            raise ConvertKitError(self.scrub(f"{method} {path}: {type(error).__name__}")) from None

    def tag_id(self, name: str) -> int:
        if self.tag_ids is None:
            listed = self.call("GET", "/tags").get("tags") or []
            self.tag_ids = {tag["name"]: int(tag["id"]) for tag in listed if isinstance(tag, dict) and "id" in tag}
        if name not in self.tag_ids:
            created = self.call("POST", "/tags", {"tag": {"name": name}})
            if not isinstance(created.get("id"), int):
                raise ConvertKitError("POST /tags: the answer has no tag id")
            self.tag_ids[name] = created["id"]
        return self.tag_ids[name]

    def tag_subscriber(self, tag: str, email: str) -> str:
        """Tag the subscriber; returns an id for the outbox row (the subscription's)."""
        tag_id = self.tag_id(tag)
        answer = self.call("POST", f"/tags/{tag_id}/subscribe", {"email": email})
        subscription = answer.get("subscription") if isinstance(answer.get("subscription"), dict) else {}
        return f"convertkit-{tag_id}-{subscription.get('id', 'ok')}"

"""Response headers that keep the browser strict (no inline scripts, no framing, no sniffing, HTTPS once it came
over HTTPS), and requests refused before any of their text reaches a query."""
from flask import Flask, abort, request
from werkzeug.routing import IntegerConverter, ValidationError

from .validation import LARGEST_KEY

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


# Webhooks read their body only once its signature is checked, and check its text themselves.
UNCHECKED_BLUEPRINTS = {"integrations"}


def holds_nul(values) -> bool:
    return any("\x00" in value for values_of_key in values.listvalues() for value in values_of_key)


class DatabaseKeyConverter(IntegerConverter):
    """`<int:...>` in every route: a row's key, from 1 to what an INTEGER column holds. A larger number (or more
    digits than int() reads) matches no route, a 404, rather than failing in the database with a 500."""

    def __init__(self, map, fixed_digits: int = 0, min: int | None = 1, max: int | None = LARGEST_KEY,
                 signed: bool = False) -> None:
        super().__init__(map, fixed_digits, min, max, signed)

    def to_python(self, value: str) -> int:
        if len(value) > len(str(self.max)):
            raise ValidationError()
        return super().to_python(value)


def bound_url_numbers(app: Flask) -> None:
    """Called before any route is added: the converters are taken when a rule is."""
    app.url_map.converters["int"] = DatabaseKeyConverter


def init_app(app: Flask) -> None:
    @app.before_request
    def refuse_nul():
        """PostgreSQL cannot store or compare text holding a NUL character, and no one types one: a query string
        or form that carries one is refused as a whole (400) rather than failing in the database."""
        if request.blueprint in UNCHECKED_BLUEPRINTS:
            return
        if holds_nul(request.args) or (request.method == "POST" and holds_nul(request.form)):
            abort(400, "A NUL character is not allowed in any field.")

    @app.after_request
    def headers(response):
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        # Only over HTTPS: a browser ignores the header on plain HTTP, and a local http:// portal must stay reachable.
        # Behind a proxy, request.is_secure follows X-Forwarded-Proto once TRUSTED_PROXIES is set (ProxyFix).
        hsts_seconds = app.config.get("HSTS_SECONDS", 0)
        if hsts_seconds and request.is_secure:
            response.headers.setdefault("Strict-Transport-Security", f"max-age={hsts_seconds}; includeSubDomains")
        return response

"""Response headers that keep the browser strict (no inline scripts, no framing, no sniffing, HTTPS once it came
over HTTPS), and requests refused before any of their text reaches a query."""
from flask import Flask, abort, request

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


# Webhooks read their body only once its signature is checked, and check its text themselves.
UNCHECKED_BLUEPRINTS = {"integrations"}


def holds_nul(values) -> bool:
    return any("\x00" in value for values_of_key in values.listvalues() for value in values_of_key)


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

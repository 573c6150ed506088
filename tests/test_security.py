"""Requests refused before any of their text reaches a query: numbers in URLs past what a key can be."""
from __future__ import annotations

import pytest

from .conftest import csrf_token

TOO_BIG = ("2147483648", "9" * 20, "1" * 5000, "0")


def integer_routes(app) -> list[tuple[str, str]]:
    """Every route with an `<int:...>` part, as (method, path with a placeholder for each such part)."""
    routes = []
    for rule in app.url_map.iter_rules():
        numbers = [name for name, converter in rule._converters.items() if type(converter).__name__ == "DatabaseKeyConverter"]
        if not numbers:
            continue
        # Other parts get a word; the numbers a mark to put each tried number in.
        values = {name: 7654321 if name in numbers else "x" for name in rule.arguments}
        path = rule.build(values, append_unknown=False)[1].replace("7654321", "{number}")
        routes.extend((method, path) for method in sorted(rule.methods - {"HEAD", "OPTIONS"}))
    return routes


def test_every_numeric_route_is_bounded(app):
    routes = integer_routes(app)
    # The routes this covers today; a new one with <int:...> joins them by itself.
    assert {"/events/{number}", "/emails/{number}", "/playbooks/{number}", "/tasks/{number}/complete",
            "/users/{number}/role"} <= {path for _, path in routes}


@pytest.mark.parametrize("number", TOO_BIG)
def test_a_key_no_row_can_have_is_not_found(app, auth, number):
    auth.login("admin")
    token = csrf_token(auth.client, "/customers")
    for method, path in integer_routes(app):
        response = auth.client.open(path.format(number=number), method=method, headers={"X-CSRFToken": token},
                                    data={"csrf_token": token})
        assert response.status_code == 404, (method, path, response.status_code)


def test_the_largest_key_is_looked_up(auth):
    auth.login("admin")
    assert auth.client.get("/events/2147483647").status_code == 404
    assert auth.client.get("/playbooks/2147483647").status_code == 404

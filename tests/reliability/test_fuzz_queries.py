"""Every page and download of the URL map, asked with generated hostile query strings as a signed-in admin and
with htmx's headers or without: never a 500. Query strings are what links, bookmarks and scanners carry."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings, strategies as st


from .test_access import ARGUMENTS, NAMES
from .test_fuzz_forms import HOSTILE, signed_in_once

# Every name a page reads from its query string (filters, sorting, paging, dates, downloads' options).
QUERY_NAMES = ["q", "cohort", "stage", "band", "owner", "status", "sort", "dir", "page", "start", "end", "industry",
               "by", "context", "customer", "from", "to", "job", "kind", "next", "outcome", "show", "snoozed",
               "source", "tag", "type", "days", "signup_from", "signup_to"]
DATES = st.sampled_from(["0001-01-01", "1900-01-01", "1999-12-31", "2026-12-06", "9999-12-31", "2026-13-01", "x"])
# Sign-out ends the session; the webhooks take signed bodies, not query strings.
SKIPPED = {"auth.logout", "auth.logout_everywhere", "static"}


def get_routes(app) -> list[tuple[str, str]]:
    routes = []
    for rule in app.url_map.iter_rules():
        if "GET" in rule.methods and rule.endpoint not in SKIPPED:
            values = {name: NAMES.get(rule.endpoint, ARGUMENTS.get(name, "x")) for name in rule.arguments}
            routes.append((rule.endpoint, rule.build(values, append_unknown=False)[1]))
    return sorted(routes)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(data=st.data())
def test_no_query_string_answers_500(app, auth, data):
    signed_in_once(app, auth, "admin")
    endpoint, path = data.draw(st.sampled_from(get_routes(app)), label="route")
    query = data.draw(st.dictionaries(st.sampled_from(QUERY_NAMES), HOSTILE | DATES, max_size=5), label="query")
    headers = data.draw(st.sampled_from([{}, {"HX-Request": "true"}, {"HX-Request": "true", "HX-Boosted": "true"}]),
                        label="headers")
    response = auth.client.get(path, query_string=query, headers=headers)
    response.close()
    assert response.status_code < 500, (endpoint, query, response.status_code)

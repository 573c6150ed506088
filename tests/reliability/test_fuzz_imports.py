"""The import page fed generated files as a member would upload them: CSVs with hostile cells (ids, counts past
any column, far-off and impossible dates, formula cells, NUL, odd encodings), zips of them, and junk. Never a
500; a refused import (4xx) leaves every row of every table as it was; an accepted one can be imported again
and changes nothing the second time."""
from __future__ import annotations

import csv
import io
import zipfile

from hypothesis import HealthCheck, given, settings, strategies as st

from portal.transfer.csvformat import HEADERS

from ..conftest import csrf_token
from ..test_transfer import snapshot
from .test_fuzz_forms import HOSTILE, signed_in_once

GOOD = {
    "customers.csv": ["c1001", "ada@example.com", "Ada", "ada", "2026-11-01", "Beta", "SaaS", "5", "active"],
    "onboarding.csv": ["o1001", "c1001", "true", "false", "false", "false", "false", "", "", "none", ""],
    "engagement.csv": ["e1001", "c1001", "2026-11-20", "1", "1", "1", "0", "0"],
}
CELL = st.one_of(HOSTILE, st.sampled_from(["c1001", "c1002", "o1001", "e1001", "2026-11-20", "true", "false", "1"]))


@st.composite
def csv_file(draw) -> tuple[str, bytes]:
    name = draw(st.sampled_from(sorted(GOOD)))
    header = HEADERS[name]
    rows = []
    for _ in range(draw(st.integers(0, 4))):
        row = list(GOOD[name])
        for index in draw(st.sets(st.integers(0, len(header) - 1), max_size=2)):
            row[index] = draw(CELL)
        rows.append(row)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(draw(st.sampled_from([header] * 5 + [header[::-1], [*header, "extra"], header[:-1]])))
    writer.writerows(rows)
    text = out.getvalue()
    encoding = draw(st.sampled_from(["utf-8"] * 3 + ["utf-8-sig", "utf-16", "latin-1"]))
    return name, text.encode(encoding, errors="replace")


@st.composite
def upload(draw) -> tuple[str, bytes]:
    kind = draw(st.sampled_from(["csv", "csv", "zip", "zip", "junk"]))
    if kind == "csv":
        return draw(csv_file())
    if kind == "junk":
        return draw(st.sampled_from(["customers.csv", "export.zip", "notes.txt"])), draw(st.binary(max_size=200))
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as out:
        for name, body in draw(st.lists(csv_file(), max_size=3, unique_by=lambda member: member[0])):
            out.writestr(name, body)
    return "export.zip", archive.getvalue()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(file=upload())
def test_no_upload_answers_500_and_a_refused_one_changes_nothing(app, auth, file):
    signed_in_once(app, auth, "member")
    name, body = file
    token = csrf_token(auth.client, "/import")
    with app.app_context():
        before = snapshot()

    def send():
        # As htmx sends it, which answers a refused file 422 (the whole page shows it with 200).
        return auth.client.post("/import", data={"csrf_token": token, "file": (io.BytesIO(body), name)},
                                content_type="multipart/form-data", headers={"HX-Request": "true"})

    response = send()
    assert response.status_code < 500, (name, body[:300], response.status_code)
    with app.app_context():
        after = snapshot()
    if response.status_code >= 400:
        assert after == before, (name, body[:300], response.status_code)
    else:
        again = send()
        with app.app_context():
            assert again.status_code == 200 and snapshot() == after, (name, body[:300])

"""The import and export pages: access, CSRF, uploads and their errors, htmx fragments, downloads."""
from __future__ import annotations

import csv
import io
import re
import zipfile

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import AuditLog, Customer

from .conftest import clean, csrf_token
from .test_transfer import C, E, O, SPEC_HEADERS, csv_text, seeded, snapshot, unzip  # noqa: F401

HX = {"HX-Request": "true"}
ROUTES = ["/import", "/export", "/export/customer-tracking.zip", *(f"/export/{name}" for name in SPEC_HEADERS)]
TWO_BAD_ROWS = csv_text(C, {"email": "not-an-email"}, {"id": "c1011", "email": "ok@delta.example",
                                                        "github_username": "ok-dev", "team_size": "0"})


def customer_data() -> dict:
    """Every table but the team's, which signing in adds to."""
    return {table: rows for table, rows in snapshot().items() if table not in ("users", "login_attempts")}


@pytest.fixture
def unchanged(seeded):
    """Asserts at the end of the test that the import changed nothing."""
    with seeded.app_context():
        before = customer_data()
    yield
    with seeded.app_context():
        assert customer_data() == before


def upload(client, name, content, headers=None, token=None, path="/import"):
    token = csrf_token(client, path) if token is None else token
    data = {"file": (io.BytesIO(content.encode() if isinstance(content, str) else content), name)}
    if token:
        data["csrf_token"] = token
    return client.post("/import", data=data, content_type="multipart/form-data", headers=headers or {})


def text_of(response) -> str:
    """The page's text without tags, whitespace collapsed, for assertions on what a reader sees."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.get_data(as_text=True)))


# access ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ROUTES)
def test_anonymous_users_are_sent_to_sign_in(client, path):
    response = client.get(path)
    assert response.status_code == 302 and response.headers["Location"].startswith("/login?next=")


def test_an_anonymous_upload_is_sent_to_sign_in(client, unchanged):
    response = upload(client, C, csv_text(C, {}), token=csrf_token(client, "/login"))
    assert response.status_code == 302 and response.headers["Location"].startswith("/login?next=")


@pytest.mark.parametrize("path", ROUTES)
def test_viewers_see_the_pages_and_download(seeded, client, auth, path):
    auth.login(role="viewer")
    with client.get(path) as response:
        assert response.status_code == 200


def test_viewers_see_no_upload_form_and_cannot_import(client, auth, unchanged):
    auth.login(role="viewer")
    page = client.get("/import").get_data(as_text=True)
    assert 'type="file"' not in page and "Viewers can export but not import" in page
    assert upload(client, C, csv_text(C, {}), token=csrf_token(client, "/import")).status_code == 403


def test_an_upload_without_the_csrf_token_is_refused(client, auth, unchanged):
    auth.login(role="member")
    assert upload(client, C, csv_text(C, {}), token="").status_code == 400


# uploads -----------------------------------------------------------------------------------------


def test_the_page_has_a_labelled_htmx_upload_form_that_also_works_without_javascript(client, auth):
    auth.login(role="member")
    page = client.get("/import").get_data(as_text=True)
    form = re.search(r"<form method=\"post\" action=\"/import\" enctype=\"multipart/form-data\"[^>]*>", page).group(0)
    for attribute in ('hx-post="/import"', 'hx-encoding="multipart/form-data"', 'hx-target="#import-result"',
                      "hx-indicator=", "hx-disabled-elt="):
        assert attribute in form
    field_id = re.search(r'<input[^>]*type="file"[^>]*id="([^"]+)"|<input[^>]*id="([^"]+)"[^>]*type="file"', page)
    assert f'<label for="{field_id.group(1) or field_id.group(2)}">' in page
    assert 'id="import-result"' in page and "style=" not in page and "<script>" not in page


def test_a_good_csv_is_imported_with_its_counts_and_the_users_name_in_the_audit_log(seeded, client, auth):
    auth.login(role="member")
    response = upload(client, C, csv_text(C, {}, {"id": "c1001", "email": "dev@acme.example", "organization": "Acme Corp",
                                                  "github_username": "acme-dev", "signup_date": "2024-01-10",
                                                  "cohort": "Beta", "industry": "SaaS", "team_size": "12"}))
    assert response.status_code == 200 and "<html" in response.get_data(as_text=True)
    page = text_of(response)
    assert "Imported customers.csv: 1 created, 1 updated, 0 unchanged." in page
    assert "customers.csv 1 1 0" in page  # the counts table: file, created, updated, unchanged
    with seeded.app_context():
        assert db.session.get(Customer, 10).email == "new@delta.example"
        assert db.session.get(Customer, 1).organization == "Acme Corp"
        actors = set(db.session.scalars(select(AuditLog.actor).where(AuditLog.record_id.in_(["c1001", "c1010"]))))
        assert actors == {"test", "Member User"}


def test_the_export_zip_round_trips_through_the_pages(seeded, client, auth):
    auth.login()
    with client.get("/export/customer-tracking.zip") as response:
        first = response.get_data()
    clean(seeded)
    auth.login()
    response = upload(client, "customer-tracking.zip", first)
    assert response.status_code == 200
    page = text_of(response)
    assert "Imported customer-tracking.zip: 6 created, 2 updated, 1 unchanged." in page
    for row in ("customers.csv 3 0 0", "onboarding.csv 0 2 1", "engagement.csv 3 0 0"):
        assert row in page
    with client.get("/export/customer-tracking.zip") as response:
        assert unzip(io.BytesIO(response.get_data())) == unzip(io.BytesIO(first))


def test_a_file_with_two_bad_rows_lists_both_and_changes_nothing(client, auth, unchanged):
    auth.login(role="member")
    response = upload(client, C, TWO_BAD_ROWS)
    assert response.status_code == 200 and "<html" in response.get_data(as_text=True)
    page = response.get_data(as_text=True)
    assert "2 bad lines in customers.csv: nothing was imported" in text_of(response)
    items = re.findall(r"<li>(.*?)</li>", page.split('class="error-list"')[1].split("</ul>")[0])
    assert len(items) == 2
    assert items[0].startswith("customers.csv line 2: email:")
    assert items[1].startswith("customers.csv line 3: team_size:")


def test_htmx_gets_the_result_fragment_422_on_errors(client, auth, unchanged):
    auth.login(role="member")
    response = upload(client, C, TWO_BAD_ROWS, headers=HX)
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and "<html" not in page and "<form" not in page
    assert "HX-Request" in response.headers["Vary"]
    assert page.count("<li>") == 2


def test_htmx_gets_the_result_fragment_with_the_flash_on_success(seeded, client, auth):
    auth.login(role="member")
    response = upload(client, C, csv_text(C, {}), headers=HX)
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in page and "HX-Request" in response.headers["Vary"]
    assert "Imported customers.csv: 1 created, 0 updated, 0 unchanged." in page and "<table>" in page
    # The flash was shown in the fragment: the next page does not show it again.
    assert "Imported customers.csv" not in client.get("/import").get_data(as_text=True)


def test_a_boosted_request_gets_the_whole_page(seeded, client, auth):
    auth.login(role="member")
    response = upload(client, C, csv_text(C, {}), headers={**HX, "HX-Boosted": "true"})
    assert response.status_code == 200 and "<html" in response.get_data(as_text=True)


def test_a_nul_character_in_a_file_is_a_line_error_not_a_500(client, auth, unchanged):
    auth.login(role="member")
    response = upload(client, C, csv_text(C, {"organization": "Delta\x00Org"}))
    assert response.status_code == 200 and "customers.csv line 2: organization: organization holds a NUL" in text_of(response)
    response = upload(client, O, csv_text(O, {"id": "o1001", "customer_id": "c1001", "notes": "a\x00b"}))
    assert "onboarding.csv line 2: notes: notes holds a NUL" in text_of(response)


@pytest.mark.parametrize("name, content, message", [
    ("clients.csv", csv_text(C, {}), "clients.csv is not the export zip or one of customers.csv, onboarding.csv, "
                                     "engagement.csv."),
    ("photo.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "photo.png is not the export zip or one of"),
    (C, csv_text(C, {"organization": "Zürich AG"}).encode("latin-1"), "customers.csv is not UTF-8 text"),
    (C, b"", "customers.csv line 1: the file is empty"),
    (C, '"' + "x" * 200_000 + '"\n', "customers.csv cannot be read: field larger than field limit"),
], ids=["unknown name", "not a zip or CSV", "not UTF-8", "empty", "unparseable"])
def test_a_file_that_cannot_be_imported_gets_a_clear_error_and_changes_nothing(client, auth, unchanged,
                                                                               name, content, message):
    auth.login(role="member")
    for headers, status in (({}, 200), (HX, 422)):
        response = upload(client, name, content, headers=headers)
        assert response.status_code == status and message in response.get_data(as_text=True)


def test_a_damaged_zip_gets_a_clear_error_and_changes_nothing(client, auth, unchanged):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as out:
        out.writestr(C, csv_text(C, {}) * 50)
    damaged = bytearray(archive.getvalue())
    damaged[60:80] = bytes(20)
    auth.login(role="member")
    response = upload(client, "customer-tracking.zip", bytes(damaged))
    assert "customer-tracking.zip cannot be read: " in response.get_data(as_text=True)


def test_a_zip_with_nothing_to_import_says_so(client, auth, unchanged):
    auth.login(role="member")
    response = upload(client, "customer-tracking.zip", b"PK\x05\x06" + bytes(18))
    assert response.status_code == 200
    assert "Nothing to import: customer-tracking.zip has no customer, onboarding or engagement rows." in text_of(response)


def test_choosing_no_file_asks_for_one(client, auth, unchanged):
    auth.login(role="member")
    response = client.post("/import", data={"csrf_token": csrf_token(client, "/import")}, headers=HX)
    assert response.status_code == 422 and "Choose a file to import." in response.get_data(as_text=True)


def post_raw(client, size, headers=None):
    """An upload of size bytes, built by hand: the test client would spool a large body to a temporary file
    that it closes only when the app reads the body, and an app refusing it with 413 does not."""
    token, boundary = csrf_token(client, "/import"), "b0undary"
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{token}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{C}"\r\n\r\n').encode()
    body += b"x" * size + f"\r\n--{boundary}--\r\n".encode()
    return client.post("/import", data=body, content_type=f"multipart/form-data; boundary={boundary}",
                       headers=headers or {})


def test_a_file_over_20_mb_is_refused_with_413(client, auth, unchanged):
    auth.login(role="member")
    assert post_raw(client, 20 * 1024 * 1024).status_code == 200  # read, and rejected for what it holds
    too_large = 20 * 1024 * 1024 + 64 * 1024
    response = post_raw(client, too_large)
    assert response.status_code == 413 and "larger than 20 MB" in response.get_data(as_text=True)
    response = post_raw(client, too_large, headers=HX)
    assert response.status_code == 413 and "larger than 20 MB" in response.headers["HX-Trigger"]


# downloads ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SPEC_HEADERS)
def test_each_csv_downloads_with_the_spec_header(seeded, client, auth, name):
    auth.login(role="viewer")
    with client.get(f"/export/{name}") as response:
        assert response.status_code == 200 and response.is_streamed
        assert response.mimetype == "text/csv" and response.mimetype_params["charset"] == "utf-8"
        assert response.headers["Content-Disposition"] == f"attachment; filename={name}"
        rows = list(csv.reader(io.StringIO(response.get_data(as_text=True), newline="")))
    assert ",".join(rows[0]) == SPEC_HEADERS[name] and len(rows) == 4


def test_the_zip_download_holds_the_four_files(seeded, client, auth):
    auth.login(role="viewer")
    with client.get("/export/customer-tracking.zip") as response:
        assert response.status_code == 200 and response.mimetype == "application/zip"
        disposition = response.headers["Content-Disposition"]
        assert re.fullmatch(r"attachment; filename=customer-tracking-\d{8}-\d{6}\.zip", disposition)
        files = unzip(io.BytesIO(response.get_data()))
        assert response.content_length == len(response.get_data())
    assert sorted(files) == sorted(SPEC_HEADERS)
    assert files[E].decode().split("\n", 1)[0] == SPEC_HEADERS[E]


@pytest.mark.parametrize("path", ["/export/users.csv", "/export/customers.zip", "/export/customers", "/export/.csv"])
def test_an_unknown_export_is_404(client, auth, path):
    auth.login(role="viewer")
    assert client.get(path).status_code == 404


def test_the_page_links_every_download_with_boost_off(client, auth):
    auth.login(role="viewer")
    page = client.get("/export").get_data(as_text=True)
    for path in ROUTES[2:]:
        assert re.search(rf'<a [^>]*href="{re.escape(path)}" hx-boost="false"', page), path

"""Imports under hostile input: zip bombs, huge lines, too many lines or members, a flood of bad lines.

The limits are settings, so each test lowers them in its app's config and uses small files.
"""
from __future__ import annotations

import gc
import io
import re
import struct
import tracemalloc
import zipfile

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Engagement
from portal.transfer import imports
from portal.transfer.csvformat import ImportRejected
from portal.transfer.limits import LINE_LIMIT, FileRefused, Limits, text_of

from .test_transfer import COLUMNS, C, E, csv_text
from .test_transfer_views import HX, customer_data, seeded, text_of as page_text, unchanged, upload  # noqa: F401

BAD_LINE = "x,c1001,2024-13-01,1,1,1,1,1\n"  # an invalid id and an invalid date


def bomb(size: int, name: str = E) -> bytes:
    """A small zip whose one member unpacks to `size` bytes: a header and one bad line repeated, written in chunks."""
    archive = io.BytesIO()
    chunk = BAD_LINE * (64 * 1024 // len(BAD_LINE))
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as out, out.open(name, "w") as member:
        member.write((",".join(COLUMNS[E]) + "\n").encode())
        for _ in range(size // len(chunk)):
            member.write(chunk.encode())
    return archive.getvalue()


def zip_with(files: dict[str, str]) -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as out:
        for name, text in files.items():
            out.writestr(name, text)
    return archive.getvalue()


def bad_lines(count: int) -> str:
    """engagement.csv with `count` bad lines, each with its own bad date."""
    return csv_text(E, *({"date": f"2024-13-{number}"} for number in range(count)))


# limits while reading ----------------------------------------------------------------------------


def test_a_zip_bomb_is_refused_while_it_unpacks_and_nothing_is_stored(seeded, client, auth, unchanged):
    seeded.config["IMPORT_MAX_UNCOMPRESSED_BYTES"] = 64 * 1024
    content = bomb(4 * 1024 * 1024)
    assert len(content) < 64 * 1024  # the upload is small: only unpacking shows what it holds
    auth.login(role="member")
    message = "engagement.csv is larger than 64 KB uncompressed: nothing was imported."
    for headers, status in (({}, 200), (HX, 422)):
        response = upload(client, "customer-tracking.zip", content, headers=headers)
        assert response.status_code == status and message in page_text(response)


def test_the_limit_counts_the_bytes_read_not_what_the_file_says():
    limits = Limits(file_bytes=1000)
    assert text_of(io.BytesIO(b"x" * 1000), E, limits).read() == "x" * 1000
    with pytest.raises(FileRefused, match="^engagement.csv is larger than 1,000 bytes uncompressed"):
        text_of(io.BytesIO(b"x" * 1001), E, limits).read()


def test_a_zip_member_is_counted_as_it_unpacks():
    """Without the directory's word for it: the member's bytes are counted as they are decompressed."""
    with zipfile.ZipFile(io.BytesIO(bomb(4 * 1024 * 1024))) as archive, archive.open(E) as member:
        stream = text_of(member, E, Limits(file_bytes=64 * 1024))
        with pytest.raises(FileRefused, match="^engagement.csv is larger than 64 KB uncompressed: nothing was imported"):
            for _ in stream:
                pass
        assert 64 * 1024 < member.tell() <= 128 * 1024


def test_a_zip_that_understates_a_members_size_is_read_no_further(seeded, client, auth, unchanged):
    seeded.config["IMPORT_MAX_UNCOMPRESSED_BYTES"] = 64 * 1024
    content = bytearray(bomb(4 * 1024 * 1024))
    entry = content.rfind(b"PK\x01\x02")  # the member's entry in the central directory: it says 1,000 bytes unpacked
    struct.pack_into("<L", content, entry + 24, 1000)
    auth.login(role="member")
    response = upload(client, "customer-tracking.zip", bytes(content))
    assert "customer-tracking.zip cannot be read: Bad CRC-32 for file &#39;engagement.csv&#39;. Nothing was imported." \
        in page_text(response)


def test_the_command_line_refuses_a_bomb_and_a_large_csv_in_one_line(seeded, tracking, tmp_path):
    seeded.config["IMPORT_MAX_UNCOMPRESSED_BYTES"] = 64 * 1024
    with seeded.app_context():
        before = customer_data()
    archive, plain = tmp_path / "bomb.zip", tmp_path / E
    archive.write_bytes(bomb(1024 * 1024))
    plain.write_text(csv_text(E, {}) + BAD_LINE * 3000)
    for path in (archive, plain):
        result = tracking("import-data", path)
        assert result.exit_code != 0 and result.stdout == ""
        assert result.stderr == "customer-tracking: engagement.csv is larger than 64 KB uncompressed: nothing was imported\n"
    with seeded.app_context():
        assert customer_data() == before


def test_a_file_of_too_many_lines_is_refused(seeded, client, auth):
    seeded.config["IMPORT_MAX_LINES"] = 50
    auth.login(role="member")
    good = csv_text(E, *({"date": f"2024-03-{day:02d}"} for day in range(1, 29)))
    assert good.count("\n") == 29
    response = upload(client, E, good + "\n" * 21)  # 50 lines: as many as a file may have
    assert "Nothing was imported" not in page_text(response) and "engagement.csv 28 0 0" in page_text(response)
    response = upload(client, E, csv_text(E, {"date": "2024-04-01"}) + "\n" * 49)  # blank lines count too
    assert "engagement.csv has more than 50 lines: nothing was imported." in page_text(response)
    with seeded.app_context():
        assert db.session.scalar(select(func.count()).select_from(Engagement)) == 3 + 28


def test_a_line_too_long_to_be_real_is_refused_without_reading_it_whole(seeded, client, auth, unchanged):
    auth.login(role="member")
    response = upload(client, E, csv_text(E, {}) + "x," * (LINE_LIMIT // 2 + 1) + "\n")
    assert f"engagement.csv has a line longer than {LINE_LIMIT:,} characters: nothing was imported." in page_text(response)


def test_a_zip_of_too_many_members_is_refused_before_they_are_listed(seeded, client, auth, unchanged):
    seeded.config["IMPORT_MAX_ZIP_MEMBERS"] = 3
    auth.login(role="member")
    folders = zip_with({"export/": "", "export/a/": "", C: csv_text(C, {}), E: csv_text(E, {})})
    response = upload(client, "customer-tracking.zip", folders)
    assert "customer-tracking.zip holds more than 3 files: nothing was imported." in page_text(response)


def test_a_zip_whose_directory_is_larger_than_its_members_need_is_refused(seeded, client, auth, unchanged):
    auth.login(role="member")
    many = zip_with({f"{number}.csv": "" for number in range(5000)})  # 5,000 names: a 200 KB directory
    response = upload(client, "customer-tracking.zip", many)
    assert "customer-tracking.zip holds more than 10 files: nothing was imported." in page_text(response)
    # The end record's count of members is read before zipfile lists them: a small directory claiming many.
    few = bytearray(zip_with({C: csv_text(C, {})}))
    end = few.rfind(b"PK\x05\x06")
    struct.pack_into("<HH", few, end + 8, 11, 11)
    response = upload(client, "customer-tracking.zip", bytes(few))
    assert "customer-tracking.zip holds more than 10 files: nothing was imported." in page_text(response)


def test_a_zip_holding_a_file_twice_is_refused(seeded, client, auth, unchanged):
    auth.login(role="member")
    twice = zip_with({E: csv_text(E, {}), f"old/{E}": csv_text(E, {"issues_tagged": "9"})})
    response = upload(client, "customer-tracking.zip", twice)
    assert "customer-tracking.zip holds engagement.csv twice: nothing was imported." in page_text(response)


def test_a_zip_member_of_another_name_is_refused_unread(seeded_ctx, tmp_path):
    path = tmp_path / "customer-tracking.zip"
    path.write_bytes(zip_with({C: csv_text(C, {}), "notes.txt": "anything"}))
    with pytest.raises(ImportRejected) as rejected:
        imports.import_path(path)
    assert rejected.value.lines() == ["notes.txt line 0: not one of customers.csv, onboarding.csv, engagement.csv"]


@pytest.fixture
def seeded_ctx(seeded):
    with seeded.app_context():
        yield seeded
        db.session.remove()


# a flood of bad lines ----------------------------------------------------------------------------


def test_a_file_of_250_bad_lines_lists_the_first_100_and_counts_the_rest(seeded, client, auth, unchanged):
    auth.login(role="member")
    response = upload(client, E, bad_lines(250))
    page = response.get_data(as_text=True)
    assert "250 bad lines in engagement.csv: nothing was imported" in page_text(response)
    items = re.findall(r"<li>(.*?)</li>", page.split('class="error-list"')[1].split("</ul>")[0])
    assert len(items) == 100
    assert items[0].startswith("engagement.csv line 2: date:") and items[-1].startswith("engagement.csv line 101: date:")
    assert "… and 150 more bad lines" in page_text(response)


def test_the_command_line_lists_the_first_100_bad_lines_and_counts_the_rest(seeded, tracking, tmp_path):
    path = tmp_path / E
    path.write_text(bad_lines(1250))
    result = tracking("import-data", path)
    lines = result.stderr.splitlines()
    assert result.exit_code != 0 and len(lines) == 102
    assert lines[0].startswith("engagement.csv line 2: date:") and lines[99].startswith("engagement.csv line 101: date:")
    assert lines[100:] == ["… and 1,150 more bad lines", "customer-tracking: 1,250 bad line(s); nothing was imported"]


def test_a_long_bad_value_is_shortened_in_the_list(seeded_ctx):
    with pytest.raises(ImportRejected) as rejected:
        imports.import_files({E: io.StringIO(csv_text(E, {"date": "9" * 100_000}), newline="")})
    (line,) = rejected.value.lines()
    assert line.startswith("engagement.csv line 2: date: date must be a date as YYYY-MM-DD, not '999")
    assert line.endswith("…") and len(line) < 300


def test_a_flood_of_bad_lines_keeps_memory_flat(seeded_ctx, tmp_path):
    """20,000 bad lines, each reported with its own text: what the import holds must not grow with them."""
    path = tmp_path / E
    path.write_text(bad_lines(20_000))
    gc.collect()
    tracemalloc.start()
    try:
        with pytest.raises(ImportRejected) as rejected:
            imports.import_path(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (rejected.value.bad.count, len(rejected.value.lines())) == (20_000, 100)
    assert peak < 1024 * 1024, f"peak {peak:,} bytes"


def test_rows_after_the_first_bad_line_are_still_checked_against_each_other(seeded_ctx):
    """The file will be refused anyway, but a duplicate further down is still found: the rows wait for that check
    in a temporary table of the database, not in memory."""
    text = csv_text(E, {"date": "soon"}, *({"date": f"2024-03-{day:02d}"} for day in range(1, 29)), {"date": "2024-03-02"})
    with pytest.raises(ImportRejected) as rejected:
        imports.import_files({E: io.StringIO(text, newline="")})
    assert rejected.value.bad.count == 2
    assert rejected.value.lines()[1] == "engagement.csv line 31: date: c1003 on 2024-03-02 is also on line 4"

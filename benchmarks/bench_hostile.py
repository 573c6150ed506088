"""(i) Hostile imports: peak RSS of the server process that answers a hostile upload to `POST /import`.

Two uploads, each to its own portal process (werkzeug's single-threaded server, benchmarks/serve_requests.py,
measured by peak_rss.py): (a) a zip bomb, a zip of a few MB whose engagement.csv unpacks to about 2 GB of
one bad line repeated; (b) an engagement.csv of 700,000 bad lines, just under the 20 MB upload limit. The
baseline is the same process answering the same requests with a one-line CSV. The client (this process)
signs in over HTTP and streams each upload from disk. Each answer is checked: the refusal with the
limit it passed, and the count of bad lines with only the first 100 listed. Goal: each peak under 150 MB.
"""
from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

from portal.commands import create_user
from portal.extensions import db
from portal.transfer.csvformat import HEADERS

import common
from bench_pages import CSRF, EMAIL, PASSWORD, Client, sign_in

HERE = Path(__file__).resolve().parent
GOAL_MB = 150
MIB = 1024  # ru_maxrss is in KiB on Linux
HEADER = ",".join(HEADERS["engagement.csv"]) + "\n"
# Long enough that the bomb passes the size limit (200 MB) before the line limit (2,000,000 lines).
BOMB_LINE = "bad-id-" + "x" * 90 + ",c1001,2024-13-01,1,1,1,1,1\n"
BAD_LINE = ",c1001,2024-13-01,1,1,1,1,1\n"  # 28 bytes: 700,000 of them fit in an upload
BOUNDARY = "portal-benchmark-boundary"


def write_bomb(path: Path, size: int) -> None:
    """The zip, written as a stream of repeated chunks: neither the 2 GB nor the zip is ever in memory."""
    chunk = (BOMB_LINE * (1024 * 1024 // len(BOMB_LINE))).encode()
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive, \
            archive.open("engagement.csv", "w", force_zip64=True) as member:
        member.write(HEADER.encode())
        for _ in range(size // len(chunk)):
            member.write(chunk)


def write_bad_lines(path: Path, lines: int) -> None:
    with path.open("w", newline="") as out:
        out.write(HEADER)
        chunks, rest = divmod(lines, 10_000)
        for _ in range(chunks):
            out.write(BAD_LINE * 10_000)
        out.write(BAD_LINE * rest)


def upload(client: Client, path: Path, name: str) -> tuple[int, str, float]:
    """POST /import of the file as the form's upload, streamed from disk: (status, page, seconds)."""
    status, page = client.request("GET", "/import")
    token = CSRF.search(page)
    if status != 200 or not token:
        raise RuntimeError(f"hostile imports benchmark: /import gave {status} without a CSRF token")
    head = (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{token.group(1)}\r\n'
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n").encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    connection = client.connection
    start = time.perf_counter()
    connection.putrequest("POST", "/import")
    connection.putheader("Cookie", "; ".join(f"{key}={morsel.value}" for key, morsel in client.cookies.items()))
    connection.putheader("Content-Type", f"multipart/form-data; boundary={BOUNDARY}")
    connection.putheader("Content-Length", str(len(head) + path.stat().st_size + len(tail)))
    connection.endheaders()
    connection.send(head)
    with path.open("rb") as stream:
        connection.send(stream)
    connection.send(tail)
    response = connection.getresponse()
    page = response.read().decode()
    return response.status, page, time.perf_counter() - start


def served(env: dict, workdir: Path, path: Path, name: str) -> tuple[dict, str, float]:
    """Sign in and upload to a fresh portal process: ({"peak_kib", ...}, the answer's page, the upload's seconds)."""
    port_file = workdir / "port"
    port_file.unlink(missing_ok=True)
    command = [sys.executable, str(HERE / "peak_rss.py"), sys.executable, str(HERE / "serve_requests.py"), "5",
               str(port_file)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    try:
        for _ in range(600):
            if port_file.exists() and port_file.read_text():
                break
            time.sleep(0.05)
        else:
            raise RuntimeError("hostile imports benchmark: the portal did not start")
        client = Client(int(port_file.read_text()))
        sign_in(client)  # GET and POST /login
        status, page, seconds = upload(client, path, name)  # GET and POST /import
        client.request("GET", "/import")  # the fifth: the next page still answers
        client.close()
        if status != 200:
            raise RuntimeError(f"hostile imports benchmark: the upload of {name} gave {status}")
    finally:
        output, _ = process.communicate(timeout=600)
    result = json.loads(output.splitlines()[-1])
    if result["exit_code"] != 0:
        raise RuntimeError(f"hostile imports benchmark: the portal exited with {result['exit_code']}")
    return result, page, seconds


def expect(page: str, *texts: str) -> None:
    for text in texts:
        if text not in page:
            raise RuntimeError(f"hostile imports benchmark: the answer does not say {text!r}")


def run(url: str, workdir: Path, quick: bool) -> None:
    # --quick: a bomb still past the size limit, a tenth of the bad lines.
    bomb_bytes, bad_lines = (300 * 10**6, 70_000) if quick else (2 * 10**9, 700_000)
    bomb, flood, small = workdir / "bomb.zip", workdir / "engagement.csv", workdir / "small" / "engagement.csv"
    write_bomb(bomb, bomb_bytes)
    write_bad_lines(flood, bad_lines)
    small.parent.mkdir(exist_ok=True)
    write_bad_lines(small, 1)
    print(f"\n(i) hostile imports: (a) a {bomb.stat().st_size / 2**20:.1f} MB zip of a {bomb_bytes / 10**9:.1f} GB "
          f"engagement.csv, (b) {bad_lines:,} bad lines ({flood.stat().st_size / 2**20:.1f} MB)")
    common.fresh_database(url)
    common.seed(url, 10)
    app = common.make_app(url)
    with app.app_context():
        create_user(EMAIL, "Benchmark Admin", "admin", PASSWORD)
        db.session.remove()
        db.engine.dispose()
    env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": "benchmark", "SCHEDULER_ENABLED": "false"}
    baseline, page, baseline_seconds = served(env, workdir, small, "engagement.csv")
    expect(page, "1 bad line in engagement.csv")
    baseline_mb = baseline["peak_kib"] / MIB
    print(f"  {'baseline: a one-line CSV, peak RSS':<44} {baseline_mb:8.1f} MB ({baseline_seconds:.2f} s)")
    cases = (("(a) zip bomb", bomb, "customer-tracking.zip",
              ("engagement.csv is larger than 200 MB uncompressed: nothing was imported.",)),
             ("(b) bad lines", flood, "engagement.csv",
              (f"{bad_lines:,} bad lines in engagement.csv", f"… and {bad_lines - 100:,} more bad lines")))
    for label, path, name, texts in cases:
        result, page, seconds = served(env, workdir, path, name)
        expect(page, *texts)
        peak_mb = result["peak_kib"] / MIB
        verdict = "within goal" if peak_mb < GOAL_MB else "OVER GOAL"
        print(f"  {label + ' peak RSS':<44} {peak_mb:8.1f} MB (goal under {GOAL_MB} MB): {verdict}")
        print(f"  {'  difference from the baseline':<44} {peak_mb - baseline_mb:8.1f} MB")
        print(f"  {'  upload answered in':<44} {seconds:8.1f} s ({len(page.encode()) / 1024:.0f} KB page)")

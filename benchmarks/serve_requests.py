"""Serve the portal (settings from the environment) for a number of requests, then exit.

    python serve_requests.py REQUESTS PORT_FILE

It listens on a free local port, writes that port to PORT_FILE once it listens, and answers REQUESTS
requests one at a time, each on its own connection (the single-threaded server speaks HTTP/1.0).
It exists to be measured: run under peak_rss.py, its peak RSS is that of the process that did the work.
"""
import logging
import sys
from pathlib import Path

from werkzeug.serving import make_server

from portal import create_app

requests, port_file = int(sys.argv[1]), Path(sys.argv[2])
logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access-log line per request
server = make_server("127.0.0.1", 0, create_app())
port_file.write_text(str(server.server_port))
for _ in range(requests):
    server.handle_request()
server.server_close()

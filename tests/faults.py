"""Real faults for the tests: a database that goes away and comes back.

PostgreSQL is reached through a TCP relay the test can cut (every open connection dropped, new ones refused)
and restore on the same port. SQLite's file is moved out of its folder, so opening a connection fails.
"""
from __future__ import annotations

import shutil
import socket
import threading
from pathlib import Path

from sqlalchemy.engine import make_url


class Relay:
    """Forwards a local port to the database server until cut()."""

    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.port = 0
        self.sockets: set[socket.socket] = set()
        self.lock = threading.Lock()
        self.listener: socket.socket | None = None
        self.start()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self.listener = listener
        threading.Thread(target=self.accept, args=(listener,), daemon=True).start()

    def accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.sockets |= {client, server}
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self.pump, args=(source, sink), daemon=True).start()

    def pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                self.close(end)

    def close(self, end: socket.socket) -> None:
        with self.lock:
            self.sockets.discard(end)
        try:
            end.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        end.close()

    def cut(self) -> None:
        """New connections are refused and open ones dropped, as when the server stops."""
        if self.listener is not None:
            try:
                self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() blocked on it, which close() does not
            except OSError:
                pass
            self.listener.close()
            self.listener = None
        with self.lock:
            open_ends = list(self.sockets)
        for end in open_ends:
            self.close(end)

    def url(self, database_url: str) -> str:
        return make_url(database_url).set(host="127.0.0.1", port=self.port).render_as_string(hide_password=False)


class MovedFile:
    """A SQLite database whose folder disappears and comes back."""

    def __init__(self, database_url: str, folder: Path):
        self.source = Path(make_url(database_url).database)
        self.folder = folder
        self.folder.mkdir()
        shutil.copy(self.source, self.folder / "portal.db")
        self.aside = folder.with_name(folder.name + "-aside")

    def url(self) -> str:
        return f"sqlite:///{self.folder / 'portal.db'}"

    def cut(self) -> None:
        self.folder.rename(self.aside)

    def start(self) -> None:
        self.aside.rename(self.folder)

"""Rows an import has checked, kept on disk until they are written, so memory does not grow with the file."""
from __future__ import annotations

import pickle
import tempfile
from typing import Any, Iterator


class Spool:
    """Rows appended one by one, stored in pickled chunks of `chunk` rows, read back chunk by chunk."""

    def __init__(self, chunk: int):
        self.chunk = chunk
        self.file = tempfile.TemporaryFile()
        self.pending: list[Any] = []
        self.rows = 0

    def append(self, row: Any) -> None:
        self.pending.append(row)
        self.rows += 1
        if len(self.pending) >= self.chunk:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            pickle.dump(self.pending, self.file, protocol=pickle.HIGHEST_PROTOCOL)
            self.pending = []

    def chunks(self) -> Iterator[list[Any]]:
        self.flush()
        self.file.seek(0)
        while True:
            try:
                yield pickle.load(self.file)
            except EOFError:
                return

    def close(self) -> None:
        self.file.close()

    def __len__(self) -> int:
        return self.rows

"""Files the portal writes for people to keep (exports, backups): all or nothing.

A file is written under a temporary name beside its target, flushed to disk, then renamed into place; on any
error (a full disk, a killed process) the temporary file is removed, so a half-written file never sits under
a name that says it is complete.
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator


@contextmanager
def written_whole(target: Path, prefix: str | None = None, suffix: str = ".partial") -> Iterator[IO[bytes]]:
    """The file to write `target` through; the temporary file is private (mode 0600) and named prefix...suffix."""
    target = Path(target)
    descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=prefix or f".{target.name}.", suffix=suffix)
    try:
        with os.fdopen(descriptor, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    sync_directory(target.parent)


def sync_directory(directory: Path) -> None:
    """Make a rename or a deletion in the folder itself durable."""
    handle = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)

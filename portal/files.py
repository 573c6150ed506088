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
def written_whole(target: Path) -> Iterator[IO[bytes]]:
    target = Path(target)
    descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    try:
        with os.fdopen(descriptor, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    try:  # the rename itself is durable once the folder is
        folder = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    except OSError:
        pass

"""The backup file: one tar holding manifest.json, the secret key and the database's dump. Pure: no Flask.

A backup is written under a hidden temporary name in its own folder, synced to disk and only then renamed, so a
file with a backup's name is always a complete one: a full disk or a killed process leaves at most a temporary
file, which nothing takes for a backup (and the scheduled job removes later). Only fixed member names are read
back, never extracted by the names inside the tar, so a crafted file cannot write elsewhere.
"""
from __future__ import annotations

import datetime as dt
import io
import json
import os
import re
import shutil
import tarfile
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from .. import files

FORMAT = "customer-success-portal backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SECRET_KEY = "secret_key"
DATA = {"sqlite": "database.sqlite3", "postgresql": "database.pgdump"}
DATABASE_KINDS = tuple(DATA)
# portal-backup-20270310T020000Z.tar, and -2, -3... for a second one in the same second.
NAME = re.compile(r"^portal-backup-(\d{8}T\d{6}Z)(?:-(\d+))?\.tar$")
STAMP = "%Y%m%dT%H%M%SZ"
PARTIAL_PREFIX, PARTIAL_SUFFIX = ".portal-backup-", ".partial"


class BackupError(Exception):
    """A backup or restore that cannot go on; the message is the one line the operator sees."""


@dataclass(frozen=True)
class Manifest:
    portal_version: str
    alembic_revision: str | None
    database: str
    created_at: dt.datetime
    row_counts: dict[str, int]
    has_secret_key: bool

    def to_json(self) -> bytes:
        fields = {**asdict(self), "created_at": self.created_at.isoformat()}
        return json.dumps({"format": FORMAT, "format_version": FORMAT_VERSION, **fields}, indent=2,
                          sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes, source: str) -> Manifest:
        try:
            fields = json.loads(raw)
            if fields.get("format") != FORMAT:
                raise ValueError("not a portal manifest")
            if fields.get("format_version") != FORMAT_VERSION:
                raise BackupError(f"{source} is a backup of format version {fields.get('format_version')}; "
                                  f"this portal reads version {FORMAT_VERSION}")
            return cls(str(fields["portal_version"]), fields["alembic_revision"], str(fields["database"]),
                       dt.datetime.fromisoformat(fields["created_at"]),
                       {str(name): int(count) for name, count in fields["row_counts"].items()},
                       bool(fields["has_secret_key"]))
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise BackupError(f"{source} is not a portal backup (its manifest is unreadable: {error})") from None


def stamp_of(name: str) -> tuple[dt.datetime, int] | None:
    """When a backup of this name was made, and its number within that second; None for any other file."""
    match = NAME.match(name)
    if match is None:
        return None
    moment = dt.datetime.strptime(match.group(1), STAMP).replace(tzinfo=dt.timezone.utc)
    return moment, int(match.group(2) or 1)


def free_name(directory: Path, moment: dt.datetime) -> Path:
    stamp = moment.astimezone(dt.timezone.utc).strftime(STAMP)
    for number in range(1, 1000):
        path = directory / (f"portal-backup-{stamp}.tar" if number == 1 else f"portal-backup-{stamp}-{number}.tar")
        if not path.exists():
            return path
    raise BackupError(f"too many backups in {directory} for {stamp}")


def temporary_file(directory: Path) -> Path:
    """A new private file (mode 0600: a backup holds the secret key) that no reader takes for a backup."""
    handle, name = tempfile.mkstemp(dir=directory, prefix=PARTIAL_PREFIX, suffix=PARTIAL_SUFFIX)
    os.close(handle)
    return Path(name)


def _member(name: str, size: int, moment: dt.datetime) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, int(moment.timestamp()), 0o600
    return info


def write(directory: Path, manifest: Manifest, secret_key: str | None, data_file: Path) -> Path:
    """The backup in `directory` under its final name, complete and synced, or an OSError and nothing left."""
    final = free_name(directory, manifest.created_at)
    with files.written_whole(final, PARTIAL_PREFIX, PARTIAL_SUFFIX) as raw:
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            content = manifest.to_json()
            tar.addfile(_member(MANIFEST, len(content), manifest.created_at), io.BytesIO(content))
            if secret_key is not None:
                key = secret_key.encode()
                tar.addfile(_member(SECRET_KEY, len(key), manifest.created_at), io.BytesIO(key))
            with data_file.open("rb") as data:
                info = _member(DATA[manifest.database], data_file.stat().st_size, manifest.created_at)
                tar.addfile(info, data)
    return final


class Backup:
    """A backup file opened for reading: its manifest, secret key and database dump."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self.tar = tarfile.open(path, mode="r:")
        except (tarfile.TarError, OSError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else "not a tar file"
            raise BackupError(f"{path} is not a portal backup ({reason})") from None
        try:
            self.manifest = Manifest.from_json(self._read(MANIFEST), str(path))
            if self.manifest.database not in DATABASE_KINDS or self._find(DATA[self.manifest.database]) is None:
                raise BackupError(f"{path} is not a portal backup (it holds no database dump)")
        except BaseException:
            self.tar.close()
            raise

    def __enter__(self) -> Backup:
        return self

    def __exit__(self, *exc) -> None:
        self.tar.close()

    def _find(self, name: str) -> tarfile.TarInfo | None:
        try:
            member = self.tar.getmember(name)
        except KeyError:
            return None
        return member if member.isfile() else None

    def _open(self, name: str) -> IO[bytes]:
        member = self._find(name)
        handle = self.tar.extractfile(member) if member is not None else None
        if handle is None:
            raise BackupError(f"{self.path} is not a portal backup (it has no {name})")
        return handle

    def _read(self, name: str) -> bytes:
        with self._open(name) as handle:
            return handle.read()

    def secret_key(self) -> str | None:
        return self._read(SECRET_KEY).decode().strip() if self._find(SECRET_KEY) is not None else None

    def copy_data_to(self, target: Path) -> None:
        with self._open(DATA[self.manifest.database]) as source, target.open("wb") as out:
            shutil.copyfileobj(source, out, 1 << 20)

"""How much an import reads before it gives up; pure, no Flask or database.

An upload's size says little about what it holds: a 5 MB zip can unpack to gigabytes. So every file
is read through a counter that refuses it as soon as it passes a limit, whatever the zip says about
itself, and nothing of it is imported. A zip member whose directory entry already says it is too large
is refused before it is read at all (zipfile reads no more than that entry says, so the one that
understates a member's size gets cut short and fails its checksum).
"""
from __future__ import annotations

import io
import os
import struct
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import IO, Iterator

MB = 1024 * 1024
# The largest line a CSV may have, in characters. The longest real one is an onboarding row with 10,000
# characters of notes, each quote doubled; without a bound, a file of one 2 GB line is read whole.
LINE_LIMIT = 256 * 1024
# A zip's directory is read whole when the zip is opened, before any member: 200,000 empty members fit in
# a 17 MB upload and cost 110 MB to list. A directory of a few members with long names fits in 64 KB.
DIRECTORY_LIMIT = 64 * 1024
END_OF_DIRECTORY = struct.Struct("<4s4H2LH")  # signature, disks, entries here and in all, size, offset, comment
END_SIGNATURE = b"PK\x05\x06"


@dataclass(frozen=True)
class Limits:
    """Per file: bytes once uncompressed and lines (the header included); per zip: members (folders included)."""

    file_bytes: int = 200 * MB
    lines: int = 2_000_000
    members: int = 10


class FileRefused(Exception):
    """An upload refused as a whole, before or while it is read; the message says why and that nothing was imported."""


def size_text(size: int) -> str:
    if size >= MB:
        return f"{size / MB:,.0f} MB"
    return f"{size / 1024:,.0f} KB" if size >= 1024 else f"{size:,} bytes"


def too_large(name: str, limits: Limits) -> FileRefused:
    return FileRefused(f"{name} is larger than {size_text(limits.file_bytes)} uncompressed: nothing was imported")


class SizeLimited(io.RawIOBase):
    """The bytes of a source, counted as they are read (decompressed, for a zip member), refused past a limit."""

    def __init__(self, source: IO[bytes], limits: Limits, name: str):
        self.source, self.limits, self.name, self.count = source, limits, name, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        # One byte more than the limit allows is enough to know it was passed.
        data = self.source.read(min(len(buffer), self.limits.file_bytes + 1 - self.count))
        self.count += len(data)
        if self.count > self.limits.file_bytes:
            raise too_large(self.name, self.limits)
        buffer[:len(data)] = data
        return len(data)

    def close(self) -> None:
        self.source.close()
        super().close()


def text_of(source: IO[bytes], name: str, limits: Limits) -> IO[str]:
    """The file as text for the csv module (a byte order mark, as Excel writes, is dropped), size-limited."""
    return io.TextIOWrapper(io.BufferedReader(SizeLimited(source, limits, name)),
                            encoding="utf-8-sig", newline="")


def lines_of(stream: IO[str], name: str) -> Iterator[str]:
    """The stream's lines, none of them read whole when it is longer than LINE_LIMIT."""
    readline = stream.readline
    while line := readline(LINE_LIMIT + 1):
        if len(line) > LINE_LIMIT:
            raise FileRefused(f"{name} has a line longer than {LINE_LIMIT:,} characters: nothing was imported")
        yield line


def too_many_lines(name: str, limits: Limits) -> FileRefused:
    return FileRefused(f"{name} has more than {limits.lines:,} lines: nothing was imported")


def directory_size(stream: IO[bytes]) -> tuple[int, int] | None:
    """(members, bytes) of a zip's directory as its end record gives them, or None when it has none."""
    stream.seek(0, os.SEEK_END)
    end = stream.tell()
    stream.seek(max(0, end - END_OF_DIRECTORY.size - 0xFFFF))  # the record ends with a comment of up to 64 KB
    tail = stream.read()
    at = tail.rfind(END_SIGNATURE)
    if at < 0 or len(tail) - at < END_OF_DIRECTORY.size:
        return None
    fields = END_OF_DIRECTORY.unpack_from(tail, at)
    return fields[4], fields[5]


def check_directory(stream: IO[bytes], name: str, limits: Limits) -> None:
    """Refuse a zip with too many members before zipfile lists them all. A zip64 directory gives 0xFFFF members
    here, which is refused too: only a zip of more than 65,535 members or past 4 GB needs one."""
    size = directory_size(stream)
    stream.seek(0)
    if size is not None and (size[0] > limits.members or size[1] > DIRECTORY_LIMIT):
        raise too_many_members(name, limits)


def too_many_members(name: str, limits: Limits) -> FileRefused:
    return FileRefused(f"{name} holds more than {limits.members} files: nothing was imported")


def members_of(archive: zipfile.ZipFile, name: str, known: tuple[str, ...], limits: Limits) -> dict[str, zipfile.ZipInfo]:
    """The zip's files by their own name (a folder in the zip does not matter); folders are skipped.

    Names outside `known` are kept, for the import to report; a name twice would leave one of them out. A
    member that says it is larger than the limit is refused unread: a small zip can say it unpacks to 2 GB."""
    entries = archive.infolist()
    if len(entries) > limits.members:
        raise too_many_members(name, limits)
    files: dict[str, zipfile.ZipInfo] = {}
    for entry in entries:
        if entry.is_dir():
            continue
        own_name = PurePosixPath(entry.filename.replace("\\", "/")).name
        if own_name in files and own_name in known:
            raise FileRefused(f"{name} holds {own_name} twice: nothing was imported")
        if own_name in known and entry.file_size > limits.file_bytes:
            raise too_large(own_name, limits)
        files[own_name] = entry
    return files

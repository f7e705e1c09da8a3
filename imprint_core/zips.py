"""Zip archives a user hands us, checked before any member is read.

``zip_directory`` reads the entry count and the size of the central directory from the archive's
end records alone (zipfile parses the whole directory before anyone can count it: a 1,000,000-entry
directory costs seconds and hundreds of MB). ``image_members`` then opens the archive and refuses,
from the sizes every entry declares, the shapes of a zip bomb: a member over ``MAX_MEMBER_BYTES``,
one that inflates more than ``MAX_RATIO`` times, members whose compressed data add up to more than
the file holds (overlapping entries), and a whole archive that inflates more than ``MAX_RATIO``
times. zipfile never returns more than a member's declared size, so these checks bound what
reading can cost. Every refusal is a ``ZipRefused`` sentence naming the archive.
"""

from __future__ import annotations

import os
import struct
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from .images import IMAGE_SUFFIXES, MAX_PIXELS

MAX_ENTRIES = 100_000  # a pile of photos fits many times; the directory stays tens of MB
MAX_DIRECTORY_BYTES = MAX_ENTRIES * 1024  # 46 bytes an entry plus its name: 1 KB is generous
# A 40-megapixel image (images.MAX_PIXELS) as a 16-bit RGB TIFF is 240 MB; nothing larger decodes.
MAX_MEMBER_BYTES = MAX_PIXELS * 6 + 16 * 2**20
# Photos do not compress (JPEG, PNG, WebP: ratio ~1); a member or archive inflating more than this
# is a bomb. Members under SMALL_MEMBER_BYTES are exempt (a flat icon compresses well and costs
# nothing); the archive-wide ratio still counts them.
MAX_RATIO = 100
SMALL_MEMBER_BYTES = 2**20


class ZipRefused(ValueError):
    """An archive refused before reading: not a zip, too many entries, or a zip bomb."""


def is_zip(path: str | os.PathLike) -> bool:
    """The file's name ends in .zip (what a user means by handing us an archive)."""
    return Path(path).suffix.lower() == ".zip"


def ignored(parts: tuple[str, ...]) -> bool:
    """Hidden files and folders, macOS resource forks, Windows thumbnails: never images."""
    return any(p.startswith(".") or p == "__MACOSX" or p == "Thumbs.db" for p in parts)


def image_members(
    path: str | os.PathLike, label: str | None = None
) -> tuple[list[zipfile.ZipInfo], int]:
    """``(members, ignored)``: the image entries of the zip ``path`` (by file extension, in the
    archive's order) and the number of other files in it; ``ZipRefused`` for anything unsafe,
    naming the archive ``label`` (default: ``path``)."""
    label = str(path) if label is None else label
    entries, directory = zip_directory(path, label)
    if entries > MAX_ENTRIES:
        raise ZipRefused(
            f"{label!r} holds {entries:,} entries; a zip may hold at most {MAX_ENTRIES:,}."
        )
    if directory > MAX_DIRECTORY_BYTES:
        raise ZipRefused(
            f"{label!r} has a {directory / 2**20:.1f} MB table of contents; a zip of at most "
            f"{MAX_ENTRIES:,} entries needs at most {MAX_DIRECTORY_BYTES / 2**20:.0f} MB."
        )
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise ZipRefused(f"{label!r} is not a readable zip file.") from None
    _check_sizes(label, infos, os.path.getsize(path))
    members, skipped = [], 0
    for info in infos:
        parts = tuple(p for p in PurePosixPath(info.filename.replace("\\", "/")).parts if p != "/")
        if info.is_dir():
            continue
        if (
            parts
            and not ignored(parts)
            and PurePosixPath(parts[-1]).suffix.lower() in IMAGE_SUFFIXES
        ):
            members.append(info)
        else:
            skipped += 1
    return members, skipped


def _check_sizes(label: str, infos: list[zipfile.ZipInfo], archive_bytes: int) -> None:
    """Refuse, from the declared sizes alone, what only a zip bomb looks like."""
    bomb = f"{label!r} looks like a zip bomb"
    for info in infos:
        if info.file_size > MAX_MEMBER_BYTES:
            raise ZipRefused(
                f"{bomb}: '{info.filename}' unpacks to {info.file_size / 2**20:,.0f} MB; an image "
                f"may be at most {MAX_MEMBER_BYTES / 2**20:.0f} MB."
            )
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > SMALL_MEMBER_BYTES and ratio > MAX_RATIO:
            raise ZipRefused(
                f"{bomb}: '{info.filename}' unpacks {ratio:,.0f} times larger than it is stored; "
                f"images shrink at most {MAX_RATIO} times."
            )
    if sum(i.compress_size for i in infos) > archive_bytes:
        raise ZipRefused(f"{bomb}: its entries overlap (they claim more data than the file holds).")
    total = sum(i.file_size for i in infos)
    if total > SMALL_MEMBER_BYTES and total > MAX_RATIO * max(archive_bytes, 1):
        raise ZipRefused(
            f"{bomb}: it unpacks to {total / 2**20:,.0f} MB from {archive_bytes / 2**20:,.1f} MB; "
            f"images shrink at most {MAX_RATIO} times."
        )


_EOCD = struct.Struct("<4s4H2LH")  # end of central directory record (22 bytes + comment)
_EOCD64_LOCATOR = struct.Struct("<4sLQL")  # 20 bytes right before the EOCD record
_EOCD64 = struct.Struct("<4sQ2H2L4Q")  # zip64 end of central directory record (56 bytes)


def zip_directory(path: str | os.PathLike, label: str | None = None) -> tuple[int, int]:
    """``(entries, directory bytes)`` a zip claims, from its end records alone (< 66 KB read).

    zipfile reads and parses the whole central directory before anyone can count it; this reads
    only the end-of-central-directory record (and the zip64 one it points to) and returns the
    largest claim of every record found in the last 64 KB (a comment may hold something that
    looks like one).

    Parameters
    ----------
    path : str or os.PathLike
        The archive.
    label : str, optional
        The name the error sentences give the archive (default: ``path``).

    Returns
    -------
    tuple of int
        The number of entries and the size in bytes of the central directory.
    """
    name = f"'{path if label is None else label}'"
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - (_EOCD.size + 0xFFFF + _EOCD64_LOCATOR.size)))
            tail = fh.read()
            claims = [_eocd_claim(fh, tail, at, size) for at in _find_all(tail, b"PK\x05\x06")]
    except FileNotFoundError:
        raise FileNotFoundError(f"{name} does not exist.") from None
    except OSError as exc:
        raise ZipRefused(f"{name} could not be read ({exc.strerror}).") from None
    claims = [c for c in claims if c is not None]
    if not claims:
        raise ZipRefused(f"{name} is not a readable zip file.")
    return max(c[0] for c in claims), max(c[1] for c in claims)


def _find_all(data: bytes, signature: bytes) -> Iterator[int]:
    at = data.find(signature)
    while at >= 0:
        yield at
        at = data.find(signature, at + 1)


def _eocd_claim(fh, tail: bytes, at: int, size: int) -> tuple[int, int] | None:
    if len(tail) - at < _EOCD.size:
        return None
    fields = _EOCD.unpack_from(tail, at)
    entries, directory = fields[4], fields[5]
    locator = tail[max(0, at - _EOCD64_LOCATOR.size) : at]
    if len(locator) == _EOCD64_LOCATOR.size and locator.startswith(b"PK\x06\x07"):
        fh.seek(min(_EOCD64_LOCATOR.unpack(locator)[2], size))
        record = fh.read(_EOCD64.size)
        if len(record) == _EOCD64.size and record.startswith(b"PK\x06\x06"):
            fields64 = _EOCD64.unpack(record)
            # 0xFFFF / 0xFFFFFFFF in the plain record mean "see the zip64 record"
            entries = fields64[7] if entries == 0xFFFF else max(entries, fields64[7])
            directory = fields64[8] if directory == 0xFFFFFFFF else max(directory, fields64[8])
    return entries, directory

"""Small synthetic attack files the session and app tests share: image headers that claim many
pixels in a few dozen bytes (their pixel data is missing, so decoding one fails with another
sentence than a refusal from the header)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path


def png_header(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims ``width`` x ``height`` pixels, without their data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">2I5B", width, height, 8, 2, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"") + chunk(b"IEND", b"")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def forty_mp(folder: Path, n: int = 13, prefix: str = "big") -> list[Path]:
    return [png_header(folder / f"{prefix}{i}.png", 6400, 6250) for i in range(n)]  # 40.0 MP

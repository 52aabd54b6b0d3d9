"""Chapter image files that carry their own manifest entry.

Each chapter image is made to hold its entry as JSON in an ``iTXt`` chunk (keyword
``imagegen:entry``) placed right after ``IHDR``, where any PNG reader skips it and Pillow reads
it without decoding pixels. The after-save step rewrites the saved image with its entry
(atomically) before it writes the manifest (:mod:`.steps`), so once that step has run the file
on disk says what it is: a manifest lost or damaged later, or a crash between the two writes,
is mended by :func:`.reconcile.reconcile` instead of paying for the image again. (A crash
between the runner's save and that step is the journal's to mend: resume runs the step.)
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import orjson
from PIL import Image, UnidentifiedImageError

from .jsonfile import write_durable
from .manifest import ImageEntry, entry_from_json, entry_to_json

ENTRY_KEYWORD = "imagegen:entry"
_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True, slots=True)
class DiskImage:
    """An image file under ``images/``: its path relative to the episode folder, its size in
    bytes, and the entry it carries (None when it carries none: placed by hand, or older)."""

    file_path: str
    size_bytes: int
    embedded: ImageEntry | None


def embed_entry(png: bytes, entry: ImageEntry) -> bytes:
    """``png`` with ``entry`` (``size_bytes`` left out) in an iTXt chunk after IHDR. Pure.

    Replaces an entry chunk already there. Raises ValueError if ``png`` is not a PNG.
    """
    chunks = list(_chunks(png))
    if not chunks or chunks[0][0] != b"IHDR":
        raise ValueError("not a PNG image (no IHDR chunk first)")
    record = entry_to_json(replace(entry, size_bytes=None))
    text = orjson.dumps(record)
    # iTXt: keyword NUL, compression flag and method (0: plain), language NUL, translated NUL.
    data = ENTRY_KEYWORD.encode("latin-1") + b"\0\0\0\0\0" + text
    kept = [c for c in chunks[1:] if not _is_entry_chunk(c)]
    out = [_SIGNATURE, _pack(chunks[0]), _pack((b"iTXt", data))]
    out += [_pack(c) for c in kept]
    return b"".join(out)


def read_embedded_entry(path: Path) -> ImageEntry | None:
    """The entry carried by the image at ``path``; None if it carries none or is unreadable."""
    try:
        with Image.open(path) as img:
            text = img.info.get(ENTRY_KEYWORD)
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError):
        return None
    if not isinstance(text, str):
        return None
    try:
        return entry_from_json(orjson.loads(text.encode("utf-8")))  # Pillow gives an str subclass
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


def save_image(episode_dir: Path, entry: ImageEntry, png: bytes) -> ImageEntry:
    """Write ``png`` carrying ``entry`` to ``entry.file_path`` durably; the entry with
    ``size_bytes`` set. Replaces an older image of the chapter only once the new one is whole.
    """
    if entry.file_path is None:
        raise ValueError(f"{entry.chapter_id}: an entry without a file_path has no image")
    data = embed_entry(png, entry)
    write_durable(episode_dir / entry.file_path, data)
    return replace(entry, size_bytes=len(data))


def scan_images(episode_dir: Path, folder: str = "images") -> dict[str, DiskImage]:
    """The ``*.png`` files in the episode's image folder by relative path (temporary files of
    an interrupted write start with a dot and end in ``.tmp``: not listed)."""
    found: dict[str, DiskImage] = {}
    root = episode_dir / folder
    if not root.is_dir():
        return found
    for path in sorted(root.glob("*.png")):
        if path.name.startswith(".") or not path.is_file():
            continue
        rel = f"{folder}/{path.name}"
        found[rel] = DiskImage(rel, path.stat().st_size, read_embedded_entry(path))
    return found


def _chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    if not png.startswith(_SIGNATURE):
        raise ValueError("not a PNG image (bad signature)")
    out: list[tuple[bytes, bytes]] = []
    pos = len(_SIGNATURE)
    while pos + 8 <= len(png):
        length, kind = struct.unpack(">I4s", png[pos : pos + 8])
        end = pos + 8 + length + 4
        if end > len(png):
            raise ValueError("not a PNG image (truncated chunk)")
        out.append((kind, png[pos + 8 : pos + 8 + length]))
        pos = end
        if kind == b"IEND":
            break
    return out


def _pack(chunk: tuple[bytes, bytes]) -> bytes:
    kind, data = chunk
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _is_entry_chunk(chunk: tuple[bytes, bytes]) -> bool:
    kind, data = chunk
    return kind == b"iTXt" and data.startswith(ENTRY_KEYWORD.encode("latin-1") + b"\0")

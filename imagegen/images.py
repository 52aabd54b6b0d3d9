"""Image bytes: sniff the real format and pixel size, and write files atomically.

The declared MIME type of an inline image can be wrong (gemini-api notes: "PNG declared, JPEG
bytes"), so the bytes decide. Pillow does the decoding.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

_EXTENSIONS = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "GIF": ".gif"}


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """What the bytes really are: Pillow format name, MIME type, width and height in pixels."""

    format: str
    mime_type: str
    width: int
    height: int

    @property
    def extension(self) -> str:
        """File extension for this format, with the dot (".png", ".jpg", ...)."""
        return _EXTENSIONS.get(self.format, "." + self.format.lower())


def sniff(data: bytes) -> ImageInfo:
    """Identify and fully decode ``data``; raises ValueError if it is not a whole image.

    Decoding (not just reading the header) is what catches a truncated file.
    """
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt = img.format or "UNKNOWN"
            mime = Image.MIME.get(fmt, "application/octet-stream")
            width, height = img.size
            img.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ValueError(f"not a decodable image ({exc})") from exc
    return ImageInfo(fmt, mime, width, height)


def sniff_file(path: Path) -> ImageInfo:
    """:func:`sniff` on a file's bytes; raises ValueError (not an image) or OSError (unreadable)."""
    return sniff(path.read_bytes())


def write_atomic(path: Path, data: bytes, *, exclusive: bool = False) -> None:
    """Write ``data`` to ``path`` through a temporary file that is flushed, fsynced and renamed.

    A crash leaves either the old file, the new file, or a ``.tmp`` file that is never mistaken
    for a result. With ``exclusive``, an existing ``path`` is never replaced: FileExistsError.
    Other OSErrors (disk full, permissions) propagate after the temporary file is removed.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if exclusive:
            # link() fails if the target exists, unlike rename(): nothing is ever overwritten.
            os.link(tmp, path)
            tmp.unlink()
        else:
            tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise

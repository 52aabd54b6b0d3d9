"""Thumbnails for the contact sheet, made with Pillow once and reused by later builds.

A thumbnail's file name is a hash of its source's absolute path, modification time (ns), size
in bytes and the box it fits in, so a rebuild finds the thumbnails it made before by name
(without decoding a source), and a source that changed gets a new one. JPEG sources are decoded
at a reduced scale (``Image.draft``); PNG has no such mode, so the sources are decoded in a
thread pool: Pillow releases the GIL while it decodes, resizes and encodes.

A run makes each image's thumbnail as it saves the image (:func:`thumbnail_for`), so that the
report written at the end of a long run only finds them by name; a report build makes whatever
is missing (:func:`make_thumbnails`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps

# Pixels, longest side. Job images show 180 CSS px wide: 320 stays sharp on 1.75x screens.
JOB_BOX = 320
REFERENCE_BOX = 120
_JPEG_QUALITY = 82
_SUFFIX = ".jpg"


@dataclass(frozen=True, slots=True)
class Thumb:
    """The thumbnail of one source: ``name`` inside the thumbs folder and its size in pixels,
    or ``problem`` ("file missing", "unreadable image") when there is nothing to show."""

    name: str | None
    width: int = 0
    height: int = 0
    problem: str | None = None
    made: bool = False  # made by this build rather than reused


def thumb_name(source: Path, stat: os.stat_result, box: int) -> str:
    """The cache name of ``source``'s thumbnail in a ``box`` pixel square, e.g. "3f0a...e1.jpg"."""
    key = f"{source}\0{stat.st_mtime_ns}\0{stat.st_size}\0{box}".encode()
    return hashlib.sha256(key).hexdigest()[:24] + _SUFFIX


#: Sources above this many pixels after a JPEG's reduced decode (a huge PNG reference) get no
#: thumbnail: decoding one takes ~0.4 GB at 12000 x 12000, several at once more.
MAX_DECODE_PIXELS = 40_000_000


class TooLarge(ValueError):
    """The source is too large to decode for a thumbnail."""


#: Pixels decoded at once by all thumbnail threads together (~3-4 bytes each, so ~250 MB): the
#: run's thumbnails after each save and a report build's pool (up to 16 threads) take turns
#: when large PNG references would otherwise all be decoded at the same time.
DECODE_BUDGET_PIXELS = 60_000_000


class _PixelBudget:
    """A counting semaphore over pixels: :meth:`hold` waits until ``pixels`` (at most the whole
    budget) are free."""

    def __init__(self, total: int) -> None:
        self.total = total
        self._free = total
        self._changed = threading.Condition()

    @contextmanager
    def hold(self, pixels: int) -> Iterator[None]:
        need = min(pixels, self.total)
        with self._changed:
            self._changed.wait_for(lambda: self._free >= need)
            self._free -= need
        try:
            yield
        finally:
            with self._changed:
                self._free += need
                self._changed.notify_all()


_DECODING = _PixelBudget(DECODE_BUDGET_PIXELS)


def render_thumbnail(source: Path, dest: Path, box: int) -> tuple[int, int]:
    """Write ``source`` fitted into a ``box`` pixel square as a JPEG at ``dest``; returns its
    (width, height) in pixels. Transparency is flattened on white; EXIF rotation is applied.

    Raises OSError or ValueError (Pillow's errors) if the source is not a readable image. The
    file appears whole or not at all (written aside, then renamed).
    """
    with Image.open(source) as img:
        img.draft(None, (box, box))  # JPEG only: decode at 1/2, 1/4 or 1/8 scale
        if img.width * img.height > MAX_DECODE_PIXELS:
            raise TooLarge(f"{img.width}x{img.height}")
        with _DECODING.hold(img.width * img.height):  # the decode happens in thumbnail()
            # reducing_gap 1.0: an integer box reduction, then Lanczos for the rest; ~2.5x
            # faster than the default at 1K and indistinguishable at thumbnail size.
            img.thumbnail((box, box), Image.Resampling.LANCZOS, reducing_gap=1.0)
            small = ImageOps.exif_transpose(img)
    if small.mode in ("RGBA", "LA", "PA") or "transparency" in small.info:
        rgba = small.convert("RGBA")
        small = Image.new("RGB", rgba.size, (255, 255, 255))
        small.paste(rgba, mask=rgba.getchannel("A"))
    elif small.mode != "RGB":
        small = small.convert("RGB")
    # A thumbnail is a cache entry: no fsync, but never a half-written file under its name.
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        small.save(tmp, "JPEG", quality=_JPEG_QUALITY)
        tmp.replace(dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return small.size


def _thumbnail(source: Path, box: int, folder: Path, donors: Sequence[Path]) -> Thumb:
    try:
        stat = source.stat()
    except FileNotFoundError:
        return Thumb(None, problem="file missing")
    except OSError:
        return Thumb(None, problem="unreadable image")
    dest = folder / thumb_name(source, stat, box)
    try:
        if not _usable(dest):
            donor = next((d / dest.name for d in donors if _usable(d / dest.name)), None)
            if donor is not None:
                _copy(donor, dest)
        if _usable(dest):
            with Image.open(dest) as done:  # reads the header only
                return Thumb(dest.name, *done.size)
        return Thumb(dest.name, *render_thumbnail(source, dest, box), made=True)
    except TooLarge as exc:
        return Thumb(None, problem=f"too large to preview ({exc})")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return Thumb(None, problem="unreadable image")


def _usable(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except OSError:
        return False


def _copy(source: Path, dest: Path) -> None:
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        shutil.copyfile(source, tmp)
        tmp.replace(dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def thumbnail_for(image: Path, folder: Path, box: int = JOB_BOX) -> Thumb:
    """The thumbnail of one image (an absolute path) in ``folder``, made now unless already
    there: the one a later report build finds by name instead of decoding the image again.

    For the runner to call in a worker thread right after it saves an image (see
    :func:`imagegen.report.prepare_thumbnails`). Never raises for a bad image (see
    :class:`Thumb`); raises OSError if ``folder`` cannot be created.
    """
    folder.mkdir(parents=True, exist_ok=True)
    return _thumbnail(image, box, folder, ())


def make_thumbnails(
    sources: Iterable[tuple[Path, int]],
    folder: Path,
    *,
    donors: Sequence[Path] = (),
    workers: int | None = None,
) -> dict[tuple[Path, int], Thumb]:
    """The thumbnail of each (absolute source path, box in pixels), made in ``folder`` when
    missing and reused when present. A thumbnail already in a ``donors`` folder (a related
    session's report) is copied rather than made again. Never raises for a bad source (see
    :class:`Thumb`); raises OSError if ``folder`` cannot be created.
    """
    folder.mkdir(parents=True, exist_ok=True)
    wanted = list(dict.fromkeys(sources))
    workers = workers or min(16, (os.cpu_count() or 1) + 2)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="thumb") as pool:
        made = pool.map(lambda item: _thumbnail(item[0], item[1], folder, donors), wanted)
        return dict(zip(wanted, made, strict=True))


def prune_thumbnails(folder: Path, keep: Mapping[tuple[Path, int], Thumb]) -> int:
    """Delete thumbnails in ``folder`` that no entry of ``keep`` names; returns how many.

    They belong to sources that changed or left the session, and would otherwise pile up.
    """
    names = {thumb.name for thumb in keep.values() if thumb.name}
    removed = 0
    for path in folder.glob(f"*{_SUFFIX}"):
        if path.name not in names:
            path.unlink(missing_ok=True)
            removed += 1
    return removed

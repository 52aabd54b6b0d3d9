"""Reference images: checked whole at planning, read once per run into a bounded cache.

:func:`check_reference` is what every job source calls before anything is paid: a dangling
link, a truncated file or a decompression bomb is one line at planning, not a 400 (paid for)
later. The check decodes JPEGs at 1/8 scale and checks PNGs chunk by chunk, so a 12000 x 12000
reference is checked in a few MB of memory.

A combo's images go with every prompt of every catalog (seed 003: combos x catalogs), so one
file is sent many times in a batch. The cache reads it once, keeps the most recently used
files up to ``max_bytes``, and answers a hit on the event loop without a thread hop.
"""

from __future__ import annotations

import threading
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from .errors import InputError
from .images import MAX_PIXELS, probe
from .providers.base import Reference

#: Largest reference accepted, in pixels: 178 MP, e.g. 13000 x 13000. Larger is refused as a
#: decompression bomb.
MAX_REFERENCE_PIXELS = MAX_PIXELS
#: File name extensions taken as reference images.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")


def check_reference(path: Path) -> None:
    """Check that ``path`` is a whole, decodable image of a sane size; InputError if not.

    The message is one line naming the file and the fix. Raises for a missing file or a
    dangling symbolic link, a folder, an unreadable file, bytes that are not an image, a
    truncated or corrupt image, and more than :data:`MAX_REFERENCE_PIXELS` pixels.
    """
    if path.is_symlink() and not path.exists():
        raise InputError(f"{path}: a symbolic link to a missing file; fix the link or remove it")
    if not path.exists():
        raise InputError(f"{path}: reference image not found; check the path")
    if not path.is_file():
        raise InputError(f"{path}: a reference image must be a file, not a folder")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                width, height = img.size
                if width * height > MAX_REFERENCE_PIXELS:
                    raise InputError(
                        f"{path}: {width}x{height} pixels is too large for a reference image "
                        f"(over {MAX_REFERENCE_PIXELS // 1_000_000} MP); downscale it"
                    )
                if img.format == "JPEG":
                    img.draft("RGB", (max(1, width // 8), max(1, height // 8)))
                    img.load()
                elif img.format == "PNG":
                    img.verify()
                else:
                    img.load()
    except InputError:
        raise
    except PermissionError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror}); fix its permissions") from exc
    except Image.DecompressionBombError as exc:
        raise InputError(
            f"{path}: too large for a reference image (a decompression bomb?); downscale it"
        ) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InputError(
            f"{path}: not a whole, readable image ({exc}); replace or remove it"
        ) from exc


#: Bytes of reference images kept between jobs (64 MB: a few dozen combos of camera JPEGs).
DEFAULT_MAX_BYTES = 64_000_000


class ReferenceCache:
    """Path -> :class:`~imagegen.providers.base.Reference`, least recently used dropped first.

    Safe to use from the event loop and worker threads at once. A file is read when first
    asked for and not again while it stays cached: edits to a reference image during a run
    are not seen, as the planner's job list is not.
    """

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._refs: OrderedDict[str, Reference] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def cached(self, paths: Sequence[str]) -> tuple[Reference, ...] | None:
        """Every path's reference if all are cached (no file access), else None."""
        with self._lock:
            refs = []
            for path in paths:
                ref = self._refs.get(path)
                if ref is None:
                    return None
                self._refs.move_to_end(path)
                refs.append(ref)
            return tuple(refs)

    def load(self, paths: Sequence[str]) -> tuple[Reference, ...]:
        """Every path's reference, reading the files not cached (blocking: run in a thread).

        The role is the file stem in lower case, the MIME type what the bytes are (their
        header decides, not the extension). Raises OSError (unreadable) or ValueError (not an
        image), naming the file.
        """
        refs = []
        for path in paths:
            with self._lock:
                ref = self._refs.get(path)
            if ref is None:
                ref = _read(Path(path))
                self._keep(path, ref)
            refs.append(ref)
        return tuple(refs)

    def _keep(self, path: str, ref: Reference) -> None:
        with self._lock:
            old = self._refs.pop(path, None)
            if old is not None:
                self._bytes -= len(old.data)
            self._refs[path] = ref
            self._bytes += len(ref.data)
            while self._bytes > self.max_bytes and len(self._refs) > 1:
                _, dropped = self._refs.popitem(last=False)
                self._bytes -= len(dropped.data)


def _read(path: Path) -> Reference:
    data = path.read_bytes()
    try:
        mime_type = probe(data).mime_type
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc
    return Reference(path.stem.lower(), mime_type, data, path=str(path))

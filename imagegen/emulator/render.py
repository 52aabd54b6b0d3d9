"""Deterministic stand-in images for the emulator, rendered with Pillow and cached.

``collage``: the decoded reference images fitted into a grid, above a band that shows the first
line of the prompt (up to 60 characters) and a short hash of the whole request, so a person
looking at a batch's output can tell which inputs produced which file. ``plain``: one flat colour
taken from the request hash, as a palette PNG, which is an order of magnitude cheaper to encode
and decode. Both are exactly the requested size in pixels.
"""

from __future__ import annotations

import functools
import hashlib
import io
import math
import threading
from collections import OrderedDict
from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont, ImageOps

from ..images import sniff

RENDER_MODES = ("collage", "plain")
CAPTION_CHARS = 60

# Speed over size: the emulator's PNGs live for one response, and level 1 encodes a 4K collage
# several times faster than the default level 6.
_COMPRESS_LEVEL = 1


class _ByteLRU:
    """A least-recently-used map of PNG bytes bounded by total size in bytes. Thread-safe."""

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._items: OrderedDict[tuple[object, ...], bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[object, ...]) -> bytes | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: tuple[object, ...], value: bytes) -> None:
        # One huge 4K collage must not flush everything else out.
        if len(value) > self._max_bytes // 4:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._size -= len(old)
            self._items[key] = value
            self._size += len(value)
            while self._size > self._max_bytes:
                _, evicted = self._items.popitem(last=False)
                self._size -= len(evicted)


_CACHE = _ByteLRU(max_bytes=128 * 1024 * 1024)
_DECODABLE = _ByteLRU(max_bytes=1024 * 1024)  # sha256 of reference bytes known to decode


def sha256_of(data: bytes) -> bytes:
    """The SHA-256 digest of ``data``: the one a Files API file computed once at upload (see
    :class:`.filestore.Content`: the 10,000 requests of a batch that name the same 3 MB photo
    then hash it once, not 20,000 times), else computed now."""
    known = getattr(data, "sha256", None)
    return known if isinstance(known, bytes) else hashlib.sha256(data).digest()


def _check_whole(data: bytes) -> None:
    """Raise ValueError unless ``data`` is a whole image. A JPEG is decoded at 1/8 scale (its
    whole entropy-coded stream is still read, so a cut file fails; a 3 MB camera photo takes
    ~15 ms instead of ~100 ms), as :func:`imagegen.references.check_reference` does."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.format == "JPEG":
                img.draft("RGB", (max(1, img.width // 8), max(1, img.height // 8)))
                img.load()
                return
    except (OSError, SyntaxError, ValueError) as exc:
        raise ValueError(f"not a decodable image ({exc})") from exc
    sniff(data)


def check_decodable(data: bytes) -> bool:
    """True if ``data`` is a whole image (fully decoded once, then remembered by hash)."""
    key = (sha256_of(data),)
    if _DECODABLE.get(key) is not None:
        return True
    try:
        _check_whole(data)
    except ValueError:
        return False
    _DECODABLE.put(key, b"1")
    return True


def render_png(
    mode: str,
    width: int,
    height: int,
    *,
    digest: str,
    caption: str = "",
    references: Sequence[bytes] = (),
) -> bytes:
    """PNG bytes of ``width`` x ``height`` pixels; ``digest`` (hex) must cover every input.

    The cache is keyed by (mode, digest, size): identical requests render once.
    """
    if mode not in RENDER_MODES:
        raise ValueError(f"render mode {mode!r} is not one of {RENDER_MODES}")
    key = (mode, digest, width, height)
    cached = _CACHE.get(key)
    if cached is not None:
        return cached
    if mode == "plain":
        png = _plain(width, height, digest)
    else:
        png = _collage(width, height, digest, caption, references)
    _CACHE.put(key, png)
    return png


@functools.cache
def as_jpeg(png: bytes) -> bytes:
    """The same picture as JPEG bytes."""
    with Image.open(io.BytesIO(png)) as img:
        out = io.BytesIO()
        img.convert("RGB").save(out, format="JPEG", quality=90)
        return out.getvalue()


def truncated_png() -> bytes:
    """The first half of a 128x128 noise PNG: the header says PNG, the pixels do not decode."""
    # Noise, so that the cut falls inside the pixel data rather than in the header chunks.
    whole = _encode(Image.effect_noise((128, 128), 64).convert("RGB"))
    return whole[: len(whole) // 2]


def _colour(digest: str) -> tuple[int, int, int]:
    raw = bytes.fromhex(digest[:6].ljust(6, "0"))
    return raw[0], raw[1], raw[2]


def _encode(img: Image.Image, **options: object) -> bytes:
    out = io.BytesIO()
    img.save(out, "PNG", compress_level=_COMPRESS_LEVEL, **options)
    return out.getvalue()


def _plain(width: int, height: int, digest: str) -> bytes:
    img = Image.new("P", (width, height), 0)
    img.putpalette(list(_colour(digest)))
    return _encode(img)


def _collage(
    width: int, height: int, digest: str, caption: str, references: Sequence[bytes]
) -> bytes:
    r, g, b = _colour(digest)
    img = Image.new("RGB", (width, height), (r // 2 + 64, g // 2 + 64, b // 2 + 64))
    band = max(24, min(height // 8, 400))
    _tile(img, (0, 0, width, height - band), references)
    _caption(img, band, caption[:CAPTION_CHARS], f"#{digest[:12]}  {width}x{height}")
    return _encode(img)


#: References above this many pixels (after a JPEG's reduced decode) are not decoded for the
#: collage: memory stays bounded however large a user's reference is.
_DECODE_PIXELS = 16_000_000


def _tile(img: Image.Image, box: tuple[int, int, int, int], references: Sequence[bytes]) -> None:
    """Fit each reference image into its own cell of a near-square grid inside ``box``."""
    if not references:
        return
    left, top, right, bottom = box
    cols = math.ceil(math.sqrt(len(references)))
    rows = math.ceil(len(references) / cols)
    cell_w, cell_h = (right - left) // cols, (bottom - top) // rows
    pad = max(2, min(cell_w, cell_h) // 40)
    inner = (max(1, cell_w - 2 * pad), max(1, cell_h - 2 * pad))
    for i, data in enumerate(references):
        with Image.open(io.BytesIO(data)) as ref:
            ref.draft("RGB", inner)  # JPEG: decode at reduced scale, much faster for big photos
            if ref.width * ref.height > _DECODE_PIXELS:
                # A huge PNG or WebP has no reduced decode: a labelled tile instead of 0.4 GB.
                thumb = Image.new("RGB", inner, (120, 120, 124))
                ImageDraw.Draw(thumb).text((4, 4), f"{ref.width}x{ref.height}", fill=(255,) * 3)
            else:
                thumb = ImageOps.contain(ref.convert("RGB"), inner)
        col, row = i % cols, i // cols
        x = left + col * cell_w + (cell_w - thumb.width) // 2
        y = top + row * cell_h + (cell_h - thumb.height) // 2
        img.paste(thumb, (x, y))


def _caption(img: Image.Image, band: int, first: str, second: str) -> None:
    width, height = img.size
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, height - band, width, height), fill=(20, 20, 20))
    # Two lines in the band, and 62 characters must fit across (about 0.6 em per character).
    size = max(6, min(band * 2 // 5, int(width / (0.6 * (CAPTION_CHARS + 2)))))
    font = ImageFont.load_default(size=size)
    margin = max(2, size // 3)
    draw.text((margin, height - band + margin), first, fill=(240, 240, 240), font=font)
    draw.text((margin, height - band + margin + size + 2), second, fill=(160, 200, 255), font=font)

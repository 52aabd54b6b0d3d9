"""A spec's ``size`` and ``quality`` -> the aspect ratio and size tier the runner asks for.

Gemini takes an aspect ratio (1:1 2:3 3:2 3:4 4:3 4:5 5:4 9:16 16:9 21:9) and a tier (1K 2K 4K)
rather than pixels (:mod:`imagegen.providers.gemini`, from ai.google.dev "Image generation").
Specs written for other providers say ``1792x1024`` and ``hd``, so both are mapped:

``size`` (an item's, else the file's ``defaults.size``, else ``1:1``):

- ``"16:9"``: one of Gemini's ratios, as is;
- ``"1792x1024"`` (``x`` or the multiplication sign): the Gemini ratio nearest to
  width/height, if within 2 % (1792x1024 is 1.75, 16:9 is 1.78: accepted; 1000x700 is 1.43,
  between 4:3 and 3:2: refused), and the smallest tier whose pixels cover the requested long
  side (1024x1024 -> 1K; 1792x1024 -> 2K, as Gemini's 1K 16:9 is 1376x768); beyond the 4K
  tier: refused;
- ``"auto"``: as if absent.

``quality`` (the file's ``defaults.quality``): ``1K`` / ``2K`` / ``4K`` as is (any case);
``standard``, ``low``, ``medium`` -> 1K; ``hd``, ``high`` -> 2K (4K costs nearly twice as much on
Nano Banana Pro, so only a literal ``4K`` asks for it); ``auto`` or absent -> no preference.

The tier is the larger of the two; 1K when neither says. Anything else is refused with the
forms accepted.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ...providers.gemini import ASPECTS, QUALITIES, tier_size

#: How far width/height may be from a Gemini ratio, as a fraction (2 %).
ASPECT_TOLERANCE = 0.02
DEFAULT_ASPECT = "1:1"
DEFAULT_QUALITY = "1K"
QUALITY_WORDS = {
    "standard": "1K",
    "low": "1K",
    "medium": "1K",
    "hd": "2K",
    "high": "2K",
}
_PIXELS = re.compile(r"\s*(\d+)\s*[xX\u00d7]\s*(\d+)\s*")


@dataclass(frozen=True, slots=True)
class ImageSize:
    """What the runner sends: ``aspect`` ("16:9") and ``quality`` ("2K")."""

    aspect: str
    quality: str


class SizeError(ValueError):
    """``size`` or ``quality`` cannot be mapped; the message says which forms are accepted."""


def image_size(size: str | None, quality: str | None) -> ImageSize:
    """Map a spec's ``size`` and ``quality`` (module docstring). Raises SizeError."""
    aspect, size_tier = _aspect_of(size)
    named = _tier_of(quality)
    tiers = [t for t in (size_tier, named) if t is not None]
    tier = max(tiers, key=QUALITIES.index) if tiers else DEFAULT_QUALITY
    return ImageSize(aspect, tier)


def _aspect_of(size: str | None) -> tuple[str, str | None]:
    if size is None or size.strip().lower() in ("", "auto"):
        return DEFAULT_ASPECT, None
    text = size.strip()
    if text in ASPECTS:
        return text, None
    pixels = _PIXELS.fullmatch(text)
    if pixels is None:
        raise SizeError(
            f"size {size!r} is neither a ratio ({' '.join(ASPECTS)}) nor WIDTHxHEIGHT pixels"
        )
    width, height = int(pixels.group(1)), int(pixels.group(2))
    if not width or not height:
        raise SizeError(f"size {size!r} has a zero side")
    aspect = min(ASPECTS, key=lambda a: abs(math.log(width / height / _ratio(a))))
    if abs(width / height / _ratio(aspect) - 1) > ASPECT_TOLERANCE:
        raise SizeError(
            f"size {size!r} (ratio {width / height:.3f}) is not within 2 % of a Gemini ratio; "
            f"the nearest is {aspect}: write size: {aspect!r}"
        )
    long_side = max(width, height)
    for tier in QUALITIES:
        if max(tier_size(tier, aspect)) >= long_side:
            return aspect, tier
    largest = tier_size(QUALITIES[-1], aspect)
    raise SizeError(
        f"size {size!r} is larger than Gemini's largest {aspect} image "
        f"({largest[0]}x{largest[1]}); write size: {aspect!r} with quality 4K"
    )


def _tier_of(quality: str | None) -> str | None:
    if quality is None or quality.strip().lower() in ("", "auto"):
        return None
    word = quality.strip()
    if word.upper() in QUALITIES:
        return word.upper()
    if word.lower() in QUALITY_WORDS:
        return QUALITY_WORDS[word.lower()]
    raise SizeError(
        f"quality {quality!r} is not one of {', '.join(QUALITIES)}, "
        f"{', '.join(QUALITY_WORDS)} or auto"
    )


def _ratio(aspect: str) -> float:
    width, height = aspect.split(":")
    return int(width) / int(height)

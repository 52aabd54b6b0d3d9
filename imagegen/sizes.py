"""Image size tiers and aspect ratios of Nano Banana Pro, and the pixel sizes they produce.

Source: ai.google.dev image-generation page, summarised in ``shared/notes/gemini-api.md``
("Models"). Pixel sizes are (width, height) in pixels.
"""

from __future__ import annotations

from .errors import InputError

QUALITIES = ("1K", "2K", "4K")
ASPECTS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")

# 1K sizes of the portrait/square ratios and 21:9; the rest are these transposed, and 2K / 4K
# are exact multiples (2x, 4x) of 1K.
_BASE_1K: dict[str, tuple[int, int]] = {
    "1:1": (1024, 1024),
    "9:16": (768, 1376),
    "4:5": (928, 1152),
    "3:4": (896, 1200),
    "2:3": (848, 1264),
    "21:9": (1584, 672),
}
_TRANSPOSED = {"16:9": "9:16", "5:4": "4:5", "4:3": "3:4", "3:2": "2:3"}
_MULTIPLIER = {"1K": 1, "2K": 2, "4K": 4}


def validate_quality(value: str) -> str:
    """Return ``value`` if it is a size tier; raises InputError otherwise (the API wants "K")."""
    if value not in QUALITIES:
        hint = f" (did you mean {value.upper()}?)" if value.upper() in QUALITIES else ""
        raise InputError(f"--quality {value!r} is not one of {', '.join(QUALITIES)}{hint}")
    return value


def validate_aspect(value: str) -> str:
    """Return ``value`` if Nano Banana Pro supports the ratio; raises InputError otherwise."""
    if value not in ASPECTS:
        raise InputError(f"--aspect {value!r} is not supported; use one of {', '.join(ASPECTS)}")
    return value


def pixel_size(quality: str, aspect: str) -> tuple[int, int]:
    """(width, height) in pixels that the model returns for this tier and ratio."""
    validate_quality(quality)
    validate_aspect(aspect)
    if aspect in _TRANSPOSED:
        h, w = _BASE_1K[_TRANSPOSED[aspect]]
    else:
        w, h = _BASE_1K[aspect]
    k = _MULTIPLIER[quality]
    return w * k, h * k

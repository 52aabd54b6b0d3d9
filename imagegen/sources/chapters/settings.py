"""The chapter image stage's settings, and how the seeds' environment variables set them.

Seed 001 step 3 names ``IMAGE_GEN_STYLE_PREFIX`` and ``IMAGE_GEN_SIZE``; seed 002 section 9.4
names ``max_episode_cost_usd`` (default $10, section 9.3). DALL-E's ``IMAGE_GEN_QUALITY``
("standard" / "hd") has no meaning for Gemini and is not read: the size tier is ``quality``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from ...errors import InputError

#: Seed 002 section 1: "1920x1080 landscape images" for the video.
FRAME_SIZE = (1920, 1080)
DEFAULT_MAX_EPISODE_COST_USD = 10.0


@dataclass(frozen=True, slots=True)
class ImageSettings:
    """What shapes an episode's images, besides its chapters.

    ``width`` x ``height`` (pixels) is the episode's frame: placeholders are drawn at it, and
    the render stage scales generated images to it (seed 002, non-goal 5). Generated images are
    asked for at ``aspect`` and the Gemini size tier ``quality``: 2K is the smallest 16:9 tier
    at least 1920 wide (2752x1536) and costs what 1K costs (gemini-api notes, "Prices").
    ``style_prefix`` goes before every image prompt (seed 001 step 3: empty by default).
    ``prompt_template`` is the text-model template file, None for the bundled one.
    ``max_episode_cost_usd`` caps one episode's spending in one run (USD).
    """

    style_prefix: str = ""
    width: int = FRAME_SIZE[0]
    height: int = FRAME_SIZE[1]
    aspect: str = "16:9"
    quality: str = "2K"
    model: str = "gemini-3-pro-image"
    max_episode_cost_usd: float = DEFAULT_MAX_EPISODE_COST_USD
    prompt_template: Path | None = None

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise InputError(f"image size {self.width}x{self.height}: use positive pixels")
        if not math.isfinite(self.max_episode_cost_usd) or self.max_episode_cost_usd < 0:
            raise InputError(
                f"max episode cost {self.max_episode_cost_usd!r}: use a number of USD >= 0"
            )

    @property
    def size(self) -> str:
        """The frame as the manifest writes it: "1920x1080"."""
        return f"{self.width}x{self.height}"


def settings_from_env(env: Mapping[str, str], base: ImageSettings | None = None) -> ImageSettings:
    """``base`` (defaults if None) with the seeds' environment variables applied. Pure.

    Reads ``IMAGE_GEN_STYLE_PREFIX`` (text), ``IMAGE_GEN_SIZE`` ("1920x1080"),
    ``MAX_EPISODE_COST_USD`` (a number) and ``IMAGE_GEN_PROMPT_TEMPLATE`` (a path). Raises
    InputError naming the variable when a value does not parse.
    """
    settings = base or ImageSettings()
    if "IMAGE_GEN_STYLE_PREFIX" in env:
        settings = replace(settings, style_prefix=env["IMAGE_GEN_STYLE_PREFIX"])
    if size := env.get("IMAGE_GEN_SIZE", "").strip():
        width, height = parse_size(size, "IMAGE_GEN_SIZE")
        settings = replace(settings, width=width, height=height)
    if cap := env.get("MAX_EPISODE_COST_USD", "").strip():
        try:
            settings = replace(settings, max_episode_cost_usd=float(cap))
        except ValueError as exc:
            raise InputError(
                f"MAX_EPISODE_COST_USD={cap!r} is not a number: write USD such as 10 or 2.50"
            ) from exc
    if template := env.get("IMAGE_GEN_PROMPT_TEMPLATE", "").strip():
        settings = replace(settings, prompt_template=Path(template))
    return settings


def parse_size(value: str, name: str) -> tuple[int, int]:
    """ "1920x1080" -> (1920, 1080); raises InputError naming ``name`` otherwise."""
    width, sep, height = value.lower().partition("x")
    if sep and width.strip().isdigit() and height.strip().isdigit():
        w, h = int(width), int(height)
        if w > 0 and h > 0:
            return w, h
    raise InputError(f"{name}={value!r} is not a size: write WIDTHxHEIGHT in pixels, 1920x1080")

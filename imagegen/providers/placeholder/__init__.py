"""Placeholders: a provider that draws its image on this machine, for free, with no key.

A job for provider ``placeholder`` gets a solid-colour PNG with its prompt text (a chapter's
title, say) written across it (:func:`.draw.draw_placeholder`). It exists so that a source can
put images that are not generated (seed 002's ``title_card`` and ``talking_head`` chapters)
through the same runner, journal, contact sheet and after-save step as generated ones.

- model: the template, which picks the colours: ``title_card``, ``talking_head`` or ``plain``;
- quality: the exact pixel size, ``WIDTHxHEIGHT`` (``1920x1080``), not a size tier; the aspect
  ratio is not used (the size says it all);
- no key (``key_vars`` is empty), no network, no cost, ``local``: the runner gives its jobs no
  call slot, start turn or budget reservation;
- the same text, template and size always give the same bytes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from ...errors import BadRequest, InputError
from .. import PoolDefaults, ProviderInfo
from ..base import Checkpoint, Generation, ImageProvider, ImageRequest, Usage

__all__ = ["INFO", "MODELS", "PlaceholderProvider", "parse_pixels", "pixel_quality"]

MODELS = ("plain", "title_card", "talking_head")
#: Bounds of a drawn placeholder's edges, in pixels (Pillow would draw more; nobody needs it).
MIN_EDGE, MAX_EDGE = 16, 8192


def pixel_quality(width: int, height: int) -> str:
    """The ``quality`` a placeholder job gives for a ``width`` x ``height`` image."""
    return f"{width}x{height}"


def parse_pixels(quality: str) -> tuple[int, int] | None:
    """``"1920x1080"`` -> (1920, 1080); None if ``quality`` is not a pixel size in bounds."""
    width, sep, height = quality.lower().partition("x")
    if not (sep and width.isdigit() and height.isdigit()):
        return None
    w, h = int(width), int(height)
    if not (MIN_EDGE <= w <= MAX_EDGE and MIN_EDGE <= h <= MAX_EDGE):
        return None
    return w, h


def validate(model: str, quality: str, aspect: str) -> str | None:
    """What is wrong with a placeholder job's model and size, or None."""
    if model not in MODELS:
        return f"placeholder template {model!r} is unknown; use one of {', '.join(MODELS)}"
    if parse_pixels(quality) is None:
        return (
            f"placeholder size {quality!r} is not WIDTHxHEIGHT in pixels "
            f"({MIN_EDGE}..{MAX_EDGE} each), such as 1920x1080"
        )
    return None


def pixel_size(model: str, quality: str, aspect: str) -> tuple[int, int] | None:
    return parse_pixels(quality)


def estimate(model: str, quality: str, aspect: str, references: int) -> float:
    return 0.0


def cost(model: str, quality: str, aspect: str, references: int, usage: Usage) -> float:
    return 0.0


class PlaceholderProvider:
    """An :class:`~imagegen.providers.base.ImageProvider` that draws instead of calling."""

    async def generate(
        self, request: ImageRequest, checkpoint: Checkpoint | None = None
    ) -> Generation:
        """Draw ``request.prompt`` on the template's colour at the requested pixel size.

        Raises BadRequest for an unknown template or size, or a font that will not load.
        """
        problem = validate(request.model, request.quality, request.aspect)
        if problem is not None:
            raise BadRequest(problem)
        size = parse_pixels(request.quality)
        assert size is not None  # validated above
        # Pillow's drawing and fonts load with the first placeholder, not with the registry
        # (every command reads each provider's key variables; --status draws nothing).
        from .draw import PLACEHOLDER_VERSION, draw_placeholder

        try:
            # Drawing and PNG encoding take ~50 ms at 1920x1080: off the event loop.
            drawn = await anyio.to_thread.run_sync(
                draw_placeholder, request.prompt, request.model, size
            )
        except InputError as exc:
            raise BadRequest(str(exc)) from exc
        return Generation(
            image=drawn.png,
            mime_type="image/png",
            finish_reason=None,
            usage=Usage(),
            model_version=f"{drawn.template_name} v{PLACEHOLDER_VERSION}",
        )


@asynccontextmanager
async def open_provider(
    api_key: str, offline: bool, latency: float
) -> AsyncIterator[ImageProvider]:
    """The drawing adapter; the key, offline mode and emulator latency mean nothing to it."""
    yield PlaceholderProvider()


INFO = ProviderInfo(
    name="placeholder",
    title="Placeholder (drawn locally)",
    models=MODELS,
    qualities=(),
    aspects=(),
    max_references=0,
    key_vars=(),
    pool=PoolDefaults(concurrency=4, min_interval=0.0, rpm=10_000),
    pixel_size=pixel_size,
    estimate=estimate,
    cost=cost,
    open=open_provider,
    prices_as_of="(free)",
    local=True,
    validate=validate,
)

"""Gemini (Nano Banana Pro): models, sizes, prices and failure reasons. No SDK import here.

Sources (summarised in ``shared/notes/gemini-api.md``):

- models, size tiers, aspect ratios and pixel sizes: ai.google.dev, "Image generation"
  (notes, "Models"); 14 reference images at most for Pro;
- prices: ai.google.dev/gemini-api/docs/pricing as of 2026-03 (notes, "Prices"); thinking
  tokens are billed at the text-output rate, $12 / 1M; the Batch API column (half price:
  $0.067 at 1K/2K, $0.12 at 4K, $0.0006 per input image, Flash $0.0195). Thinking in a batch
  is priced at half the text-output rate, $6 / 1M: an assumption, taken from a third-party
  copy of the page's batch text row (modelpedia.dev, "Batch $1 / $6"), not checked on
  Google's page;
- finish and block reasons: Google's ``FinishReason`` and ``BlockedReason`` enums (notes,
  "Outcomes that are HTTP 200 but carry no image").

The adapter that calls the API is :mod:`.client`, and :mod:`.errors` names what the SDK raises
or a batch line reports: only these two import google.genai. :mod:`.batch_lines` writes the
Batch API's request lines.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from ...errors import InputError
from .. import PoolDefaults, ProviderInfo
from ..base import ImageProvider, TextWriter, Usage

MODELS = ("gemini-3-pro-image", "gemini-3-pro-image-preview", "gemini-2.5-flash-image")
QUALITIES = ("1K", "2K", "4K")
ASPECTS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
MAX_REFERENCES = 14
# Models whose pixel sizes are published per tier; the others (2.5 Flash) have one fixed size.
SIZED_MODELS = ("gemini-3-pro-image", "gemini-3-pro-image-preview")
# Models that take no ``image_size`` (notes, "Models": 2.5 Flash has one fixed size; the brief
# says the same of 3.1 Flash).
_NO_IMAGE_SIZE = re.compile(r"-flash-")

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

PRICES_AS_OF = "2026-03"
THINKING_USD_PER_TOKEN = 12.0 / 1_000_000


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """Standard (online) USD prices: per output image by size tier, per input image."""

    per_image: dict[str, float]
    per_input_image: float


_PRO = ModelPrice({"1K": 0.134, "2K": 0.134, "4K": 0.24}, 0.0011)
_FLASH = ModelPrice({"1K": 0.039, "2K": 0.039, "4K": 0.039}, 0.0)
PRICES: dict[str, ModelPrice] = {
    "gemini-3-pro-image": _PRO,
    "gemini-3-pro-image-preview": _PRO,
    "gemini-2.5-flash-image": _FLASH,
}
# The pricing page's "Batch" column (notes, "Prices"): half of each standard price.
_PRO_BATCH = ModelPrice({"1K": 0.067, "2K": 0.067, "4K": 0.12}, 0.0006)
_FLASH_BATCH = ModelPrice({"1K": 0.0195, "2K": 0.0195, "4K": 0.0195}, 0.0)
BATCH_PRICES: dict[str, ModelPrice] = {
    "gemini-3-pro-image": _PRO_BATCH,
    "gemini-3-pro-image-preview": _PRO_BATCH,
    "gemini-2.5-flash-image": _FLASH_BATCH,
}
#: Thinking tokens in a batch: half the text-output rate (an assumption; module docstring).
BATCH_THINKING_USD_PER_TOKEN = 6.0 / 1_000_000

#: Finish and block reasons as the adapter records them -> the words the contact sheet shows.
REASON_LABELS = {
    "IMAGE_SAFETY": "safety block",
    "SAFETY": "safety block",
    "IMAGE_PROHIBITED_CONTENT": "safety block",
    "PROHIBITED_CONTENT": "safety block",
    "BLOCKLIST": "safety block",
    "SPII": "safety block",
    "RECITATION": "recitation block",
    "IMAGE_RECITATION": "recitation block",
    "TEXT_ONLY": "text, no image",
    "NO_IMAGE": "no image",
    "NO_CANDIDATES": "no image",
    "IMAGE_OTHER": "no image",
    "OTHER": "no image",
    "MAX_TOKENS": "no image",
    "MALFORMED_FUNCTION_CALL": "no image",
}


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


def tier_size(quality: str, aspect: str) -> tuple[int, int]:
    """(width, height) in pixels that Pro returns for this tier and ratio."""
    validate_quality(quality)
    validate_aspect(aspect)
    if aspect in _TRANSPOSED:
        h, w = _BASE_1K[_TRANSPOSED[aspect]]
    else:
        w, h = _BASE_1K[aspect]
    k = _MULTIPLIER[quality]
    return w * k, h * k


def takes_image_size(model: str) -> bool:
    """Whether a request for ``model`` carries the size tier (``imageSize``): every model but
    the Flash ones, online (:func:`.client.build_config`) and in a batch line
    (:mod:`.batch_lines`) alike."""
    return not _NO_IMAGE_SIZE.search(model)


def pixel_size(model: str, quality: str, aspect: str) -> tuple[int, int] | None:
    """The promised (width, height) in pixels, or None for models with one fixed size."""
    return tier_size(quality, aspect) if model in SIZED_MODELS else None


def price_for(model: str) -> ModelPrice:
    """Price of ``model``; unknown ids are priced as Nano Banana Pro (the dearest) to be safe."""
    return PRICES.get(model, _PRO)


def estimate(model: str, quality: str, aspect: str, references: int) -> float:
    """Expected USD for one image before the call (no thinking tokens known yet)."""
    price = price_for(model)
    return price.per_image[quality] + price.per_input_image * references


def cost(model: str, quality: str, aspect: str, references: int, usage: Usage) -> float:
    """USD billed for one successful call: the image, its input images, its thinking tokens."""
    return (
        estimate(model, quality, aspect, references) + usage.thought_tokens * THINKING_USD_PER_TOKEN
    )


def batch_estimate(model: str, quality: str, aspect: str, references: int) -> float:
    """Expected USD for one image through the Batch API, before its thinking is known."""
    price = BATCH_PRICES.get(model, _PRO_BATCH)
    return price.per_image[quality] + price.per_input_image * references


def batch_cost(model: str, quality: str, aspect: str, references: int, usage: Usage) -> float:
    """USD billed for one image a batch returned: the image, its inputs, its thinking."""
    return (
        batch_estimate(model, quality, aspect, references)
        + usage.thought_tokens * BATCH_THINKING_USD_PER_TOKEN
    )


#: Text models (a source's prompt writer): USD per 1M tokens (input, output), output including
#: thinking. ai.google.dev/gemini-api/docs/pricing, standard tier, prompts up to 200k tokens, as
#: of 2025-06 (not in the shared notes: re-check before relying on them). An unknown model is
#: priced as the dearest listed.
TEXT_PRICES: dict[str, tuple[float, float]] = {
    "gemini-2.5-flash-lite": (0.10, 0.40),
    "gemini-2.5-flash": (0.30, 2.50),
    "gemini-2.5-pro": (1.25, 10.00),
    "gemini-3-pro-preview": (2.00, 12.00),
}
_DEAREST_TEXT = max(TEXT_PRICES.values(), key=lambda p: p[1])


def text_price(model: str) -> tuple[float, float]:
    """USD per 1M (input, output) tokens of a text model."""
    return TEXT_PRICES.get(model, _DEAREST_TEXT)


def text_cost(model: str, usage: Usage) -> float:
    """USD billed for one text call: its prompt, its answer and its thinking."""
    per_in, per_out = text_price(model)
    out = usage.output_tokens + usage.thought_tokens
    return (usage.prompt_tokens * per_in + out * per_out) / 1_000_000


@asynccontextmanager
async def open_provider(
    api_key: str, offline: bool, latency: float
) -> AsyncIterator[ImageProvider]:
    """The adapter, pointed at an in-process emulator when ``offline``."""
    from ...emulator import Emulator
    from .client import GeminiProvider

    if offline:
        with Emulator(latency=latency) as emulator:
            async with GeminiProvider(api_key, base_url=emulator.base_url) as provider:
                yield provider
    else:
        async with GeminiProvider(api_key) as provider:
            yield provider


@asynccontextmanager
async def open_text_writer(
    api_key: str, offline: bool, latency: float, attempt_seconds: float
) -> AsyncIterator[TextWriter]:
    """A Gemini text model (``attempt_seconds`` per attempt), pointed at an in-process
    emulator when ``offline`` (it answers text models in words)."""
    from ...emulator import Emulator
    from .client import GeminiTextWriter

    if offline:
        with Emulator(latency=latency) as emulator:
            async with GeminiTextWriter(
                api_key, base_url=emulator.base_url, timeout=attempt_seconds
            ) as writer:
                yield writer
    else:
        async with GeminiTextWriter(api_key, timeout=attempt_seconds) as writer:
            yield writer


INFO = ProviderInfo(
    name="gemini",
    title="Gemini API (Nano Banana Pro)",
    models=MODELS,
    qualities=QUALITIES,
    aspects=ASPECTS,
    max_references=MAX_REFERENCES,
    key_vars=("GOOGLE_API_KEY", "GEMINI_API_KEY"),
    # Seed 003, "Rate Limits": 3 in flight, 1 s between starts, ~60 a minute.
    pool=PoolDefaults(concurrency=3, min_interval=1.0, rpm=60),
    pixel_size=pixel_size,
    estimate=estimate,
    cost=cost,
    open=open_provider,
    prices_as_of=PRICES_AS_OF,
    reason_labels=REASON_LABELS,
    batch_estimate=batch_estimate,
    batch_cost=batch_cost,
    file_store=True,
)

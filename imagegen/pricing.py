"""Published prices, in USD, and the cost of a job.

Source: ai.google.dev/gemini-api/docs/pricing as of 2026-03, summarised in
``shared/notes/gemini-api.md`` ("Prices"). Thinking tokens are billed at the text-output rate.
Prices change: this table is the one place to update, with its date.
"""

from __future__ import annotations

from dataclasses import dataclass

from .providers.base import Usage

PRICES_AS_OF = "2026-03"
THINKING_USD_PER_TOKEN = 12.0 / 1_000_000


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """Standard (not Batch API) prices: per output image by size tier, per input image."""

    per_image: dict[str, float]
    per_input_image: float


_PRO = ModelPrice({"1K": 0.134, "2K": 0.134, "4K": 0.24}, 0.0011)
_FLASH = ModelPrice({"1K": 0.039, "2K": 0.039, "4K": 0.039}, 0.0)

PRICES: dict[str, ModelPrice] = {
    "gemini-3-pro-image": _PRO,
    "gemini-3-pro-image-preview": _PRO,
    "gemini-2.5-flash-image": _FLASH,
}


def price_for(model: str) -> ModelPrice:
    """Price of ``model``; unknown ids are priced as Nano Banana Pro (the dearest) to be safe."""
    return PRICES.get(model, _PRO)


def estimate(model: str, quality: str, references: int) -> float:
    """Expected USD for one image before the call (no thinking tokens known yet)."""
    price = price_for(model)
    return price.per_image[quality] + price.per_input_image * references


def cost(model: str, quality: str, references: int, usage: Usage) -> float:
    """USD billed for one successful call: the image, its input images, its thinking tokens."""
    return estimate(model, quality, references) + usage.thought_tokens * THINKING_USD_PER_TOKEN

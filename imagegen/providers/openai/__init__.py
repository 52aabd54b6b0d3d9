"""OpenAI (GPT Image): models, sizes, prices and failure reasons. No SDK import here.

Models: the GPT Image models that the installed SDK (openai 3.57, ``types/image_model.py`` and
the ``size`` docstring of ``images.generate``/``edit``) documents as taking any ``WIDTHxHEIGHT``:
gpt-image-2 and the 2.5 Sunburst and Flare families, with their dated snapshots. Left out:
``gpt-image-1`` (shut down 2026-10-23), ``dall-e-2``/``dall-e-3`` (retired 2026-05-12), and the
models limited to three fixed sizes (gpt-image-1.5, gpt-image-1-mini, 2.6 Sunburst/Flare), which
cannot give our aspect ratios without cropping.

Sizes. Our ``quality`` is a size tier; OpenAI's ``quality`` is rendering effort, always sent as
``high`` (:data:`RENDER_QUALITY`). A tier and ratio map to the largest ``W x H`` that keeps the
ratio exactly, has both edges multiples of 16 and at most 3840 px, and stays within the tier's
pixel budget: 1K = 1024x1024 px, 2K = 2048x2048 px, 4K = 3840x2160 px (the API's maximum).
The SDK's rules (16 px steps, ratio within 1:3..3:1, edge <= 3840, 655,360..8,294,400 px) hold
for every entry; OpenAI calls sizes above 2560x1440 "experimental", so most 2K and every 4K
size is::

    ratio   1K          2K          4K
    1:1     1024x1024   2048x2048   2880x2880
    2:3     832x1248    1664x2496   2336x3504
    3:2     1248x832    2496x1664   3504x2336
    3:4     864x1152    1728x2304   2448x3264
    4:3     1152x864    2304x1728   3264x2448
    4:5     896x1120    1792x2240   2560x3200
    5:4     1120x896    2240x1792   3200x2560
    9:16    720x1280    1440x2560   2160x3840
    16:9    1280x720    2560x1440   3840x2160
    21:9    1456x624    3024x1296   3808x1632

Anything else (another tier, ratio or model) is refused with InputError, never changed.

Prices (USD per 1M tokens: text input / image input / image output = 5 / 8 / 30), as of
2026-12, read from stored copies of OpenAI's model pages (developers.openai.com/api/docs/models/
gpt-image-2.6-sunburst lists 5 / 8 / 30; the same rates for gpt-image-2 appear on fal.ai's
mirror of OpenAI's pricing, and for the 2.5 family in Apidog's guide citing OpenAI's pricing
page read 2026-09-09). Verify against developers.openai.com/api/docs/pricing before relying on
them. :func:`cost` prices every input token at the image-input rate (the response's ``usage``
does not reach us split), which over-counts a prompt's text by at most $3 per 1M tokens.
:func:`estimate` assumes OpenAI's published high-quality count of 4160 output tokens per
1024x1024 image, scaled by pixels, and 765 input tokens per reference image: a planning figure.

The adapter that calls the API is :mod:`.client` (the one module that imports ``openai``).
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from ...errors import InputError
from .. import PoolDefaults, ProviderInfo
from ..base import ImageProvider, Usage
from ..gemini import ASPECTS as GEMINI_ASPECTS

MODELS = (
    "gpt-image-2",
    "gpt-image-2-2026-04-21",
    "gpt-image-2.5-sunburst",
    "gpt-image-2.5-sunburst-2026-09-08",
    "gpt-image-2.5-flare",
    "gpt-image-2.5-flare-2026-09-08",
)
QUALITIES = ("1K", "2K", "4K")
ASPECTS = GEMINI_ASPECTS
MAX_REFERENCES = 16  # images.edit: "You can provide up to 16 images" (SDK docstring)
RENDER_QUALITY = "high"
OUTPUT_FORMAT = "png"

MAX_EDGE = 3840
MIN_PIXELS = 655_360
MAX_PIXELS = 3840 * 2160
#: Pixel budget of each size tier.
TIER_PIXELS = {"1K": 1024 * 1024, "2K": 2048 * 2048, "4K": MAX_PIXELS}

PRICES_AS_OF = "2026-12"
TEXT_INPUT_USD_PER_TOKEN = 5.0 / 1_000_000
IMAGE_INPUT_USD_PER_TOKEN = 8.0 / 1_000_000
IMAGE_OUTPUT_USD_PER_TOKEN = 30.0 / 1_000_000
HIGH_TOKENS_PER_1024_SQUARE = 4160  # OpenAI's image-generation guide, quality "high"
REFERENCE_INPUT_TOKENS = 765  # 85 + 170 per 512 px tile of a 1024x1024 image
PROMPT_TOKENS_GUESS = 300

#: Moderation and no-image reasons as the adapter records them -> the contact sheet's words.
REASON_LABELS = {
    "moderation_blocked": "safety block",
    "content_policy_violation": "safety block",
    "NO_IMAGE": "no image",
}


@dataclass(frozen=True, slots=True)
class Size:
    """A pixel size the API accepts: ``str(size)`` is the ``size`` parameter ("1280x720")."""

    width: int
    height: int

    def __str__(self) -> str:
        return f"{self.width}x{self.height}"


def fit(aspect: str, budget: int) -> Size:
    """The largest size with exactly ``aspect``, 16 px steps, edges <= 3840, <= ``budget`` px."""
    a, b = (int(part) for part in aspect.split(":"))
    g = math.gcd(a, b)
    a, b = a // g, b // g
    step = 16 * 16 * a * b  # pixels of the size at k = 1
    k = math.isqrt(budget // step)
    while 16 * max(a, b) * k > MAX_EDGE:
        k -= 1
    return Size(16 * a * k, 16 * b * k)


SIZES: dict[tuple[str, str], Size] = {
    (tier, aspect): fit(aspect, TIER_PIXELS[tier]) for tier in QUALITIES for aspect in ASPECTS
}


def size_for(model: str, quality: str, aspect: str) -> Size:
    """The ``size`` to send for this tier and ratio; raises InputError for what we cannot do."""
    if model not in MODELS:
        raise InputError(
            f"OpenAI model {model!r} is not supported: use one of {', '.join(MODELS)} "
            "(gpt-image-1 and dall-e-3 are retired; fixed-size models cannot keep --aspect)"
        )
    if quality not in QUALITIES:
        raise InputError(f"--quality {quality!r} is not one of {', '.join(QUALITIES)} for OpenAI")
    if aspect not in ASPECTS:
        raise InputError(
            f"--aspect {aspect!r} is not supported for OpenAI; use one of {', '.join(ASPECTS)}"
        )
    return SIZES[quality, aspect]


def pixel_size(model: str, quality: str, aspect: str) -> tuple[int, int]:
    """(width, height) in pixels that the API returns; raises InputError like :func:`size_for`."""
    size = size_for(model, quality, aspect)
    return size.width, size.height


def output_tokens(quality: str, aspect: str) -> int:
    """Expected image output tokens at quality "high" (a planning figure, see the docstring)."""
    size = SIZES[quality, aspect]
    return math.ceil(size.width * size.height * HIGH_TOKENS_PER_1024_SQUARE / (1024 * 1024))


def estimate(model: str, quality: str, aspect: str, references: int) -> float:
    """Expected USD for one image before the call."""
    size_for(model, quality, aspect)
    return (
        output_tokens(quality, aspect) * IMAGE_OUTPUT_USD_PER_TOKEN
        + references * REFERENCE_INPUT_TOKENS * IMAGE_INPUT_USD_PER_TOKEN
        + PROMPT_TOKENS_GUESS * TEXT_INPUT_USD_PER_TOKEN
    )


def cost(model: str, quality: str, aspect: str, references: int, usage: Usage) -> float:
    """USD billed for one call, from its usage: input tokens at the image-input rate (an upper
    bound), output tokens at the image-output rate. A response without usage is priced at
    :func:`estimate`, never at zero."""
    if usage.prompt_tokens == 0 and usage.output_tokens == 0:
        return estimate(model, quality, aspect, references)
    return (
        usage.prompt_tokens * IMAGE_INPUT_USD_PER_TOKEN
        + usage.output_tokens * IMAGE_OUTPUT_USD_PER_TOKEN
    )


@asynccontextmanager
async def open_provider(
    api_key: str, offline: bool, latency: float
) -> AsyncIterator[ImageProvider]:
    """The adapter, pointed at an in-process emulator when ``offline``."""
    from ...emulator import Emulator
    from .client import OpenAIProvider

    if offline:
        with Emulator(latency=latency) as emulator:
            async with OpenAIProvider(api_key, base_url=emulator.base_url + "/v1") as provider:
                yield provider
    else:
        async with OpenAIProvider(api_key) as provider:
            yield provider


INFO = ProviderInfo(
    name="openai",
    title="OpenAI Images (GPT Image)",
    models=MODELS,
    qualities=QUALITIES,
    aspects=ASPECTS,
    max_references=MAX_REFERENCES,
    key_vars=("OPENAI_API_KEY",),
    # Not a published number: image rate limits depend on the account's usage tier (a Tier 1
    # account gets a few images a minute). Conservative; raise with --concurrency / --rpm.
    pool=PoolDefaults(concurrency=2, min_interval=1.0, rpm=10),
    pixel_size=pixel_size,
    estimate=estimate,
    cost=cost,
    open=open_provider,
    prices_as_of=PRICES_AS_OF,
    reason_labels=REASON_LABELS,
)

"""fal (Nano Banana through fal's queue): models, sizes, prices and failure reasons. No SDK here.

Models are fal app ids; with reference images the adapter submits to the app's ``/edit``
endpoint (``fal-ai/nano-banana-pro/edit``), without them to the app itself:

    fal-ai/nano-banana-pro   Gemini 3 Pro Image: ``resolution`` 1K / 2K / 4K, sizes as Gemini's
    fal-ai/nano-banana       Gemini 2.5 Flash Image: one size per ratio, so only "1K" is taken

Arguments (fal's docs for the nano-banana edit family, ``shared/notes/providers.md``):
``prompt``, ``image_urls`` (data URLs), ``num_images`` 1, ``aspect_ratio``, ``resolution`` (Pro),
``output_format`` "png". Up to 14 reference images (Gemini 3 Pro Image's limit; fal documents the
same for its nano-banana edit apps).

Prices: per image, references free. fal-ai/nano-banana-pro $0.15, and double ($0.30) at 4K;
fal-ai/nano-banana $0.039. These are the figures fal's model pages (fal.ai/models/...) gave
when last read (2025-11); no stored copy of those pages could be found in this session, so
they are NOT re-verified: check fal.ai/models before relying on a budget. fal reports no token
usage, so :func:`cost` equals :func:`estimate`.

The adapter that calls fal is :mod:`.client` (the one module that imports ``fal_client``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ...errors import InputError
from .. import PoolDefaults, ProviderInfo
from ..base import ImageProvider, Usage
from ..gemini import ASPECTS as GEMINI_ASPECTS
from ..gemini import tier_size

PRO = "fal-ai/nano-banana-pro"
FLASH = "fal-ai/nano-banana"
MODELS = (PRO, FLASH)
QUALITIES = ("1K", "2K", "4K")
ASPECTS = GEMINI_ASPECTS
MAX_REFERENCES = 14

PRICES_AS_OF = "2025-11 (unverified)"
PRICE_PER_IMAGE = {PRO: {"1K": 0.15, "2K": 0.15, "4K": 0.30}, FLASH: {"1K": 0.039}}

#: Failure reasons as the adapter records them -> the contact sheet's words.
REASON_LABELS = {
    "content_policy_violation": "safety block",
    "NO_IMAGE": "no image",
}


def validate(model: str, quality: str, aspect: str) -> None:
    """Raise InputError for a model, tier or ratio fal cannot give (never changed silently)."""
    if model not in MODELS:
        raise InputError(f"fal model {model!r} is not supported: use one of {', '.join(MODELS)}")
    if quality not in PRICE_PER_IMAGE[model]:
        raise InputError(
            f"--quality {quality!r} is not available for {model}: use "
            + ", ".join(PRICE_PER_IMAGE[model])
        )
    if aspect not in ASPECTS:
        raise InputError(
            f"--aspect {aspect!r} is not supported for fal; use one of {', '.join(ASPECTS)}"
        )


def application(model: str, references: int) -> str:
    """The fal app to submit to: ``{model}/edit`` with reference images, ``model`` without."""
    return f"{model}/edit" if references else model


def pixel_size(model: str, quality: str, aspect: str) -> tuple[int, int] | None:
    """Pro's (width, height) for the tier and ratio (Gemini's table); None for Flash."""
    validate(model, quality, aspect)
    return tier_size(quality, aspect) if model == PRO else None


def estimate(model: str, quality: str, aspect: str, references: int) -> float:
    """USD for one image (fal bills per image; reference images cost nothing extra)."""
    validate(model, quality, aspect)
    return PRICE_PER_IMAGE[model][quality]


def cost(model: str, quality: str, aspect: str, references: int, usage: Usage) -> float:
    """USD billed for one image: the per-image price (fal reports no usage)."""
    return estimate(model, quality, aspect, references)


@asynccontextmanager
async def open_provider(
    api_key: str, offline: bool, latency: float
) -> AsyncIterator[ImageProvider]:
    """The adapter; when ``offline``, pointed at an in-process emulator served over HTTPS with a
    throwaway CA (needs ``trustme``, in the test extra; see :func:`.client.queue_pointed_at`)."""
    from .client import FalProvider, queue_pointed_at

    if offline:
        from ...emulator import Emulator
        from ...emulator.tls import TLSListener

        with (
            Emulator(latency=latency) as emulator,
            TLSListener(emulator) as tls,
            queue_pointed_at(tls.netloc, tls.ca_file),
        ):
            async with FalProvider(api_key) as provider:
                yield provider
    else:
        async with FalProvider(api_key) as provider:
            yield provider


INFO = ProviderInfo(
    name="fal",
    title="fal (Nano Banana Pro via fal's queue)",
    models=MODELS,
    qualities=QUALITIES,
    aspects=ASPECTS,
    max_references=MAX_REFERENCES,
    key_vars=("FAL_KEY",),
    # Not a published number: fal queues work, so calls in flight mostly wait in fal's queue;
    # kept modest so a batch does not flood an account's concurrency limit.
    pool=PoolDefaults(concurrency=4, min_interval=0.5, rpm=60),
    pixel_size=pixel_size,
    estimate=estimate,
    cost=cost,
    open=open_provider,
    prices_as_of=PRICES_AS_OF,
    reason_labels=REASON_LABELS,
)

"""The provider seam: one async method that turns an image request into a generation.

A provider raises only :mod:`imagegen.errors` types; the runner never sees an SDK exception.
A provider whose service queues work (fal) hands the runner a resume token through
``checkpoint`` as soon as the service has accepted the request; the runner journals it, and a
later attempt of the same job passes it back as ``ImageRequest.resume`` so the provider polls
the request already paid for instead of submitting (and paying for) it again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from ..model import Usage

__all__ = [
    "Checkpoint",
    "Generation",
    "ImageProvider",
    "ImageRequest",
    "Reference",
    "TextGeneration",
    "TextWriter",
    "Usage",
]


@dataclass(frozen=True, slots=True)
class Reference:
    """One reference image: its role (file stem), MIME type and bytes, sent inline.

    ``path`` is the file it was read from. ``uri`` is set when the image was uploaded to the
    provider's file store (:mod:`imagegen.providers.batch`): the request then sends the URI
    instead of the bytes (``data`` may be empty).
    """

    role: str
    mime_type: str
    data: bytes = field(repr=False)
    path: str | None = None
    uri: str | None = None


@dataclass(frozen=True, slots=True)
class ImageRequest:
    """What one attempt asks for.

    ``quality`` is the Gemini ``image_size`` tier ("1K", "2K", "4K"); ``aspect`` a ratio such as
    "1:1"; ``timeout`` the per-attempt limit in seconds.
    """

    model: str
    prompt: str
    references: tuple[Reference, ...]
    quality: str
    aspect: str
    timeout: float
    resume: str | None = None  # a provider's request id journaled by an earlier attempt


@dataclass(frozen=True, slots=True)
class Generation:
    """A successful attempt: the kept image's bytes (the last non-thought image part).

    A provider returns only bytes it has checked whole (:func:`imagegen.images.sniff`); the
    runner reads just their header.
    """

    image: bytes = field(repr=False)
    mime_type: str
    finish_reason: str | None
    usage: Usage
    model_version: str | None = None
    request_id: str | None = None  # the provider's id of the request or response, if any
    note: str | None = None  # something the journal should say about how the image was chosen


@dataclass(frozen=True, slots=True)
class TextGeneration:
    """A text model's answer: its words (thought parts left out), finish reason and usage
    (``output_tokens`` the answer's, ``thought_tokens`` the thinking's)."""

    text: str
    finish_reason: str | None
    usage: Usage
    model_version: str | None = None


#: Awaited with a provider's resume token (its request id) once the service has accepted a
#: request; returns when the token is durable in the journal.
Checkpoint = Callable[[str], Awaitable[None]]


class ImageProvider(Protocol):
    """Anything that can generate one image. Raises :class:`imagegen.errors.ProviderError`."""

    async def generate(
        self, request: ImageRequest, checkpoint: Checkpoint | None = None
    ) -> Generation: ...


class TextWriter(Protocol):
    """A text model (a source's prompt writer). Raises :class:`imagegen.errors.ProviderError`
    (NoText when the answer holds no words)."""

    async def write(
        self, instructions: str, *, model: str, max_tokens: int, temperature: float
    ) -> TextGeneration: ...

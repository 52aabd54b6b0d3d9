"""Providers: who makes the images, and what each one can do.

Each provider module declares a :class:`ProviderInfo` (models, sizes, aspect ratios, reference
limit, prices, key variables, default pool limits, failure-reason labels) and an adapter that
implements :class:`~imagegen.providers.base.ImageProvider` through the provider's official SDK.
``REGISTRY`` maps ``--provider NAME`` to its info; the info is light to import (no SDK), the
adapter is imported only when a run opens it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

from ..errors import InputError
from .base import Generation, ImageProvider, ImageRequest, Reference, Usage

__all__ = [
    "REGISTRY",
    "Generation",
    "ImageProvider",
    "ImageRequest",
    "OpenProvider",
    "PoolDefaults",
    "ProviderInfo",
    "Reference",
    "Usage",
    "get",
]


@dataclass(frozen=True, slots=True)
class PoolDefaults:
    """A provider's default pool limits: calls in flight, seconds between starts, starts/min."""

    concurrency: int
    min_interval: float
    rpm: int


#: Opens a provider for one run: ``(api_key, offline, offline_latency)`` -> an async context
#: manager yielding the adapter (pointed at the project's emulator when ``offline``).
OpenProvider = Callable[[str, bool, float], AbstractAsyncContextManager[ImageProvider]]


@dataclass(frozen=True, slots=True)
class ProviderInfo:
    """What a provider supports and costs; everything the planner, budget and views need.

    ``pixel_size(model, quality, aspect)`` is the (width, height) in pixels the provider returns,
    or None when it does not promise one. ``estimate(model, quality, aspect, references)`` is the
    USD price of one image before the call; ``cost(..., usage)`` the USD billed after it.
    ``reason_labels`` maps the provider's finish/block/moderation reasons to the short words the
    contact sheet shows ("safety block"). ``key_vars`` are the environment variables the key is
    read from, in the order the provider's SDK prefers them (and the ones redacted as secrets;
    empty: the provider needs no key). ``read_credential``, when set, replaces reading
    ``key_vars``: it returns what ``open`` needs from the environment (a key, or "" when the
    provider authenticates otherwise, as Vertex does with a project and Google's
    application-default credentials) and raises InputError naming the variables to set.
    ``local`` marks a provider that makes its image on this machine for free (no network, no
    rate limit): the runner gives its jobs no call slot, start turn or budget reservation.
    ``validate(model, quality, aspect)``, when set, replaces the check against ``models``,
    ``qualities`` and ``aspects`` (a provider whose sizes are not a fixed list): it returns what
    is wrong, or None.

    ``batch_estimate`` and ``batch_cost`` are ``estimate`` and ``cost`` at the provider's Batch
    API prices, None for a provider without a Batch API the runner can use. ``file_store``
    says whether its adapter can upload reference images and send them by URI
    (:class:`~imagegen.providers.batch.FileStore`); a provider whose adapter class has the
    methods but whose service has no Files API (Vertex AI) says False.
    """

    name: str
    title: str
    models: tuple[str, ...]  # the default first
    qualities: tuple[str, ...]
    aspects: tuple[str, ...]
    max_references: int
    key_vars: tuple[str, ...]
    pool: PoolDefaults
    pixel_size: Callable[[str, str, str], tuple[int, int] | None]
    estimate: Callable[[str, str, str, int], float]
    cost: Callable[[str, str, str, int, Usage], float]
    open: OpenProvider
    prices_as_of: str
    reason_labels: Mapping[str, str] = field(default_factory=dict)
    batch_estimate: Callable[[str, str, str, int], float] | None = None
    batch_cost: Callable[[str, str, str, int, Usage], float] | None = None
    read_credential: Callable[[], str] | None = None
    local: bool = False
    validate: Callable[[str, str, str], str | None] | None = None
    file_store: bool = False

    @property
    def default_model(self) -> str:
        return self.models[0]

    @property
    def has_batch(self) -> bool:
        """Whether jobs of this provider can go through its Batch API (``--batch``)."""
        return self.batch_estimate is not None and self.batch_cost is not None


def _gemini() -> ProviderInfo:
    from .gemini import INFO

    return INFO


def _vertex() -> ProviderInfo:
    from .vertex import INFO

    return INFO


def _openai() -> ProviderInfo:
    from .openai import INFO

    return INFO


def _fal() -> ProviderInfo:
    from .fal import INFO

    return INFO


def _placeholder() -> ProviderInfo:
    from .placeholder import INFO

    return INFO


_LOADERS: dict[str, Callable[[], ProviderInfo]] = {
    "gemini": _gemini,
    "vertex": _vertex,
    "openai": _openai,
    "fal": _fal,
    "placeholder": _placeholder,
}
REGISTRY: Mapping[str, Callable[[], ProviderInfo]] = _LOADERS


def get(name: str) -> ProviderInfo:
    """The provider registered as ``name``; raises InputError listing the known ones."""
    loader = _LOADERS.get(name)
    if loader is None:
        raise InputError(
            f"unknown provider {name!r}: use one of {', '.join(sorted(_LOADERS))} (--provider)"
        )
    return loader()

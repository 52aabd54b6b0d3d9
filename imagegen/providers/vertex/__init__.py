"""Vertex AI (Nano Banana Pro through Google Cloud): models, auth, prices. No SDK import here.

The same google-genai SDK and the same adapter as the Gemini API
(:class:`~imagegen.providers.gemini.client.GeminiProvider` with ``vertexai=True``), with
Vertex's routes and auth, as google-genai 3.4.0 builds them (checked against the emulator)::

    express mode, an API key:
        POST {base}/v1beta1/publishers/google/models/{m}:generateContent
        x-goog-api-key: KEY
    a project and a location, Google OAuth (application-default credentials):
        POST {base}/v1beta1/projects/{p}/locations/{l}/publishers/google/models/{m}:generateContent
        Authorization: Bearer <access token>

``{base}`` is ``https://aiplatform.googleapis.com`` for express mode and the ``global``
location, ``https://{l}-aiplatform.googleapis.com`` for a region; ``GOOGLE_VERTEX_BASE_URL``
(the SDK's own variable) replaces it, e.g. with an emulator's address.

Auth comes from the variables the SDK reads, with its precedence (``_api_client.py``,
``BaseApiClient.__init__``: a project from the environment wins over a key from the
environment): :func:`read_auth`. ``GOOGLE_GENAI_USE_VERTEXAI`` (or ``GOOGLE_GENAI_USE_ENTERPRISE``,
which wins) makes Vertex the CLI's default provider, as it makes the SDK's default
(:func:`vertex_by_default`). Unlike the SDK, a project is never discovered from the ADC file or
the metadata server: it must be in ``GOOGLE_CLOUD_PROJECT``, so that a missing one is refused
at start, before anything is written, and start never probes the network.

Models: Vertex's ids for Nano Banana Pro and its siblings. Google moved Vertex from
``gemini-3-pro-image-preview`` / ``gemini-3.1-flash-image-preview`` to ``gemini-3-pro-image`` /
``gemini-3.1-flash-image`` (GA on 2026-05-28; the preview endpoints were discontinued in July
2026: Agent Platform release notes and model pages), so the preview ids are not offered.
Sizes, aspect ratios and the reference limit are Gemini's (same models).

Prices: **the same as the Gemini API, unverified** for Vertex. Google Cloud's Vertex AI pricing
page (cloud.google.com/vertex-ai/generative-ai/pricing) could not be read in this session; the
figures are :mod:`imagegen.providers.gemini`'s (ai.google.dev pricing, 2026-03). Check the
Vertex page before relying on a budget. ``gemini-3.1-flash-image`` has no known price here and
is estimated as Pro, the dearest (an over-estimate, never an under-estimate).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

from ...errors import InputError
from .. import PoolDefaults, ProviderInfo
from ..base import ImageProvider
from ..gemini import ASPECTS, MAX_REFERENCES, QUALITIES, REASON_LABELS, cost, estimate, pixel_size

MODELS = ("gemini-3-pro-image", "gemini-3.1-flash-image", "gemini-2.5-flash-image")
PRICES_AS_OF = "2026-03 (the Gemini API's; unverified for Vertex)"
#: The API key variables, in the SDK's order (``get_env_api_key``: GOOGLE_API_KEY wins). These
#: are secrets; GOOGLE_CLOUD_PROJECT and GOOGLE_CLOUD_LOCATION are not.
KEY_VARS = ("GOOGLE_API_KEY", "GEMINI_API_KEY")
PROJECT_VAR = "GOOGLE_CLOUD_PROJECT"
LOCATION_VAR = "GOOGLE_CLOUD_LOCATION"
#: The location when a project comes without one: the SDK's own default, and where Google
#: serves the Gemini 3 image models (the global endpoint). The adapter uses it too.
DEFAULT_LOCATION = "global"

#: Vertex adds block reasons of its own to Gemini's (google-genai ``BlockedReason``,
#: ``FinishReason``): Model Armor and jailbreak screening, and a language it does not serve.
VERTEX_REASON_LABELS = {
    **REASON_LABELS,
    "MODEL_ARMOR": "safety block",
    "JAILBREAK": "safety block",
    "LANGUAGE": "no image",
}


@dataclass(frozen=True, slots=True)
class VertexAuth:
    """How to reach Vertex: an API key (express mode), or a project and location whose
    requests carry the application-default credentials (``api_key`` None)."""

    api_key: str | None
    project: str | None
    location: str


def read_auth(environ: Mapping[str, str] | None = None) -> VertexAuth:
    """Vertex auth from the environment, with the SDK's precedence.

    ``GOOGLE_CLOUD_PROJECT`` set: that project, in ``GOOGLE_CLOUD_LOCATION`` (default
    "global"), with application-default credentials. Otherwise the key of ``GOOGLE_API_KEY``
    (or ``GEMINI_API_KEY``). Raises InputError naming both ways when neither is set.
    """
    env = os.environ if environ is None else environ
    project = env.get(PROJECT_VAR, "").strip()
    location = env.get(LOCATION_VAR, "").strip() or DEFAULT_LOCATION
    if project:
        return VertexAuth(None, project, location)
    for name in KEY_VARS:
        if key := env.get(name, "").strip():
            return VertexAuth(key, None, location)
    raise InputError(
        f"no credentials for Vertex AI: set {PROJECT_VAR} (and {LOCATION_VAR}, default "
        f"{DEFAULT_LOCATION}) and run `gcloud auth application-default login`, or set "
        f"{KEY_VARS[0]} to an express-mode API key; or pass --offline to use the built-in "
        "emulator"
    )


def read_credential() -> str:
    """The express-mode key, or "" when a project with ADC is configured (see read_auth)."""
    return read_auth().api_key or ""


def vertex_by_default(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the SDK's own switch asks for Vertex: ``GOOGLE_GENAI_USE_ENTERPRISE`` if set,
    else ``GOOGLE_GENAI_USE_VERTEXAI``, "true" or "1" (any case), as the SDK reads them."""
    env = os.environ if environ is None else environ
    for name in ("GOOGLE_GENAI_USE_ENTERPRISE", "GOOGLE_GENAI_USE_VERTEXAI"):
        value = env.get(name)
        if value is not None:
            return value.strip().lower() in ("true", "1")
    return False


@asynccontextmanager
async def open_provider(
    credential: str, offline: bool, latency: float
) -> AsyncIterator[ImageProvider]:
    """The adapter with ``vertexai=True``: against an in-process emulator (express mode) when
    ``offline``; else with the key ``credential``, or, when it is "", with the project and
    location of :func:`read_auth` and the application-default credentials."""
    from ...emulator import Emulator
    from ..gemini.client import GeminiProvider

    if offline:
        with Emulator(latency=latency) as emulator:
            async with GeminiProvider(
                credential, vertexai=True, base_url=emulator.base_url
            ) as provider:
                yield provider
        return
    if credential:
        async with GeminiProvider(credential, vertexai=True) as provider:
            yield provider
        return
    auth = read_auth()
    async with GeminiProvider(
        None, vertexai=True, project=auth.project, location=auth.location
    ) as provider:
        yield provider


INFO = ProviderInfo(
    name="vertex",
    title="Vertex AI (Nano Banana Pro)",
    models=MODELS,
    qualities=QUALITIES,
    aspects=ASPECTS,
    max_references=MAX_REFERENCES,
    key_vars=KEY_VARS,
    # Not a published number: Vertex's pay-as-you-go quota for Gemini models is shared
    # capacity, not a fixed per-project rate to stay under (a 429 means it is busy, and the
    # pool pauses on it). As modest as Gemini's, with one more call in flight.
    pool=PoolDefaults(concurrency=4, min_interval=1.0, rpm=60),
    pixel_size=pixel_size,
    estimate=estimate,
    cost=cost,
    open=open_provider,
    prices_as_of=PRICES_AS_OF,
    reason_labels=VERTEX_REASON_LABELS,
    read_credential=read_credential,
)

"""The OpenAI provider: the one module that imports ``openai`` (and its httpx2).

One attempt is one ``images.edit`` (with reference images, sent as multipart ``image[]``, up to
16) or ``images.generate`` (without), through ``AsyncOpenAI(max_retries=0)``: the runner owns
retries. The deadline is ``anyio.fail_after(request.timeout)``; the SDK's own timeout sits
behind it as a backstop. Everything the SDK raises is mapped here into :mod:`imagegen.errors`:

    APIStatusError by HTTP status:   STATUS_MAP, after the error codes in CODE_MAP
                                     (moderation_blocked -> NoImage, insufficient_quota ->
                                     BatchStop, ...); ``retry-after(-ms)`` -> ``retry_after``
    other exceptions by class:       ERROR_MAP (most specific class wins)
    HTTP 200 without a usable image: NoImage (no image), ServerError (bytes that do not decode)

Sources: the openai 3.57.0 source (``_exceptions.py``, ``_base_client.py`` retry and
``retry-after`` handling, ``resources/images.py``), checked against the loopback emulator
(:mod:`imagegen.emulator.openai_routes`). Sizes, prices: :mod:`imagegen.providers.openai`.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import json
import re
import time
from collections.abc import Mapping
from typing import Any, Final

import anyio
import httpx2
import openai
import pydantic

from ... import secrets
from ...errors import (
    AttemptTimeout,
    BadRequest,
    BatchStop,
    InputError,
    NoImage,
    ProviderError,
    RateLimited,
    ServerError,
)
from ...images import sniff
from ..base import Checkpoint, Generation, ImageRequest, Reference, Usage
from . import MAX_REFERENCES, OUTPUT_FORMAT, RENDER_QUALITY, size_for

# The SDK's own timeout sits this many seconds behind our anyio deadline: a backstop.
SDK_TIMEOUT_MARGIN = 1.0

#: HTTP status -> (our error type, BatchStop reason). Not listed: other 4xx are BadRequest,
#: other 5xx ServerError. The error codes of CODE_MAP are decided first.
STATUS_MAP: Final[Mapping[int, tuple[type[ProviderError], str | None]]] = {
    400: (BadRequest, None),
    401: (BatchStop, "invalid_key"),
    403: (BatchStop, "permission_denied"),
    404: (BatchStop, "model_not_found"),
    408: (ServerError, None),
    409: (ServerError, None),  # the SDK itself retries 409 as a lock timeout
    429: (RateLimited, None),
    500: (ServerError, None),
    502: (ServerError, None),
    503: (ServerError, None),
    504: (ServerError, None),
}

#: OpenAI error ``code`` -> (our error type, reason), whatever the status.
CODE_MAP: Final[Mapping[str, tuple[type[ProviderError], str]]] = {
    # The image or prompt was blocked by moderation: deterministic, never retried.
    "moderation_blocked": (NoImage, "moderation_blocked"),
    "content_policy_violation": (NoImage, "content_policy_violation"),
    # Billing: waiting does not help, the batch stops.
    "insufficient_quota": (BatchStop, "insufficient_quota"),
    "billing_hard_limit_reached": (BatchStop, "billing_hard_limit_reached"),
    "invalid_api_key": (BatchStop, "invalid_key"),
    "model_not_found": (BatchStop, "model_not_found"),
}

#: Exceptions other than APIStatusError -> (our error type, what it means); looked up along
#: the exception's MRO, so the most specific entry wins.
ERROR_MAP: Final[Mapping[type[BaseException], tuple[type[ProviderError], str]]] = {
    TimeoutError: (AttemptTimeout, "no answer in time"),
    openai.APITimeoutError: (AttemptTimeout, "no answer in time"),
    openai.APIConnectionError: (ServerError, "the connection failed"),
    openai.APIResponseValidationError: (ServerError, "the response does not fit the API schema"),
    httpx2.TimeoutException: (AttemptTimeout, "no answer in time"),
    httpx2.TransportError: (ServerError, "the connection failed"),
    httpx2.DecodingError: (ServerError, "the response body does not decode"),
    httpx2.RequestError: (ServerError, "the HTTP exchange failed"),
    json.JSONDecodeError: (ServerError, "the response body is not JSON"),
    pydantic.ValidationError: (ServerError, "the response does not fit the API schema"),
}

# OpenAI keys ("sk-...", "sk-proj-...", and the masked "sk-abc***xyz" the service echoes back).
_KEY_PATTERNS = (re.compile(r"sk-[A-Za-z0-9_\-*]{6,}"), re.compile(r"(?i)(?<=bearer )\S+"))
_EXTENSIONS = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp"}
_MAX_MESSAGE = 400


class OpenAIProvider:
    """An :class:`~imagegen.providers.base.ImageProvider` backed by OpenAI's Images API.

    ``base_url`` overrides the API root (the emulator's ``http://127.0.0.1:PORT/v1``); when
    None the SDK follows ``OPENAI_BASE_URL``, then ``https://api.openai.com/v1``. Close with
    :meth:`aclose` or ``async with``. Raises InputError for an empty key.
    """

    def __init__(self, api_key: str, *, base_url: str | None = None) -> None:
        if not api_key.strip():
            raise InputError("no API key: set OPENAI_API_KEY")
        self._api_key = api_key.strip()
        secrets.register(self._api_key)
        # max_retries=0: one HTTP request per attempt; the runner's retry layer is the only one.
        self._client = openai.AsyncOpenAI(api_key=self._api_key, base_url=base_url, max_retries=0)

    async def generate(
        self, request: ImageRequest, checkpoint: Checkpoint | None = None
    ) -> Generation:
        """One attempt: ``images.edit`` with references, ``images.generate`` without.

        Bounded by ``request.timeout`` seconds. Raises InputError for a size, model or number
        of references the API cannot take (before any call), and otherwise only
        :class:`~imagegen.errors.ProviderError` subclasses; an exception the maps do not know
        (a bug) propagates unchanged. ``checkpoint`` is unused: nothing is queued.
        """
        size = size_for(request.model, request.quality, request.aspect)
        if len(request.references) > MAX_REFERENCES:
            raise InputError(
                f"{len(request.references)} reference images: OpenAI takes at most "
                f"{MAX_REFERENCES} per request (images.edit)"
            )
        options: dict[str, Any] = {
            "model": request.model,
            "prompt": request.prompt,
            "size": str(size),
            "quality": RENDER_QUALITY,
            "output_format": OUTPUT_FORMAT,
            "n": 1,
            "timeout": request.timeout + SDK_TIMEOUT_MARGIN,
        }
        try:
            with anyio.fail_after(request.timeout):
                if request.references:
                    files = [reference_file(i, r) for i, r in enumerate(request.references)]
                    response = await self._client.images.edit(image=files, **options)
                else:
                    response = await self._client.images.generate(**options)
        except TimeoutError as exc:
            raise AttemptTimeout(f"no answer within {request.timeout:g} s") from exc
        except Exception as exc:
            mapped = map_error(exc, model=request.model, api_key=self._api_key)
            if mapped is None:
                raise
            raise mapped from exc
        if not isinstance(response, openai.types.ImagesResponse):
            # A 200 whose body is not JSON (a proxy's HTML page): the SDK hands back the text.
            raise ServerError(
                f"the response body is not JSON (got {type(response).__name__}: "
                f"{_one_line(str(response))[:80]})"
            )
        image = pick_image(response)
        return await anyio.to_thread.run_sync(read_generation, response, image, request.model)

    async def aclose(self) -> None:
        await self._client.close()

    async def __aenter__(self) -> OpenAIProvider:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def reference_file(index: int, reference: Reference) -> tuple[str, bytes, str]:
    """A multipart file part for one reference: (file name, bytes, MIME type)."""
    extension = _EXTENSIONS.get(reference.mime_type, "")
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", reference.role) or "reference"
    return f"{index + 1:02d}-{name}{extension}", reference.data, reference.mime_type


def pick_image(response: openai.types.ImagesResponse) -> bytes:
    """The first image's bytes; NoImage when the answer has none, ServerError for bad base64."""
    data = response.data or []
    encoded = data[0].b64_json if data else None
    if not encoded:
        raise NoImage("the response has no image", reason="NO_IMAGE")
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ServerError(f"the image is not valid base64 ({exc})") from exc


def read_generation(
    response: openai.types.ImagesResponse, image: bytes, model: str | None = None
) -> Generation:
    """The checked image with its real MIME type, usage and request id; ServerError when the
    bytes are not a whole image."""
    try:
        info = sniff(image)
    except ValueError as exc:
        raise ServerError(f"image bytes do not decode ({exc})") from exc
    return Generation(
        image=image,
        mime_type=info.mime_type,
        finish_reason=None,
        usage=read_usage(response.usage),
        model_version=model,
        request_id=getattr(response, "_request_id", None),
    )


def read_usage(usage: Any) -> Usage:
    """``usage`` of an ImagesResponse: input tokens, output tokens (all image tokens)."""
    if usage is None:
        return Usage()
    details = getattr(usage, "output_tokens_details", None)
    image_tokens = getattr(details, "image_tokens", None) if details is not None else None
    output = int(usage.output_tokens or 0)
    return Usage(
        prompt_tokens=int(usage.input_tokens or 0),
        output_tokens=output,
        thought_tokens=0,
        image_tokens=int(image_tokens if image_tokens is not None else output),
    )


def map_error(exc: BaseException, *, model: str, api_key: str = "") -> ProviderError | None:
    """Our error for an exception out of the SDK call, or None if it is not a known kind.

    The message is one line, at most ~400 characters, with ``api_key`` and anything shaped like
    an OpenAI key removed.
    """
    if isinstance(exc, openai.APIStatusError):
        return _map_status_error(exc, model=model, api_key=api_key)
    for cls in type(exc).__mro__:
        if cls in ERROR_MAP:
            target, meaning = ERROR_MAP[cls]
            detail = _one_line(str(exc))
            cause = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
            return target(scrub(f"{meaning} ({cause})", api_key))
    return None


def _map_status_error(exc: openai.APIStatusError, *, model: str, api_key: str) -> ProviderError:
    status = exc.status_code
    body = exc.body if isinstance(exc.body, dict) else {}
    code = str(body.get("code") or "") or None
    message = body.get("message") if isinstance(body.get("message"), str) else None
    head = f"HTTP {status}" + (f" {code}" if code else "")
    text = _one_line(message or str(exc.message or ""))
    line = scrub(f"{head}: {text}" if text else head, api_key)
    retry_after = retry_after_seconds(exc.response.headers)

    if code is not None and code in CODE_MAP:
        target, reason = CODE_MAP[code]
        if target is NoImage:
            return NoImage(scrub(_moderation_line(line, body), api_key), reason=reason)
        if target is BatchStop:
            if reason == "model_not_found":
                line = scrub(f"{head}: model {model!r} is not available: {text}", api_key)
            return BatchStop(line, reason=reason)
        return target(line, retry_after=retry_after)
    target, stop_reason = STATUS_MAP.get(
        status, (BadRequest if 400 <= status < 500 else ServerError, None)
    )
    if target is BatchStop:
        if stop_reason == "model_not_found":
            line = scrub(f"{head}: model {model!r} is not available: {text}", api_key)
        return BatchStop(line, reason=stop_reason or "stopped")
    return target(line, retry_after=retry_after)


def _moderation_line(line: str, body: Mapping[str, Any]) -> str:
    details = body.get("moderation_details")
    if isinstance(details, dict):
        stage = details.get("moderation_stage")
        categories = details.get("categories")
        if stage or categories:
            said = ", ".join(str(c) for c in categories or [])
            return f"{line} (moderation stage {stage or '?'}: {said or 'no categories'})"
    return line


def retry_after_seconds(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """The server's wait in seconds: ``retry-after-ms``, else ``retry-after`` as seconds or an
    HTTP date (the SDK's own order, ``_base_client._parse_retry_after_header``); None if
    absent or unreadable."""
    for header, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(header)
        if value is None:
            continue
        try:
            seconds = float(value) / divisor
        except ValueError:
            continue
        return seconds if seconds >= 0 and seconds != float("inf") else None
    value = headers.get("retry-after")
    if value:
        parsed = email.utils.parsedate_tz(value)
        if parsed is not None:
            moment = email.utils.mktime_tz(parsed)
            return max(0.0, moment - (time.time() if now is None else now))
    return None


def _one_line(text: str) -> str:
    # Redacted before it is cut: a key echoed near the cut must not leave a part behind.
    return secrets.one_line(text, _MAX_MESSAGE)


def scrub(text: str, api_key: str) -> str:
    """``text`` without ``api_key`` or anything shaped like an OpenAI key (even masked)."""
    if len(api_key) >= 8:
        text = text.replace(api_key, "***")
    for pattern in _KEY_PATTERNS:
        text = pattern.sub("***", text)
    return text

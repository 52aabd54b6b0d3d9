"""The fal provider: the one module that imports ``fal_client`` (and its httpx).

One attempt: submit the request to fal's queue (one POST), hand its request id to
``checkpoint`` at once (the runner journals it), poll the status with backoff until COMPLETED,
fetch the result, download the image (a data URL, or an http(s) URL fetched through the same
HTTP client without our key), check it whole. With ``request.resume`` set the submit is skipped
and that request id is polled instead: a resumed job is never paid for twice.

**fal-client retries by itself**: every queue call (submit, status, result, cancel) goes through
``_async_maybe_retry_request``, which re-sends up to ``MAX_ATTEMPTS`` (10) times on 408, 409,
429, ingress 502-504, any ``httpx.TransportError`` and timeouts, with no public switch. For the
submit that means a POST whose answer was lost (a timeout, a dropped connection) can be posted
again by the SDK itself, and paid twice. We set the SDK's own setting ``fal_client.client.
MAX_ATTEMPTS`` to 1 when this module is imported (the loop reads it at each call, so every call
site is covered; a missing attribute fails the import loudly). That is process-wide, and sound
because this module is the only one that imports fal_client. The SDK's other replay, the
backup-domain transport (queue.fal.run -> queue.falrun.com), re-sends only after
``ConnectError``/``ConnectTimeout``, when no byte of the request has left: it cannot post twice.
The deadline is ``anyio.fail_after(request.timeout)``, a cancellation the SDK never retries.

Errors are mapped here into :mod:`imagegen.errors` (:func:`map_error`): ``FalClientHTTPError``
by status and fal's error type (422 ``content_policy_violation`` -> NoImage), transport errors
by class (ERROR_MAP), malformed answers -> ServerError. The key never appears in a message.

Pointing it elsewhere: fal-client reads ``FAL_QUEUE_RUN_HOST`` (and ``FAL_RUN_HOST``) **once, at
import** (``auth.py``; ``client.QUEUE_URL_FORMAT = f"https://{FAL_QUEUE_RUN_HOST}/"``) and always
speaks https; httpx reads ``SSL_CERT_FILE`` when the SDK creates its client. So set both before
the process imports fal_client, or, in-process, use :func:`queue_pointed_at`.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import anyio
import fal_client
import fal_client.client as fal_sdk
import httpx

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
from ..base import Checkpoint, Generation, ImageRequest, Usage
from . import MAX_REFERENCES, PRO, application, validate


def _turn_off_sdk_retries() -> None:
    """Make fal-client try each HTTP call once (see the module docstring)."""
    if not isinstance(getattr(fal_sdk, "MAX_ATTEMPTS", None), int):
        raise ImportError(
            "fal_client.client.MAX_ATTEMPTS is gone: this fal-client retries in a way imagegen "
            "cannot turn off; pin fal-client 1.0.x"
        )
    fal_sdk.MAX_ATTEMPTS = 1


_turn_off_sdk_retries()

#: First wait between status polls, in seconds; each later wait is 1.5x longer, up to POLL_MAX.
POLL_FIRST = 0.25
POLL_MAX = 4.0
SDK_TIMEOUT = 120.0  # fal-client's own default_timeout for a submit, seconds
DOWNLOAD_TIMEOUT = httpx.Timeout(120.0, connect=30.0)  # a backstop behind our deadline

#: HTTP status of a FalClientHTTPError -> (our error type, BatchStop reason). Not listed: other
#: 4xx are BadRequest, other 5xx ServerError. fal's error types are decided first.
STATUS_MAP: Final[Mapping[int, tuple[type[ProviderError], str | None]]] = {
    400: (BadRequest, None),
    401: (BatchStop, "invalid_key"),
    403: (BatchStop, "permission_denied"),  # also "User is locked: exhausted balance"
    404: (BatchStop, "model_not_found"),  # on submit: no such app
    408: (ServerError, None),
    409: (ServerError, None),
    422: (BadRequest, None),
    429: (RateLimited, None),
    500: (ServerError, None),
    502: (ServerError, None),
    503: (ServerError, None),
    504: (ServerError, None),
}

#: fal error types (``error_type``, ``x-fal-error-type`` or a 422 detail's ``type``) that decide
#: on their own, whatever the status.
ERROR_TYPES: Final[Mapping[str, tuple[type[ProviderError], str]]] = {
    "content_policy_violation": (NoImage, "content_policy_violation"),
}

#: Exceptions other than FalClientHTTPError -> (our error type, what it means); looked up along
#: the exception's MRO, so the most specific entry wins.
ERROR_MAP: Final[Mapping[type[BaseException], tuple[type[ProviderError], str]]] = {
    TimeoutError: (AttemptTimeout, "no answer in time"),
    httpx.TimeoutException: (AttemptTimeout, "no answer in time"),
    httpx.TransportError: (ServerError, "the connection failed"),
    httpx.DecodingError: (ServerError, "the response body does not decode"),
    httpx.RequestError: (ServerError, "the HTTP exchange failed"),
    httpx.HTTPStatusError: (ServerError, "the image download failed"),
    json.JSONDecodeError: (ServerError, "the response body is not JSON"),
}

# fal keys are "KEY_ID:KEY_SECRET" (a UUID and 32 hex digits); also any "Key ..." header echo.
_KEY_PATTERNS = (
    re.compile(r"[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}:[0-9a-fA-F]{16,}"),
    re.compile(r"(?<=Key )\S+"),
)
_MAX_MESSAGE = 400


class FalProvider:
    """An :class:`~imagegen.providers.base.ImageProvider` backed by fal's queue.

    ``poll_first`` / ``poll_max`` are the first and longest waits between status polls, in
    seconds; ``sleep`` is awaited for them (injectable for tests). ``sdk_timeout`` is the
    SDK's own HTTP timeout for a submit, in seconds (its ``default_timeout``): a backstop
    behind the per-attempt deadline, which with the SDK's retries off ends the attempt instead
    of posting again. Close with :meth:`aclose` or ``async with``. Raises InputError for an
    empty key.
    """

    def __init__(
        self,
        api_key: str,
        *,
        poll_first: float = POLL_FIRST,
        poll_max: float = POLL_MAX,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        sdk_timeout: float = SDK_TIMEOUT,
    ) -> None:
        if not api_key.strip():
            raise InputError("no API key: set FAL_KEY")
        self._api_key = api_key.strip()
        secrets.register(self._api_key)
        self._client = fal_client.AsyncClient(key=self._api_key, default_timeout=sdk_timeout)
        self._poll_first, self._poll_max, self._sleep = poll_first, poll_max, sleep
        self._http: httpx.AsyncClient | None = None  # the SDK's client, once it has made one

    async def generate(
        self, request: ImageRequest, checkpoint: Checkpoint | None = None
    ) -> Generation:
        """One attempt: submit (or resume ``request.resume``), poll, fetch, download, check.

        Bounded by ``request.timeout`` seconds. Raises InputError for a model, tier, ratio or
        number of references fal cannot take (before any call), otherwise only
        :class:`~imagegen.errors.ProviderError` subclasses; an exception the maps do not know
        (a bug, or one raised by ``checkpoint``) propagates unchanged.
        """
        validate(request.model, request.quality, request.aspect)
        if len(request.references) > MAX_REFERENCES:
            raise InputError(
                f"{len(request.references)} reference images: fal's {request.model} takes at "
                f"most {MAX_REFERENCES}"
            )
        app = application(request.model, len(request.references))
        if self._http is None:
            # fal-client makes its HTTP client lazily and offers no close; a handle (built
            # locally, nothing is sent) is the public way to reach the client, to close it.
            self._http = (await self._client.get_handle(app, "-")).client
        stage = "submit"
        try:
            with anyio.fail_after(request.timeout):
                if request.resume:
                    stage = "poll"
                    handle = await self._client.get_handle(app, request.resume)
                else:
                    with _malformed("submit"):
                        handle = await self._client.submit(app, build_arguments(request))
                    stage = "poll"
                    if checkpoint is not None:
                        await checkpoint(handle.request_id)
                result = await self._wait_for_result(handle)
                stage = "download"
                image = await self._download(handle.client, result)
        except TimeoutError as exc:
            raise AttemptTimeout(f"no answer within {request.timeout:g} s") from exc
        except ProviderError as exc:  # decided above (no image, malformed answer, ...)
            exc.args = (scrub(str(exc), self._api_key),)
            raise
        except Exception as exc:
            mapped = map_error(exc, stage=stage, model=request.model, api_key=self._api_key)
            if mapped is None:
                raise
            raise mapped from exc
        return await anyio.to_thread.run_sync(_checked, image, request.model, handle.request_id)

    async def _wait_for_result(self, handle: fal_client.AsyncRequestHandle) -> dict[str, Any]:
        delay = self._poll_first
        while True:
            with _malformed("status"):
                status = await handle.status(with_logs=False)
            if isinstance(status, fal_client.Completed):
                break
            await self._sleep(delay)
            delay = min(delay * 1.5, self._poll_max)
        # get() reads the status once more (COMPLETED at once), then the result; a failed
        # request answers that GET with its error (422 content_policy_violation, ...).
        with _malformed("result"):
            result = await handle.get()
        if not isinstance(result, dict):
            raise ServerError(f"fal's result is not a JSON object ({type(result).__name__})")
        if status.error and not result.get("images"):
            raise _completed_with_error(status)
        return result

    async def _download(self, client: httpx.AsyncClient, result: Mapping[str, Any]) -> bytes:
        images = result.get("images")
        first = images[0] if isinstance(images, list) and images else None
        url = first.get("url") if isinstance(first, dict) else None
        if not isinstance(url, str) or not url:
            said = result.get("description")
            text = f": {_one_line(str(said))}" if said else ""
            raise NoImage(f"fal's result has no image{text}", reason="NO_IMAGE")
        if url.startswith("data:"):
            return decode_data_url(url)
        if not url.startswith(("https://", "http://")):
            raise ServerError(f"fal's image URL has an unknown scheme ({url[:40]!r})")
        request = client.build_request("GET", url, timeout=DOWNLOAD_TIMEOUT)
        # Our key is for fal's queue; an image URL may point at a CDN or any other host.
        request.headers.pop("Authorization", None)
        response = await client.send(request)
        response.raise_for_status()
        return response.content

    async def aclose(self) -> None:
        """Close the SDK's HTTP client, if it made one."""
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def __aenter__(self) -> FalProvider:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def build_arguments(request: ImageRequest) -> dict[str, Any]:
    """The app's input: prompt, references as data URLs, ratio, Pro's resolution, one PNG."""
    arguments: dict[str, Any] = {
        "prompt": request.prompt,
        "num_images": 1,
        "aspect_ratio": request.aspect,
        "output_format": "png",
    }
    if request.references:
        arguments["image_urls"] = [
            fal_client.encode(r.data, r.mime_type) for r in request.references
        ]
    if request.model == PRO:
        arguments["resolution"] = request.quality
    return arguments


def decode_data_url(url: str) -> bytes:
    """The bytes of a base64 ``data:`` URL; ServerError when it is not one."""
    head, comma, payload = url.partition(",")
    if not comma or not head.endswith(";base64"):
        raise ServerError("fal's image data URL is not base64")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ServerError(f"fal's image data URL does not decode ({exc})") from exc


def _checked(image: bytes, model: str, request_id: str) -> Generation:
    try:
        info = sniff(image)
    except ValueError as exc:
        raise ServerError(f"image bytes do not decode ({exc})") from exc
    return Generation(
        image=image,
        mime_type=info.mime_type,
        finish_reason=None,
        usage=Usage(),  # fal reports no token usage
        model_version=model,
        request_id=request_id,
    )


def _completed_with_error(status: fal_client.Completed) -> ProviderError:
    error_type = status.error_type or ""
    message = f"fal request failed ({error_type or 'error'}): {_one_line(str(status.error))}"
    target, reason = ERROR_TYPES.get(error_type, (ServerError, ""))
    if target is NoImage:
        return NoImage(message, reason=reason)
    return target(message)


@contextmanager
def _malformed(stage: str) -> Iterator[None]:
    """Turn the SDK's parse failures on a malformed answer into ServerError."""
    try:
        yield
    except json.JSONDecodeError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise ServerError(
            f"fal's {stage} answer is malformed ({type(exc).__name__}: {_one_line(str(exc))})"
        ) from exc


def map_error(
    exc: BaseException, *, stage: str = "submit", model: str = "", api_key: str = ""
) -> ProviderError | None:
    """Our error for an exception out of a fal call, or None if it is not a known kind.

    ``stage`` is "submit", "poll" or "download": a 404 is an unknown app on submit, an unknown
    request id when polling. One line, at most ~400 characters, without the key.
    """
    if isinstance(exc, fal_client.FalClientHTTPError):
        return _map_http_error(exc, stage=stage, model=model, api_key=api_key)
    for cls in type(exc).__mro__:
        if cls in ERROR_MAP:
            target, meaning = ERROR_MAP[cls]
            detail = _one_line(str(exc))
            cause = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
            return target(scrub(f"{meaning} ({cause})", api_key))
    return None


def _map_http_error(
    exc: fal_client.FalClientHTTPError, *, stage: str, model: str, api_key: str
) -> ProviderError:
    status = exc.status_code
    types = _error_types(exc)
    head = f"HTTP {status}" + (f" {types[0]}" if types else "")
    text = _detail_text(exc.message)
    line = scrub(f"{head}: {text}" if text else head, api_key)
    retry_after = _retry_after(exc.response_headers)
    for error_type in types:
        if error_type in ERROR_TYPES:
            target, reason = ERROR_TYPES[error_type]
            if target is NoImage:
                return NoImage(line, reason=reason)
            return target(line, retry_after=retry_after)
    if status == 404 and stage != "submit":
        return BadRequest(
            scrub(f"{head}: fal does not know this request id (expired?): {text}", api_key)
        )
    target, stop_reason = STATUS_MAP.get(
        status, (BadRequest if 400 <= status < 500 else ServerError, None)
    )
    if target is BatchStop:
        if stop_reason == "model_not_found":
            line = scrub(f"{head}: fal app for {model!r} is not available: {text}", api_key)
        return BatchStop(line, reason=stop_reason or "stopped")
    return target(line, retry_after=retry_after)


def _error_types(exc: fal_client.FalClientHTTPError) -> list[str]:
    """fal's error types for this answer: ``error_type``, then each 422 detail's ``type``."""
    found = [exc.error_type] if exc.error_type else []
    if isinstance(exc.message, list):
        found += [str(d["type"]) for d in exc.message if isinstance(d, dict) and d.get("type")]
    return found


def _detail_text(detail: object) -> str:
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                where = ".".join(str(x) for x in item.get("loc") or [])
                parts.append(f"{where}: {item.get('msg', '')}" if where else str(item.get("msg")))
            else:
                parts.append(str(item))
        return _one_line("; ".join(parts))
    return _one_line(str(detail))


def _retry_after(headers: Mapping[str, str]) -> float | None:
    for name, value in headers.items():
        if name.lower() == "retry-after":
            try:
                seconds = float(value)
            except ValueError:
                return None
            return seconds if seconds >= 0 else None
    return None


def _one_line(text: str) -> str:
    # Redacted before it is cut: a key echoed near the cut must not leave a part behind.
    return secrets.one_line(text, _MAX_MESSAGE)


def scrub(text: str, api_key: str) -> str:
    """``text`` without ``api_key``, either half of it, or anything shaped like a fal key."""
    secrets = [api_key, *api_key.split(":")] if api_key else []
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= 8:
            text = text.replace(secret, "***")
    for pattern in _KEY_PATTERNS:
        text = pattern.sub("***", text)
    return text


@contextmanager
def queue_pointed_at(netloc: str, ca_file: Path | str) -> Iterator[None]:
    """Point fal-client at the queue host ``netloc`` (HTTPS), trusting ``ca_file``, meanwhile.

    What ``FAL_QUEUE_RUN_HOST=netloc`` and ``SSL_CERT_FILE=ca_file`` do when set before the
    process imports fal_client (it reads the host once, at import). Process-wide: use one at a
    time, and create the provider inside (httpx reads SSL_CERT_FILE when the SDK makes its
    client, on the first call).
    """
    saved_url = fal_sdk.QUEUE_URL_FORMAT
    saved_ca = os.environ.get("SSL_CERT_FILE")
    fal_sdk.QUEUE_URL_FORMAT = f"https://{netloc}/"
    os.environ["SSL_CERT_FILE"] = str(ca_file)
    try:
        yield
    finally:
        fal_sdk.QUEUE_URL_FORMAT = saved_url
        if saved_ca is None:
            os.environ.pop("SSL_CERT_FILE", None)
        else:
            os.environ["SSL_CERT_FILE"] = saved_ca

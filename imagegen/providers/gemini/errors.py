"""How the Gemini adapter names what went wrong: every error the google-genai SDK, google.auth
or the transport can raise, and each per-request error of a batch's results, as one of
:mod:`imagegen.errors`, in one line with the key removed (:mod:`imagegen.secrets`).

    google.genai APIError  by HTTP code:  STATUS_MAP, after the special cases of
                                          :func:`map_status` (a per-day quota, an invalid
                                          key, 401, 403 billing / API disabled, a file the
                                          service lost)
    google.auth errors (Vertex with ADC): :func:`_map_auth_error`
    transport / parse errors by class:    ERROR_MAP (most specific class wins)
    a batch result's google.rpc.Code:     RPC_TO_HTTP, then the same table as online

Vertex's error bodies differ in places: a 429 usually carries no RetryInfo, a per-day quota is
named in the message (``..._per_day_...``), a 403 says BILLING_DISABLED or SERVICE_DISABLED in
its ErrorInfo, a bad or missing OAuth token is a 401.

Sources: ``shared/notes/gemini-api.md`` (error table), ``shared/notes/providers.md`` ("Vertex
AI online", "Gemini Batch API and Files API"), google.rpc's code.proto and error_details.proto,
checked against the loopback emulator.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Final

import google.auth.exceptions
import httpx2
import pydantic
from google.genai import errors as genai_errors

from ... import secrets
from ...errors import (
    AttemptTimeout,
    BadRequest,
    BatchStop,
    FileGone,
    ProviderError,
    RateLimited,
    ServerError,
)

#: HTTP status code -> (our error type, BatchStop reason). Codes not listed: other 4xx are
#: BadRequest, other 5xx (and anything else that is not 200) ServerError. 429 with a per-day
#: quota, 400 with ErrorInfo ``API_KEY_INVALID`` and 403 with an ErrorInfo reason in
#: FORBIDDEN_REASONS are decided before this.
STATUS_MAP: Final[Mapping[int, tuple[type[ProviderError], str | None]]] = {
    400: (BadRequest, None),
    401: (BatchStop, "invalid_key"),  # no or a bad credential: every other call would fail too
    403: (BatchStop, "permission_denied"),
    404: (BatchStop, "model_not_found"),
    408: (ServerError, None),
    429: (RateLimited, None),
    500: (ServerError, None),
    502: (ServerError, None),
    503: (ServerError, None),
    504: (ServerError, None),
}

#: ErrorInfo reasons of a 403 -> the BatchStop reason (Google's ``google.rpc.ErrorInfo`` reasons;
#: Vertex answers a project without billing or without the Vertex AI API this way).
FORBIDDEN_REASONS: Final[Mapping[str, str]] = {
    "BILLING_DISABLED": "billing_disabled",
    "SERVICE_DISABLED": "api_disabled",
    "CONSUMER_INVALID": "permission_denied",
    "IAM_PERMISSION_DENIED": "permission_denied",
}
#: What to do about each BatchStop reason, appended to the message (one readable line).
STOP_HINTS: Final[Mapping[str, str]] = {
    "billing_disabled": "enable billing for the project in the Google Cloud console",
    "api_disabled": "enable the Vertex AI API (aiplatform.googleapis.com) for the project",
    "no_credentials": "run `gcloud auth application-default login` or set "
    "GOOGLE_APPLICATION_CREDENTIALS, or use an API key (GOOGLE_API_KEY)",
    "invalid_credentials": "renew them with `gcloud auth application-default login`",
}

#: Exceptions other than APIError that the SDK call can raise -> (our error type, what it means).
#: Looked up along the exception's MRO, so the most specific entry wins (as httpx maps httpcore).
ERROR_MAP: Final[Mapping[type[BaseException], tuple[type[ProviderError], str]]] = {
    # anyio.fail_after's deadline (and aiohttp's timeout, should the SDK ever use aiohttp).
    TimeoutError: (AttemptTimeout, "no answer in time"),
    # ConnectTimeout, ReadTimeout, WriteTimeout, PoolTimeout: the SDK's backstop timeout.
    httpx2.TimeoutException: (AttemptTimeout, "no answer in time"),
    # ConnectError, ReadError, WriteError, RemoteProtocolError (a dropped connection), ...
    httpx2.TransportError: (ServerError, "the connection failed"),
    # A compressed body that does not decompress: a corrupt transfer.
    httpx2.DecodingError: (ServerError, "the response body does not decode"),
    # TooManyRedirects and anything else httpx2 adds later: a failed exchange, not our bug.
    httpx2.RequestError: (ServerError, "the HTTP exchange failed"),
    # HTTP 200 whose body is not JSON (the SDK calls json.loads on it).
    json.JSONDecodeError: (ServerError, "the response body is not JSON"),
    genai_errors.UnknownApiResponseError: (ServerError, "the response body is not JSON"),
    # JSON that does not fit GenerateContentResponse.
    pydantic.ValidationError: (ServerError, "the response does not fit the API schema"),
}

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?)s\s*$")
# A per-day quota: the Gemini API names it in QuotaFailure ("...PerDay..."), Vertex in the
# metric or the message ("..._per_day_...").
_PER_DAY = re.compile(r"per_?day", re.IGNORECASE)
#: google.rpc.Code (a per-request error in a batch's results) -> the HTTP status the same
#: error has online, so that both go through one table (google.rpc code.proto's mapping).
RPC_TO_HTTP: Final[Mapping[int, int]] = {
    1: 499,  # CANCELLED
    2: 500,  # UNKNOWN
    3: 400,  # INVALID_ARGUMENT
    4: 504,  # DEADLINE_EXCEEDED
    5: 404,  # NOT_FOUND
    6: 409,  # ALREADY_EXISTS
    7: 403,  # PERMISSION_DENIED
    8: 429,  # RESOURCE_EXHAUSTED
    9: 400,  # FAILED_PRECONDITION
    10: 409,  # ABORTED
    11: 400,  # OUT_OF_RANGE
    12: 501,  # UNIMPLEMENTED
    13: 500,  # INTERNAL
    14: 503,  # UNAVAILABLE
    15: 500,  # DATA_LOSS
    16: 401,  # UNAUTHENTICATED
}
#: The service's words for a file it does not have (any more): field reports quoted in
#: :mod:`imagegen.emulator.filestore`.
_FILE_GONE = re.compile(r"access the File (\S+?) or it may not exist")


def map_error(exc: BaseException, *, model: str, api_key: str = "") -> ProviderError | None:
    """Our error for an exception out of the SDK call, or None if it is not a known kind.

    The message is one line, at most ~400 characters, with ``api_key`` (registered here as a
    secret, so that it is removed even if nobody registered it before) and every other secret
    and key-shaped string removed (:func:`imagegen.secrets.redact`).
    """
    # Before any text is cut: a key that is not yet known could leave a part behind the cut.
    secrets.register(api_key)
    if isinstance(exc, genai_errors.APIError):
        return _map_api_error(exc, model=model, api_key=api_key)
    if isinstance(exc, google.auth.exceptions.GoogleAuthError):
        return _map_auth_error(exc)
    for cls in type(exc).__mro__:
        if cls in ERROR_MAP:
            target, meaning = ERROR_MAP[cls]
            return target(f"{meaning} ({_cause(exc)})")
    return None


def _cause(exc: BaseException) -> str:
    """The exception's class and its message, on one line and redacted."""
    detail = secrets.one_line(str(exc))
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


def _stop(line: str, reason: str) -> BatchStop:
    hint = STOP_HINTS.get(reason)
    return BatchStop(f"{line}; {hint}" if hint else line, reason=reason)


def _map_api_error(exc: genai_errors.APIError, *, model: str, api_key: str) -> ProviderError:
    return map_status(
        exc.code,
        exc.status or "",
        secrets.one_line(str(exc.message or "")),
        error_details(exc.details),
        model=model,
        api_key=api_key,
    )


def map_status(
    code: int,
    status: str,
    message: str,
    details: list[dict[str, Any]],
    *,
    model: str,
    api_key: str,
    calls_model: bool = True,
) -> ProviderError:
    """Our error for an HTTP error (or a batch line's error, its rpc code as HTTP): the
    special cases first, then :data:`STATUS_MAP`. ``calls_model`` False (a Files or Batch API
    call about a file or a batch, not a model) makes a 404 a BadRequest, not a stop.

    ``api_key`` is registered as a secret; it and every other secret are removed from the line.
    """
    secrets.register(api_key)
    head = f"HTTP {code} {status}".rstrip()
    line = secrets.redact(f"{head}: {message}" if message else head)
    retry_after = _retry_after(details)
    gone = _FILE_GONE.search(message)
    if code == 403 and gone:
        name = gone.group(1)
        return FileGone(line, name=name if name.startswith("files/") else f"files/{name}")
    if code == 404 and not calls_model:
        return BadRequest(line)
    reasons = _reasons(details)

    if code == 429:
        # Vertex names a per-day quota in its message; the Gemini API in QuotaFailure.
        per_day = [q for q in _quota_ids(details) if _PER_DAY.search(q)]
        if per_day or _PER_DAY.search(message):
            which = f" (per-day quota {per_day[0]})" if per_day else ""
            return BatchStop(f"{line}{which}", reason="quota_per_day")
    if code == 400 and "API_KEY_INVALID" in reasons:
        return BatchStop(line, reason="invalid_key")
    if code == 403:
        forbidden = [FORBIDDEN_REASONS[r] for r in sorted(reasons) if r in FORBIDDEN_REASONS]
        return _stop(line, forbidden[0] if forbidden else "permission_denied")
    if code == 404:
        line = secrets.redact(f"{head}: model {model!r} is not available: {message}")
        return BatchStop(line, reason="model_not_found")

    target, reason = STATUS_MAP.get(code, (BadRequest if 400 <= code < 500 else ServerError, None))
    if target is BatchStop:
        return _stop(line, reason or "stopped")
    return target(line, retry_after=retry_after)


def _map_auth_error(exc: google.auth.exceptions.GoogleAuthError) -> ProviderError:
    """Vertex with application-default credentials: loading or refreshing them failed.

    No credentials to be found, or a refresh the token server refused, stop the batch (every
    call would fail alike); a refresh that could not reach the token server, or that the
    server says is worth retrying, is a retryable ServerError.
    """
    cause = _cause(exc)  # redacted: the only text here that comes from outside
    if isinstance(exc, google.auth.exceptions.DefaultCredentialsError):
        return _stop(f"no application-default credentials ({cause})", "no_credentials")
    if isinstance(exc, google.auth.exceptions.TimeoutError):
        return AttemptTimeout(f"the token server did not answer in time ({cause})")
    if isinstance(exc, google.auth.exceptions.TransportError) or getattr(exc, "retryable", False):
        return ServerError(f"the credentials could not be refreshed ({cause})")
    return _stop(f"the credentials were refused ({cause})", "invalid_credentials")


def error_details(body: Any) -> list[dict[str, Any]]:
    """The ``error.details`` list of a Google error body (APIError.details is the whole body)."""
    if isinstance(body, dict):
        inner = body.get("error", body)
        details = inner.get("details") if isinstance(inner, dict) else None
        if isinstance(details, list):
            return [d for d in details if isinstance(d, dict)]
    return []


def _retry_after(details: list[dict[str, Any]]) -> float | None:
    """Seconds from google.rpc.RetryInfo.retryDelay ("58s", "1.5s"); None when absent."""
    for detail in details:
        if str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            match = _DURATION.match(str(detail.get("retryDelay", "")))
            if match:
                return float(match.group(1))
    return None


def _quota_ids(details: list[dict[str, Any]]) -> list[str]:
    """Each QuotaFailure violation's ``quotaId`` (the Gemini API), else its ``quotaMetric``."""
    return [
        str(violation.get("quotaId") or violation.get("quotaMetric") or "")
        for detail in details
        if str(detail.get("@type", "")).endswith("google.rpc.QuotaFailure")
        for violation in detail.get("violations") or []
        if isinstance(violation, dict)
    ]


def _reasons(details: list[dict[str, Any]]) -> set[str]:
    return {
        str(d.get("reason"))
        for d in details
        if str(d.get("@type", "")).endswith("google.rpc.ErrorInfo")
    }

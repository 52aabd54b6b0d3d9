"""The Gemini adapter, for the Gemini API and Vertex AI: the calls through the google-genai SDK.

It builds a ``generateContent`` request from an
:class:`~imagegen.providers.base.ImageRequest`, sends it through the SDK with the SDK's own
retries off (the runner owns retries), reads the answer (an HTTP 200 without a usable image is
NoImage, bytes that do not decode a ServerError) and maps everything the SDK can raise into
:mod:`imagegen.errors` at this boundary, through :mod:`.errors` (the tables and rules).

``GeminiProvider(vertexai=True, ...)`` speaks to Vertex AI through the same SDK client: the SDK
builds Vertex's routes (``/v1beta1/publishers/google/models/{m}:generateContent`` with an API
key, ``/v1beta1/projects/{p}/locations/{l}/publishers/google/models/{m}:generateContent`` with
OAuth credentials) and parses Vertex's answers, which keep ``finishMessage`` (the Gemini API's
converter drops it) and name Vertex-only block reasons (MODEL_ARMOR, JAILBREAK); its error
bodies differ in places, which :mod:`.errors` handles.

For the Gemini API only, it also carries the Files API and the Batch API (issue 15): uploads
streamed from a path, a batch created from an uploaded JSONL file, polled, listed by display
name, cancelled, and its result file streamed to disk; a result line is read by the same code as
an online answer, and a per-request error (a ``google.rpc.Code`` number) is mapped through the
same table as an HTTP status (:data:`.errors.RPC_TO_HTTP`). A reference the service lost is
:class:`~imagegen.errors.FileGone`, not a batch stop: uploading it again fixes it. Vertex has no
Files API (its batches read Cloud Storage): its provider info offers neither uploads nor
``--batch`` (:attr:`~imagegen.providers.ProviderInfo.file_store`,
:attr:`~imagegen.providers.ProviderInfo.has_batch`), so nothing calls these on a Vertex client.

:class:`GeminiTextWriter` sends text-only requests to a text model through the same SDK, with
the same error maps (HTTP 200 without usable words: NoText): a job source that has a text model
write its prompts while planning uses it.

Sources: ``shared/notes/gemini-api.md`` (error table, "Outcomes that are HTTP 200 but carry no
image", SDK quirks), ``shared/notes/providers.md`` ("Vertex AI online", "Gemini Batch API and
Files API") and the google-genai 3.4.0 source (``_api_client.py``: base URLs, auth,
``models.py``: response converters), checked against the loopback emulator.
"""

from __future__ import annotations

import enum
import functools
import math
import ssl
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import anyio
import google.auth.credentials
import httpx2
import orjson
import pydantic
from google import genai
from google.genai import errors as genai_errors
from google.genai import models as genai_models
from google.genai import types

from ... import secrets
from ...errors import (
    AttemptTimeout,
    BadRequest,
    FileGone,
    InputError,
    NoImage,
    NoText,
    ProviderError,
    ServerError,
)
from ...images import probe, sniff
from ..base import Checkpoint, Generation, ImageRequest, TextGeneration, Usage
from ..batch import BatchStatus, RemoteFile, ResultLine
from ..vertex import DEFAULT_LOCATION
from . import batch_lines, errors, pixel_size, takes_image_size

API_VERSION = "v1beta"  # SDK 3.x defaults to v1; Google's image docs use v1beta (notes, "SDK")
# The SDK's own default for Vertex, pinned so GOOGLE_GENAI_API_VERSION cannot move it: Vertex
# serves GA features on v1 and Preview ones on v1beta1, and 4K output of Gemini 3 Pro Image is
# still a Preview feature there (Agent Platform release notes, 2026-05-28).
VERTEX_API_VERSION = "v1beta1"

# The SDK's own httpx2 timeout sits this many seconds behind our anyio deadline: a backstop
# that only fires if the scope somehow does not (and it sets X-Server-Timeout for the server).
SDK_TIMEOUT_MARGIN = 1.0

# httpx2 keeps 20 idle connections by default: with more calls in flight than that, every call
# past the 20th would open a new TCP (and, against Google, TLS) connection and close it after.
KEEPALIVE = httpx2.Limits(max_connections=None, max_keepalive_connections=64)

# PNGs up to this many bytes are checked on the event loop (~0.7 ms of CRC-32 per MB).
INLINE_CHECK_BYTES = 256_000
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

#: JOB_STATE_* -> our state (:attr:`~imagegen.providers.batch.BatchStatus.state`). A partial
#: success has a result file like a success; the transitional states count as still running.
_JOB_STATES: Final[Mapping[str, str]] = {
    "JOB_STATE_UNSPECIFIED": "pending",
    "JOB_STATE_QUEUED": "pending",
    "JOB_STATE_PENDING": "pending",
    "JOB_STATE_RUNNING": "running",
    "JOB_STATE_UPDATING": "running",
    "JOB_STATE_PAUSED": "running",
    "JOB_STATE_CANCELLING": "running",
    "JOB_STATE_SUCCEEDED": "succeeded",
    "JOB_STATE_PARTIALLY_SUCCEEDED": "succeeded",
    "JOB_STATE_FAILED": "failed",
    "JOB_STATE_CANCELLED": "cancelled",
    "JOB_STATE_EXPIRED": "expired",
}
# Seconds allowed for one Files/Batch API call that moves no file (create, get, list, cancel).
CALL_TIMEOUT = 120.0
# An upload or download gets this long plus a second per MB (a 2 GB request file: ~35 min).
TRANSFER_TIMEOUT = 300.0
TRANSFER_BYTES_PER_SECOND = 1_000_000
# A Files API URI is "{base}/v1beta/files/{id}": ~70 characters on Google's host. Only used to
# decide whether a tiny reference is cheaper inline.
TYPICAL_URI_LENGTH = 70


class GeminiProvider:
    """An :class:`~imagegen.providers.base.ImageProvider` backed by the Gemini API, or by Vertex
    AI with ``vertexai=True``.

    The Gemini API takes ``api_key``. Vertex takes either ``api_key`` (express mode) or a
    ``project`` and ``location`` (default "global") with Google OAuth ``credentials``: when
    None, the SDK loads the application-default credentials (``google.auth.default``) on the
    first call. Everything is passed to the SDK explicitly, never left to its environment
    variables: with a ``base_url``, a project it read from ``GOOGLE_CLOUD_PROJECT`` alone would
    send requests to the bare base URL without any auth (google-genai 3.4.0, checked).

    One long-lived SDK client per provider; close it with :meth:`aclose` (or ``async with``).
    ``base_url`` overrides the API host, e.g. the emulator's; when None the SDK follows
    ``GOOGLE_GEMINI_BASE_URL`` (Gemini) or ``GOOGLE_VERTEX_BASE_URL`` (Vertex), then Google's
    host. Use one provider from one event loop. Raises InputError for a missing key (or, on
    Vertex, a missing key and project).
    """

    def __init__(
        self,
        api_key: str | None,
        *,
        base_url: str | None = None,
        vertexai: bool = False,
        project: str | None = None,
        location: str | None = None,
        credentials: google.auth.credentials.Credentials | None = None,
    ) -> None:
        self._api_key, self._http, self._client = _sdk_client(
            api_key,
            base_url,
            vertexai=vertexai,
            project=project,
            location=location,
            credentials=credentials,
        )

    async def generate(
        self, request: ImageRequest, checkpoint: Checkpoint | None = None
    ) -> Generation:
        """One attempt: send ``request`` and return the kept image.

        The attempt is bounded by ``request.timeout`` seconds. Raises only
        :class:`~imagegen.errors.ProviderError` subclasses for service, transport and content
        failures; an exception the maps do not know (a bug) propagates unchanged.
        """
        config = build_config(request, sdk_timeout=request.timeout + SDK_TIMEOUT_MARGIN)
        try:
            with anyio.fail_after(request.timeout):
                response = await self._client.aio.models.generate_content(
                    model=request.model, contents=build_contents(request), config=config
                )
        except TimeoutError as exc:
            raise AttemptTimeout(f"no answer within {request.timeout:g} s") from exc
        except Exception as exc:
            mapped = errors.map_error(exc, model=request.model, api_key=self._api_key)
            if mapped is None:
                raise
            raise mapped from exc
        want = pixel_size(request.model, request.quality, request.aspect)
        image, note = pick_image(response, want)
        # Checking a 4K PNG takes ~20 ms (CRCs), decoding a 4K JPEG ~0.5 s: off the loop. A
        # small PNG is checked in place, where a thread hop would cost more than the check.
        if len(image) <= INLINE_CHECK_BYTES and image.startswith(PNG_SIGNATURE):
            return read_generation(response, image, note)
        return await anyio.to_thread.run_sync(read_generation, response, image, note)

    # -- the Files API (providers/batch.py FileStore) --------------------------------------

    async def upload_file(
        self, path: Path, mime_type: str, display_name: str | None = None
    ) -> RemoteFile:
        """Upload ``path`` with the resumable protocol, streamed in the SDK's 8 MB chunks.

        Raises ProviderError types (a 5xx is ServerError: try again) and OSError if the file
        cannot be read.
        """
        size = (await anyio.Path(path).stat()).st_size
        config = types.UploadFileConfig(mime_type=mime_type, display_name=display_name)
        with self._mapped("upload", TRANSFER_TIMEOUT + size / TRANSFER_BYTES_PER_SECOND):
            uploaded = await self._client.aio.files.upload(file=str(path), config=config)
        return _remote_file(uploaded, mime_type, size)

    async def file_status(self, name: str) -> RemoteFile | None:
        """The file ``files/ID`` if the service still has it, else None."""
        try:
            with self._mapped("files.get", CALL_TIMEOUT):
                found = await self._client.aio.files.get(name=name)
        except (FileGone, BadRequest):
            return None
        return _remote_file(found, found.mime_type or "", int(found.size_bytes or 0))

    def inline_is_smaller(self, size: int, uses: int = 1) -> bool:
        return batch_lines.inline_is_smaller(size, TYPICAL_URI_LENGTH, uses)

    # -- the Batch API (providers/batch.py BatchService) ------------------------------------

    def request_line(self, key: str, request: ImageRequest) -> bytes:
        return batch_lines.request_line(key, request)

    async def create_batch(self, model: str, input_file: str, display_name: str) -> BatchStatus:
        """Create a batch from an uploaded JSONL file. A ServerError or timeout leaves it
        unknown whether the service created it: look for it by display name before again."""
        config = types.CreateBatchJobConfig(display_name=display_name)
        with self._mapped("batches.create", CALL_TIMEOUT, model=model):
            job = await self._client.aio.batches.create(model=model, src=input_file, config=config)
        return _batch_status(job)

    async def batch_status(self, name: str) -> BatchStatus:
        with self._mapped("batches.get", CALL_TIMEOUT):
            job = await self._client.aio.batches.get(name=name)
        return _batch_status(job)

    async def find_batches(self, display_name: str) -> list[BatchStatus]:
        found = []
        with self._mapped("batches.list", CALL_TIMEOUT * 5):
            pager = await self._client.aio.batches.list(
                config=types.ListBatchJobsConfig(page_size=100)
            )
            async for job in pager:
                if job.display_name == display_name:
                    found.append(_batch_status(job))
        return found

    async def cancel_batch(self, name: str) -> None:
        with self._mapped("batches.cancel", CALL_TIMEOUT):
            await self._client.aio.batches.cancel(name=name)

    async def download_results(self, results_file: str, path: Path) -> None:
        """Stream a result file to ``path`` through a temporary file renamed when whole, so
        ``path`` existing means the download finished."""
        part = path.with_name(path.name + ".part")
        with self._mapped("files.download", TRANSFER_TIMEOUT * 12):
            async with await anyio.open_file(part, "wb") as sink:
                # The SDK awaits an awaitable write(): the chunks are written off the loop.
                await self._client.aio.files.download(file=results_file, destination=sink)  # type: ignore[call-overload]
        await anyio.Path(part).rename(path)

    def read_result(self, line: bytes, want: Callable[[str], tuple[int, int] | None]) -> ResultLine:
        """One result line: ``{"key", "response"}`` read as an online answer (same image
        choice and checks, usage, finish reasons), or ``{"key", "error"}`` mapped as the
        HTTP status of the same google.rpc code. Raises ValueError for a line that is not a
        JSON object."""
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"a result line is not JSON ({exc})") from exc
        if not isinstance(item, dict):
            raise ValueError("a result line is not a JSON object")
        key = item.get("key")
        key = None if key is None else str(key)
        error = item.get("error")
        if isinstance(error, dict):
            code = error.get("code")
            http = errors.RPC_TO_HTTP.get(code, 500) if isinstance(code, int) else 500
            details = error.get("details") if isinstance(error.get("details"), list) else []
            message = secrets.one_line(str(error.get("message") or ""))
            return ResultLine(key, error=self._map_status_for(http, "", message, details, ""))
        raw = item.get("response")
        if not isinstance(raw, dict):
            return ResultLine(key, error=ServerError("the result line has no response"))
        try:
            response = types.GenerateContentResponse._from_response(
                response=genai_models._GenerateContentResponse_from_mldev(raw), kwargs={}
            )
            image, note = pick_image(response, want(key) if key is not None else None)
            return ResultLine(key, read_generation(response, image, note))
        except ProviderError as exc:
            return ResultLine(key, error=exc)
        except pydantic.ValidationError as exc:
            error_type = ServerError(f"the response does not fit the API schema ({exc})")
            return ResultLine(key, error=error_type)

    def _mapped(self, what: str, seconds: float, *, model: str = "") -> _MappedCall:
        return _MappedCall(self, what, seconds, model)

    def _map_status_for(
        self, code: int, status: str, message: str, details: Any, model: str
    ) -> ProviderError:
        return errors.map_status(code, status, message, details, model=model, api_key=self._api_key)

    async def aclose(self) -> None:
        """Close the SDK clients and the connection pool."""
        await self._client.aio.aclose()
        self._client.close()
        await self._http.aclose()

    async def __aenter__(self) -> GeminiProvider:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class GeminiTextWriter:
    """Text generation with a Gemini text model (``gemini-2.5-flash``, ...), for prompts.

    One long-lived SDK client, as :class:`GeminiProvider`; close it with :meth:`aclose` (or
    ``async with``). ``base_url`` as there; ``timeout`` bounds each attempt (seconds). Raises
    InputError for an empty key.
    """

    def __init__(self, api_key: str, *, base_url: str | None = None, timeout: float = 60.0) -> None:
        self._api_key, self._http, self._client = _sdk_client(api_key, base_url)
        self.timeout = timeout

    async def write(
        self, instructions: str, *, model: str, max_tokens: int, temperature: float
    ) -> TextGeneration:
        """One attempt: ``instructions`` as a single user turn; the answer's text and usage.

        Raises ProviderError subclasses as the image path does (AttemptTimeout after
        :attr:`timeout` seconds), and NoText for a blocked prompt or an answer without words.
        """
        timeout = self.timeout
        config = types.GenerateContentConfig(
            response_modalities=["TEXT"],
            max_output_tokens=max_tokens,
            temperature=temperature,
            http_options=types.HttpOptions(
                timeout=math.ceil((timeout + SDK_TIMEOUT_MARGIN) * 1000)
            ),
        )
        contents = [types.Content(role="user", parts=[types.Part.from_text(text=instructions)])]
        try:
            with anyio.fail_after(timeout):
                response = await self._client.aio.models.generate_content(
                    model=model, contents=contents, config=config
                )
        except TimeoutError as exc:
            raise AttemptTimeout(f"no answer within {timeout:g} s") from exc
        except Exception as exc:
            mapped = errors.map_error(exc, model=model, api_key=self._api_key)
            if mapped is None:
                raise
            raise mapped from exc
        return read_text(response)

    async def aclose(self) -> None:
        """Close the SDK clients and the connection pool."""
        await self._client.aio.aclose()
        self._client.close()
        await self._http.aclose()

    async def __aenter__(self) -> GeminiTextWriter:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def read_text(response: types.GenerateContentResponse) -> TextGeneration:
    """The words of a text answer (thought parts left out), its finish reason and usage.

    Raises NoText for a blocked prompt, no candidates, or an answer without words (``reason``
    the block or finish reason, NO_CANDIDATES, or EMPTY).
    """
    feedback = response.prompt_feedback
    if feedback is not None and feedback.block_reason is not None:
        block = _name(feedback.block_reason)
        raise NoText(f"the prompt was blocked ({block})", reason=f"PROMPT_BLOCKED:{block}")
    if not response.candidates:
        raise NoText("the response has no candidates", reason="NO_CANDIDATES")
    candidate = response.candidates[0]
    finish = _name(candidate.finish_reason) if candidate.finish_reason is not None else None
    parts = (candidate.content.parts if candidate.content else None) or []
    text = "".join(p.text for p in parts if p.text and not p.thought)
    if not text.strip():
        reason = finish if finish not in (None, "STOP") else "EMPTY"
        raise NoText(f"no text in the answer (finish reason {finish or 'none'})", reason=reason)
    return TextGeneration(
        text=text,
        finish_reason=finish,
        usage=read_usage(response.usage_metadata),
        model_version=response.model_version,
    )


def _sdk_client(
    api_key: str | None,
    base_url: str | None,
    *,
    vertexai: bool = False,
    project: str | None = None,
    location: str | None = None,
    credentials: google.auth.credentials.Credentials | None = None,
) -> tuple[str, httpx2.AsyncClient, genai.Client]:
    """The stripped key (registered as a secret; "" on Vertex with a project), our httpx2
    client and the SDK client on it: the Gemini API, or Vertex AI with ``vertexai`` (an
    express-mode key, or a project and location with ``credentials`` or Google's
    application-default ones).

    Raises InputError for a missing key (or, on Vertex, a missing key and project).
    """
    key = (api_key or "").strip() or None
    project = (project or "").strip() or None
    if vertexai and not (key or project):
        raise InputError(
            "Vertex AI needs an API key (GOOGLE_API_KEY, express mode) or a project "
            "(GOOGLE_CLOUD_PROJECT, with application-default credentials)"
        )
    if not vertexai and not key:
        raise InputError("no API key: set GEMINI_API_KEY (or GOOGLE_API_KEY)")
    secrets.register(key or "")
    # Our own httpx2 client: with aiohttp importable the SDK would otherwise switch its async
    # path to aiohttp, whose exceptions ERROR_MAP does not list (notes, "SDK").
    tls = _tls_context()
    http = httpx2.AsyncClient(verify=tls, timeout=None, follow_redirects=True, limits=KEEPALIVE)
    options = types.HttpOptions(
        api_version=VERTEX_API_VERSION if vertexai else API_VERSION,
        # attempts=1: no SDK retries, and it also turns off the hidden aiohttp retry.
        retry_options=types.HttpRetryOptions(attempts=1),
        httpx_async_client=http,
        # The SDK's unused sync client and live-API websocket would load the CA certificates
        # twice more (~70 ms each, per client): hand them the shared context.
        client_args={"verify": tls},
        async_client_args={"ssl": tls},
    )
    if base_url:
        options.base_url = base_url
    if not vertexai:
        # vertexai=False said outright: GOOGLE_GENAI_USE_VERTEXAI must not turn --provider
        # gemini into Vertex behind the user's back.
        client = genai.Client(vertexai=False, api_key=key, http_options=options)
    elif key:
        client = genai.Client(vertexai=True, api_key=key, http_options=options)
    else:
        client = genai.Client(
            vertexai=True,
            project=project,
            location=(location or "").strip() or DEFAULT_LOCATION,
            credentials=credentials,
            http_options=options,
        )
    return key or "", http, client


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # Loading the CA certificates costs ~70 ms per context, and contexts are shareable: one per
    # process, the same default httpx2 (and so the SDK) would build.
    return httpx2.create_ssl_context()


class _MappedCall:
    """``with provider._mapped(what, seconds):``: a deadline for one Files/Batch API call and
    the SDK's exceptions mapped into ours (as :meth:`GeminiProvider.generate` does)."""

    def __init__(self, provider: GeminiProvider, what: str, seconds: float, model: str) -> None:
        self._provider, self._what, self._model = provider, what, model
        self._scope = anyio.fail_after(seconds)
        self._seconds = seconds

    def __enter__(self) -> None:
        self._scope.__enter__()

    def __exit__(self, et: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        try:
            self._scope.__exit__(et, exc, tb)
        except TimeoutError as timeout:
            raise AttemptTimeout(f"{self._what}: no answer within {self._seconds:g} s") from timeout
        if exc is None or not isinstance(exc, Exception) or isinstance(exc, ProviderError):
            return
        if isinstance(exc, genai_errors.APIError):
            mapped: ProviderError | None = errors.map_status(
                exc.code,
                exc.status or "",
                secrets.one_line(str(exc.message or "")),
                errors.error_details(exc.details),
                model=self._model,
                api_key=self._provider._api_key,
                calls_model=bool(self._model),
            )
        else:
            mapped = errors.map_error(exc, model=self._model, api_key=self._provider._api_key)
        if mapped is not None:
            mapped.args = (f"{self._what}: {mapped}",)
            raise mapped from exc


def _remote_file(file: types.File, mime_type: str, size: int) -> RemoteFile:
    if not file.name or not file.uri:
        raise ServerError("the Files API answered without a file name or URI")
    expires = file.expiration_time
    return RemoteFile(
        file.name,
        file.uri,
        file.mime_type or mime_type,
        int(file.size_bytes or size),
        expires.timestamp() if isinstance(expires, datetime) else None,
    )


def _batch_status(job: types.BatchJob) -> BatchStatus:
    if not job.name:
        raise ServerError("the Batch API answered without a batch name")
    state = _JOB_STATES.get(_name(job.state) if job.state is not None else "", "pending")
    created = job.create_time.timestamp() if job.create_time is not None else None
    error = secrets.one_line(str(job.error.message or "")) if job.error is not None else None
    return BatchStatus(
        job.name,
        job.display_name or "",
        state,
        job.dest.file_name if job.dest is not None else None,
        created,
        error or None,
    )


def build_contents(request: ImageRequest) -> list[types.Content]:
    """One user turn: the prompt text, then each reference image in order, by its Files API
    URI when it was uploaded, else inline."""
    parts = [types.Part.from_text(text=request.prompt)]
    parts += [
        types.Part.from_uri(file_uri=r.uri, mime_type=r.mime_type)
        if r.uri is not None
        else types.Part.from_bytes(data=r.data, mime_type=r.mime_type)
        for r in request.references
    ]
    return [types.Content(role="user", parts=parts)]


def build_config(request: ImageRequest, *, sdk_timeout: float) -> types.GenerateContentConfig:
    """Text and image output, the aspect ratio and (except for Flash models) the size tier.

    ``sdk_timeout`` seconds becomes the SDK's per-request timeout (milliseconds on the wire).
    """
    image_size = request.quality if takes_image_size(request.model) else None
    return types.GenerateContentConfig(
        response_modalities=["TEXT", "IMAGE"],
        image_config=types.ImageConfig(aspect_ratio=request.aspect, image_size=image_size),
        http_options=types.HttpOptions(timeout=math.ceil(sdk_timeout * 1000)),
    )


def read_generation(
    response: types.GenerateContentResponse,
    image: bytes | None = None,
    note: str | None = None,
) -> Generation:
    """The kept image (``image`` if already picked by :func:`pick_image`), with its real MIME
    type, usage and finish reason, and ``note`` on how it was chosen.

    Raises NoImage as :func:`pick_image` does, and ServerError when the image bytes are not a
    whole image (a corrupt transfer, worth another attempt).
    """
    if image is None:
        image, note = pick_image(response)
    try:
        info = sniff(image)
    except ValueError as exc:
        raise ServerError(f"image bytes do not decode ({exc})") from exc
    candidate = response.candidates[0] if response.candidates else None
    finish = candidate.finish_reason if candidate is not None else None
    return Generation(
        image=image,
        mime_type=info.mime_type,
        finish_reason=_name(finish) if finish is not None else None,
        usage=read_usage(response.usage_metadata),
        model_version=response.model_version,
        request_id=response.response_id,
        note=note,
    )


def _size_of(data: bytes) -> tuple[int, int] | None:
    try:
        info = probe(data)
    except ValueError:
        return None
    return info.width, info.height


def pick_image(
    response: types.GenerateContentResponse, want: tuple[int, int] | None = None
) -> tuple[bytes, str | None]:
    """The image that answers the request, and a note for the journal when the choice was not
    the plain one.

    Among the first candidate's image parts not marked ``thought`` (Pro may send interim
    thought images first: notes, "Models"), the one of the requested pixel size ``want``, else
    the last. When every image part is marked ``thought`` (reported for Gemini 3), the last of
    them is the answer: kept, with a note, rather than failing with NO_IMAGE.

    Raises NoImage for a blocked prompt, no candidates, a finish reason without image, or a
    text-only answer (``reason`` is the block or finish reason, or TEXT_ONLY / NO_CANDIDATES).
    """
    feedback = response.prompt_feedback
    if feedback is not None and feedback.block_reason is not None:
        block = _name(feedback.block_reason)
        said = (
            f": {secrets.one_line(feedback.block_reason_message)}"
            if feedback.block_reason_message
            else ""
        )
        raise NoImage(f"the prompt was blocked ({block}){said}", reason=f"PROMPT_BLOCKED:{block}")
    if not response.candidates:
        raise NoImage("the response has no candidates", reason="NO_CANDIDATES")
    candidate = response.candidates[0]
    finish = _name(candidate.finish_reason) if candidate.finish_reason is not None else None
    parts = (candidate.content.parts if candidate.content else None) or []

    final: list[bytes] = []
    thought: list[bytes] = []
    for part in parts:
        blob = part.inline_data
        if blob is None or not blob.data or not (blob.mime_type or "").startswith("image/"):
            continue
        (thought if part.thought else final).append(blob.data)
    note = None
    if not final and thought:
        final, note = thought[-1:], "the image came only in a part marked thought; kept"
    if not final:
        text = " ".join(p.text for p in parts if p.text and not p.thought)
        if text and finish in (None, "STOP"):
            raise NoImage(
                f"no image, the model answered: {secrets.one_line(text)}", reason="TEXT_ONLY"
            )
        reason = finish or "NO_IMAGE"
        raise NoImage(f"no image (finish reason {reason}){_said(candidate)}", reason=reason)
    if len(final) > 1 and want is not None:
        sized = [data for data in final if _size_of(data) == want]
        if sized and sized[-1] is not final[-1]:
            return sized[-1], (
                f"{len(final)} images in the answer; kept the one of the requested size "
                f"{want[0]}x{want[1]}"
            )
    return final[-1], note


def _said(candidate: types.Candidate) -> str:
    """What Vertex adds to a filtered answer: the blocked safety categories and its
    ``finishMessage`` (the Gemini API's converter drops the message)."""
    blocked = [
        _name(r.category) for r in candidate.safety_ratings or [] if r.blocked and r.category
    ]
    text = f" [{', '.join(blocked)}]" if blocked else ""
    if candidate.finish_message:
        text += f": {secrets.one_line(candidate.finish_message)}"
    return text


def read_usage(meta: types.GenerateContentResponseUsageMetadata | None) -> Usage:
    """Token counts from ``usageMetadata``; 0 for anything absent."""
    if meta is None:
        return Usage()
    image_tokens = sum(
        d.token_count or 0
        for d in meta.candidates_tokens_details or []
        if d.modality is not None and _name(d.modality) == "IMAGE"
    )
    return Usage(
        prompt_tokens=meta.prompt_token_count or 0,
        output_tokens=meta.candidates_token_count or 0,
        thought_tokens=meta.thoughts_token_count or 0,
        image_tokens=image_tokens,
    )


def _name(value: enum.Enum | str) -> str:
    """The wire name of an SDK enum (unknown values keep their raw string)."""
    return str(value.value) if isinstance(value, enum.Enum) else str(value)

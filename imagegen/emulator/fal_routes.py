"""fal's queue API, as ``fal-client`` 1.0.3 sends and parses it.

    POST /{owner}/{alias}[/{path}]               submit, e.g. /fal-ai/nano-banana-pro/edit
         -> {request_id, status_url, response_url, cancel_url, status, queue_position}
    GET  /{owner}/{alias}/requests/{id}/status   IN_QUEUE {queue_position} | IN_PROGRESS {logs}
                                                 | COMPLETED {logs, metrics[, error, error_type]}
    GET  /{owner}/{alias}/requests/{id}          the result {images: [{url, content_type,
                                                 width, height, ...}], description}
    PUT  /{owner}/{alias}/requests/{id}/cancel   202 CANCELLATION_REQUESTED | 400 ALREADY_COMPLETED
    GET  /fal-files/{name}                       an image the emulator serves (no auth, as a CDN)

``Authorization: Key $FAL_KEY`` on the queue routes; errors are ``{"detail": ...}`` (fal's
FastAPI shape, which the SDK reads into ``FalClientHTTPError``). The URLs handed back are
``https://{Host}/...``: fal-client speaks only https, so it reaches the emulator through
:class:`~.tls.TLSListener`. A job spends ``turnaround`` seconds queued (first half) and in
progress (second half) after its submit arrived; results carry the image as a URL the emulator
serves or, with ``image_delivery = "data"``, as a data URL. Input images are data URLs in
``image_urls``.

Scripted outcomes are taken at submit, by prompt:

    error(code, retry_delay, reason)   the submit fails with that status (nothing queued);
                                       ``retry_delay`` adds ``retry-after``, ``reason`` becomes
                                       ``error_type``
    hang(seconds)                      the job is queued (and would be paid) at once, but the
                                       submit answer waits that long
    drop                               queued, but the submit answer is cut in half
    bad_json                           queued, but the submit answer is an HTML page
    prompt_blocked, finish             the job completes with ``error_type
                                       content_policy_violation``; its result is a 422
    text_only                          the result has ``images: []`` and a description
    bad_image, wrong_size              the result's image is truncated / of that size
    image, thought_then_image          a normal image

``fal_state(emu)`` counts submits per prompt (``submits``), so a test can prove a submit that
hung was never posted twice.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import orjson

from ..providers.gemini import ASPECTS, tier_size
from . import render, wire
from .exchange import Exchange, PerEmulator, reply, reply_json, retry_seconds
from .outcomes import Outcome

#: Apps the emulator runs: nano-banana-pro (Gemini 3 Pro Image) and nano-banana (2.5 Flash).
PRO_APPS = frozenset({"fal-ai/nano-banana-pro", "fal-ai/nano-banana-pro/edit"})
FLASH_APPS = frozenset({"fal-ai/nano-banana", "fal-ai/nano-banana/edit"})
KNOWN_APPS = PRO_APPS | FLASH_APPS
MAX_IMAGE_URLS = 14
RESOLUTIONS = ("1K", "2K", "4K")
FORMATS = ("png", "jpeg", "webp")
FILES = "/fal-files/"
_NOT_FAL = ("/v1/", "/v1beta/", "/v1beta1/", "/upload/", "/oauth2/")  # Google's paths


class FalWireError(Exception):
    """A request fal refuses: status code, ``detail`` body and extra headers."""

    def __init__(
        self,
        code: int,
        detail: object,
        *,
        error_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{code}: {detail}")
        self.status = code
        self.body: dict[str, Any] = {"detail": detail}
        if error_type is not None:
            self.body["error_type"] = error_type
        self.headers = headers or {}


@dataclass
class FalJob:
    """One queued request."""

    request_id: str
    app: str
    prompt: str
    arguments: dict[str, Any] = field(repr=False)
    references: tuple[bytes, ...] = field(repr=False)
    outcome: Outcome
    submitted: float
    cancelled: bool = False
    result: dict[str, Any] | None = field(default=None, repr=False)


@dataclass
class FalState:
    """The fal queue of one emulator. Settings: ``turnaround`` (seconds from submit to
    COMPLETED), ``image_delivery`` ("url" or "data"). Counters, read under ``lock``:
    ``submits`` per prompt, ``status_polls``, ``results``, ``cancels``, ``downloads`` (and the
    ``Authorization`` header each download carried, in ``download_auth``), ``generated`` per
    prompt; ``received`` the input images of each submit, in order."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    turnaround: float = 0.0
    image_delivery: str = "url"
    jobs: dict[str, FalJob] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict, repr=False)
    submits: Counter[str] = field(default_factory=Counter)
    received: list[tuple[bytes, ...]] = field(default_factory=list, repr=False)
    generated: Counter[str] = field(default_factory=Counter)
    status_polls: int = 0
    results: int = 0
    cancels: int = 0
    downloads: int = 0
    download_auth: list[str | None] = field(default_factory=list, repr=False)

    def job(self, request_id: str) -> FalJob | None:
        with self.lock:
            return self.jobs.get(request_id)


fal_state = PerEmulator(FalState)


def owns(path: str) -> bool:
    return not path.startswith(_NOT_FAL)


def answer(exchange: Exchange) -> None:
    """Answer one fal request (in the connection's thread)."""
    state = fal_state(exchange.emulator)
    try:
        _route(exchange, state)
    except FalWireError as exc:
        exchange.handler.note = f"fal {exc.status}"
        headers = {"x-fal-retryable": "true" if exc.status in (429, 503) else "false"}
        reply_json(exchange.handler, exc.status, exc.body, headers={**headers, **exc.headers})


def _route(exchange: Exchange, state: FalState) -> None:
    path, method = exchange.path, exchange.method
    if path.startswith(FILES):
        if method != "GET":
            raise FalWireError(405, "Method Not Allowed")
        _file(exchange, state)
        return
    _check_key(exchange)
    segments = [s for s in path.split("/") if s]
    if len(segments) >= 4 and segments[2] == "requests":
        app, request_id, rest = "/".join(segments[:2]), segments[3], segments[4:]
        if method == "GET" and rest == ["status"]:
            _status(exchange, state, app, request_id)
        elif method == "GET" and not rest:
            _result(exchange, state, app, request_id)
        elif method == "PUT" and rest == ["cancel"]:
            _cancel(exchange, state, app, request_id)
        else:
            raise FalWireError(405, "Method Not Allowed")
        return
    if method != "POST":
        raise FalWireError(405, "Method Not Allowed")
    _submit(exchange, state, "/".join(segments))


def _check_key(exchange: Exchange) -> None:
    scheme, _, key = (exchange.header("Authorization") or "").partition(" ")
    if scheme != "Key" or not key.strip():
        raise FalWireError(401, "Authentication is required to access this application.")
    if exchange.expected_key is not None and key.strip() != exchange.expected_key:
        raise FalWireError(401, "No user found for Key ID and Secret", error_type="invalid_key")


def _urls(exchange: Exchange, app: str, request_id: str) -> dict[str, str]:
    owner_alias = "/".join(app.split("/")[:2])
    base = f"https://{exchange.host}/{owner_alias}/requests/{request_id}"
    return {"response_url": base, "status_url": base + "/status", "cancel_url": base + "/cancel"}


def _submit(exchange: Exchange, state: FalState, app: str) -> None:
    if app not in KNOWN_APPS:
        raise FalWireError(404, f"Application '{app}' not found")
    try:
        arguments = orjson.loads(exchange.body or b"{}")
    except orjson.JSONDecodeError as exc:
        raise FalWireError(400, f"Invalid JSON body: {exc}") from exc
    if not isinstance(arguments, dict):
        raise _invalid(["body"], "Input should be a valid dictionary", "dict_type")
    prompt = arguments.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        raise _invalid(["body", "prompt"], "Field required", "missing")
    with state.lock:
        state.submits[prompt] += 1
    references = _references(app, arguments)
    _check_arguments(app, arguments)
    outcome = exchange.take(prompt)
    exchange.handler.note = f"fal submit {outcome.kind}"
    if outcome.kind == "error":
        retry = retry_seconds(outcome)
        stock = Outcome.error(outcome.code).message
        detail = outcome.message if outcome.message != stock else _stock_detail(outcome.code)
        raise FalWireError(
            outcome.code,
            detail,
            error_type=outcome.reason,
            headers={"retry-after": retry} if retry else None,
        )
    request_id = str(uuid.uuid4())
    job = FalJob(request_id, app, prompt, arguments, references, outcome, time.monotonic())
    with state.lock:
        state.jobs[request_id] = job
        state.received.append(references)
    exchange.sleep(exchange.latency)
    if outcome.kind == "hang":
        exchange.sleep(outcome.seconds)
    if outcome.kind == "bad_json":
        reply(exchange.handler, 200, b"<html><body>Bad Gateway</body></html>", "text/html")
        return
    body = {
        "status": "IN_QUEUE",
        "request_id": request_id,
        **_urls(exchange, app, request_id),
        "queue_position": 0,
    }
    headers = {"x-fal-request-id": request_id}
    reply(
        exchange.handler, 200, orjson.dumps(body), headers=headers, truncate=outcome.kind == "drop"
    )


def _references(app: str, arguments: dict[str, Any]) -> tuple[bytes, ...]:
    urls = arguments.get("image_urls")
    if urls is None:
        if app.endswith("/edit"):
            raise _invalid(["body", "image_urls"], "Field required", "missing")
        return ()
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        raise _invalid(["body", "image_urls"], "Input should be a valid list", "list_type")
    if len(urls) > MAX_IMAGE_URLS:
        raise _invalid(
            ["body", "image_urls"],
            f"List should have at most {MAX_IMAGE_URLS} items after validation, not {len(urls)}",
            "too_long",
        )
    images = []
    for i, url in enumerate(urls):
        data = _data_url_bytes(url)
        if data is None or not render.check_decodable(data):
            raise _invalid(
                ["body", "image_urls", i],
                "Failed to load the image. Please ensure the image file is not corrupted and "
                "is in a supported format.",
                "image_load_error",
            )
        images.append(data)
    return tuple(images)


def _data_url_bytes(url: str) -> bytes | None:
    head, comma, payload = url.partition(",")
    if not comma or not head.startswith("data:image/") or not head.endswith(";base64"):
        return None
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return None


def _check_arguments(app: str, arguments: dict[str, Any]) -> None:
    aspect = arguments.get("aspect_ratio", "1:1")
    if aspect != "auto" and aspect not in ASPECTS:
        raise _invalid(
            ["body", "aspect_ratio"],
            "Input should be " + ", ".join(f"'{a}'" for a in (*ASPECTS, "auto")),
            "enum",
        )
    if app in PRO_APPS and arguments.get("resolution", "1K") not in RESOLUTIONS:
        raise _invalid(["body", "resolution"], "Input should be '1K', '2K' or '4K'", "enum")
    if arguments.get("output_format", "png") not in FORMATS:
        raise _invalid(["body", "output_format"], "Input should be 'jpeg', 'png' or 'webp'", "enum")
    num = arguments.get("num_images", 1)
    if not isinstance(num, int) or not 1 <= num <= 4:
        raise _invalid(["body", "num_images"], "Input should be between 1 and 4", "less_than")


def _invalid(loc: list[object], msg: str, type_: str) -> FalWireError:
    return FalWireError(422, [{"loc": loc, "msg": msg, "type": type_}])


def _stock_detail(code: int) -> str:
    if code == 429:
        return "Rate limit exceeded. Please retry later."
    if code >= 500:
        return "Internal Server Error"
    return f"HTTP {code}"


def _known_job(state: FalState, app: str, request_id: str) -> FalJob:
    job = state.job(request_id)
    if job is None or "/".join(job.app.split("/")[:2]) != app:
        raise FalWireError(404, f"Request {request_id} not found")
    return job


def _phase(job: FalJob, turnaround: float) -> tuple[str, float]:
    """("IN_QUEUE" | "IN_PROGRESS" | "COMPLETED", seconds since submit)."""
    elapsed = time.monotonic() - job.submitted
    if job.cancelled or elapsed >= turnaround:
        return "COMPLETED", elapsed
    return ("IN_QUEUE" if elapsed < turnaround / 2 else "IN_PROGRESS"), elapsed


def _failure(job: FalJob) -> tuple[str, str] | None:
    """(error, error_type) of a completed job that failed, else None."""
    if job.cancelled:
        return "Request was cancelled", "client_cancelled"
    if job.outcome.kind in ("prompt_blocked", "finish"):
        return (
            "The content could not be processed because it contained material flagged by a "
            "content checker.",
            "content_policy_violation",
        )
    return None


def _status(exchange: Exchange, state: FalState, app: str, request_id: str) -> None:
    job = _known_job(state, app, request_id)
    with state.lock:
        state.status_polls += 1
        turnaround = state.turnaround
    phase, elapsed = _phase(job, turnaround)
    logs_wanted = parse_qs(exchange.query).get("logs", ["false"])[0].lower() in ("true", "1")
    logs = (
        [{"message": f"{phase.lower()}", "level": "INFO", "source": "USER"}]
        if logs_wanted
        else None
    )
    body: dict[str, Any] = {
        "status": phase,
        "response_url": _urls(exchange, app, request_id)["response_url"],
    }
    if phase == "IN_QUEUE":
        body["queue_position"] = 0
    else:
        body["logs"] = logs
    if phase == "COMPLETED":
        body["metrics"] = {"inference_time": round(min(elapsed, turnaround) / 2, 3)}
        failure = _failure(job)
        if failure is not None:
            body["error"], body["error_type"] = failure
    exchange.handler.note = f"fal status {phase}"
    reply_json(exchange.handler, 200 if phase == "COMPLETED" else 202, body)


def _result(exchange: Exchange, state: FalState, app: str, request_id: str) -> None:
    job = _known_job(state, app, request_id)
    with state.lock:
        state.results += 1
        turnaround, delivery = state.turnaround, state.image_delivery
    phase, _ = _phase(job, turnaround)
    if phase != "COMPLETED":
        raise FalWireError(400, "Request is still in progress")
    failure = _failure(job)
    if failure is not None:
        message, error_type = failure
        if error_type == "client_cancelled":
            raise FalWireError(400, message, error_type=error_type)
        loc: list[object] = ["body", "prompt"]
        raise FalWireError(
            422,
            [{"loc": loc, "msg": message, "type": error_type, "input": job.prompt}],
            headers={"x-fal-error-type": error_type},
        )
    if job.result is None:
        job.result = _render_result(exchange, state, job, delivery)
    exchange.handler.note = "fal result"
    reply_json(exchange.handler, 200, job.result, headers={"x-fal-request-id": request_id})


def _render_result(
    exchange: Exchange, state: FalState, job: FalJob, delivery: str
) -> dict[str, Any]:
    kind = job.outcome.kind
    if kind == "text_only":
        return {"images": [], "description": job.outcome.text or ""}
    width, height = pixel_size(job.app, job.arguments)
    if kind == "wrong_size":
        width, height = job.outcome.width, job.outcome.height
    if kind == "bad_image":
        data = render.truncated_png()
    else:
        digest = hashlib.sha256(
            "\0".join([job.app, job.prompt, str(sorted(job.arguments.items()))]).encode()
        ).hexdigest()
        data = render.render_png(
            str(getattr(exchange.emulator, "render", "plain")),
            width,
            height,
            digest=digest,
            caption=job.prompt.split("\n", 1)[0],
            references=job.references,
        )
    name = f"{job.request_id}.png"
    if delivery == "data":
        url = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    else:
        url = f"https://{exchange.host}{FILES}{name}"
    with state.lock:
        state.files[name] = data
        if kind != "bad_image":
            state.generated[job.prompt] += 1
    image = {
        "url": url,
        "content_type": "image/png",
        "file_name": name,
        "file_size": len(data),
        "width": width,
        "height": height,
    }
    return {"images": [image], "description": ""}


def pixel_size(app: str, arguments: dict[str, Any]) -> tuple[int, int]:
    """(width, height) the app renders: Pro by resolution tier, Flash at its one size."""
    aspect = arguments.get("aspect_ratio", "1:1")
    aspect = "1:1" if aspect == "auto" else str(aspect)
    if app in PRO_APPS:
        return tier_size(str(arguments.get("resolution", "1K")), aspect)
    flash = wire.ParsedRequest("gemini-2.5-flash-image", "", (), aspect, None, "")
    return flash.pixel_size


def _cancel(exchange: Exchange, state: FalState, app: str, request_id: str) -> None:
    job = _known_job(state, app, request_id)
    with state.lock:
        state.cancels += 1
        turnaround = state.turnaround
    phase, _ = _phase(job, turnaround)
    if phase == "COMPLETED":
        reply_json(exchange.handler, 400, {"status": "ALREADY_COMPLETED"})
        return
    job.cancelled = True
    reply_json(exchange.handler, 202, {"status": "CANCELLATION_REQUESTED"})


def _file(exchange: Exchange, state: FalState) -> None:
    name = exchange.path.removeprefix(FILES)
    with state.lock:
        data = state.files.get(name)
        if data is not None:
            state.downloads += 1
            state.download_auth.append(exchange.header("Authorization"))
    if data is None:
        raise FalWireError(404, "Not Found")
    exchange.handler.note = "fal file"
    reply(exchange.handler, 200, data, "image/png")

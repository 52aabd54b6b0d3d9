"""OpenAI's image routes, as the ``openai`` SDK (3.57) sends and parses them.

    POST /v1/images/generations   JSON {model, prompt, size, quality, n, output_format, ...}
    POST /v1/images/edits         multipart/form-data: the same fields, and ``image[]`` file
                                  parts (1 to 16; ``image`` for a single file)

Bearer auth (``Authorization: Bearer KEY``). A 200 is ``{created, data: [{b64_json}], size,
quality, output_format, background, usage}`` with ``usage = {input_tokens,
input_tokens_details: {text_tokens, image_tokens}, output_tokens, output_tokens_details,
total_tokens}`` and an ``x-request-id`` header. Errors are ``{"error": {message, type, param,
code}}``, the shape the SDK reads into ``APIStatusError.body``.

Scripted outcomes (:class:`~.outcomes.Outcome`) map to OpenAI's shapes:

    image, thought_then_image   200 with one PNG (OpenAI has no interim "thought" images)
    error(code, message, retry_delay, reason)
                                that status; ``reason`` becomes the error ``code`` (e.g.
                                "insufficient_quota", "invalid_api_key"); ``retry_delay="7s"``
                                adds ``retry-after: 7``
    hang(seconds)               the answer waits that long
    prompt_blocked(reason)      400 ``moderation_blocked`` (input stage), type
                                ``image_generation_user_error``
    finish(reason)              400 ``moderation_blocked`` (output stage)
    text_only                   200 with ``data: []`` (no image at all)
    bad_json, drop, bad_image, wrong_size   as for Gemini

Model sizes follow the SDK's ``size`` docstring: the gpt-image-2 and 2.5 families take any
``WxH`` with both edges multiples of 16, a ratio within 1:3..3:1, at most 3840 px a side and
655,360..8,294,400 pixels; the others take 1024x1024, 1536x1024, 1024x1536 or auto. Token
counts are the emulator's own model (see :func:`usage`), close to OpenAI's published figures for
GPT Image at high quality.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import hashlib
import io
import math
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson
from PIL import Image

from . import render
from .exchange import Exchange, PerEmulator, reply, reply_json, retry_seconds
from .outcomes import Outcome

GENERATIONS = "/v1/images/generations"
EDITS = "/v1/images/edits"
PREFIX = "/v1/images/"

#: Models that take any WxH (the SDK's ``size`` docstring, openai 3.57).
FLEXIBLE_MODELS = frozenset(
    {
        "gpt-image-2",
        "gpt-image-2-2026-04-21",
        "gpt-image-2.5-sunburst",
        "gpt-image-2.5-sunburst-2026-09-08",
        "gpt-image-2.5-flare",
        "gpt-image-2.5-flare-2026-09-08",
    }
)
#: Models that take only the three standard sizes.
FIXED_MODELS = frozenset(
    {"gpt-image-1.5", "gpt-image-1-mini", "gpt-image-2.6-sunburst", "gpt-image-2.6-flare"}
)
KNOWN_MODELS = FLEXIBLE_MODELS | FIXED_MODELS | {"chatgpt-image-latest"}
#: Retired (``types/image_model.py``): the service answers as for an unknown model.
RETIRED_MODELS = frozenset({"gpt-image-1", "dall-e-2", "dall-e-3"})
STANDARD_SIZES = ("1024x1024", "1536x1024", "1024x1536")
QUALITIES = frozenset({"low", "medium", "high", "auto"})
EXTRA_QUALITIES = frozenset({"xhigh", "max"})  # 2.5 Sunburst / Flare only
FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}
MAX_IMAGES = 16
MAX_IMAGE_BYTES = 50 * 1024 * 1024
MAX_EDGE = 3840
MIN_PIXELS = 655_360
MAX_PIXELS = 3840 * 2160

# Output image tokens per pixel by quality: GPT Image's published counts for 1024x1024
# (low 272, medium 1056, high 4160), scaled by pixel count.
_TOKENS_PER_MEGAPIXEL = {"low": 272, "medium": 1056, "high": 4160, "xhigh": 6240, "max": 8320}
IMAGE_INPUT_TOKENS = 765  # per input image: 85 + 170 x 4 tiles, a 1024x1024 image
_SIZE = re.compile(r"^(\d+)x(\d+)$")


class OpenAIWireError(Exception):
    """A request the service rejects: status code, error fields and extra headers."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        param: str | None = None,
        error_code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.status = code
        self.body: dict[str, Any] = {
            "error": {"message": message, "type": type_, "param": param, "code": error_code}
        }
        self.headers = headers or {}


@dataclass(frozen=True, slots=True)
class ReceivedImage:
    """One input image as it arrived: the form field name, file name, Content-Type, bytes."""

    name: str
    filename: str | None
    content_type: str | None
    data: bytes = field(repr=False)


@dataclass
class OpenAIState:
    """What the OpenAI routes saw, for tests. Read under ``lock`` or via the properties."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    received: list[list[ReceivedImage]] = field(default_factory=list)  # per edits request
    last_params: dict[str, Any] | None = None
    generated: Counter[str] = field(default_factory=Counter)
    requests: int = 0

    @property
    def references(self) -> list[ReceivedImage]:
        """Every input image of every edits request, in arrival order."""
        with self.lock:
            return [image for request in self.received for image in request]


openai_state = PerEmulator(OpenAIState)


@dataclass(frozen=True, slots=True)
class ImageParams:
    """A parsed generations or edits request."""

    model: str
    prompt: str
    size: str
    quality: str
    n: int
    output_format: str
    images: tuple[ReceivedImage, ...] = field(repr=False)


def owns(path: str) -> bool:
    return path.startswith(PREFIX)


def answer(exchange: Exchange) -> None:
    """Answer one OpenAI request (in the connection's thread)."""
    state = openai_state(exchange.emulator)
    with state.lock:
        state.requests += 1
    try:
        _answer(exchange, state)
    except OpenAIWireError as exc:
        exchange.handler.note = f"openai {exc.status}"
        reply_json(exchange.handler, exc.status, exc.body, headers=exc.headers)


def _answer(exchange: Exchange, state: OpenAIState) -> None:
    if exchange.method != "POST" or exchange.path not in (GENERATIONS, EDITS):
        raise OpenAIWireError(404, f"Invalid URL ({exchange.method} {exchange.path})")
    _check_key(exchange)
    if exchange.path == EDITS:
        params = parse_edits(exchange.header("Content-Type") or "", exchange.body)
    else:
        params = parse_generations(exchange.body)
    with state.lock:
        state.last_params = {
            "model": params.model,
            "prompt": params.prompt,
            "size": params.size,
            "quality": params.quality,
            "n": params.n,
            "output_format": params.output_format,
            "images": len(params.images),
        }
        if exchange.path == EDITS:
            state.received.append(list(params.images))
    validate(params, edits=exchange.path == EDITS)

    outcome = exchange.take(params.prompt)
    exchange.handler.note = f"openai {outcome.kind}"
    exchange.sleep(exchange.latency)
    if outcome.kind == "hang":
        exchange.sleep(outcome.seconds)
    request_id = "req_" + hashlib.sha256(f"{time.time_ns()}".encode()).hexdigest()[:24]
    headers = {"x-request-id": request_id}
    kind = outcome.kind
    if kind == "error":
        raise _scripted_error(outcome, headers)
    if kind in ("prompt_blocked", "finish"):
        raise _moderation_error(outcome, request_id, headers)
    if kind == "bad_json":
        reply(exchange.handler, 200, b"<html><body>Bad Gateway</body></html>", "text/html")
        return
    if kind == "text_only":
        reply_json(
            exchange.handler, 200, {"created": int(time.time()), "data": []}, headers=headers
        )
        return

    width, height = pixel_size(params.size)
    if kind == "wrong_size":
        width, height = outcome.width, outcome.height
    images = []
    for i in range(params.n):
        if kind == "bad_image":
            data = render.truncated_png()
        else:
            digest = _digest(params, i)
            refs = [image.data for image in params.images]
            png = render.render_png(
                str(getattr(exchange.emulator, "render", "plain")),
                width,
                height,
                digest=digest,
                caption=params.prompt.split("\n", 1)[0],
                references=refs,
            )
            data = _encode(png, params.output_format)
        images.append({"b64_json": base64.b64encode(data).decode("ascii")})
    body = {
        "created": int(time.time()),
        "background": "opaque",
        "data": images,
        "output_format": params.output_format,
        "quality": "high" if params.quality == "auto" else params.quality,
        "size": f"{width}x{height}",
        "usage": usage(params, width, height),
    }
    payload = orjson.dumps(body)
    reply(exchange.handler, 200, payload, headers=headers, truncate=kind == "drop")
    if kind not in ("drop", "bad_image"):
        with state.lock:
            state.generated[params.prompt] += params.n


def _check_key(exchange: Exchange) -> None:
    auth = exchange.header("Authorization") or ""
    scheme, _, key = auth.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise OpenAIWireError(
            401,
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as "
            "the password field (with blank username) if you're accessing the API from your "
            "browser and are prompted for a username. You can obtain an API key from "
            "https://platform.openai.com/account/api-keys.",
        )
    key = key.strip()
    if exchange.expected_key is not None and key != exchange.expected_key:
        # The service echoes the key masked; the adapter must scrub even that.
        masked = key[:8] + "*" * max(4, len(key) - 12) + key[-4:]
        raise OpenAIWireError(
            401,
            f"Incorrect API key provided: {masked}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            error_code="invalid_api_key",
        )


def parse_generations(body: bytes) -> ImageParams:
    """A generations JSON body; raises OpenAIWireError(400) like the service."""
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise OpenAIWireError(
            400, f"We could not parse the JSON body of your request. ({exc})"
        ) from exc
    if not isinstance(raw, dict):
        raise OpenAIWireError(400, "We could not parse the JSON body of your request.")
    return _params({k: v for k, v in raw.items()}, ())


def parse_edits(content_type: str, body: bytes) -> ImageParams:
    """A multipart edits body: form fields and ``image[]`` / ``image`` file parts."""
    if not content_type.lower().startswith("multipart/form-data"):
        raise OpenAIWireError(
            400, "Invalid Content-Type header (expected multipart/form-data)", param="image"
        )
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise OpenAIWireError(400, "Could not parse multipart form", param="image")
    fields: dict[str, Any] = {}
    images: list[ReceivedImage] = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if name in ("image", "image[]"):
            images.append(ReceivedImage(name, filename, part.get_content_type(), data))
        elif filename is None:
            fields[name] = data.decode("utf-8")
    return _params(fields, tuple(images))


def _params(raw: dict[str, Any], images: tuple[ReceivedImage, ...]) -> ImageParams:
    prompt = raw.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        raise OpenAIWireError(400, "Missing required parameter: 'prompt'.", param="prompt")
    try:
        n = int(raw.get("n") or 1)
    except (TypeError, ValueError) as exc:
        raise OpenAIWireError(400, "Invalid type for 'n': expected an integer.", param="n") from exc
    return ImageParams(
        model=str(raw.get("model") or "gpt-image-2"),
        prompt=prompt,
        size=str(raw.get("size") or "auto"),
        quality=str(raw.get("quality") or "auto"),
        n=n,
        output_format=str(raw.get("output_format") or "png"),
        images=images,
    )


def validate(params: ImageParams, *, edits: bool) -> None:
    """Raise OpenAIWireError for what the service refuses: model, size, quality, images."""
    model = params.model
    if model in RETIRED_MODELS or model not in KNOWN_MODELS:
        raise OpenAIWireError(
            404,
            f"The model '{model}' does not exist or you do not have access to it.",
            error_code="model_not_found",
        )
    if not 1 <= params.n <= 10:
        raise OpenAIWireError(
            400, f"Invalid 'n': integer above maximum value. Got {params.n}.", param="n"
        )
    allowed = QUALITIES | (EXTRA_QUALITIES if model.startswith("gpt-image-2.5") else frozenset())
    if params.quality not in allowed:
        raise OpenAIWireError(
            400,
            f"Invalid value: '{params.quality}'. Supported values are: "
            + ", ".join(f"'{q}'" for q in sorted(allowed))
            + ".",
            param="quality",
            error_code="invalid_value",
        )
    if params.output_format not in FORMATS:
        raise OpenAIWireError(
            400,
            f"Invalid value: '{params.output_format}'. Supported values are: 'png', 'jpeg' and "
            "'webp'.",
            param="output_format",
            error_code="invalid_value",
        )
    problem = size_problem(model, params.size)
    if problem:
        raise OpenAIWireError(
            400,
            f"Invalid value: '{params.size}'. {problem}",
            param="size",
            error_code="invalid_value",
        )
    if edits:
        if not params.images:
            raise OpenAIWireError(400, "Missing required parameter: 'image'.", param="image")
        if len(params.images) > MAX_IMAGES:
            raise OpenAIWireError(
                400,
                f"Invalid 'image': too many images. Expected at most {MAX_IMAGES}, got "
                f"{len(params.images)}.",
                param="image",
            )
        for i, image in enumerate(params.images, 1):
            if len(image.data) > MAX_IMAGE_BYTES or not render.check_decodable(image.data):
                raise OpenAIWireError(
                    400,
                    f"Invalid image file or mode for image {i}, please check your image file.",
                    param="image",
                    error_code="invalid_image_file",
                )


def size_problem(model: str, size: str) -> str | None:
    """Why ``size`` is refused for ``model``, or None when the service takes it."""
    if size == "auto" or size in STANDARD_SIZES:
        return None
    if model not in FLEXIBLE_MODELS:
        return "Supported values are: '1024x1024', '1536x1024', '1024x1536', and 'auto'."
    match = _SIZE.match(size)
    if match is None:
        return "Size must be 'auto' or of the form WIDTHxHEIGHT."
    width, height = int(match.group(1)), int(match.group(2))
    if width % 16 or height % 16:
        return "Width and height must both be divisible by 16."
    if max(width, height) > 3 * min(width, height):
        return "The aspect ratio must be between 1:3 and 3:1."
    if max(width, height) > MAX_EDGE:
        return f"The longest edge must be at most {MAX_EDGE} pixels."
    if not MIN_PIXELS <= width * height <= MAX_PIXELS:
        return f"The total pixel count must be between {MIN_PIXELS} and {MAX_PIXELS}."
    return None


def pixel_size(size: str) -> tuple[int, int]:
    """(width, height) for a size the service accepted; ``auto`` answers 1024x1024."""
    match = _SIZE.match(size)
    return (int(match.group(1)), int(match.group(2))) if match else (1024, 1024)


def usage(params: ImageParams, width: int, height: int) -> dict[str, Any]:
    """The ``usage`` object: text and image input tokens, image output tokens."""
    text = math.ceil(len(params.prompt) / 4)
    image_in = IMAGE_INPUT_TOKENS * len(params.images)
    quality = "high" if params.quality == "auto" else params.quality
    per_image = math.ceil(width * height * _TOKENS_PER_MEGAPIXEL[quality] / (1024 * 1024))
    output = per_image * params.n
    return {
        "input_tokens": text + image_in,
        "input_tokens_details": {"text_tokens": text, "image_tokens": image_in},
        "output_tokens": output,
        "output_tokens_details": {"image_tokens": output, "text_tokens": 0},
        "total_tokens": text + image_in + output,
    }


def _scripted_error(outcome: Outcome, headers: dict[str, str]) -> OpenAIWireError:
    code = outcome.code
    retry = retry_seconds(outcome)
    if retry is not None:
        headers = {**headers, "retry-after": retry}
    if code == 429:
        type_, default = "requests", "Rate limit reached for images per minute. Please try again."
        if outcome.reason == "insufficient_quota":
            type_ = "insufficient_quota"
            default = "You exceeded your current quota, please check your plan and billing details."
    elif code >= 500:
        type_, default = "server_error", "The server had an error processing your request."
    else:
        type_, default = "invalid_request_error", f"HTTP {code}"
    # Outcome.error fills in Google's stock message when none is given: use OpenAI's then.
    stock = Outcome.error(code).message
    message = outcome.message if outcome.message and outcome.message != stock else default
    return OpenAIWireError(code, message, type_=type_, error_code=outcome.reason, headers=headers)


def _moderation_error(
    outcome: Outcome, request_id: str, headers: dict[str, str]
) -> OpenAIWireError:
    stage = "input" if outcome.kind == "prompt_blocked" else "output"
    category = "sexual" if (outcome.reason or "").upper() in ("SAFETY", "IMAGE_SAFETY") else "other"
    error = OpenAIWireError(
        400,
        "Your request was rejected by the safety system. If you believe this is an error, "
        f"contact us at help.openai.com and include the request ID {request_id}. "
        f"safety_violations=[{category}].",
        type_="image_generation_user_error",
        error_code="moderation_blocked",
        headers=headers,
    )
    error.body["error"]["moderation_details"] = {
        "moderation_stage": stage,
        "categories": [category],
    }
    return error


def _digest(params: ImageParams, index: int) -> str:
    digest = hashlib.sha256()
    for piece in (params.model, params.prompt, params.size, params.quality, str(index)):
        digest.update(piece.encode() + b"\0")
    for image in params.images:
        digest.update(hashlib.sha256(image.data).digest())
    return digest.hexdigest()


def _encode(png: bytes, output_format: str) -> bytes:
    if output_format == "png":
        return png
    with Image.open(io.BytesIO(png)) as img:
        out = io.BytesIO()
        img.convert("RGB").save(out, FORMATS[output_format])
        return out.getvalue()

"""The ``generateContent`` wire format: parse what the SDK sends, build what the service answers.

Pure functions, no sockets. Shapes follow ``shared/notes/gemini-api.md`` ("Wire format"): the
request mixes casings (``inlineData`` holding ``mime_type``) and URL-safe base64, so both
spellings and both base64 alphabets are accepted everywhere.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..providers.gemini import ASPECTS, QUALITIES
from ..providers.gemini import tier_size as pixel_size
from .outcomes import Outcome
from .render import sha256_of

PRO_MODELS = frozenset({"gemini-3-pro-image", "gemini-3-pro-image-preview"})
FLASH_MODELS = frozenset({"gemini-2.5-flash-image", "gemini-3.1-flash-image"})
#: Text models: a request to one gets words, never an image (a source's prompt writer).
TEXT_MODELS = frozenset(
    {"gemini-2.5-flash", "gemini-2.5-flash-lite", "gemini-2.5-pro", "gemini-3-pro-preview"}
)
KNOWN_MODELS = PRO_MODELS | FLASH_MODELS | TEXT_MODELS

# Nano Banana (2.5 Flash Image) has one ~1 MP size per ratio (ai.google.dev image-generation
# page); the emulator uses the same table for 3.1 Flash, which is an approximation.
_FLASH_SIZES = {
    "1:1": (1024, 1024),
    "2:3": (832, 1248),
    "3:2": (1248, 832),
    "3:4": (864, 1184),
    "4:3": (1184, 864),
    "4:5": (896, 1152),
    "5:4": (1152, 896),
    "9:16": (768, 1344),
    "16:9": (1344, 768),
    "21:9": (1536, 672),
}

# Token accounting, close to the pricing page: Pro bills an output image as 1120 tokens at 1K/2K
# and 2000 at 4K ($0.134 / $0.24 at $120 per 1M); 2.5 Flash as 1290 tokens ($0.039 at $30/1M).
# Input images are counted at 258 tokens each, the Gemini 2.x figure for an image up to 384 px;
# Gemini 3 counts more (per media resolution), so prompt counts here are a lower bound.
IMAGE_INPUT_TOKENS = 258
_PRO_OUTPUT_TOKENS = {"1K": 1120, "2K": 1120, "4K": 2000}
_FLASH_OUTPUT_TOKENS = 1290

JSON_CONTENT_TYPE = "application/json; charset=UTF-8"

#: A ``fileData.fileUri`` -> (the file's bytes, its MIME type); raises WireError if unusable.
ResolveFile = Callable[[str], tuple[bytes, str]]


class WireError(Exception):
    """A request the service rejects: carries the HTTP code and the Google error body."""

    def __init__(self, code: int, status: str, message: str, details: list[Any] | None = None):
        super().__init__(f"{code} {status}: {message}")
        self.code = code
        self.body = error_body(code, status, message, details or [])

    @classmethod
    def from_outcome(cls, outcome: Outcome) -> WireError:
        """The error a scripted :meth:`Outcome.error` describes."""
        error = cls(outcome.code, outcome.status or "UNKNOWN", outcome.message or "")
        error.body = outcome_error_body(outcome)
        return error


@dataclass(frozen=True, slots=True)
class ParsedRequest:
    """What the emulator needs from a request body.

    ``text`` is every text part joined with newlines; ``references`` the decoded inline image
    bytes in order; ``aspect``/``size`` the imageConfig values or None; ``digest`` a sha256 hex
    over all of these and the model id.
    """

    model: str
    text: str
    references: tuple[bytes, ...] = field(repr=False)
    aspect: str | None
    size: str | None
    digest: str

    @property
    def pixel_size(self) -> tuple[int, int]:
        """(width, height) in pixels that the model would return."""
        aspect = self.aspect or "1:1"
        if self.model in FLASH_MODELS:
            return _FLASH_SIZES[aspect]
        return pixel_size(self.size or "1K", aspect)

    @property
    def caption(self) -> str:
        """The prompt's first line, as shown in the collage band."""
        return self.text.split("\n", 1)[0].strip()


def error_body(code: int, status: str, message: str, details: list[Any]) -> bytes:
    """The Google error JSON: ``{"error": {"code", "message", "status", "details"?}}``."""
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return orjson.dumps({"error": error})


def outcome_error_body(outcome: Outcome) -> bytes:
    """The body for :meth:`Outcome.error`, with RetryInfo / QuotaFailure / ErrorInfo details."""
    details: list[dict[str, Any]] = []
    if outcome.reason:
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": outcome.reason,
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            }
        )
    if outcome.quota_id:
        violation = {
            "quotaMetric": "generativelanguage.googleapis.com/generate_requests_per_model",
            "quotaId": outcome.quota_id,
            "quotaDimensions": {"location": "global", "model": "gemini-3-pro-image"},
        }
        details.append(
            {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [violation]}
        )
    if outcome.retry_delay:
        details.append(
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": outcome.retry_delay}
        )
    return error_body(outcome.code, outcome.status or "UNKNOWN", outcome.message or "", details)


def invalid_argument(message: str) -> WireError:
    return WireError(400, "INVALID_ARGUMENT", message)


def load_json(body: bytes) -> dict[str, Any]:
    """The request body as a JSON object; raises WireError(400) like the service."""
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise invalid_argument(f"Invalid JSON payload received. {exc}") from exc
    if not isinstance(raw, dict):
        raise invalid_argument("Invalid JSON payload received. Expected an object.")
    return raw


def parse_request(
    model: str, raw: dict[str, Any], resolve_file: ResolveFile | None = None
) -> ParsedRequest:
    """Parse a generateContent body (see :func:`load_json`).

    ``fileData`` parts (``{"fileUri", "mimeType"}``, either casing) are read through
    ``resolve_file`` (the Files API store) and join the inline references in part order.
    Raises WireError(400) for missing contents, bad base64, a non-image reference, an unknown
    aspect ratio or image size, and whatever ``resolve_file`` raises (403 for a file that is
    gone). Whether the reference bytes decode is left to the caller (it needs Pillow).
    """
    contents = raw.get("contents")
    if not isinstance(contents, list) or not contents:
        raise invalid_argument("* GenerateContentRequest.contents: contents is not specified")

    texts: list[str] = []
    references: list[bytes] = []
    for ci, content in enumerate(contents):
        parts = content.get("parts") if isinstance(content, dict) else None
        if not isinstance(parts, list):
            raise invalid_argument(f"* GenerateContentRequest.contents[{ci}].parts: missing")
        for pi, part in enumerate(parts):
            if not isinstance(part, dict):
                raise invalid_argument(f"Invalid value at 'contents[{ci}].parts[{pi}]'")
            if isinstance(part.get("text"), str):
                texts.append(part["text"])
            inline = _either(part, "inlineData", "inline_data")
            if inline is not None:
                references.append(_decode_inline(inline, f"contents[{ci}].parts[{pi}]"))
            file_data = _either(part, "fileData", "file_data")
            if file_data is not None:
                where = f"contents[{ci}].parts[{pi}].file_data"
                references.append(_read_file_data(file_data, where, resolve_file))

    config = _either(raw, "generationConfig", "generation_config") or {}
    image_config = _either(config, "imageConfig", "image_config") or {}
    aspect = _either(image_config, "aspectRatio", "aspect_ratio")
    size = _either(image_config, "imageSize", "image_size")
    if aspect is not None and aspect not in ASPECTS:
        raise invalid_argument(
            f"Unsupported aspect ratio {aspect!r}. Supported values are {', '.join(ASPECTS)}."
        )
    if size is not None and size not in QUALITIES:
        raise invalid_argument(
            f"Unsupported image size {size!r}. Supported values are {', '.join(QUALITIES)}."
        )

    text = "\n".join(texts)
    digest = hashlib.sha256()
    for piece in (model, text, aspect or "", size or ""):
        digest.update(piece.encode() + b"\0")
    for ref in references:
        digest.update(sha256_of(ref))
    return ParsedRequest(model, text, tuple(references), aspect, size, digest.hexdigest())


def _either(obj: Any, camel: str, snake: str) -> Any:
    if not isinstance(obj, dict):
        return None
    return obj.get(camel, obj.get(snake))


def _read_file_data(file_data: Any, where: str, resolve_file: ResolveFile | None) -> bytes:
    uri = _either(file_data, "fileUri", "file_uri")
    if not isinstance(uri, str) or not uri:
        raise invalid_argument(f"Invalid value at '{where}': file_uri is required")
    if resolve_file is None:
        raise invalid_argument(f"Invalid value at '{where}': fileData is not served here")
    data, mime = resolve_file(uri)
    if not mime.startswith("image/"):
        raise invalid_argument(f"Unsupported MIME type: {mime}")
    return data


def _decode_inline(inline: Any, where: str) -> bytes:
    if not isinstance(inline, dict) or not isinstance(inline.get("data"), str):
        raise invalid_argument(f"Invalid value at '{where}.inline_data': data is required")
    mime = _either(inline, "mimeType", "mime_type")
    if not isinstance(mime, str) or not mime.startswith("image/"):
        raise invalid_argument(f"Unsupported MIME type: {mime}")
    # The SDK sends URL-safe base64, other clients the standard alphabet; padding is optional.
    data = inline["data"].replace("-", "+").replace("_", "/")
    data += "=" * (-len(data) % 4)
    try:
        return base64.b64decode(data, validate=True)
    except binascii.Error as exc:
        raise invalid_argument(
            f"Invalid value at '{where}.inline_data.data' (TYPE_BYTES), Base64 decoding failed"
        ) from exc


def usage_metadata(
    request: ParsedRequest, *, image: bool = True, text_tokens: int = 0
) -> dict[str, Any]:
    """``usageMetadata`` for an answer; ``image`` says whether an output image was billed."""
    text_in = math.ceil(len(request.text) / 4)
    images_in = IMAGE_INPUT_TOKENS * len(request.references)
    prompt = text_in + images_in
    usage: dict[str, Any] = {"promptTokenCount": prompt}
    details: list[dict[str, Any]] = []
    if image:
        tokens = (
            _FLASH_OUTPUT_TOKENS
            if request.model in FLASH_MODELS
            else _PRO_OUTPUT_TOKENS[request.size or "1K"]
        )
        details.append({"modality": "IMAGE", "tokenCount": tokens})
    if text_tokens:
        details.append({"modality": "TEXT", "tokenCount": text_tokens})
    candidates = sum(d["tokenCount"] for d in details)
    # Pro is a thinking model; a deterministic 200..400 keeps reruns comparable.
    thoughts = 200 + int(request.digest[:8], 16) % 201 if request.model in PRO_MODELS else 0
    if candidates:
        usage["candidatesTokenCount"] = candidates
        usage["candidatesTokensDetails"] = details
    if thoughts and details:
        usage["thoughtsTokenCount"] = thoughts
    usage["totalTokenCount"] = prompt + candidates + (thoughts if details else 0)
    usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": text_in}]
    if images_in:
        usage["promptTokensDetails"].append({"modality": "IMAGE", "tokenCount": images_in})
    return usage


def text_usage(request: ParsedRequest, answer: str) -> dict[str, Any]:
    """``usageMetadata`` of a text answer: about four characters a token, and a deterministic
    64..127 thinking tokens for the models that think (all but Flash-Lite)."""
    prompt = math.ceil(len(request.text) / 4)
    out = math.ceil(len(answer) / 4)
    thoughts = 0 if "lite" in request.model else 64 + int(request.digest[:8], 16) % 64
    usage: dict[str, Any] = {
        "promptTokenCount": prompt,
        "candidatesTokenCount": out,
        "totalTokenCount": prompt + out + thoughts,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
    }
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    return usage


def default_text(request: ParsedRequest) -> str:
    """What a text model answers when nothing is scripted: deterministic for the request."""
    words = len(request.text.split())
    return (
        f"Emulated image prompt {request.digest[:12]}: a clean, well-lit illustration of the "
        f"subject the {words}-word request describes, with a calm background and no text."
    )


def image_part(png: bytes, *, thought: bool = False) -> dict[str, Any]:
    """An inline PNG part as the service sends it (standard base64, camelCase)."""
    part: dict[str, Any] = {
        "inlineData": {"mimeType": "image/png", "data": base64.b64encode(png).decode("ascii")}
    }
    if thought:
        part["thought"] = True
    else:
        part["thoughtSignature"] = base64.b64encode(b"emulator-signature").decode("ascii")
    return part


def response_body(
    request: ParsedRequest,
    parts: list[dict[str, Any]] | None,
    *,
    finish_reason: str = "STOP",
    usage: dict[str, Any],
) -> bytes:
    """A 200 body with one candidate; ``parts`` None leaves out ``content`` (a filtered answer)."""
    candidate: dict[str, Any] = {"finishReason": finish_reason, "index": 0}
    if parts is not None:
        candidate["content"] = {"role": "model", "parts": parts}
    return orjson.dumps(
        {
            "candidates": [candidate],
            "usageMetadata": usage,
            "modelVersion": request.model,
            "responseId": request.digest[:22],
        }
    )


def blocked_body(request: ParsedRequest, block_reason: str) -> bytes:
    """A 200 body without candidates: the prompt itself was blocked."""
    return orjson.dumps(
        {
            "promptFeedback": {"blockReason": block_reason},
            "usageMetadata": usage_metadata(request, image=False),
            "modelVersion": request.model,
            "responseId": request.digest[:22],
        }
    )

"""Batch API input lines for Gemini: one raw REST ``GenerateContentRequest`` per job. Pure.

A line is ``{"key": JOB_ID, "request": {...}}`` (notes ``providers.md``, "JSONL lines are raw
REST"). The request asks for what the online adapter asks for (:func:`.client.build_config`):
text and image output, the aspect ratio, and the size tier except for Flash models. The prompt
comes first, then each reference image in order: by ``fileData`` (its Files API URI) when it
was uploaded, else ``inlineData`` in standard base64 (the service accepts both alphabets).
"""

from __future__ import annotations

import base64
from typing import Any

import orjson

from ..base import ImageRequest, Reference
from . import takes_image_size

# The JSON a reference part adds beyond its data or URI, counted once from the real encoder.
_FILE_PART_OVERHEAD = len(orjson.dumps({"fileData": {"mimeType": "", "fileUri": ""}})) + 1
_INLINE_PART_OVERHEAD = len(orjson.dumps({"inlineData": {"mimeType": "", "data": ""}})) + 1


def reference_part(ref: Reference) -> dict[str, Any]:
    """A reference as a request part: by URI if it has one, else inline."""
    if ref.uri is not None:
        return {"fileData": {"mimeType": ref.mime_type, "fileUri": ref.uri}}
    return {"inlineData": {"mimeType": ref.mime_type, "data": base64.b64encode(ref.data).decode()}}


def request_json(request: ImageRequest) -> dict[str, Any]:
    """The REST ``GenerateContentRequest`` for one image."""
    parts: list[dict[str, Any]] = [{"text": request.prompt}]
    parts += [reference_part(ref) for ref in request.references]
    image_config: dict[str, str] = {"aspectRatio": request.aspect}
    if takes_image_size(request.model):
        image_config["imageSize"] = request.quality
    return {
        "contents": [{"role": "user", "parts": parts}],
        "generationConfig": {
            "responseModalities": ["TEXT", "IMAGE"],
            "imageConfig": image_config,
        },
    }


def request_line(key: str, request: ImageRequest) -> bytes:
    """One JSONL input line (no newline) keyed by ``key``."""
    return orjson.dumps({"key": key, "request": request_json(request)})


#: Bytes an upload costs beyond the file itself: the resumable protocol's two requests (start
#: with its JSON body, then the bytes) and their headers, about 1.5 KB (measured on the
#: emulator with google-genai 3.4.0's headers; Google's own add a few hundred more).
UPLOAD_OVERHEAD = 1_500


def inline_is_smaller(size: int, uri_length: int, uses: int = 1) -> bool:
    """Whether a reference of ``size`` bytes sent inline (base64) by ``uses`` requests costs
    fewer bytes than uploading it once and sending a ``fileData`` part with a URI of
    ``uri_length`` characters in each (MIME types cancel out): true only for tiny images, or
    small ones that one request uses."""
    inline = uses * (_INLINE_PART_OVERHEAD + 4 * ((size + 2) // 3))
    uploaded = size + UPLOAD_OVERHEAD + uses * (_FILE_PART_OVERHEAD + uri_length)
    return inline < uploaded

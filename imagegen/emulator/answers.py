"""Turn a parsed request and its scripted outcome into the HTTP answer. No sockets, no sleeping.

The server does the waiting (latency, :meth:`Outcome.hang`) and the writing; this module decides
the status, the body and whether the answer counts as a generated image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import render, wire
from .outcomes import Outcome


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer: status code, body bytes, Content-Type.

    ``truncate``: send only half the body, then close the connection (:meth:`Outcome.drop`).
    ``generated``: a whole, valid image went out (counted in ``Emulator.generated``);
    ``written``: a text model's answer went out (counted in ``Emulator.written``).
    """

    code: int
    body: bytes = field(repr=False)
    content_type: str = wire.JSON_CONTENT_TYPE
    truncate: bool = False
    generated: bool = False
    written: bool = False


def answer(request: wire.ParsedRequest, outcome: Outcome, render_mode: str) -> Answer:
    """The answer to ``request`` under ``outcome``, images rendered in ``render_mode``."""
    kind = outcome.kind
    if kind == "error":
        return Answer(outcome.code, wire.outcome_error_body(outcome))
    if kind == "bad_json":
        # What a proxy in front of the service sends: a 200 that is an HTML page.
        return Answer(200, b"<html><body>Bad Gateway</body></html>", "text/html; charset=UTF-8")
    if kind == "prompt_blocked":
        return Answer(200, wire.blocked_body(request, outcome.reason or "SAFETY"))
    if kind == "finish":
        usage = wire.usage_metadata(request, image=False)
        reason = outcome.reason or "OTHER"
        return Answer(200, wire.response_body(request, None, finish_reason=reason, usage=usage))
    if request.model in wire.TEXT_MODELS:
        # A text model answers in words: "text_only" scripts them, anything else (an unscripted
        # request included) gets the deterministic default.
        text = outcome.text if kind == "text_only" and outcome.text else wire.default_text(request)
        usage = wire.text_usage(request, text)
        body = wire.response_body(request, [{"text": text}], usage=usage)
        if kind == "drop":
            return Answer(200, body, truncate=True)
        return Answer(200, body, written=True)
    if kind == "text_only":
        text = outcome.text or ""
        usage = wire.usage_metadata(request, image=False, text_tokens=max(1, len(text) // 4))
        return Answer(200, wire.response_body(request, [{"text": text}], usage=usage))

    # Every other kind answers with image parts.
    width, height = request.pixel_size
    if kind == "wrong_size":
        width, height = outcome.width, outcome.height
    parts: list[dict[str, Any]] = []
    if kind == "thought_then_image":
        # An interim "thought" image, deliberately of another size than the final one.
        thought = render.render_png("plain", 256, 256, digest=request.digest[::-1])
        parts.append(wire.image_part(thought, thought=True))
    parts.append({"text": "Here is the image you asked for."})
    if kind == "bad_image":
        parts.append(wire.image_part(render.truncated_png()))
    else:
        png = render.render_png(
            render_mode,
            width,
            height,
            digest=request.digest,
            caption=request.caption,
            references=request.references,
        )
        if kind == "jpeg":
            png = render.as_jpeg(png)
        parts.append(wire.image_part(png, thought=kind == "thought_only"))
        if kind == "image_then_small":
            small = render.render_png("plain", 512, 512, digest=request.digest[::-1])
            parts.append(wire.image_part(small))
    body = wire.response_body(request, parts, usage=wire.usage_metadata(request))
    if kind == "drop":
        return Answer(200, body, truncate=True)
    return Answer(200, body, generated=kind != "bad_image")

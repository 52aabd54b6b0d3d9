"""Scripted outcomes: what the emulator answers to the next matching request.

In the style of llm's ``MockModel.enqueue``: a test queues outcomes, each request whose prompt
text contains the outcome's ``match`` string consumes the oldest one, and a request with nothing
scripted gets :meth:`Outcome.image`. The script file of ``imagegen emulator --script`` is a JSON
list of ``{"match": str | null, "outcomes": [{"kind": ..., <constructor arguments>}]}``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

# Canonical status names the service pairs with each HTTP code (google.rpc.Code), used when a
# scripted error does not give one.
STATUS_FOR_CODE = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

# Messages close to the real service's, so logs from the emulator read like production ones.
_MESSAGE_FOR_CODE = {
    400: "Request contains an invalid argument.",
    403: "The caller does not have permission",
    404: "Requested entity was not found.",
    429: "You exceeded your current quota, please check your plan and billing details.",
    500: "An internal error has occurred. Please retry or report in "
    "https://developers.generativeai.google/guide/troubleshooting",
    503: "The model is overloaded. Please try again later.",
    504: "The service is currently unavailable.",
}


def default_message(code: int) -> str:
    """The message :meth:`Outcome.error` gives a code when the script names none (a route
    family with messages of its own, Vertex's, tells a scripted message from it this way)."""
    return _MESSAGE_FOR_CODE.get(code, f"HTTP {code}")


KINDS = (
    "image",
    "error",
    "hang",
    "prompt_blocked",
    "finish",
    "text_only",
    "bad_json",
    "drop",
    "bad_image",
    "wrong_size",
    "thought_then_image",
    "image_then_small",
    "thought_only",
    "jpeg",
)


@dataclass(frozen=True, slots=True)
class Outcome:
    """One scripted answer. Build it with the classmethods; ``kind`` is one of :data:`KINDS`.

    Fields not used by a kind keep their defaults. ``seconds`` is a delay in seconds,
    ``width``/``height`` are pixels.
    """

    kind: str = "image"
    code: int = 200
    status: str | None = None
    message: str | None = None
    retry_delay: str | None = None
    quota_id: str | None = None
    reason: str | None = None
    seconds: float = 0.0
    text: str | None = None
    width: int = 0
    height: int = 0

    @classmethod
    def image(cls) -> Outcome:
        """HTTP 200 with one image of the requested size (the default for unscripted requests)."""
        return cls()

    @classmethod
    def error(
        cls,
        code: int,
        *,
        status: str | None = None,
        message: str | None = None,
        retry_delay: str | None = None,
        quota_id: str | None = None,
        reason: str | None = None,
    ) -> Outcome:
        """A Google error body ``{"error": {code, status, message, details}}``.

        ``retry_delay`` (a Duration string such as "30s") adds ``google.rpc.RetryInfo``;
        ``quota_id`` (such as "GenerateRequestsPerDayPerProjectPerModel") adds
        ``google.rpc.QuotaFailure``; ``reason`` (such as "API_KEY_INVALID") adds
        ``google.rpc.ErrorInfo``. ``status`` and ``message`` default from the code.
        """
        if not 400 <= code <= 599:
            raise ValueError(f"error code must be 4xx or 5xx, got {code}")
        return cls(
            kind="error",
            code=code,
            status=status or STATUS_FOR_CODE.get(code, "UNKNOWN"),
            message=message or default_message(code),
            retry_delay=retry_delay,
            quota_id=quota_id,
            reason=reason,
        )

    @classmethod
    def hang(cls, seconds: float) -> Outcome:
        """Wait ``seconds`` before answering normally: longer than a client timeout."""
        return cls(kind="hang", seconds=seconds)

    @classmethod
    def prompt_blocked(cls, block_reason: str = "SAFETY") -> Outcome:
        """HTTP 200, no candidates, ``promptFeedback.blockReason``."""
        return cls(kind="prompt_blocked", reason=block_reason)

    @classmethod
    def finish(cls, reason: str) -> Outcome:
        """HTTP 200, one candidate with ``finishReason`` (IMAGE_SAFETY, NO_IMAGE, ...), no parts."""
        return cls(kind="finish", reason=reason)

    @classmethod
    def text_only(cls, text: str = "I can't draw that, but here is a description.") -> Outcome:
        """HTTP 200, finishReason STOP, a single text part and no image."""
        return cls(kind="text_only", text=text)

    @classmethod
    def bad_json(cls) -> Outcome:
        """HTTP 200 whose body is not JSON (an HTML page from a proxy)."""
        return cls(kind="bad_json")

    @classmethod
    def drop(cls) -> Outcome:
        """Status and headers with a Content-Length, half the body, then the connection closes."""
        return cls(kind="drop")

    @classmethod
    def bad_image(cls) -> Outcome:
        """HTTP 200 whose image part holds bytes that do not decode (a truncated PNG)."""
        return cls(kind="bad_image")

    @classmethod
    def wrong_size(cls, width: int, height: int) -> Outcome:
        """HTTP 200 with an image of ``width`` x ``height`` pixels, whatever was asked."""
        return cls(kind="wrong_size", width=width, height=height)

    @classmethod
    def thought_then_image(cls) -> Outcome:
        """A small interim image marked ``"thought": true``, then the final image."""
        return cls(kind="thought_then_image")

    @classmethod
    def image_then_small(cls) -> Outcome:
        """The right image, then a 512x512 one after it in the same answer (the last image
        part is not the one asked for)."""
        return cls(kind="image_then_small")

    @classmethod
    def thought_only(cls) -> Outcome:
        """The only image part is marked ``thought`` (reported for Gemini 3)."""
        return cls(kind="thought_only")

    @classmethod
    def jpeg(cls) -> Outcome:
        """JPEG bytes of the right size, declared ``image/png`` (the notes: sniff the bytes)."""
        return cls(kind="jpeg")

    @classmethod
    def from_dict(cls, spec: dict[str, Any]) -> Outcome:
        """Build from a script entry such as ``{"kind": "error", "code": 503}``.

        Raises ValueError naming the entry when the kind or its arguments are wrong.
        """
        args = dict(spec)
        kind = args.pop("kind", "image")
        build = _BUILDERS.get(kind)
        if build is None:
            raise ValueError(f"unknown outcome kind {kind!r} in {spec}; use one of {KINDS}")
        try:
            return build(**args)
        except TypeError as exc:
            raise ValueError(f"bad arguments for outcome {kind!r} in {spec}: {exc}") from exc


_BUILDERS: dict[str, Callable[..., Outcome]] = {
    "image": Outcome.image,
    "error": Outcome.error,
    "hang": Outcome.hang,
    "prompt_blocked": Outcome.prompt_blocked,
    "finish": Outcome.finish,
    "text_only": Outcome.text_only,
    "bad_json": Outcome.bad_json,
    "drop": Outcome.drop,
    "bad_image": Outcome.bad_image,
    "wrong_size": Outcome.wrong_size,
    "thought_then_image": Outcome.thought_then_image,
    "image_then_small": Outcome.image_then_small,
    "thought_only": Outcome.thought_only,
    "jpeg": Outcome.jpeg,
}


class Script:
    """A thread-safe FIFO of (match, outcome) pairs shared by the handler threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[tuple[str | None, Outcome]] = []

    def enqueue(self, outcomes: Iterable[Outcome], match: str | None = None) -> None:
        """Append outcomes for requests whose text contains ``match`` (any request if None)."""
        with self._lock:
            self._queue.extend((match, outcome) for outcome in outcomes)

    def take(self, text: str) -> Outcome:
        """Pop the oldest outcome whose match fits ``text``; :meth:`Outcome.image` if none."""
        with self._lock:
            for i, (match, outcome) in enumerate(self._queue):
                if match is None or match in text:
                    del self._queue[i]
                    return outcome
        return Outcome.image()

    def pending(self) -> int:
        """How many scripted outcomes are still unused."""
        with self._lock:
            return len(self._queue)

    def load(self, path: Path) -> None:
        """Enqueue a script file's entries in order; raises ValueError naming the file."""
        try:
            entries = orjson.loads(path.read_bytes())
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"{path}: not JSON ({exc})") from exc
        if not isinstance(entries, list):
            raise ValueError(f"{path}: expected a JSON list of {{match, outcomes}} entries")
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("outcomes"), list):
                raise ValueError(f"{path}: entry {entry!r} needs an 'outcomes' list")
            match = entry.get("match")
            if match is not None and not isinstance(match, str):
                raise ValueError(f"{path}: 'match' must be a string or null in {entry!r}")
            try:
                outcomes = [Outcome.from_dict(spec) for spec in entry["outcomes"]]
            except (ValueError, TypeError) as exc:
                raise ValueError(f"{path}: {exc}") from exc
            self.enqueue(outcomes, match=match)

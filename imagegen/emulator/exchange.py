"""What a route family gets from the emulator for one request, and how it answers.

An :class:`Exchange` carries the request, the emulator's script (``take``), its stop-aware
``sleep`` and latency; :func:`reply` writes an answer with extra headers; :class:`PerEmulator`
keeps a family's state for each emulator. Used by :mod:`.openai_routes` and :mod:`.fal_routes`.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

import orjson

from .outcomes import Outcome

if TYPE_CHECKING:
    from .httpd import Handler

JSON = "application/json"


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request as a route family sees it, with the emulator's script and sleep.

    ``take(prompt)`` pops the scripted outcome for a prompt; ``sleep(seconds)`` is a delay that
    :meth:`Emulator.stop` cuts short; ``latency`` the emulator's per-answer delay in seconds.
    """

    emulator: object
    handler: Handler
    method: str
    path: str
    query: str
    body: bytes = field(repr=False)
    take: Callable[[str], Outcome]
    sleep: Callable[[float], None]
    latency: float
    expected_key: str | None

    def header(self, name: str) -> str | None:
        return self.handler.headers.get(name)

    @property
    def host(self) -> str:
        """The ``Host`` the client addressed (``127.0.0.1:PORT``), for URLs we hand back."""
        return self.header("Host") or "127.0.0.1"


def reply(
    handler: Handler,
    code: int,
    body: bytes,
    content_type: str = JSON,
    *,
    headers: Mapping[str, str] | None = None,
    truncate: bool = False,
) -> None:
    """Send a whole response with extra ``headers``; ``truncate`` sends half the body, hangs up.

    The same as ``Handler.reply`` plus headers (``retry-after``, ``x-request-id``), which the
    OpenAI and fal answers need.
    """
    handler.sent_status = code
    try:
        handler.send_response(code)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body[: len(body) // 2] if truncate else body)
        handler.wfile.flush()
    except OSError:
        handler.close_connection = True
        return
    if truncate:
        handler.close_connection = True


def reply_json(
    handler: Handler, code: int, payload: object, *, headers: Mapping[str, str] | None = None
) -> None:
    reply(handler, code, orjson.dumps(payload), headers=headers)


def retry_seconds(outcome: Outcome) -> str | None:
    """``Outcome.error(retry_delay="58s")`` as a ``retry-after`` header value ("58")."""
    if not outcome.retry_delay:
        return None
    return outcome.retry_delay.strip().removesuffix("s") or None


State = TypeVar("State")


class PerEmulator(Generic[State]):
    """A family's state for each emulator, made on first use, gone with the emulator."""

    def __init__(self, make: Callable[[], State]) -> None:
        self._make = make
        self._lock = threading.Lock()
        self._states: weakref.WeakKeyDictionary[object, State] = weakref.WeakKeyDictionary()

    def __call__(self, emulator: object) -> State:
        with self._lock:
            state = self._states.get(emulator)
            if state is None:
                state = self._make()
                self._states[emulator] = state
            return state

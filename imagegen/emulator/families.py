"""Route families beside Gemini's ``generateContent``: OpenAI images and the fal queue.

``Emulator._answer`` hands every request to :func:`answer` first; a family that claims the path
answers it, anything else falls through to the Gemini routes. Paths are disjoint:

    /v1/images/...          OpenAI (:mod:`.openai_routes`)
    /v1/..., /v1beta/...    Gemini (the emulator's own routes)
    /v1beta1/..., /v1/publishers/..., /v1/projects/..., /oauth2/token
                            Vertex AI (the emulator's own routes, with :mod:`.vertex`)
    anything else           fal's queue (:mod:`.fal_routes`): /{owner}/{alias}[/...]

Each family keeps its own state (what it received, what it counted) per emulator, reachable
with ``openai_state(emu)`` / ``fal_state(emu)``; the scripted outcomes are the emulator's
own (:meth:`Emulator.enqueue`), matched against the request's prompt.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import fal_routes, openai_routes
from .exchange import Exchange
from .outcomes import Outcome

if TYPE_CHECKING:
    from .httpd import Handler


def answer(
    emulator: Any,
    handler: Handler,
    path: str,
    query: str,
    body: bytes,
    *,
    take: Callable[[str], Outcome],
    sleep: Callable[[float], None],
) -> bool:
    """Answer the request if an OpenAI or fal route owns ``path``; False leaves it to Gemini."""
    exchange = Exchange(
        emulator,
        handler,
        handler.command,
        path,
        query,
        body,
        take,
        sleep,
        float(getattr(emulator, "latency", 0.0)),
        getattr(emulator, "expected_key", None),
    )
    if openai_routes.owns(path):
        openai_routes.answer(exchange)
        return True
    if fal_routes.owns(path):
        fal_routes.answer(exchange)
        return True
    return False

"""A loopback emulator of the Gemini ``generateContent`` REST API (and of Vertex AI's routes,
OpenAI's images and fal's queue), for tests and benchmarks.

    with Emulator(render="plain") as emu:
        emu.enqueue(Outcome.error(503), match="ZH01")
        provider = GeminiProvider("any", base_url=emu.base_url)

``imagegen emulator [--tls]`` runs it in the foreground and prints, for each SDK, the variables
that point it there: :func:`serve_forever`.
"""

from __future__ import annotations

from .cli import main, serve_forever
from .outcomes import KINDS, Outcome
from .render import RENDER_MODES
from .server import Emulator

__all__ = ["KINDS", "RENDER_MODES", "Emulator", "Outcome", "main", "serve_forever"]

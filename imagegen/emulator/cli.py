"""The ``imagegen emulator`` verb: run the emulator in the foreground until Ctrl-C."""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .render import RENDER_MODES
from .server import Emulator


def serve_forever(
    port: int = 8765,
    latency: float = 0.0,
    render: str = "collage",
    script: Path | str | None = None,
    *,
    expected_key: str | None = None,
) -> None:
    """Run the emulator in the foreground until Ctrl-C (the ``imagegen emulator`` verb).

    Prints the URL and how to point the SDK at it. Raises ValueError for a bad script file and
    OSError when the port is taken.
    """
    emulator = Emulator(port, latency, render, expected_key, script)
    emulator.log_requests = True
    with emulator:
        url = emulator.base_url
        print(f"Emulator listening on {url}", flush=True)
        print("Point the google-genai SDK (and imagegen) at it with:")
        print(f"  export GOOGLE_GEMINI_BASE_URL={url} GEMINI_API_KEY=any")
        print("  (unset GOOGLE_API_KEY: it wins over GEMINI_API_KEY)")
        print(f"Render: {render}; latency {latency:g} s; Ctrl-C to stop.", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)
    print(f"Emulator stopped after {emulator.requests} requests.")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m imagegen.emulator [--port N] [--latency S] [--render R] [--script FILE]``."""
    parser = argparse.ArgumentParser(
        prog="imagegen emulator", description="Serve a local Gemini generateContent emulator."
    )
    parser.add_argument("--port", type=int, default=8765, help="TCP port (0: any free port)")
    parser.add_argument("--latency", type=float, default=0.0, help="delay per request, seconds")
    parser.add_argument("--render", choices=RENDER_MODES, default="collage")
    parser.add_argument("--script", type=Path, help="JSON list of {match, outcomes} entries")
    parser.add_argument("--expected-key", help="reject any other API key as API_KEY_INVALID")
    args = parser.parse_args(argv)
    try:
        serve_forever(
            args.port, args.latency, args.render, args.script, expected_key=args.expected_key
        )
    except (ValueError, OSError) as exc:
        print(f"imagegen emulator: {exc}", file=sys.stderr)
        return 2
    return 0

"""The ``imagegen emulator`` verb: run the emulator in the foreground until Ctrl-C.

One emulator serves every provider's routes (Gemini, Vertex AI, OpenAI, fal's queue); it prints,
for each SDK, the environment that points it there. fal-client speaks only HTTPS, so fal needs
``--tls``: a second listener with a throwaway CA whose PEM file is printed for
``SSL_CERT_FILE`` (and removed when the emulator stops).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from .render import RENDER_MODES
from .server import Emulator

DEFAULT_PORT = 8765
DEFAULT_TLS_PORT = 8766


def pointing_lines(url: str, tls_netloc: str | None, ca_file: Path | None) -> list[str]:
    """What to export so each SDK (and imagegen) talks to the emulator at ``url``: one
    ``export`` line per provider, then the notes that go with them."""
    lines = [
        "Point each SDK (and imagegen --provider NAME) at it with:",
        f"  gemini: export GOOGLE_GEMINI_BASE_URL={url} GEMINI_API_KEY=any",
        f"  vertex: export GOOGLE_VERTEX_BASE_URL={url} GOOGLE_GENAI_USE_VERTEXAI=true "
        "GOOGLE_API_KEY=any",
        f"  openai: export OPENAI_BASE_URL={url}/v1 OPENAI_API_KEY=any",
    ]
    if tls_netloc is not None and ca_file is not None:
        lines.append(
            f"  fal:    export FAL_QUEUE_RUN_HOST={tls_netloc} SSL_CERT_FILE={ca_file} FAL_KEY=any"
        )
    else:
        lines.append("  fal:    needs HTTPS: restart with --tls")
    lines += [
        "  (unset GOOGLE_API_KEY for gemini: it wins over GEMINI_API_KEY; unset "
        "GOOGLE_CLOUD_PROJECT for vertex: a project wins over a key and asks for "
        "application-default credentials)",
    ]
    if ca_file is not None:
        lines.append(
            f"  CA certificate: {ca_file} (SSL_CERT_FILE makes a process trust only it: "
            "export it for fal runs only)"
        )
    return lines


def serve_forever(
    port: int = DEFAULT_PORT,
    latency: float = 0.0,
    render: str = "collage",
    script: Path | str | None = None,
    *,
    expected_key: str | None = None,
    tls_port: int | None = None,
) -> None:
    """Run the emulator in the foreground until Ctrl-C or SIGTERM (the ``imagegen emulator`` verb).

    With ``tls_port`` (0: any free port), also serve HTTPS there for fal-client. Prints the
    URLs and how to point each SDK at them. Raises ValueError for a bad script file, OSError
    when a port is taken, RuntimeError when ``tls_port`` is given without trustme installed.
    """
    emulator = Emulator(port, latency, render, expected_key, script)
    emulator.log_requests = True
    with contextlib.ExitStack() as stack:
        stack.enter_context(emulator)
        url = emulator.base_url
        print(f"Emulator listening on {url}", flush=True)
        tls_netloc = ca_file = None
        if tls_port is not None:
            from .tls import TLSListener

            tls = stack.enter_context(TLSListener(emulator, port=tls_port))
            tls_netloc, ca_file = tls.netloc, tls.ca_file
            print(f"HTTPS (for fal) on {tls.base_url}, CA {ca_file}", flush=True)
        for line in pointing_lines(url, tls_netloc, ca_file):
            print(line)
        # `kill` (SIGTERM) stops it as Ctrl-C does, so the CA's temporary folder goes too (a
        # shell starts background jobs with Ctrl-C ignored). Installed before the last line is
        # printed: whoever waits for that line may send SIGTERM at once.
        previous = signal.signal(signal.SIGTERM, _interrupt)
        try:
            with contextlib.suppress(KeyboardInterrupt):
                print(f"Render: {render}; latency {latency:g} s; Ctrl-C to stop.", flush=True)
                while True:
                    time.sleep(3600)
        finally:
            signal.signal(signal.SIGTERM, previous)
    print(f"Emulator stopped after {emulator.requests} requests.")


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m imagegen.emulator [--port N] [--tls [--tls-port N]] [--latency S] [--render R]
    [--script FILE] [--expected-key KEY]``."""
    parser = argparse.ArgumentParser(
        prog="imagegen emulator",
        description="Serve a local emulator of Gemini, Vertex AI, OpenAI images and fal's queue.",
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="TCP port (0: any free)")
    parser.add_argument(
        "--tls",
        action="store_true",
        help="also serve HTTPS with a throwaway CA (fal-client speaks only HTTPS)",
    )
    parser.add_argument(
        "--tls-port",
        type=int,
        default=DEFAULT_TLS_PORT,
        help=f"with --tls: the HTTPS port ({DEFAULT_TLS_PORT}; 0: any free)",
    )
    parser.add_argument("--latency", type=float, default=0.0, help="delay per request, seconds")
    parser.add_argument("--render", choices=RENDER_MODES, default="collage")
    parser.add_argument("--script", type=Path, help="JSON list of {match, outcomes} entries")
    parser.add_argument(
        "--expected-key",
        help="reject any other API key (and, on Vertex, any OAuth token it did not issue)",
    )
    args = parser.parse_args(argv)
    try:
        serve_forever(
            args.port,
            args.latency,
            args.render,
            args.script,
            expected_key=args.expected_key,
            tls_port=args.tls_port if args.tls else None,
        )
    except (ValueError, OSError, RuntimeError) as exc:
        print(f"imagegen emulator: {exc}", file=sys.stderr)
        return 2
    return 0

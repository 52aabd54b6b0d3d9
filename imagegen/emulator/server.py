"""A loopback HTTP server that answers ``generateContent`` like the Gemini API and Vertex AI.

The real google-genai SDK talks to it unchanged (point ``base_url``, ``GOOGLE_GEMINI_BASE_URL``
or, for Vertex, ``GOOGLE_VERTEX_BASE_URL`` at :attr:`Emulator.base_url`), so the adapter's
request building, response parsing and error mapping are tested against real HTTP. Routes,
error bodies and response shapes follow ``shared/notes/gemini-api.md``; Vertex's routes, auth
and error shapes are :mod:`.vertex`'s. Each request runs in its own daemon thread, so
``latency`` and ``hang`` are real, concurrent delays.
"""

from __future__ import annotations

import functools
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import SplitResult, parse_qs, urlsplit

from . import answers, families, render, vertex, wire
from .batch_routes import BatchRoutes
from .batches import BatchStore
from .clock import Clock
from .files_routes import FilesRoutes
from .filestore import FileStore
from .httpd import Handler, Server
from .outcomes import Outcome, Script
from .render import RENDER_MODES

_ROUTE_PREFIXES = ("/v1/models/", "/v1beta/models/")
_ROUTE_SUFFIX = ":generateContent"


class Emulator:
    """The emulator server; use as ``with Emulator() as emu: ... emu.base_url``.

    ``port`` 0 picks a free port. ``latency`` is a real delay in seconds before each answer to a
    valid request. ``render`` is "collage" or "plain" (see :mod:`.render`). ``expected_key``,
    when set, makes any other key an API_KEY_INVALID error; a missing key is always a 403.
    ``script`` is a JSON script file (see :mod:`.outcomes`). ``clock`` (seconds since the
    epoch; default ``time.time``, tests pass a :class:`.clock.ManualClock`) times file expiry
    and batch turnaround: :attr:`files` is the Files API store (:class:`.filestore.FileStore`),
    :attr:`batches` the batch jobs (:class:`.batches.BatchStore`), each with its faults and
    stats.

    Stats, safe to read from any thread: ``requests`` (count of all requests), ``generated``
    (Counter of successful image answers by prompt text), ``written`` (the same for text
    models' answers: a request to a text model gets words), ``max_in_flight`` (peak concurrent
    requests), ``request_starts`` (``time.monotonic()`` of each arrival), ``last_request_json``
    (the last parsed request body), ``last_request_path``. Set ``log_requests`` to print one
    line per request to stderr. Set ``on_request`` to a function of the prompt text to run it
    in the request's thread just before each valid request is answered, in every route family
    (a test's hook to act while a call is in flight: edit an input file, wait at a barrier).
    """

    def __init__(
        self,
        port: int = 0,
        latency: float = 0.0,
        render: str = "collage",
        expected_key: str | None = None,
        script: Path | str | None = None,
        host: str = "127.0.0.1",
        *,
        clock: Clock | None = None,
    ) -> None:
        if render not in RENDER_MODES:
            raise ValueError(f"render must be one of {RENDER_MODES}, got {render!r}")
        self.latency = latency
        self.render = render
        self.expected_key = expected_key
        self.log_requests = False
        self.on_request: Callable[[str], None] | None = None
        self._host, self._port = host, port
        self._script = Script()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._requests = 0
        self._in_flight = 0
        self._max_in_flight = 0
        self._generated: Counter[str] = Counter()
        self._written: Counter[str] = Counter()
        self._starts: list[float] = []
        self._last_json: dict[str, Any] | None = None
        self._last_path: str | None = None
        # The Files and Batch APIs (.files_routes, .batch_routes) keep time on `clock`.
        self.clock: Clock = clock or time.time
        self.files = FileStore(self.clock)
        self.batches = BatchStore(self.files, self._batch_answer, self.clock)
        self._routes = (
            FilesRoutes(self.files, self._check_key),
            BatchRoutes(self.batches, self._check_key),
        )
        if script is not None:
            self.script_from_file(script)

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> Emulator:
        """Bind and serve in a background daemon thread; returns self."""
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = Server((self._host, self._port), Handler, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket; sleeping handlers wake up and finish at once."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        server.close_connections()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash), for ``HttpOptions.base_url``."""
        if self._server is None:
            raise RuntimeError("the emulator is not running; call start() or use `with`")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- scripting ------------------------------------------------------------------------

    def enqueue(self, *outcomes: Outcome, match: str | None = None) -> None:
        """Answer the next requests whose prompt text contains ``match`` with ``outcomes``.

        Outcomes are taken in order by requests that pass validation (key, model, body);
        a request rejected before that consumes nothing.
        """
        self._script.enqueue(outcomes, match=match)

    def script_from_file(self, path: Path | str) -> None:
        """Enqueue a JSON script file; raises ValueError naming the file if it is malformed."""
        self._script.load(Path(path))

    @property
    def pending(self) -> int:
        """Scripted outcomes not consumed yet."""
        return self._script.pending()

    # -- stats ----------------------------------------------------------------------------

    @property
    def requests(self) -> int:
        with self._lock:
            return self._requests

    @property
    def generated(self) -> Counter[str]:
        with self._lock:
            return Counter(self._generated)

    @property
    def written(self) -> Counter[str]:
        """Text answers sent by text models, by request text."""
        with self._lock:
            return Counter(self._written)

    @property
    def max_in_flight(self) -> int:
        with self._lock:
            return self._max_in_flight

    @property
    def request_starts(self) -> list[float]:
        with self._lock:
            return list(self._starts)

    @property
    def last_request_json(self) -> dict[str, Any] | None:
        with self._lock:
            return self._last_json

    @property
    def last_request_path(self) -> str | None:
        """The path of the last generateContent request (no query: a ?key= stays out)."""
        with self._lock:
            return self._last_path

    # -- request handling (handler threads) -----------------------------------------------

    def handle_request(self, handler: Handler) -> None:
        """Answer one request; called by the HTTP plumbing in the connection's thread."""
        started = time.monotonic()
        handler.note = "-"
        with self._lock:
            self._requests += 1
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            self._starts.append(started)
        try:
            self._answer(handler)
        except wire.WireError as exc:
            handler.reply(exc.code, exc.body)
        except Exception as exc:
            # An emulator bug: answer like the service would (500), and show the traceback.
            traceback.print_exc()
            handler.reply(500, wire.error_body(500, "INTERNAL", f"emulator bug: {exc!r}", []))
        finally:
            with self._lock:
                self._in_flight -= 1
            if self.log_requests:
                # The path only: a ?key= query must not reach a log.
                path = urlsplit(handler.path).path
                elapsed = time.monotonic() - started
                print(
                    f"{handler.command} {path} -> {handler.sent_status} {handler.note} "
                    f"({elapsed:.2f} s)",
                    file=sys.stderr,
                    flush=True,
                )

    def _answer(self, handler: Handler) -> None:
        url = urlsplit(handler.path)
        body = handler.read_body()
        # The Files and Batch APIs, then the OpenAI and fal route families, answer their own
        # paths; everything else is Gemini's generateContent.
        for routes in self._routes:
            if routes.answer(handler, url, body):
                return
        take, sleep = self._take, self._sleep
        if families.answer(self, handler, url.path, url.query, body, take=take, sleep=sleep):
            return
        if handler.command == "POST" and url.path == vertex.TOKEN_PATH:
            handler.reply(*vertex.token_answer(self, body))
            return
        route = vertex.match(url.path) if handler.command == "POST" else None
        credential = ""
        if route is not None:
            credential = vertex.check_auth(
                self, route, handler.headers, url.query, self.expected_key
            )
            model, version = route.model, route.version
        elif handler.command == "POST" and _is_route(url.path):
            model = url.path.split("/models/", 1)[1].removesuffix(_ROUTE_SUFFIX)
            version = url.path.split("/", 2)[1]
            self._check_key(handler, url)
        else:
            raise wire.WireError(404, "NOT_FOUND", f"Method not found: {url.path}")
        raw = wire.load_json(body)
        with self._lock:
            self._last_json = raw
            self._last_path = url.path
        if route is not None and model not in vertex.KNOWN_MODELS:
            raise vertex.model_not_found(route)
        if model not in wire.KNOWN_MODELS:
            raise wire.WireError(
                404,
                "NOT_FOUND",
                f"models/{model} is not found for API version {version}, or is not supported "
                "for generateContent. Call ListModels to see the list of available models and "
                "their supported methods.",
            )
        request, outcome, reply = self._generate(model, raw, self.clock(), route, credential)
        handler.note = outcome.kind
        self._sleep(self.latency)
        if outcome.kind == "hang":
            self._sleep(outcome.seconds)
        # Counted after the latency and before the answer leaves, as a service bills the work:
        # a client that has read the answer always finds it counted.
        self._count(reply, request.text)
        handler.reply(reply.code, reply.body, reply.content_type, truncate=reply.truncate)

    def _generate(
        self,
        model: str,
        raw: dict[str, Any],
        at: float,
        route: vertex.Route | None = None,
        credential: str = "",
    ) -> tuple[wire.ParsedRequest, Outcome, answers.Answer]:
        """Answer one GenerateContentRequest as of time ``at`` (seconds, for file expiry), as
        the Gemini API does, or Vertex on its ``route`` (the request carrying ``credential``).

        Kept apart from the HTTP handling so that other routes can answer requests exactly as
        ``generateContent`` does. Raises WireError for a request the service rejects.
        """
        resolve = functools.partial(self.files.resolve_uri, at=at)
        request = wire.parse_request(model, raw, resolve)
        for ref in request.references:
            if not render.check_decodable(ref):
                raise wire.invalid_argument(
                    "Unable to process input image. Please retry or report in "
                    "https://developers.generativeai.google/guide/troubleshooting"
                )
        outcome = self._take(request.text)
        reply = vertex.answer(request, outcome, route, credential) if route is not None else None
        return request, outcome, reply or answers.answer(request, outcome, self.render)

    def _count(self, reply: answers.Answer, text: str) -> None:
        """Count an answer that carries work: an image (``generated``) or a text model's
        words (``written``)."""
        if reply.generated or reply.written:
            with self._lock:
                (self._generated if reply.generated else self._written)[text] += 1

    def _batch_answer(self, model: str, raw: dict[str, Any], at: float) -> answers.Answer:
        request, _, reply = self._generate(model, raw, at)
        self._count(reply, request.text)
        return reply

    def _check_key(self, handler: Handler, url: SplitResult) -> None:
        """Raise the service's error for a missing (403) or, if one is expected, wrong key."""
        key = handler.headers.get("x-goog-api-key") or parse_qs(url.query).get("key", [None])[0]
        if not key:
            raise wire.WireError(
                403,
                "PERMISSION_DENIED",
                "Method doesn't allow unregistered callers (callers without established "
                "identity). Please use API Key or other form of API consumer identity to call "
                "this API.",
            )
        if self.expected_key is not None and key != self.expected_key:
            invalid = Outcome.error(
                400,
                message="API key not valid. Please pass a valid API key.",
                reason="API_KEY_INVALID",
            )
            raise wire.WireError.from_outcome(invalid)

    def _take(self, prompt: str) -> Outcome:
        hook = self.on_request
        if hook is not None:
            hook(prompt)
        return self._script.take(prompt)

    def _sleep(self, seconds: float) -> None:
        # An Event wait, not time.sleep: stop() wakes every sleeping handler at once.
        if seconds > 0:
            self._stopping.wait(seconds)


def _is_route(path: str) -> bool:
    return path.startswith(_ROUTE_PREFIXES) and path.endswith(_ROUTE_SUFFIX)

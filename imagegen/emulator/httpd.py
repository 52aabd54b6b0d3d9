"""The stdlib HTTP plumbing under the emulator: a threading server and a request handler.

Every request goes to ``Emulator.handle_request(handler)``; the handler only reads the body
and writes answers (whole, or cut short for :meth:`Outcome.drop`).
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from . import wire


class RequestSink(Protocol):
    """What the server hands requests to (the Emulator)."""

    def handle_request(self, handler: Handler) -> None: ...


class Server(ThreadingHTTPServer):
    """One daemon thread per connection; remembers live connections so stop() can hang up."""

    daemon_threads = True
    # Many concurrent SDK connections arrive at once in the benchmarks.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type[Handler], emulator: RequestSink):
        self.emulator = emulator
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Hang up on every client: idle keep-alive handler threads then see EOF and exit."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out and hung up is normal traffic, not an emulator bug.
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class Handler(BaseHTTPRequestHandler):
    """Hands every request, whatever the method, to the emulator; sends what it answers."""

    # HTTP/1.1 so the SDK's pooled keep-alive connections are reused as with the real service.
    protocol_version = "HTTP/1.1"
    # Headers and body go out as two writes; with Nagle on, the body waits for the client's
    # delayed ACK (~40 ms a call, measured by the benchmark).
    disable_nagle_algorithm = True
    server: Server
    sent_status = 0
    note = "-"

    def do_POST(self) -> None:
        self.server.emulator.handle_request(self)

    do_GET = do_PUT = do_DELETE = do_PATCH = do_POST

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def reply(
        self,
        code: int,
        body: bytes,
        content_type: str = wire.JSON_CONTENT_TYPE,
        *,
        truncate: bool = False,
    ) -> None:
        """Send a whole response; with ``truncate`` only half the body, then hang up."""
        self.sent_status = code
        try:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2] if truncate else body)
            self.wfile.flush()
        except OSError:
            # The client gave up (timeout, cancel) or stop() hung up on it: nobody to tell.
            self.close_connection = True
            return
        if truncate:
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        # Quiet: the stock access log would print ?key= queries; see Emulator.log_requests.
        return

"""HTTPS in front of the emulator, with a throwaway certificate authority (trustme).

fal-client builds every queue URL as ``https://{FAL_QUEUE_RUN_HOST}/...`` (``client.py``,
``QUEUE_URL_FORMAT``): it cannot speak plain HTTP, so its tests need a TLS server whose
certificate the client trusts. :class:`TLSListener` is a second listening socket that hands
each decrypted request to the same :class:`~.server.Emulator` (same routes, script and stats)::

    with Emulator() as emu, TLSListener(emu) as tls:
        # FAL_QUEUE_RUN_HOST=tls.netloc  SSL_CERT_FILE=tls.ca_file
        ...

The CA and the server certificate (for 127.0.0.1 and localhost) are made in memory by
``trustme`` (a test dependency, imported only here); :attr:`ca_file` writes the CA's PEM to a
temporary file for ``SSL_CERT_FILE``, which httpx reads when a client is created.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import ssl
import tempfile
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

from .httpd import Handler, RequestSink, Server

HANDSHAKE_TIMEOUT = 10.0  # seconds a client may take to finish the TLS handshake


class _TLSServer(Server):
    """The emulator's threading server, with TLS done in each connection's own thread."""

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[Handler],
        emulator: RequestSink,
        context: ssl.SSLContext,
    ) -> None:
        self._context = context
        self._tls: set[ssl.SSLSocket] = set()
        self._tls_lock = threading.Lock()
        super().__init__(address, handler, emulator)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The handshake runs here, in the connection's thread, so a slow or silent client
        # never blocks the accept loop.
        request.settimeout(HANDSHAKE_TIMEOUT)
        try:
            tls = self._context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return  # the client gave up or did not trust us: nothing to answer
        tls.settimeout(None)
        with self._tls_lock:
            self._tls.add(tls)
        make_handler: Any = self.RequestHandlerClass
        try:
            make_handler(tls, client_address, self)
        finally:
            with self._tls_lock:
                self._tls.discard(tls)
            with contextlib.suppress(OSError):
                tls.close()

    def close_connections(self) -> None:
        super().close_connections()
        with self._tls_lock:
            connections = list(self._tls)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class TLSListener:
    """Serve ``emulator``'s routes over HTTPS on ``host:port`` (0: a free port).

    Use as a context manager. :attr:`base_url` is ``https://127.0.0.1:PORT``, :attr:`netloc`
    ``127.0.0.1:PORT`` (for ``FAL_QUEUE_RUN_HOST``), :attr:`ca_file` the CA's PEM path (for
    ``SSL_CERT_FILE``) and :meth:`client_context` an SSL context trusting only that CA.
    Raises RuntimeError when ``trustme`` is not installed (``pip install imagegen[test]``).
    """

    def __init__(self, emulator: RequestSink, host: str = "127.0.0.1", port: int = 0) -> None:
        try:
            import trustme
        except ImportError as exc:  # pragma: no cover - trustme is in the test extra
            raise RuntimeError("TLSListener needs trustme: pip install 'imagegen[test]'") from exc
        self._emulator = emulator
        self._host, self._port = host, port
        self._ca = trustme.CA()
        self._cert = self._ca.issue_cert(host, "localhost")
        self._server: _TLSServer | None = None
        self._thread: threading.Thread | None = None
        self._dir: Path | None = None

    def start(self) -> TLSListener:
        if self._server is not None:
            return self
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._cert.configure_cert(context)
        self._server = _TLSServer((self._host, self._port), Handler, self._emulator, context)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
            server.close_connections()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> TLSListener:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def netloc(self) -> str:
        """``127.0.0.1:PORT``: what ``FAL_QUEUE_RUN_HOST`` must say."""
        if self._server is None:
            raise RuntimeError("the TLS listener is not running; call start() or use `with`")
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    @property
    def base_url(self) -> str:
        return f"https://{self.netloc}"

    @property
    def ca_file(self) -> Path:
        """The CA certificate as a PEM file (written once, removed by :meth:`stop`)."""
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="imagegen-emulator-ca-"))
        path = self._dir / "ca.pem"
        if not path.exists():
            self._ca.cert_pem.write_to_path(str(path))
        return path

    def client_context(self) -> ssl.SSLContext:
        """A client SSL context that trusts this listener's CA (for plain httpx tests)."""
        context = ssl.create_default_context()
        self._ca.configure_trust(context)
        return context

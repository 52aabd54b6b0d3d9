"""The Files API routes, as google-genai 3.4.0 calls them (``files.py``, ``_api_client.py``).

    POST   /upload/v1beta/files                         resumable upload: start (API key)
    POST   /upload/v1beta/files?upload_id=ID             resumable upload: chunks (no key)
    GET    /v1beta/files?pageSize=N&pageToken=T          list      -> {"files", "nextPageToken"?}
    GET    /v1beta/files/{id}                            metadata  -> File
    DELETE /v1beta/files/{id}                            delete    -> {}
    GET    /v1beta/files/{id}:download?alt=media         the bytes, streamed
    GET    /download/v1beta/files/{id}:download?alt=media   the same (a File's ``downloadUri``)

Upload (notes ``providers.md``, "Files upload (resumable)"; the SDK's
``_extra_utils.prepare_resumable_upload`` and ``BaseApiClient._upload_fd``): the start request
carries ``X-Goog-Upload-Protocol: resumable``, ``X-Goog-Upload-Command: start``,
``X-Goog-Upload-Header-Content-Length`` and ``-Content-Type``, and the body ``{"file":
{"mime_type", "size_bytes", "display_name"?, "name"?}}`` (snake_case: the SDK dumps its
pydantic model; camelCase is accepted too). The reply has an empty body and the header
``x-goog-upload-url``: an **absolute** URL back to this server, built from the request's
``Host`` (the SDK posts the chunks to it unchanged unless the upload's own ``http_options``
carry a ``base_url``). Each chunk (8 MB in the SDK) is a POST with ``X-Goog-Upload-Command:
upload`` or ``upload, finalize`` and ``X-Goog-Upload-Offset``, and **no API key** (the SDK sends
only the upload's own headers; the upload id authorises it). Every chunk reply carries
``x-goog-upload-status``: ``active``, or ``final`` with ``{"file": File}``. Errors on a chunk
are sent with ``final`` too: without the header the SDK sleeps 1 + 2 s and retries
(``MAX_RETRY_COUNT``), and with ``active`` it would carry on uploading.

The File shape and the 403 for unknown or expired files: see :mod:`.filestore`. Download
faults: :meth:`.FileStore.fail_downloads`.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import SplitResult, parse_qs

import orjson

from . import wire
from .filestore import FileStore
from .httpd import Handler
from .outcomes import Outcome

CHUNK_GRANULARITY = 8 * 1024 * 1024  # the SDK's CHUNK_SIZE
STREAM_PIECE = 1024 * 1024
DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 100

_UPLOAD = "/upload/v1beta/files"
_LIST = "/v1beta/files"
_ONE = re.compile(r"^/v1beta/files/([^/:]+)$")
_DOWNLOAD = re.compile(r"^/(?:download/)?v1beta/files/([^/:]+):download$")

CheckKey = Callable[[Handler, SplitResult], None]


class FilesRoutes:
    """Answers the Files API paths; :meth:`answer` returns False for any other path."""

    def __init__(self, store: FileStore, check_key: CheckKey) -> None:
        self.store = store
        self._check_key = check_key

    def answer(self, handler: Handler, url: SplitResult, body: bytes) -> bool:
        path, method = url.path, handler.command
        query = parse_qs(url.query)
        if path == _UPLOAD and method == "POST":
            upload_id = query.get("upload_id", [None])[0]
            if upload_id is not None:
                self._chunk(handler, upload_id, body)
            else:
                self._check_key(handler, url)
                self._start(handler, body)
            return True
        download = _DOWNLOAD.match(path)
        if download and method == "GET":
            self._check_key(handler, url)
            self._download(handler, download.group(1), query)
            return True
        one = _ONE.match(path)
        if one and method in ("GET", "DELETE"):
            self._check_key(handler, url)
            if method == "GET":
                handler.note = "files.get"
                stored = self.store.get(one.group(1))
                handler.reply(200, orjson.dumps(stored.resource(origin(handler))))
            else:
                handler.note = "files.delete"
                self.store.delete(one.group(1))
                handler.reply(200, b"{}")
            return True
        if path == _LIST and method == "GET":
            self._check_key(handler, url)
            self._list(handler, query)
            return True
        return False

    def _start(self, handler: Handler, body: bytes) -> None:
        handler.note = "upload.start"
        headers = handler.headers
        if (headers.get("X-Goog-Upload-Protocol") or "").lower() != "resumable" or (
            headers.get("X-Goog-Upload-Command") or ""
        ).lower() != "start":
            raise wire.invalid_argument(
                "The emulator serves resumable uploads only: send X-Goog-Upload-Protocol: "
                "resumable and X-Goog-Upload-Command: start."
            )
        raw = wire.load_json(body) if body.strip() else {}
        requested = raw.get("file") or {}
        if not isinstance(requested, dict):
            raise wire.invalid_argument("Invalid value at 'file': expected an object")
        declared = headers.get("X-Goog-Upload-Header-Content-Length")
        try:
            size = int(declared) if declared is not None else None
        except ValueError as exc:
            raise wire.invalid_argument(f"Bad upload content length {declared!r}") from exc
        upload_id = self.store.start_upload(
            requested, size, headers.get("X-Goog-Upload-Header-Content-Type")
        )
        url = f"{origin(handler)}{_UPLOAD}?upload_id={upload_id}&upload_protocol=resumable"
        send(
            handler,
            200,
            b"",
            headers=[
                ("x-goog-upload-status", "active"),
                ("x-goog-upload-url", url),
                ("x-goog-upload-control-url", url),
                ("x-goog-upload-chunk-granularity", str(CHUNK_GRANULARITY)),
            ],
        )

    def _chunk(self, handler: Handler, upload_id: str, body: bytes) -> None:
        handler.note = "upload.chunk"
        command = handler.headers.get("X-Goog-Upload-Command") or ""
        commands = {c.strip().lower() for c in command.split(",")}
        try:
            if commands == {"query"}:
                received = self.store.received(upload_id)
                send(
                    handler,
                    200,
                    b"",
                    headers=[
                        ("x-goog-upload-status", "active"),
                        ("x-goog-upload-size-received", str(received)),
                    ],
                )
                return
            if "upload" not in commands:
                raise wire.invalid_argument(f"Unknown upload command {commands}")
            offset_header = handler.headers.get("X-Goog-Upload-Offset")
            try:
                offset = int(offset_header or "")
            except ValueError as exc:
                raise wire.invalid_argument("X-Goog-Upload-Offset is required") from exc
            stored = self.store.upload_chunk(
                upload_id, offset, body, finalize="finalize" in commands
            )
        except wire.WireError as exc:
            send(handler, exc.code, exc.body, headers=[("x-goog-upload-status", "final")])
            return
        if stored is None:
            send(handler, 200, b"", headers=[("x-goog-upload-status", "active")])
            return
        handler.note = "upload.final"
        answer = orjson.dumps({"file": stored.resource(origin(handler))})
        send(handler, 200, answer, headers=[("x-goog-upload-status", "final")])

    def _download(self, handler: Handler, file_id: str, query: dict[str, list[str]]) -> None:
        handler.note = "files.download"
        if query.get("alt") != ["media"]:
            raise wire.invalid_argument("Downloads need the query ?alt=media")
        fault = self.store.take_download_fault()
        if fault is not None:
            raise wire.WireError.from_outcome(Outcome.error(fault))
        stored = self.store.get(file_id)
        if stored.source != "GENERATED":
            raise wire.invalid_argument(
                f"Only generated files can be downloaded; files/{file_id} was uploaded."
            )
        # Counted before the body goes out, so a client that has read it sees the count.
        self.store.count_download()
        send(handler, 200, stored.data, content_type=stored.mime_type)

    def _list(self, handler: Handler, query: dict[str, list[str]]) -> None:
        handler.note = "files.list"
        files = self.store.live()
        start, size = page_window(query)
        page = files[start : start + size]
        body: dict[str, Any] = {"files": [f.resource(origin(handler)) for f in page]}
        if start + size < len(files):
            body["nextPageToken"] = page_token(start + size)
        handler.reply(200, orjson.dumps(body))


def origin(handler: Handler) -> str:
    """``http://HOST:PORT`` as the client addressed this server (its ``Host`` header)."""
    host = handler.headers.get("Host")
    if not host:
        address, port = handler.server.server_address[:2]
        host = f"{address!s}:{port}"
    return f"http://{host}"


def send(
    handler: Handler,
    code: int,
    body: bytes,
    *,
    headers: Iterable[tuple[str, str]] = (),
    content_type: str = wire.JSON_CONTENT_TYPE,
) -> bool:
    """Send a response with extra ``headers``, the body in 1 MB pieces; False if the client left.

    (``Handler.reply`` takes no extra headers; this stays here so the shared plumbing does not
    change.)
    """
    handler.sent_status = code
    try:
        handler.send_response(code)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            handler.send_header(name, value)
        handler.end_headers()
        view = memoryview(body)
        for start in range(0, len(view), STREAM_PIECE):
            handler.wfile.write(view[start : start + STREAM_PIECE])
        handler.wfile.flush()
    except OSError:
        handler.close_connection = True
        return False
    return True


def page_window(query: dict[str, list[str]]) -> tuple[int, int]:
    """(first index, page size) from ``pageSize`` and ``pageToken``; raises WireError(400)."""
    try:
        size = int(query.get("pageSize", [DEFAULT_PAGE_SIZE])[0])
    except ValueError as exc:
        raise wire.invalid_argument("Invalid pageSize") from exc
    size = DEFAULT_PAGE_SIZE if size <= 0 else min(size, MAX_PAGE_SIZE)
    token = query.get("pageToken", [""])[0]
    if not token:
        return 0, size
    try:
        return int(base64.urlsafe_b64decode(token.encode()).decode().removeprefix("offset:")), size
    except (ValueError, binascii.Error) as exc:
        raise wire.invalid_argument("Invalid pageToken") from exc


def page_token(offset: int) -> str:
    """An opaque token for the page starting at ``offset``."""
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()

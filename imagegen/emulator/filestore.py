"""The emulator's Files API storage: resumable upload sessions, stored files, expiry, faults.

No sockets: :mod:`.files_routes` speaks HTTP and calls this; :mod:`.batches` stores result files
here and resolves ``fileData`` references through it. Thread-safe (one lock).

Rules and their sources:

- A file lives ``ttl`` seconds (default 48 h) after its upload finishes, then is gone for every
  route (notes ``providers.md``, "Uploaded files expire after 48 h"; the Files API page).
- An unknown, deleted or expired file answers **403 PERMISSION_DENIED** "You do not have
  permission to access the File X or it may not exist." on get, download, delete and as a
  ``fileData`` reference: that is what the service says in field reports
  (google-gemini/deprecated-generative-ai-python#692, deprecated-generative-ai-js#236). It does
  not answer 404 for files; clients should treat both as "upload it again".
- A file id is up to 40 lowercase letters, digits or dashes, not starting or ending with a dash
  (Files API reference, ``File.name``); a requested name that breaks this is a 400, one that is
  taken a 409 ALREADY_EXISTS (the 409 is a guess).
- Only generated files (batch results) can be downloaded; an uploaded one is a 400 (google-genai
  3.4.0 ``files.py`` ``download``: "Files created by `upload` can't be downloaded"; the status
  code is a guess).
- ``fileData.fileUri`` must be an http(s) URI whose path is ``/v1beta/files/{id}`` (the form
  ``File.uri`` takes); anything else is a 400 INVALID_ARGUMENT (the message is a guess).
"""

from __future__ import annotations

import base64
import hashlib
import random
import re
import string
import threading
from dataclasses import dataclass, field
from typing import Any

from . import wire
from .clock import Clock, rfc3339
from .outcomes import STATUS_FOR_CODE

FILE_TTL_SECONDS = 48 * 3600.0
# Files API limit per file (ai.google.dev Files API page: "up to 2 GB per file").
MAX_FILE_BYTES = 2 * 1024**3

_ID = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")
_URI = re.compile(r"^https?://[^/]+/v1beta/files/([^/?#:]+)$")
_ID_ALPHABET = string.ascii_lowercase + string.digits


class Content(bytes):
    """A stored file's bytes, carrying their SHA-256 (computed once, when stored)."""

    sha256: bytes

    @classmethod
    def of(cls, data: bytes | bytearray) -> Content:
        content = cls(data)
        content.sha256 = hashlib.sha256(content).digest()
        return content


@dataclass(frozen=True, slots=True)
class StoredFile:
    """One stored file. Times are Unix seconds; ``source`` is "UPLOADED" or "GENERATED"."""

    id: str
    mime_type: str
    data: Content = field(repr=False)
    display_name: str | None
    create_time: float
    expire_time: float
    source: str

    @property
    def name(self) -> str:
        return f"files/{self.id}"

    def resource(self, origin: str) -> dict[str, Any]:
        """The ``File`` JSON (camelCase, int64 as a string) with URIs under ``origin``."""
        body: dict[str, Any] = {
            "name": self.name,
            "mimeType": self.mime_type,
            "sizeBytes": str(len(self.data)),
            "createTime": rfc3339(self.create_time),
            "updateTime": rfc3339(self.create_time),
            "expirationTime": rfc3339(self.expire_time),
            "sha256Hash": base64.b64encode(self.data.sha256).decode("ascii"),
            "uri": f"{origin}/v1beta/files/{self.id}",
            "state": "ACTIVE",
            "source": self.source,
        }
        if self.display_name is not None:
            body["displayName"] = self.display_name
        if self.source == "GENERATED":
            body["downloadUri"] = f"{origin}/download/v1beta/files/{self.id}:download?alt=media"
        return body


@dataclass(slots=True)
class _Upload:
    """A resumable upload in progress; ``size`` is the declared byte count, if any."""

    file_id: str
    mime_type: str
    display_name: str | None
    size: int | None
    received: bytearray = field(default_factory=bytearray)


class FileStore:
    """Stored files and upload sessions, on the emulator's clock (seconds).

    Stats: ``uploads`` (finished uploads), ``uploaded_bytes``, ``downloads`` (200 answers to
    download requests), ``failed_downloads`` (scripted download faults served),
    ``failed_uploads`` (scripted upload faults served).
    """

    def __init__(self, clock: Clock, ttl: float = FILE_TTL_SECONDS) -> None:
        self.clock = clock
        self.ttl = ttl
        self._lock = threading.Lock()
        self._files: dict[str, StoredFile] = {}
        self._uploads: dict[str, _Upload] = {}
        self._random = random.Random()
        self._download_faults: list[int] = []
        self._upload_faults: list[int] = []
        self.uploads = 0
        self.uploaded_bytes = 0
        self.downloads = 0
        self.failed_downloads = 0
        self.failed_uploads = 0

    # -- faults (tests) -------------------------------------------------------------------

    def fail_downloads(self, times: int = 1, code: int = 503) -> None:
        """Answer the next ``times`` download requests with HTTP ``code`` (a Google error)."""
        with self._lock:
            self._download_faults.extend([code] * times)

    def fail_uploads(self, times: int = 1, code: int = 503) -> None:
        """Answer the next ``times`` upload *start* requests with HTTP ``code``."""
        with self._lock:
            self._upload_faults.extend([code] * times)

    def forget(self, name: str) -> None:
        """Drop a file as if the service had lost it early (``files/ID`` or ``ID``)."""
        with self._lock:
            self._files.pop(name.removeprefix("files/"), None)

    # -- reading --------------------------------------------------------------------------

    def get(self, name: str) -> StoredFile:
        """The live file ``files/ID`` (or ``ID``); raises WireError(403) if unknown or expired."""
        file_id = name.removeprefix("files/")
        now = self.clock()
        with self._lock:
            stored = self._files.get(file_id)
            if stored is not None and now >= stored.expire_time:
                del self._files[file_id]
                stored = None
        if stored is None:
            raise not_accessible(file_id)
        return stored

    def live(self) -> list[StoredFile]:
        """Every unexpired file, newest first."""
        now = self.clock()
        with self._lock:
            files = [f for f in self._files.values() if now < f.expire_time]
        return sorted(files, key=lambda f: f.create_time, reverse=True)

    def resolve_uri(self, uri: str, at: float | None = None) -> tuple[bytes, str]:
        """(bytes, mime type) of the file a ``fileData.fileUri`` names, as of time ``at``.

        ``at`` defaults to now; a batch passes the time it processed the request. Raises
        WireError 400 for a URI that is not a Files API URI, 403 for an unknown or expired file.
        """
        match = _URI.match(uri)
        if match is None:
            raise wire.invalid_argument(f"Unsupported file uri: {uri}")
        file_id = match.group(1)
        when = self.clock() if at is None else at
        with self._lock:
            stored = self._files.get(file_id)
        if stored is None or when >= stored.expire_time:
            raise not_accessible(file_id)
        return stored.data, stored.mime_type

    def take_download_fault(self) -> int | None:
        """The HTTP code of the next scripted download fault, or None (consumes it)."""
        with self._lock:
            if not self._download_faults:
                return None
            self.failed_downloads += 1
            return self._download_faults.pop(0)

    def count_download(self) -> None:
        with self._lock:
            self.downloads += 1

    # -- writing --------------------------------------------------------------------------

    def start_upload(
        self, requested: dict[str, Any], size: int | None, mime_type: str | None
    ) -> str:
        """Open a resumable upload; returns its upload id.

        ``requested`` is the ``file`` object of the start body (either casing). Raises
        WireError for a scripted fault, a bad or taken name, or a size over 2 GB.
        """
        with self._lock:
            if self._upload_faults:
                self.failed_uploads += 1
                code = self._upload_faults.pop(0)
                raise wire.WireError(code, STATUS_FOR_CODE.get(code, "UNKNOWN"), "Upload failed.")
        name = _either(requested, "name")
        mime = _either(requested, "mimeType", "mime_type") or mime_type
        display = _either(requested, "displayName", "display_name")
        if size is not None and size > MAX_FILE_BYTES:
            raise wire.invalid_argument(f"File size {size} exceeds the limit of 2 GB.")
        if not isinstance(mime, str) or not mime:
            raise wire.invalid_argument("* File.mime_type: a MIME type is required")
        with self._lock:
            if name is None:
                file_id = self._new_id(12)
            else:
                file_id = str(name).removeprefix("files/")
                if not _ID.match(file_id):
                    raise wire.invalid_argument(
                        f"Invalid file name {name!r}: up to 40 lowercase letters, digits or "
                        "dashes, not starting or ending with a dash."
                    )
                if file_id in self._files:
                    raise wire.WireError(409, "ALREADY_EXISTS", f"File {name} already exists.")
            upload_id = self._new_id(32)
            self._uploads[upload_id] = _Upload(file_id, mime, display, size)
        return upload_id

    def upload_chunk(
        self, upload_id: str, offset: int, data: bytes, *, finalize: bool
    ) -> StoredFile | None:
        """Append a chunk at byte ``offset``; on ``finalize`` store and return the file.

        Raises WireError 404 for an unknown upload id, 400 for a wrong offset or a final size
        that differs from the declared one.
        """
        with self._lock:
            upload = self._uploads.get(upload_id)
            if upload is None:
                raise wire.WireError(404, "NOT_FOUND", f"Unknown upload id {upload_id}.")
            if offset != len(upload.received):
                raise wire.invalid_argument(
                    f"Invalid upload offset {offset}: {len(upload.received)} bytes received."
                )
            upload.received += data
            if not finalize:
                return None
            # Out of the table: no other request reaches this upload's bytes any more.
            del self._uploads[upload_id]
        if upload.size is not None and len(upload.received) != upload.size:
            raise wire.invalid_argument(
                f"Upload size {len(upload.received)} differs from the declared {upload.size}."
            )
        # Copying and hashing up to 2 GB takes seconds: not while holding the store's lock.
        content = Content.of(upload.received)
        now = self.clock()
        stored = StoredFile(
            upload.file_id,
            upload.mime_type,
            content,
            upload.display_name,
            now,
            now + self.ttl,
            "UPLOADED",
        )
        with self._lock:
            self._files[stored.id] = stored
            self.uploads += 1
            self.uploaded_bytes += len(stored.data)
            return stored

    def received(self, upload_id: str) -> int:
        """Bytes received so far by an open upload; raises WireError(404) if unknown."""
        with self._lock:
            upload = self._uploads.get(upload_id)
            if upload is None:
                raise wire.WireError(404, "NOT_FOUND", f"Unknown upload id {upload_id}.")
            return len(upload.received)

    def add_generated(self, file_id: str, data: bytes, mime_type: str, now: float) -> StoredFile:
        """Store a generated file (a batch's results) created at ``now``."""
        stored = StoredFile(
            file_id, mime_type, Content.of(data), None, now, now + self.ttl, "GENERATED"
        )
        with self._lock:
            self._files[file_id] = stored
        return stored

    def delete(self, name: str) -> None:
        """Delete a live file; raises WireError(403) like :meth:`get` if there is none."""
        stored = self.get(name)
        with self._lock:
            self._files.pop(stored.id, None)

    def new_id(self, length: int) -> str:
        """A fresh random id of lowercase letters and digits."""
        with self._lock:
            return self._new_id(length)

    def _new_id(self, length: int) -> str:
        while True:
            candidate = "".join(self._random.choices(_ID_ALPHABET, k=length))
            if candidate not in self._files and candidate not in self._uploads:
                return candidate


def not_accessible(file_id: str) -> wire.WireError:
    """The service's answer for a file that does not exist (any more) or is not yours."""
    return wire.WireError(
        403,
        "PERMISSION_DENIED",
        f"You do not have permission to access the File {file_id} or it may not exist.",
    )


def _either(obj: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if obj.get(key) is not None:
            return obj[key]
    return None

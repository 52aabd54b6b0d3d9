"""Reference images uploaded once to the provider's file store, and reused by every request.

A real reference photo is 2-5 MB and a combo sends 3-5 of them with every prompt: inline, each
request carries 10-25 MB of base64. Uploaded once (:class:`~imagegen.providers.batch.FileStore`,
Gemini's Files API), each request carries a URI of ~70 bytes instead.

- **Distinct by content**: a file's key is the SHA-256 of its bytes (streamed, computed once
  per path and run), so the same photo copied into seven combos is one upload.
- **Journaled**: each upload is a session event (:class:`~imagegen.model.UploadRecord`), so a
  resumed session reuses it instead of uploading again.
- **Fresh enough**: a record is reused while the file has at least ``min_life`` seconds left
  before the provider's expiry (48 h for Gemini); a batch asks for its whole deadline. A file
  the service no longer knows (a 403 :class:`~imagegen.errors.FileGone`) is forgotten and
  uploaded again by the next request that needs it.
- **Once at a time**: concurrent requests for the same content wait for one upload.
- A reference cheaper inline than uploaded (a tiny image, or a small one one request uses) is
  not uploaded at all.

:class:`UploadingProvider` puts this in front of the online pool's provider, so the pool
itself does not change: its requests leave with URIs, and a :class:`FileGone` answer is met by
one re-upload and one more try of the same attempt.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import anyio

from ..errors import FileGone, unwrap_group
from ..images import probe
from ..journal import Journal
from ..model import SessionUpdate, UploadRecord
from ..providers.base import Checkpoint, Generation, ImageProvider, ImageRequest, Reference
from ..providers.batch import FileStore
from ..references import ReferenceCache

#: Seconds an uploaded reference must still live to be used by an online request: an
#: attempt, its retries and the pool's pauses fit in an hour.
ONLINE_MIN_LIFE = 3600.0
_HASH_CHUNK = 1024 * 1024
# Bytes read from a reference to learn its format when it is sent by URI.
_HEADER_BYTES = 64 * 1024


def file_digest(path: Path) -> tuple[str, int]:
    """(SHA-256 hex, size in bytes) of a file, read in 1 MB pieces (blocking)."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _expiry(record: UploadRecord) -> float | None:
    if record.expires is None:
        return None
    try:
        when = datetime.fromisoformat(record.expires)
    except ValueError:
        return 0.0  # unreadable: treat as expired, upload again
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


class ReferenceUploads:
    """The session's uploaded references: content digests, journaled records, uploads.

    ``clock`` is the wall clock in Unix seconds (the provider's expiry times are compared with
    it; tests pass the emulator's ``ManualClock``). ``uses`` counts the requests that will
    send each reference path (default 1), to tell when inline is cheaper.
    """

    def __init__(
        self,
        journal: Journal,
        store: FileStore,
        *,
        clock: Callable[[], float] = time.time,
        uses: Mapping[str, int] | None = None,
    ) -> None:
        self.journal = journal
        self.store = store
        self.clock = clock
        self.uses = uses or {}
        self._digests: dict[str, tuple[str, int]] = {}  # path -> digest, size
        self._locks: dict[str, anyio.Lock] = {}
        self._gone: set[str] = set()  # file names the service no longer knows
        self._checked: set[str] = set()  # file names confirmed alive this run
        self._fresh: set[str] = set()  # file names uploaded by this run

    async def digest(self, path: str) -> tuple[str, int]:
        """(content digest, size) of the reference at ``path``, computed once per run (as the
        reference cache, a run does not see a reference edited while it runs: every request
        of the run sends the same image); OSError if unreadable."""
        known = self._digests.get(path)
        if known is None:
            known = await anyio.to_thread.run_sync(file_digest, Path(path))
            self._digests[path] = known
        return known

    def name_of(self, uri: str) -> str | None:
        """The file name of an upload this session recorded under ``uri``."""
        for record in self.journal.state.uploads.values():
            if record.uri == uri:
                return record.name
        return None

    def forget(self, name: str) -> None:
        """The service no longer knows file ``name``: the next request uploads it again."""
        self._gone.add(name)
        self._checked.discard(name)

    def usable(self, record: UploadRecord, min_life: float) -> bool:
        """Whether a journaled upload can still be sent: not forgotten, and living at least
        ``min_life`` more seconds by its recorded expiry."""
        if record.name in self._gone:
            return False
        expires = _expiry(record)
        if expires is None:
            return True
        if record.name in self._fresh:  # uploaded by this run: as fresh as it can be
            min_life = 0.0
        return expires - self.clock() >= min_life

    async def resolve(
        self,
        path: str,
        mime_type: str,
        *,
        min_life: float = ONLINE_MIN_LIFE,
        verify: bool = False,
    ) -> UploadRecord | None:
        """The upload of the reference at ``path`` (uploading it if no usable one is known),
        or None when it is cheaper inline. ``verify`` asks the service whether a journaled
        file still exists before trusting it (once per run and file). Raises OSError for an
        unreadable file and ProviderError types when the upload fails."""
        digest, size = await self.digest(path)
        if self.store.inline_is_smaller(size, self.uses.get(path, 1)):
            return None
        lock = self._locks.setdefault(digest, anyio.Lock())
        async with lock:
            record = self.journal.state.uploads.get(digest)
            if record is not None and self.usable(record, min_life):
                if verify and record.name not in self._checked:
                    alive = await self.store.file_status(record.name)
                    if alive is None:
                        self.forget(record.name)
                    else:
                        self._checked.add(record.name)
                if self.usable(record, min_life):
                    return record
            uploaded = await self.store.upload_file(Path(path), mime_type, f"ref-{digest[:16]}")
            expires = (
                None
                if uploaded.expires is None
                else datetime.fromtimestamp(uploaded.expires, UTC).isoformat()
            )
            record = UploadRecord(
                digest,
                uploaded.name,
                uploaded.uri,
                uploaded.mime_type or mime_type,
                size,
                expires,
                datetime.fromtimestamp(self.clock()).isoformat(timespec="seconds"),
            )
            await self.journal.update_session(SessionUpdate(upload=record))
            self._checked.add(record.name)
            self._fresh.add(record.name)
            return record

    async def recheck(self, names: list[str]) -> None:
        """Ask the service about each of these files again (once the service said one of a
        request's files is gone, the others may be too: an earlier run's, say)."""
        for name in names:
            self._checked.discard(name)
            if await self.store.file_status(name) is None:
                self.forget(name)
            else:
                self._checked.add(name)

    async def by_uri(
        self, refs: tuple[Reference, ...], *, min_life: float = ONLINE_MIN_LIFE
    ) -> tuple[Reference, ...]:
        """``refs`` with each uploaded one sent by URI (no bytes); a reference without a path,
        or one cheaper inline, stays as it is. A journaled upload is checked with the service
        once per run before it is first sent."""
        out = list(refs)

        async def one(n: int, ref: Reference) -> None:
            if ref.path is None:
                return
            record = await self.resolve(ref.path, ref.mime_type, min_life=min_life, verify=True)
            if record is not None:
                out[n] = replace(ref, data=b"", uri=record.uri)
            elif not ref.data:  # cheaper inline: its bytes after all
                out[n] = replace(ref, data=await anyio.Path(ref.path).read_bytes())

        if all(r.path is not None and self._ready(r.path, min_life) for r in refs):
            for n, ref in enumerate(refs):  # the common case: no upload, no task group
                await one(n, ref)
        else:
            with unwrap_group():  # one failure as itself: the pool's retry policy reads it
                async with anyio.create_task_group() as tg:  # a new combo: uploads at once
                    for n, ref in enumerate(refs):
                        tg.start_soon(one, n, ref)
        return tuple(out)

    def _ready(self, path: str, min_life: float) -> bool:
        """Whether ``path`` is known and its upload usable and checked this run (no I/O)."""
        known = self._digests.get(path)
        record = self.journal.state.uploads.get(known[0]) if known else None
        return record is not None and record.name in self._checked and self.usable(record, min_life)


class HeaderReferences(ReferenceCache):
    """A :class:`~imagegen.references.ReferenceCache` for a pool whose provider sends every
    reference by URI: it reads only each file's first bytes (its format), never the 2-5 MB of
    a photo per request; :class:`UploadingProvider` reads the few it sends inline."""

    def load(self, paths: Sequence[str]) -> tuple[Reference, ...]:
        refs = []
        for path in paths:
            ref = self.cached([path])
            if ref is None:
                role, mime = reference_header(path)
                ref = (Reference(role, mime, b"", path=path),)
                self._keep(path, ref[0])
            refs.append(ref[0])
        return tuple(refs)


def reference_header(path: str) -> tuple[str, str]:
    """(role, MIME type) of a reference from its first bytes (blocking); OSError if it cannot
    be read, ValueError (naming it) if it is not an image."""
    with Path(path).open("rb") as fh:
        head = fh.read(_HEADER_BYTES)
    try:
        mime = probe(head).mime_type
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc
    return Path(path).stem.lower(), mime


class UploadingProvider:
    """An :class:`~imagegen.providers.base.ImageProvider` that sends references by URI.

    Wraps the provider the online pool calls. A :class:`FileGone` answer (the service lost or
    expired a file) is not paid for: the file is uploaded again and the same attempt tried once
    more; a second FileGone goes to the pool as the attempt's failure.
    """

    def __init__(self, inner: ImageProvider, uploads: ReferenceUploads) -> None:
        self.inner = inner
        self.uploads = uploads

    async def generate(
        self, request: ImageRequest, checkpoint: Checkpoint | None = None
    ) -> Generation:
        refs = await self.uploads.by_uri(request.references)
        try:
            return await self.inner.generate(replace(request, references=refs), checkpoint)
        except FileGone as exc:
            self.uploads.forget(exc.name)
            sent = [self.uploads.name_of(r.uri) for r in refs if r.uri is not None]
            await self.uploads.recheck([n for n in sent if n is not None and n != exc.name])
        refs = await self.uploads.by_uri(request.references)
        return await self.inner.generate(replace(request, references=refs), checkpoint)

"""The file-store and Batch API seams: what a provider offers beyond one image per call.

Two Protocols, checked at run time on an opened adapter (``isinstance``); a provider whose
adapter has neither (OpenAI, fal) simply does not match:

- a :class:`FileStore` uploads a file once so that many requests refer to it by URI instead of
  carrying its bytes (Gemini's Files API: files live 48 h);
- a :class:`BatchService` creates a batch from an uploaded request file (one JSONL line per
  job, keyed by job id), reports its state, finds it by display name after a crash, cancels
  it, downloads its result file, and reads one result line the way the online path reads an
  answer (the same image checks, usage and failure kinds).

Matching is not enough: the runner uploads only for a provider whose
:attr:`~imagegen.providers.ProviderInfo.file_store` is true and sends a batch only through one
whose :attr:`~imagegen.providers.ProviderInfo.has_batch` is. Vertex AI's adapter is the Gemini
one (``GeminiProvider(vertexai=True)``), so it matches both Protocols, but Vertex has no Files
API (its batches read from Cloud Storage): its provider info says neither, and nothing calls
these methods on a Vertex client.

Values are this module's frozen dataclasses; failures are :mod:`imagegen.errors` types, as for
:class:`~imagegen.providers.base.ImageProvider`. The executor that drives them is
:mod:`imagegen.executors.batch`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Protocol, runtime_checkable

from ..errors import ProviderError
from .base import Generation, ImageRequest

#: States after which the service does no more work on a batch.
ENDED: Final = frozenset({"succeeded", "failed", "cancelled", "expired"})


@dataclass(frozen=True, slots=True)
class RemoteFile:
    """A file in a provider's store: its id ("files/ID"), the URI requests send, its MIME type,
    size in bytes and expiry (Unix seconds; None if the provider gave none)."""

    name: str
    uri: str
    mime_type: str
    size: int
    expires: float | None = None


@dataclass(frozen=True, slots=True)
class BatchStatus:
    """A batch as the service reports it. ``state`` is the service's state in our words (the
    Gemini API says ``JOB_STATE_*``): "pending", "running", or one of :data:`ENDED`;
    ``results_file`` the file to download once it succeeded; ``created`` Unix seconds."""

    name: str
    display_name: str
    state: str
    results_file: str | None = None
    created: float | None = None
    error: str | None = None

    @property
    def ended(self) -> bool:
        return self.state in ENDED


@dataclass(frozen=True, slots=True)
class ResultLine:
    """One line of a batch's result file: the job id it answers (None if the line names none)
    and either the image (checked whole, as online) or the failure, mapped as online."""

    key: str | None
    generation: Generation | None = field(default=None, repr=False)
    error: ProviderError | None = None


@runtime_checkable
class FileStore(Protocol):
    """Upload once, refer by URI. Raises :class:`~imagegen.errors.ProviderError` types."""

    async def upload_file(
        self, path: Path, mime_type: str, display_name: str | None = None
    ) -> RemoteFile:
        """Upload the file at ``path`` (streamed from disk, never read whole)."""
        ...

    async def file_status(self, name: str) -> RemoteFile | None:
        """The file if the service still has it, else None (expired, deleted, unknown)."""
        ...

    def inline_is_smaller(self, size: int, uses: int = 1) -> bool:
        """Whether a reference of ``size`` bytes that ``uses`` requests send costs fewer bytes
        inline in each than uploaded once and sent by URI (a tiny image, or a small one sent
        once): then it is not uploaded at all. Pure."""
        ...


@runtime_checkable
class BatchService(FileStore, Protocol):
    """A provider's Batch API (and the file store its input files go through). Raises
    :class:`~imagegen.errors.ProviderError` types."""

    def request_line(self, key: str, request: ImageRequest) -> bytes:
        """One input line (JSON, no newline) asking for ``request``, keyed by ``key``; a
        reference with a ``uri`` is sent by URI, one without by its bytes. Pure."""
        ...

    async def create_batch(self, model: str, input_file: str, display_name: str) -> BatchStatus:
        """Create a batch from an uploaded input file ("files/ID")."""
        ...

    async def batch_status(self, name: str) -> BatchStatus:
        """The batch's state now."""
        ...

    async def find_batches(self, display_name: str) -> list[BatchStatus]:
        """Every batch the service lists under ``display_name`` (newest first)."""
        ...

    async def cancel_batch(self, name: str) -> None:
        """Ask the service to stop a pending or running batch."""
        ...

    async def download_results(self, results_file: str, path: Path) -> None:
        """Stream a result file to ``path`` (memory does not grow with its size)."""
        ...

    def read_result(self, line: bytes, want: Callable[[str], tuple[int, int] | None]) -> ResultLine:
        """One result line, read as the online path reads an answer (``want(key)`` is the
        pixel size the keyed job asked for, to choose among several images). Blocking CPU
        work: run in a thread. Raises ValueError for a line that is not JSON."""
        ...

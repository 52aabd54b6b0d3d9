"""The error tree. Everything above the provider adapters sees only these types.

    ImagegenError
    ├── InputError            bad workspace file, flag or journal; names the file/value and the fix
    │   └── SessionLocked     another process holds the session
    ├── JournalError          the journal cannot be written (a full disk): the run stops, exit 3
    └── ProviderError         one attempt's failure; says whether another attempt can help
        ├── RateLimited       HTTP 429, per-minute quota; ``retry_after`` from RetryInfo
        ├── ServerError       HTTP 408/5xx, a dropped connection, a body that is not JSON
        ├── AttemptTimeout    no answer within the per-attempt timeout
        ├── BadRequest        HTTP 400 (and other 4xx): this request will never succeed
        ├── NoImage           HTTP 200 without an image: prompt blocked, finish reason, text only,
        │                     bytes that do not decode
        ├── FileGone          a file the request names (an uploaded reference) is expired or
        │                     unknown to the service: upload it again
        ├── NoText            HTTP 200 from a text model without usable words: blocked, empty
        └── BatchStop         nothing should start any more: 403, invalid key, per-day quota,
                              unknown model id (404)

Exit codes (documented in the README): ``EXIT_OK`` all jobs completed, ``EXIT_FAILED`` some
jobs failed, ``EXIT_USAGE`` usage or input error, ``EXIT_STOPPED`` the batch was stopped,
``EXIT_INTERRUPTED`` Ctrl-C before a session existed, or after it finished (128 + SIGINT, the
shell's convention).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar

from .model import ErrorKind

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_STOPPED = 3
EXIT_INTERRUPTED = 130


class ImagegenError(Exception):
    """Base of every error this package raises on purpose."""


class InputError(ImagegenError):
    """Bad input: the message names the file or value and says how to fix it."""

    exit_code = EXIT_USAGE


class SessionLocked(InputError):
    """Another process is running the session (an OS-level lock is held)."""


class JournalError(ImagegenError):
    """The session's journal cannot be written; what is on disk is consistent, resume later."""

    exit_code = EXIT_STOPPED


class ProviderError(ImagegenError):
    """One attempt failed. ``kind`` is the short label recorded in the journal.

    ``retryable`` says whether another attempt can help; ``retry_after`` is the server's own
    wait in seconds when it gave one (RetryInfo.retryDelay), else None.
    """

    kind: ClassVar[ErrorKind] = "provider_error"
    retryable = False

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RateLimited(ProviderError):
    kind: ClassVar[ErrorKind] = "rate_limited"
    retryable = True


class ServerError(ProviderError):
    kind: ClassVar[ErrorKind] = "server_error"
    retryable = True


class AttemptTimeout(ProviderError):
    kind: ClassVar[ErrorKind] = "timeout"
    retryable = True


class BadRequest(ProviderError):
    kind: ClassVar[ErrorKind] = "bad_request"


class NoImage(ProviderError):
    """HTTP 200 without a usable image; ``reason`` is the block or finish reason.

    Deterministic for a prompt (gemini-api notes, "Outcomes that are HTTP 200"): retrying spends
    money for nothing, so it is never retried.
    """

    kind: ClassVar[ErrorKind] = "no_image"

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class FileGone(ProviderError):
    """The service no longer has a file the request refers to (expired after 48 h, deleted,
    never known): ``name`` is its id ("files/ID"). Uploading it again fixes it; the same
    request sent unchanged never will, so it is not retried as it is."""

    kind: ClassVar[ErrorKind] = "file_gone"

    def __init__(self, message: str, *, name: str) -> None:
        super().__init__(message)
        self.name = name


class NoText(ProviderError):
    """HTTP 200 from a text model without usable text; ``reason`` is the block or finish
    reason (or EMPTY). Like :class:`NoImage`, the same request gets the same answer."""

    kind: ClassVar[ErrorKind] = "no_text"

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class BatchStop(ProviderError):
    """The whole batch must stop: 403, invalid key, per-day quota or unknown model."""

    kind: ClassVar[ErrorKind] = "batch_stop"

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        out.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return out


@contextmanager
def unwrap_group() -> Iterator[None]:
    """Re-raise an exception group's error as itself when it holds one kind of problem.

    anyio task groups wrap every error in an ExceptionGroup (nested per group). A lone error,
    or several of our own errors (the same full disk seen by three workers), is re-raised as
    its first error so the CLI can name it in one line with its exit code; anything else (a
    bug) propagates whole.
    """
    try:
        yield
    except BaseExceptionGroup as group:
        leaves = _leaves(group)
        if len(leaves) == 1 or (leaves and all(isinstance(e, ImagegenError) for e in leaves)):
            raise leaves[0] from group
        raise

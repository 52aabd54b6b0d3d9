"""Batch jobs in the emulator: their lifecycle on the emulator's clock and their scripted ends.

No sockets: :mod:`.batch_routes` speaks HTTP and calls :class:`BatchStore`; the wire shapes are
in :mod:`.batch_wire`. A batch's state is a function of the clock, worked out when someone looks
(no background thread), so a test drives a day-long batch by advancing a
:class:`~.clock.ManualClock`:

    PENDING for pending_seconds -> RUNNING for running_seconds -> SUCCEEDED
    or the end its BatchOutcome scripts (FAILED, CANCELLED, EXPIRED, or STUCK: never leaves
    PENDING / RUNNING); CANCELLED from a cancel call; EXPIRED when not finished
    expire_seconds (48 h) after creation, as the batch-mode guide says.

Every request of a batch is answered once, the first time the batch is seen SUCCEEDED, by the
emulator's own ``generateContent`` path (the ``Generate`` callable: parse, resolve ``fileData``
as of the batch's end time, take the per-prompt scripted :class:`~.outcomes.Outcome`, render).
So images, finish reasons, blocks and usage are those of an online answer, and per-request
failures are scripted with ``Emulator.enqueue`` as for online calls (``hang``'s delay is
ignored: a batch has its own turnaround; ``drop`` answers whole). FAILED, CANCELLED and EXPIRED
batches have no output and answer no request (a guess: the service may keep partial results).
A file batch's results are a generated file ``files/batch-...`` (JSONL, one line per request,
in input order unless shuffled) that expires like any file, ``ttl`` after the batch's end.
"""

from __future__ import annotations

import random
import string
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from . import wire
from .answers import Answer
from .batch_wire import TERMINAL, BatchRequest, operation, result_line
from .clock import Clock
from .filestore import FileStore
from .outcomes import Outcome

# The batch-mode guide: a batch not finished 48 h after creation expires.
BATCH_EXPIRE_SECONDS = 48 * 3600.0
# Quick by default so `imagegen emulator` on the real clock finishes a batch in seconds.
PENDING_SECONDS = 2.0
RUNNING_SECONDS = 3.0
RESULTS_MIME_TYPE = "application/jsonl"

ENDS = ("SUCCEEDED", "FAILED", "CANCELLED", "EXPIRED", "STUCK")

_ID_ALPHABET = string.ascii_lowercase + string.digits

#: (model, GenerateContentRequest JSON, the time it is processed) -> the online answer.
#: May raise wire.WireError for a request the service rejects.
Generate = Callable[[str, dict[str, Any], float], Answer]


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """How the next matching batch ends. Build it with the classmethods.

    ``end`` is one of :data:`ENDS`; ``stuck_in`` the state a STUCK batch stays in; ``shuffle``
    writes the results in a random (seeded by the batch id) order; ``message`` is the batch
    error of a FAILED batch; ``pending_seconds`` / ``running_seconds`` override the store's
    turnaround for this batch.
    """

    end: str = "SUCCEEDED"
    shuffle: bool = False
    stuck_in: str = "PENDING"
    message: str = "An internal error has occurred."
    pending_seconds: float | None = None
    running_seconds: float | None = None

    @classmethod
    def succeed(
        cls,
        *,
        shuffle: bool = False,
        pending_seconds: float | None = None,
        running_seconds: float | None = None,
    ) -> BatchOutcome:
        """SUCCEEDED after the turnaround; ``shuffle`` puts the result lines out of order."""
        return cls(
            shuffle=shuffle, pending_seconds=pending_seconds, running_seconds=running_seconds
        )

    @classmethod
    def stuck(cls, state: str = "PENDING") -> BatchOutcome:
        """Stays PENDING (or RUNNING) until the 48 h expiry turns it EXPIRED."""
        if state not in ("PENDING", "RUNNING"):
            raise ValueError(f"a batch is stuck in PENDING or RUNNING, not {state!r}")
        return cls(end="STUCK", stuck_in=state)

    @classmethod
    def expire(cls) -> BatchOutcome:
        """EXPIRED at the end of the turnaround, with no output."""
        return cls(end="EXPIRED")

    @classmethod
    def fail(cls, message: str = "An internal error has occurred.") -> BatchOutcome:
        """FAILED at the end of the turnaround: no output, ``error`` {code 13, ``message``}."""
        return cls(end="FAILED", message=message)

    @classmethod
    def cancel(cls) -> BatchOutcome:
        """CANCELLED at the end of the turnaround without anyone asking (no output)."""
        return cls(end="CANCELLED")


@dataclass(slots=True)
class Batch:
    """A batch job. Times are Unix seconds on the emulator clock."""

    id: str
    seq: int
    model: str
    display_name: str
    requests: tuple[BatchRequest, ...] = field(repr=False)
    input_file: str | None
    outcome: BatchOutcome
    create_time: float
    pending_seconds: float
    running_seconds: float
    expire_seconds: float
    cancel_time: float | None = None
    deleted: bool = False
    results: list[bytes] | None = field(default=None, repr=False)
    failures: int = 0

    @property
    def name(self) -> str:
        return f"batches/{self.id}"

    @property
    def results_file(self) -> str:
        return f"files/batch-{self.id[:34]}"

    def state_at(self, now: float) -> tuple[str, float]:
        """(state without the BATCH_STATE_ prefix, the time it began) at ``now``."""
        expiry = self.create_time + self.expire_seconds
        start = self.create_time + self.pending_seconds
        end = start + self.running_seconds
        if self.outcome.end == "STUCK":
            end = float("inf")
        cancel = self.cancel_time
        if cancel is not None and cancel < min(end, expiry) and now >= cancel:
            return "CANCELLED", cancel
        if now >= expiry and end >= expiry:
            return "EXPIRED", expiry
        if now >= end:
            return self.outcome.end, end
        stuck_pending = self.outcome.end == "STUCK" and self.outcome.stuck_in == "PENDING"
        if now >= start and not stuck_pending:
            return "RUNNING", start
        return "PENDING", self.create_time


class BatchStore:
    """Every batch, the scripted batch outcomes and faults, and the turnaround settings.

    ``pending_seconds`` / ``running_seconds``: default turnaround; ``expire_seconds``: a batch
    not finished by then is EXPIRED. Stats: ``created`` (display names, in order of creation),
    ``create_attempts``. Thread-safe.
    """

    def __init__(
        self,
        files: FileStore,
        generate: Generate,
        clock: Clock,
        *,
        pending_seconds: float = PENDING_SECONDS,
        running_seconds: float = RUNNING_SECONDS,
        expire_seconds: float = BATCH_EXPIRE_SECONDS,
    ) -> None:
        self.files = files
        self.clock = clock
        self.pending_seconds = pending_seconds
        self.running_seconds = running_seconds
        self.expire_seconds = expire_seconds
        self._generate = generate
        self._lock = threading.Lock()
        self._batches: dict[str, Batch] = {}
        self._script: list[tuple[str | None, BatchOutcome]] = []
        self._create_faults: list[tuple[int, bool]] = []
        self._random = random.Random()
        self._created: list[str] = []
        self.create_attempts = 0

    # -- scripting (tests) ----------------------------------------------------------------

    def enqueue(self, *outcomes: BatchOutcome, match: str | None = None) -> None:
        """The next batches whose display name contains ``match`` (any if None) end so."""
        with self._lock:
            self._script.extend((match, outcome) for outcome in outcomes)

    def fail_creates(self, times: int = 1, code: int = 503, *, after_create: bool = False) -> None:
        """Answer the next ``times`` create calls with HTTP ``code``.

        ``after_create``: the batch is created all the same and only the answer is lost (a
        client that crashed, or timed out, after the service accepted it).
        """
        with self._lock:
            self._create_faults.extend([(code, after_create)] * times)

    @property
    def created(self) -> list[str]:
        """Display names of the batches created, in order (one per accepted create)."""
        with self._lock:
            return list(self._created)

    @property
    def pending(self) -> int:
        """Scripted batch outcomes not consumed yet."""
        with self._lock:
            return len(self._script)

    # -- the API --------------------------------------------------------------------------

    def create(
        self,
        model: str,
        display_name: str,
        requests: tuple[BatchRequest, ...],
        input_file: str | None,
    ) -> Batch:
        """Create a batch now; raises WireError for a scripted create fault."""
        with self._lock:
            self.create_attempts += 1
            fault = self._create_faults.pop(0) if self._create_faults else None
        if fault is not None and not fault[1]:
            raise _fault(fault[0])
        now = self.clock()
        with self._lock:
            outcome = self._take(display_name)
            batch_id = self._new_id()
            batch = Batch(
                batch_id,
                len(self._batches),
                model,
                display_name,
                requests,
                input_file,
                outcome,
                now,
                _first(outcome.pending_seconds, self.pending_seconds),
                _first(outcome.running_seconds, self.running_seconds),
                self.expire_seconds,
            )
            self._batches[batch_id] = batch
            self._created.append(display_name)
        if fault is not None:
            raise _fault(fault[0])
        return batch

    def get(self, batch_id: str) -> Batch:
        """The batch; raises WireError(404) for an unknown or deleted one."""
        with self._lock:
            batch = self._batches.get(batch_id)
            if batch is None or batch.deleted:
                raise wire.WireError(404, "NOT_FOUND", f"Batch batches/{batch_id} not found.")
            return batch

    def listing(self) -> list[Batch]:
        """Every batch not deleted, newest first."""
        with self._lock:
            batches = [b for b in self._batches.values() if not b.deleted]
        return sorted(batches, key=lambda b: b.seq, reverse=True)

    def cancel(self, batch_id: str) -> Batch:
        """Cancel a PENDING or RUNNING batch; again on a CANCELLED one is a no-op.

        Raises WireError 404 for an unknown batch, 400 FAILED_PRECONDITION for one that already
        ended otherwise (the status is a guess).
        """
        batch = self.get(batch_id)
        now = self.clock()
        with self._lock:
            state, _ = batch.state_at(now)
            if state == "CANCELLED":
                return batch
            if state in TERMINAL:
                raise wire.WireError(
                    400,
                    "FAILED_PRECONDITION",
                    f"Batch {batch.name} is already in state BATCH_STATE_{state}.",
                )
            batch.cancel_time = now
            return batch

    def delete(self, batch_id: str) -> None:
        """Forget a batch (it is not cancelled, per the API reference); WireError(404) if none."""
        batch = self.get(batch_id)
        with self._lock:
            batch.deleted = True

    def resource(self, batch: Batch) -> bytes:
        """The batch as the long-running Operation JSON now, its results made if just due."""
        now = self.clock()
        with self._lock:
            self._finish(batch, now)
            return orjson.dumps(operation(batch, now))

    # -- internals (under the lock) -------------------------------------------------------

    def _take(self, display_name: str) -> BatchOutcome:
        for i, (match, outcome) in enumerate(self._script):
            if match is None or match in display_name:
                del self._script[i]
                return outcome
        return BatchOutcome()

    def _new_id(self) -> str:
        while True:
            candidate = "".join(self._random.choices(_ID_ALPHABET, k=36))
            if candidate not in self._batches:
                return candidate

    def _finish(self, batch: Batch, now: float) -> None:
        """Answer every request of a batch that has SUCCEEDED by ``now`` (once)."""
        if batch.results is not None:
            return
        state, since = batch.state_at(now)
        if state != "SUCCEEDED":
            return
        lines: list[bytes] = []
        for item in batch.requests:
            line, failed = result_line(item, self._answer(batch.model, item.request, since))
            lines.append(line)
            batch.failures += failed
        if batch.outcome.shuffle:
            random.Random(batch.id).shuffle(lines)
        batch.results = lines
        if batch.input_file is not None:
            data = b"".join(line + b"\n" for line in lines)
            self.files.add_generated(
                batch.results_file.removeprefix("files/"), data, RESULTS_MIME_TYPE, since
            )

    def _answer(self, model: str, request: dict[str, Any], at: float) -> Answer | wire.WireError:
        try:
            return self._generate(model, request, at)
        except wire.WireError as exc:
            return exc


def _fault(code: int) -> wire.WireError:
    return wire.WireError.from_outcome(Outcome.error(code))


def _first(value: float | None, default: float) -> float:
    return default if value is None else value

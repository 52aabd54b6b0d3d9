"""The typed data every part shares: a job, its state, an attempt, journal events, a session.

A :class:`Job` is what a job source plans: the prompt, the reference images in the order they
are sent, where the image goes, and labels for the views. A :class:`JobState` is a job plus its
progress. The journal records changes as events (:class:`JobEvent`, :class:`SessionEvent`)
carrying typed updates (:class:`JobUpdate`, :class:`SessionUpdate`); :class:`SessionState` is
the fold of those events (:meth:`SessionState.apply` is the one place the rules live).

Statuses (seed 003, "Status Values", plus ``skipped`` for a job a source found already done,
and ``submitted`` for a job sent in a provider's batch, issue 15)::

    pending -> running -> completed
                       -> retry -> running ...
                       -> failed
    running -> pending          (stopped, interrupted, or a paid image kept in the spool)
    pending -> submitted -> completed | failed | pending   (its batch's result, or the batch
                                                            ended without one)
    skipped                     (planned as already done: no call, no cost)

A session sent through a Batch API also keeps its batches (:class:`BatchRecord`, one per shard)
and the reference images it uploaded (:class:`UploadRecord`), folded from session events.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Final, Literal, TypeAlias, get_args

Status: TypeAlias = Literal[
    "pending", "running", "retry", "completed", "failed", "skipped", "submitted"
]
STATUSES: Final[tuple[Status, ...]] = (
    "pending",
    "running",
    "retry",
    "completed",
    "failed",
    "skipped",
    "submitted",
)
#: Statuses a run may still take a job out of (a submitted job: by collecting its batch).
RUNNABLE: Final[tuple[Status, ...]] = ("pending", "retry", "running", "submitted")
#: Statuses that end a job.
TERMINAL: Final[tuple[Status, ...]] = ("completed", "failed", "skipped")

#: What went wrong with a job, its own field (never parsed back out of the message).
ErrorKind: TypeAlias = Literal[
    "rate_limited",
    "server_error",
    "timeout",
    "bad_request",
    "no_image",
    "batch_stop",
    "reference_unreadable",
    "write_failed",
    "cancelled",
    "wrong_size",
    "file_gone",
    "cost_cap",
    "no_text",
    "empty_prompt",
    "provider_error",
]
ERROR_KINDS: Final[tuple[ErrorKind, ...]] = get_args(ErrorKind)

#: A JSON value as the journal stores it.
JSON: TypeAlias = Any

#: Placeholders a job's ``target`` may contain, filled when an attempt starts.
TIME_FIELD = "{time}"
QUALITY_FIELD = "{quality}"


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts a provider reported for one call (0 when absent)."""

    prompt_tokens: int = 0
    output_tokens: int = 0
    thought_tokens: int = 0
    image_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Job:
    """One image to make, as its source planned it. Never changes after planning.

    ``target`` is the output path (relative to the working directory or absolute) that the
    source chose; ``{time}`` in it becomes the attempt's start time (``2025-01-15-14-30-22``)
    and ``{quality}`` the size tier. With ``replace`` an existing file at the target is moved
    aside (``NAME.replaced-TIME.png``) instead of the new image taking another name.
    ``prompt_parts`` joined make the prompt; the journal stores each distinct part once per
    session. ``group`` is the contact sheet's (section, row, column) and ``title`` the line
    the progress display shows. ``labels`` are the source's own fields, kept in the journal.
    ``cost_group`` names the spending cap the job counts against besides the run's budget
    (the session config's ``cost_caps``, :mod:`imagegen.executors.budget`); None: no such cap.
    ``variants`` (1-4, ``--variants``) is how many candidates the job makes, each its own
    call and its own file (``NAME-v2.png``), all kept.
    """

    id: str
    source: str
    title: str
    group: tuple[str, str, str]
    prompt_file: str
    prompt_parts: tuple[str, ...]
    references: tuple[str, ...]
    target: str
    quality: str
    aspect: str
    model: str
    provider: str = "gemini"
    replace: bool = False
    labels: tuple[tuple[str, JSON], ...] = ()
    cost_group: str | None = None
    variants: int = 1

    @property
    def prompt(self) -> str:
        """The whole prompt text sent."""
        return "".join(self.prompt_parts)

    def label(self, name: str, default: JSON = None) -> JSON:
        """The value of one of the source's labels."""
        for key, value in self.labels:
            if key == name:
                return value
        return default


@dataclass(frozen=True, slots=True)
class ImageMeta:
    """What a saved image really is: format, pixel size, and whether it is the size promised."""

    format: str
    width: int
    height: int
    size_ok: bool = True


@dataclass(frozen=True, slots=True)
class Attempt:
    """One attempt's outcome, as kept in a job's ``history`` (times are local ISO seconds).

    ``outcome`` is "completed", an :data:`ErrorKind`, or a recovery note ("adopted after a
    crash", "placed from the spool"). ``wait`` is the seconds waited before the next attempt.
    """

    attempt: int
    started: str | None
    ended: str
    outcome: str
    error: str | None = None
    wait: float | None = None
    output: str | None = None
    cost_usd: float | None = None


@dataclass(frozen=True, slots=True)
class JobState:
    """A job and its progress. ``output`` is the planned file while running, the saved file
    once completed. ``kept`` is where a paid image waits when it could not be saved where it
    belongs (the spool); ``resume`` a provider's request id journaled when it accepted the
    request (a later attempt polls it instead of paying again). ``request_id`` and
    ``model_version`` are what the provider said about the call that made the saved image (None
    when it said nothing, or the answer died with a crashed process). ``delivery`` is the state
    of the source's after-save step: None (none), "pending", "done", or "not written: REASON".
    A source may plan a job as ``skipped`` with ``delivery`` "pending": an image made earlier
    that its after-save step has not recorded yet; the run performs the step, with no call.
    ``variant_outputs`` are the files of the candidates made so far when the job makes several
    (``output`` is then the first)."""

    job: Job
    status: Status = "pending"
    attempts: int = 0
    output: str | None = None
    error: str | None = None
    error_kind: ErrorKind | None = None
    started: str | None = None
    completed: str | None = None
    finish_reason: str | None = None
    usage: Usage | None = None
    cost_usd: float | None = None
    image: ImageMeta | None = None
    history: tuple[Attempt, ...] = ()
    resume: str | None = None
    kept: str | None = None
    delivery: str | None = None
    variant_outputs: tuple[str, ...] = ()
    request_id: str | None = None
    model_version: str | None = None

    @property
    def id(self) -> str:
        return self.job.id

    @property
    def unrecorded(self) -> bool:
        """The source's after-save step is still to run or did not succeed (the image is
        saved and kept either way)."""
        return self.delivery is not None and self.delivery != "done"


class _Unset(enum.Enum):
    UNSET = 0


#: "Leave this field as it is" in an update.
UNSET: Final = _Unset.UNSET
Unset: TypeAlias = Literal[_Unset.UNSET]


@dataclass(frozen=True, slots=True, kw_only=True)
class JobUpdate:
    """The fields one event changes on a job; the others are :data:`UNSET`."""

    status: Status | Unset = UNSET
    attempts: int | Unset = UNSET
    output: str | Unset | None = UNSET
    error: str | Unset | None = UNSET
    error_kind: ErrorKind | Unset | None = UNSET
    started: str | Unset | None = UNSET
    completed: str | Unset | None = UNSET
    finish_reason: str | Unset | None = UNSET
    usage: Usage | Unset | None = UNSET
    cost_usd: float | Unset | None = UNSET
    image: ImageMeta | Unset | None = UNSET
    resume: str | Unset | None = UNSET
    kept: str | Unset | None = UNSET
    delivery: str | Unset | None = UNSET
    variant_outputs: tuple[str, ...] | Unset = UNSET
    request_id: str | Unset | None = UNSET
    model_version: str | Unset | None = UNSET

    def changes(self) -> dict[str, Any]:
        """The fields set by this update, by name."""
        return {
            f.name: value for f in fields(self) if (value := getattr(self, f.name)) is not UNSET
        }


JOB_UPDATE_FIELDS: Final[frozenset[str]] = frozenset(f.name for f in fields(JobUpdate))


@dataclass(frozen=True, slots=True)
class Owner:
    """The process running a session: its pid, host, and the process's start time (an opaque
    number from the OS, to tell a live process from a later one that reuses the pid)."""

    pid: int
    host: str
    since: str
    process_start: int | None = None


#: A batch's states: ours before and after it exists on the service ("creating": recorded,
#: the create call may or may not have reached the service; "collected": its results are
#: folded in; "abandoned": given up, its jobs handed back), and the service's own in between.
BATCH_STATES: Final[tuple[str, ...]] = (
    "creating",
    "pending",
    "running",
    "succeeded",
    "failed",
    "cancelled",
    "expired",
    "collected",
    "abandoned",
)
#: Batch states after which no job of the batch waits on the service any more.
BATCH_DONE: Final[frozenset[str]] = frozenset({"collected", "abandoned"})


@dataclass(frozen=True, slots=True)
class BatchRecord:
    """One shard of a session sent through a provider's Batch API (issue 15).

    ``display_name`` (session id + shard number) finds the batch again after a crash between
    the create call and its journal entry. ``name`` is the service's id ("batches/ID"), None
    until the create call answered; ``input_file`` the uploaded request file ("files/ID");
    ``results_file`` the service's result file. Times are local ISO seconds as elsewhere in
    the journal; ``polls`` counts status checks, ``last_poll`` is the latest.
    """

    shard: int
    display_name: str
    job_ids: tuple[str, ...]
    state: str = "creating"
    model: str = ""
    name: str | None = None
    input_file: str | None = None
    results_file: str | None = None
    created: str | None = None
    last_poll: str | None = None
    polls: int = 0
    error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchChange:
    """The fields of batch ``shard`` one event sets (the first event of a shard sets at least
    ``display_name`` and ``job_ids``); the others are :data:`UNSET`."""

    shard: int
    display_name: str | Unset = UNSET
    job_ids: tuple[str, ...] | Unset = UNSET
    state: str | Unset = UNSET
    model: str | Unset = UNSET
    name: str | Unset | None = UNSET
    input_file: str | Unset | None = UNSET
    results_file: str | Unset | None = UNSET
    created: str | Unset | None = UNSET
    last_poll: str | Unset | None = UNSET
    polls: int | Unset = UNSET
    error: str | Unset | None = UNSET

    def changes(self) -> dict[str, Any]:
        """The fields set by this change, by name (``shard`` included)."""
        return {
            f.name: value for f in fields(self) if (value := getattr(self, f.name)) is not UNSET
        }

    def apply(self, old: BatchRecord | None) -> BatchRecord:
        changes = self.changes()
        if old is None:
            return BatchRecord(**changes)
        return replace(old, **changes)


BATCH_CHANGE_FIELDS: Final[frozenset[str]] = frozenset(f.name for f in fields(BatchChange))


@dataclass(frozen=True, slots=True)
class UploadRecord:
    """A reference image uploaded to a provider's file store, keyed by its content.

    ``digest`` is the SHA-256 (hex) of the file's bytes, so the same photo copied into several
    combos is one upload; ``name`` the provider's id ("files/ID"), ``uri`` what requests send;
    ``expires`` the provider's expiry time as ISO 8601 with its offset (None if it gave none);
    ``size`` in bytes.
    """

    digest: str
    name: str
    uri: str
    mime_type: str
    size: int
    expires: str | None = None
    uploaded: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionUpdate:
    """Session-level fields one event changes; the others are :data:`UNSET`.

    ``batch`` changes one batch record and ``upload`` adds (or replaces) one upload record;
    the other fields replace the session's own.
    """

    state: str | Unset = UNSET
    stop_reason: str | Unset | None = UNSET
    paused_until: str | Unset | None = UNSET
    pause_reason: str | Unset | None = UNSET
    children: tuple[str, ...] | Unset = UNSET
    owner: Owner | Unset | None = UNSET
    batch: BatchChange | Unset = UNSET
    upload: UploadRecord | Unset = UNSET

    def changes(self) -> dict[str, Any]:
        return {
            f.name: value for f in fields(self) if (value := getattr(self, f.name)) is not UNSET
        }


SESSION_UPDATE_FIELDS: Final[frozenset[str]] = frozenset(f.name for f in fields(SessionUpdate))


@dataclass(frozen=True, slots=True)
class JobEvent:
    """Line ``seq`` of the event log: a change to one job (and, maybe, a finished attempt)."""

    seq: int
    at: str
    job_id: str
    update: JobUpdate
    attempt: Attempt | None = None


@dataclass(frozen=True, slots=True)
class SessionEvent:
    """Line ``seq`` of the event log: a change to the session itself."""

    seq: int
    at: str
    update: SessionUpdate


Event: TypeAlias = JobEvent | SessionEvent


@dataclass(frozen=True, slots=True)
class Summary:
    """Counts by status, the total and the USD spent, as the snapshot's ``summary``.

    ``undelivered`` counts completed jobs whose source's after-save step has not run yet (a
    crash between the image and, say, its YAML update): resume finishes them, no new call.
    ``cost_usd`` includes ``planning_cost_usd`` from the config (text written while planning).
    """

    total: int
    counts: Mapping[str, int]
    cost_usd: float
    undelivered: int = 0

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"total": self.total}
        out.update({status: self.counts.get(status, 0) for status in STATUSES})
        out["cost_usd"] = self.cost_usd
        if self.undelivered:
            out["undelivered"] = self.undelivered
        return out

    @property
    def unfinished(self) -> int:
        """Jobs a run may still take (pending, retry, running, submitted) or finish
        (undelivered)."""
        return sum(self.counts.get(s, 0) for s in RUNNABLE) + self.undelivered


@dataclass(slots=True)
class SessionState:
    """A session: its header and its jobs in plan order. Change it only with :meth:`apply`.

    ``state`` is "new", "running", "finished" or "stopped". ``config`` is the session's
    recorded configuration (seed 003 schema, plus the source's and the run's settings).
    ``extra`` keeps top-level fields this version does not know, so nothing is dropped.
    ``batches`` (by shard number) and ``uploads`` (by content digest) are a batch session's
    records (issue 15); empty for an online session.
    """

    version: int
    session_id: str
    started: str
    updated: str
    config: dict[str, JSON]
    jobs: dict[str, JobState]
    state: str = "new"
    stop_reason: str | None = None
    parent: str | None = None
    children: tuple[str, ...] = ()
    paused_until: str | None = None
    pause_reason: str | None = None
    owner: Owner | None = None
    seq: int = 0
    extra: dict[str, JSON] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    batches: dict[int, BatchRecord] = field(default_factory=dict)
    uploads: dict[str, UploadRecord] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.counts = Counter(js.status for js in self.jobs.values())

    def job(self, job_id: str) -> JobState:
        return self.jobs[job_id]

    def apply(self, event: Event) -> None:
        """Fold one event in. A job event for a job not in the session raises KeyError."""
        if isinstance(event, JobEvent):
            old = self.jobs[event.job_id]
            new = replace(old, **event.update.changes())
            if event.attempt is not None:
                new = replace(new, history=(*new.history, event.attempt))
            if new.status != old.status:
                self.counts[old.status] -= 1
                self.counts[new.status] += 1
            self.jobs[event.job_id] = new
        else:
            for name, value in event.update.changes().items():
                if name == "batch":
                    self.batches[value.shard] = value.apply(self.batches.get(value.shard))
                elif name == "upload":
                    self.uploads[value.digest] = value
                else:
                    setattr(self, name, value)
        self.seq = max(self.seq, event.seq)
        self.updated = event.at

    def summary(self) -> Summary:
        planning = self.config.get("planning_cost_usd") or 0.0
        cost = round(sum(js.cost_usd or 0.0 for js in self.jobs.values()) + planning, 6)
        undelivered = sum(1 for js in self.jobs.values() if js.delivery == "pending")
        return Summary(len(self.jobs), dict(self.counts), cost, undelivered)

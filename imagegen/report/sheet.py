"""The contact sheet's content: a session folded into sections, rows, columns and cards.

Pure: a :class:`~imagegen.model.SessionState` in, frozen values out; no files. Every job names
its own place on the sheet (``Job.group``: section, row, column), so the sheet knows no source:
combos give one section per catalog and UI style with prompts as rows and combos as columns,
shot folders one section per exercise, and so on. Sections and rows keep plan order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from .. import providers
from ..batchview import batch_lines
from ..errors import InputError
from ..model import ERROR_KINDS, ErrorKind, JobState, SessionState, Summary

#: Error kinds (``JobState.error_kind``) -> the words a person scanning the sheet needs.
ERROR_LABELS = {
    "rate_limited": "quota",
    "server_error": "server error",
    "timeout": "timeout",
    "bad_request": "bad request",
    "no_image": "no image",
    "batch_stop": "stopped",
    "reference_unreadable": "reference unreadable",
    "write_failed": "write failed",
    "cancelled": "cancelled",
    "wrong_size": "wrong size",
    "cost_cap": "cost cap",
}
#: Longest prompt text a card carries (characters); the journal keeps the whole text.
PROMPT_SHOWN = 20_000


@dataclass(frozen=True, slots=True)
class Shot:
    """One image a card shows: ``path`` as the journal recorded it (absolute, or relative to
    the working directory the session ran in), its size tier ("1K") and its role: "output"
    (this job's image), "previous" (the image an upgrade started from) or "variant" (one of
    several candidates of the job, numbered by ``index``; the page lets a reviewer pick one)."""

    path: str
    quality: str
    role: str  # "output" (this job's image), "variant" (one of its candidates, in order), or
    # "previous" (the image an upgrade started from)
    index: int | None = None  # the variant's number, as the job's commands name it ("003:2")


@dataclass(frozen=True, slots=True)
class Card:
    """One job as a cell shows it. ``reason`` is a short failure label ("safety block"),
    ``detail`` the recorded finish reason or error text, ``note`` a warning on a kept image,
    ``facts`` the (label, value) pairs under "prompt & references"."""

    job_id: str
    status: str
    attempts: int
    quality: str
    title: str
    prompt: str
    shots: tuple[Shot, ...]
    output: str | None  # the image file as recorded, completed jobs only
    references: tuple[str, ...]
    reason: str | None
    detail: str | None
    note: str | None
    pixels: str | None  # "1024x1024" (with a times sign) once an image was kept
    facts: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Row:
    title: str
    subtitle: str
    cells: tuple[tuple[Card, ...], ...]  # one entry per column; empty where no job was planned


@dataclass(frozen=True, slots=True)
class Section:
    title: str
    columns: tuple[str, ...]
    rows: tuple[Row, ...]


@dataclass(frozen=True, slots=True)
class Header:
    session_id: str
    state: str
    stop_reason: str | None
    parent: str | None
    children: tuple[str, ...]
    started: str | None
    updated: str | None
    config: tuple[tuple[str, str], ...]  # (label, value) pairs in display order
    counts: tuple[tuple[str, int], ...]  # (status, jobs), every status, "total" first
    cost_usd: float
    duration_s: float | None  # first job started -> last job completed, in seconds
    upgrade_qualities: tuple[str, ...] = ()  # size tiers above the session's, smallest first
    batches: tuple[str, ...] = ()  # a batch session's batches, one line each (imagegen.batchview)


@dataclass(frozen=True, slots=True)
class ContactSheet:
    header: Header
    sections: tuple[Section, ...]
    attention: tuple[Card, ...]  # failed jobs, and unfinished ones that carry an error

    @property
    def cards(self) -> Iterable[Card]:
        for section in self.sections:
            for row in section.rows:
                for cell in row.cells:
                    yield from cell


def failure_label(state: JobState) -> str | None:
    """A short label for why a job has no image ("safety block", "quota", ...), or None."""
    reason = state.finish_reason
    if reason:
        if reason.startswith("PROMPT_BLOCKED"):
            return "prompt blocked"
        try:
            labels = providers.get(state.job.provider).reason_labels
        except InputError:
            labels = {}
        if reason in labels:
            return labels[reason]
    kind = state.error_kind
    if kind is None and state.error:
        kind = _v1_kind(state.error)
    if kind is None:
        return None
    if kind in ("rate_limited", "batch_stop") and "quota" in (state.error or "").lower():
        return "quota"
    return ERROR_LABELS.get(kind, "failed")


def _v1_kind(error: str) -> ErrorKind | None:
    """Format-1 journals kept the kind as the message's prefix ("server_error: ...")."""
    head = error.split(":", 1)[0]
    for kind in ERROR_KINDS:
        if kind == head:
            return kind
    if error.startswith("reference image unreadable"):
        return "reference_unreadable"
    if error.startswith("cannot write"):
        return "write_failed"
    if error.startswith("cancelled"):
        return "cancelled"
    return None


def _seconds_between(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def session_duration(jobs: Sequence[JobState]) -> float | None:
    """Seconds from the first job's start to the last job's completion; None before both."""
    started = [j.started for j in jobs if j.started]
    completed = [j.completed for j in jobs if j.completed]
    if not started or not completed:
        return None
    return max(0.0, _seconds_between(min(started), max(completed)))


def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n… ({len(text) - limit:,} more characters; the journal has them all)"


def _card(state: JobState, previous: Shot | None) -> Card:
    job = state.job
    status = state.status
    reason = failure_label(state) if status not in ("completed", "skipped") else None
    if status == "failed" and reason is None:
        reason = "failed"
    shots: tuple[Shot, ...] = (previous,) if previous else ()
    shown = state.output if status in ("completed", "skipped") else None
    if len(state.variant_outputs) > 1 or (state.variant_outputs and status != "completed"):
        # Every candidate side by side, finished or not: the review picks one.
        shots += tuple(
            Shot(path, job.quality, "variant", n) for n, path in enumerate(state.variant_outputs, 1)
        )
    elif shown:
        shots += (Shot(shown, job.quality, "output"),)
    image = state.image
    pixels = f"{image.width}\u00d7{image.height}" if image else None
    finish, error = state.finish_reason, state.error
    detail = None
    if reason:  # the error text usually names the finish reason already
        detail = (
            error
            if error and (not finish or finish in error)
            else (f"{finish}: {error}" if error else finish)
        )
    facts = [
        ("prompt file", job.prompt_file),
        ("image", shown),
        ("aspect", job.aspect),
        ("provider", f"{job.provider} · {job.model}"),
        *((k, str(v)) for k, v in job.labels if isinstance(v, str | int | float)),
        ("finish / error", detail),
        ("kept in spool", state.kept),
        ("after save", state.delivery),
        ("cost", f"${state.cost_usd:.4f}" if state.cost_usd is not None else None),
    ]
    return Card(
        job_id=job.id,
        status=status,
        attempts=state.attempts,
        quality=job.quality,
        title=job.title,
        prompt=_shorten(job.prompt, PROMPT_SHOWN),
        shots=shots,
        output=shown,
        references=job.references,
        reason=reason,
        detail=detail or None,
        note=_note(state),
        pixels=pixels,
        facts=tuple((k, v) for k, v in facts if v),
    )


def _note(state: JobState) -> str | None:
    """A warning on a saved image: its size or how it was chosen, and an after-save step
    that did not record it."""
    notes = []
    if state.status in ("completed", "skipped") and _drawn_locally(state):
        notes.append("placeholder drawn locally (no call, no cost)")
    if state.status == "completed" and state.error:
        notes.append(state.error)
    if state.delivery and state.delivery != "done":
        notes.append(f"after save: {state.delivery}")
    return "; ".join(notes) or None


def _drawn_locally(state: JobState) -> bool:
    try:
        return providers.get(state.job.provider).local
    except InputError:
        return False


def _previous_shot(state: JobState, parent_qualities: Mapping[str, str]) -> Shot | None:
    # An upgrade sends the parent's accepted image as the first reference.
    refs = state.job.references
    if not refs:
        return None
    first = str(refs[0])
    return Shot(first, parent_qualities.get(file_name(first), "before"), "previous")


def file_name(path: str) -> str:
    """The last part of a recorded path, whichever separator it uses."""
    return path.replace("\\", "/").rsplit("/", 1)[-1]


def _parent_qualities(parent: SessionState | None) -> dict[str, str]:
    """The parent session's output file names -> their quality."""
    if parent is None:
        return {}
    return {file_name(js.output): js.job.quality for js in parent.jobs.values() if js.output}


def _larger_qualities(config: Mapping[str, object]) -> tuple[str, ...]:
    """The size tiers of the session's provider above the session's own (what ``--upgrade
    --to-quality`` may name), smallest first."""
    try:
        tiers = providers.get(str(config.get("provider") or "gemini")).qualities
    except InputError:
        return ()
    quality = config.get("quality")
    return tiers[tiers.index(quality) + 1 :] if quality in tiers else ()


def _counts(summary: Summary) -> tuple[tuple[str, int], ...]:
    order = ("completed", "failed", "skipped", "pending", "running", "retry", "submitted")
    return (("total", summary.total), *((s, int(summary.counts.get(s, 0))) for s in order))


def build_sheet(
    state: SessionState, *, run_state: str | None = None, parent: SessionState | None = None
) -> ContactSheet:
    """Fold a session into a contact sheet.

    ``run_state`` overrides the recorded state (``--status`` knows when a "running" session
    died). ``parent`` is the parent session of an upgrade, for the qualities of earlier images.
    """
    jobs = list(state.jobs.values())
    qualities = _parent_qualities(parent)
    cards = [
        (js, _card(js, _previous_shot(js, qualities) if state.parent else None)) for js in jobs
    ]
    groups: dict[str, list[tuple[JobState, Card]]] = {}
    for js, card in cards:
        groups.setdefault(js.job.group[0], []).append((js, card))
    sections = []
    for title, members in groups.items():
        columns: dict[str, None] = {}
        rows: dict[str, tuple[str, dict[str, list[Card]]]] = {}
        for js, card in members:
            _, row_title, column = js.job.group
            columns.setdefault(column, None)
            row = rows.setdefault(row_title, (js.job.prompt_file, {}))
            if row[0] != js.job.prompt_file:  # a row of several files: no one file to name
                rows[row_title] = row = ("", row[1])
            row[1].setdefault(column, []).append(card)
        sections.append(
            Section(
                title=title,
                columns=tuple(columns),
                rows=tuple(
                    Row(name, subtitle, tuple(tuple(cells.get(c, ())) for c in columns))
                    for name, (subtitle, cells) in rows.items()
                ),
            )
        )
    config = state.config
    facts = [(str(k), str(v)) for k, v in config.get("facts") or ()]
    facts += [
        (label, str(config[key]))
        for label, key in (("quality", "quality"), ("aspect", "aspect"), ("model", "model"))
        if config.get(key)
    ]
    if config.get("provider"):
        facts.append(("provider", str(config["provider"])))
    summary = state.summary()
    header = Header(
        session_id=state.session_id,
        state=run_state or state.state,
        stop_reason=state.stop_reason,
        parent=state.parent,
        children=state.children,
        started=state.started,
        updated=state.updated,
        config=tuple(facts),
        counts=_counts(summary),
        cost_usd=summary.cost_usd,
        duration_s=session_duration(jobs),
        upgrade_qualities=_larger_qualities(config),
        batches=batch_lines(state),
    )
    attention = tuple(
        card
        for js, card in cards
        if card.status == "failed"
        or (card.reason and card.detail)
        or (js.delivery and js.delivery != "done")
    )
    return ContactSheet(header, tuple(sections), attention)

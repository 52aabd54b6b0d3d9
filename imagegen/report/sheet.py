"""The contact sheet's content: a session document folded into sections, rows, columns and cards.

Pure: a session document in (:func:`imagegen.journal.load`), frozen values out; no files. A
section is one (catalog, UI style) pair in the order the planner made the jobs; its rows are
prompts and its columns combos (named with the wardrobe too when the session has several).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# Finish and block reasons as the Gemini adapter records them (imagegen.providers.gemini.client.read_generation,
# Google's FinishReason enum) -> the words a person scanning the sheet needs.
_REASON_LABELS = {
    "IMAGE_SAFETY": "safety block",
    "SAFETY": "safety block",
    "IMAGE_PROHIBITED_CONTENT": "safety block",
    "PROHIBITED_CONTENT": "safety block",
    "BLOCKLIST": "safety block",
    "SPII": "safety block",
    "RECITATION": "recitation block",
    "IMAGE_RECITATION": "recitation block",
    "TEXT_ONLY": "text, no image",
    "NO_IMAGE": "no image",
    "NO_CANDIDATES": "no image",
    "IMAGE_OTHER": "no image",
    "OTHER": "no image",
    "MAX_TOKENS": "no image",
    "MALFORMED_FUNCTION_CALL": "no image",
}
# Error kinds (imagegen.errors.ProviderError.kind, the prefix of a job's ``error``) and the
# runner's own messages -> labels.
_ERROR_LABELS = {
    "rate_limited": "quota",
    "server_error": "server error",
    "timeout": "timeout",
    "bad_request": "bad request",
    "no_image": "no image",
    "batch_stop": "stopped",
    "reference image unreadable": "reference unreadable",
    "cannot write": "write failed",
    "cancelled": "cancelled",
}


@dataclass(frozen=True, slots=True)
class Shot:
    """One image a card shows: ``path`` as the journal recorded it (absolute, or relative to
    the working directory the session ran in), its size tier ("1K") and its role."""

    path: str
    quality: str
    role: str  # "output" (this job's image) or "previous" (the image an upgrade started from)


@dataclass(frozen=True, slots=True)
class Card:
    """One job as a cell shows it. ``reason`` is a short failure label ("safety block"),
    ``detail`` the recorded finish reason or error text, ``note`` a warning on a kept image."""

    job_id: str
    status: str
    attempts: int
    quality: str
    aspect: str
    prompt_id: str
    prompt_file: str
    prompt: str
    combo: str
    wardrobe: str
    shots: tuple[Shot, ...]
    output: str | None  # the image file as recorded, completed jobs only
    references: tuple[str, ...]
    reason: str | None
    detail: str | None
    note: str | None
    cost_usd: float | None
    pixels: str | None  # "1024x1024" (with a times sign) once an image was kept


@dataclass(frozen=True, slots=True)
class Column:
    combo: str
    wardrobe: str
    label: str


@dataclass(frozen=True, slots=True)
class Row:
    prompt_id: str
    prompt_file: str
    cells: tuple[tuple[Card, ...], ...]  # one entry per column; empty where no job was planned


@dataclass(frozen=True, slots=True)
class Section:
    catalog: str
    ui_style: str
    columns: tuple[Column, ...]
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


def failure_label(finish_reason: str | None, error: str | None) -> str | None:
    """A short label for why a job has no image ("safety block", "quota", ...), or None."""
    if finish_reason:
        if finish_reason.startswith("PROMPT_BLOCKED"):
            return "prompt blocked"
        if finish_reason in _REASON_LABELS:
            return _REASON_LABELS[finish_reason]
    if not error:
        return None
    if "quota" in error.lower() and error.startswith(("rate_limited", "batch_stop")):
        return "quota"
    for prefix, label in _ERROR_LABELS.items():
        if error.startswith(prefix):
            return label
    return "failed"


def _seconds_between(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def session_duration(jobs: Sequence[Mapping[str, Any]]) -> float | None:
    """Seconds from the first job's start to the last job's completion; None before both."""
    started = [j["started"] for j in jobs if j.get("started")]
    completed = [j["completed"] for j in jobs if j.get("completed")]
    if not started or not completed:
        return None
    return max(0.0, _seconds_between(min(started), max(completed)))


def _card(job: Mapping[str, Any], previous: Shot | None) -> Card:
    status = str(job["status"])
    error = job.get("error")
    reason = failure_label(job.get("finish_reason"), error) if status != "completed" else None
    if status == "failed" and reason is None:
        reason = "failed"
    shots: tuple[Shot, ...] = (previous,) if previous else ()
    if status == "completed" and job.get("output"):
        shots += (Shot(str(job["output"]), str(job["quality"]), "output"),)
    image = job.get("image") or {}
    pixels = f"{image['width']}\u00d7{image['height']}" if image.get("width") else None
    finish = job.get("finish_reason")
    detail = None
    if reason:  # the error text usually names the finish reason already
        detail = (
            error
            if error and (not finish or finish in error)
            else (f"{finish}: {error}" if error else finish)
        )
    return Card(
        job_id=str(job["id"]),
        status=status,
        attempts=int(job.get("attempts") or 0),
        quality=str(job["quality"]),
        aspect=str(job.get("aspect", "")),
        prompt_id=str(job["prompt_id"]),
        prompt_file=str(job.get("prompt_file", "")),
        prompt=str(job.get("prompt", "")),
        combo=str(job["combo"]),
        wardrobe=str(job["wardrobe"]),
        shots=shots,
        output=str(job["output"]) if status == "completed" and job.get("output") else None,
        references=tuple(str(r) for r in job.get("references", ())),
        reason=reason,
        detail=detail or None,
        note=str(error) if status == "completed" and error else None,
        cost_usd=job.get("cost_usd"),
        pixels=pixels,
    )


def _previous_shot(job: Mapping[str, Any], parent_qualities: Mapping[str, str]) -> Shot | None:
    # imagegen.planner.upgrade_jobs sends the parent's accepted image as the first reference.
    refs = job.get("references") or ()
    if not refs:
        return None
    first = str(refs[0])
    return Shot(first, parent_qualities.get(file_name(first), "before"), "previous")


def file_name(path: str) -> str:
    """The last part of a recorded path, whichever separator it uses."""
    return path.replace("\\", "/").rsplit("/", 1)[-1]


def _parent_qualities(parent_doc: Mapping[str, Any] | None) -> dict[str, str]:
    """The parent session's output file names -> their quality. Names carry a timestamp and
    the prompt's short id, and the parent recorded its outputs relative, the child absolute."""
    return {
        file_name(str(job["output"])): str(job["quality"])
        for job in (parent_doc or {}).get("jobs", ())
        if job.get("output")
    }


def build_sheet(
    doc: Mapping[str, Any],
    *,
    state: str | None = None,
    parent_doc: Mapping[str, Any] | None = None,
) -> ContactSheet:
    """Fold a session document into a contact sheet.

    ``state`` overrides the recorded one (``--status`` knows when a "running" session died).
    ``parent_doc`` is the parent session of an upgrade, for the qualities of the earlier images.
    """
    jobs: Sequence[Mapping[str, Any]] = doc["jobs"]
    upgrade = bool(doc.get("parent"))
    qualities = _parent_qualities(parent_doc)
    several_wardrobes = len({j["wardrobe"] for j in jobs}) > 1
    cards: list[tuple[Mapping[str, Any], Card]] = []
    for job in jobs:
        previous = _previous_shot(job, qualities) if upgrade else None
        cards.append((job, _card(job, previous)))

    groups: dict[tuple[str, str], list[tuple[Mapping[str, Any], Card]]] = {}
    for job, card in cards:
        groups.setdefault((str(job["catalog"]), str(job["ui_style"])), []).append((job, card))
    sections = []
    for (catalog, ui_style), members in groups.items():
        columns: dict[tuple[str, str], Column] = {}
        rows: dict[str, tuple[str, dict[tuple[str, str], list[Card]]]] = {}
        for _job, card in members:
            key = (card.wardrobe, card.combo)
            label = f"{card.combo} · {card.wardrobe}" if several_wardrobes else card.combo
            columns.setdefault(key, Column(card.combo, card.wardrobe, label))
            row = rows.setdefault(card.prompt_id, (card.prompt_file, {}))
            row[1].setdefault(key, []).append(card)
        sections.append(
            Section(
                catalog=catalog,
                ui_style=ui_style,
                columns=tuple(columns.values()),
                rows=tuple(
                    Row(prompt_id, prompt_file, tuple(tuple(by_column.get(k, ())) for k in columns))
                    for prompt_id, (prompt_file, by_column) in rows.items()
                ),
            )
        )

    config = doc.get("config") or {}
    summary = doc.get("summary") or {}
    catalogs = config.get("catalogs") or ()
    header = Header(
        session_id=str(doc["session_id"]),
        state=state or str(doc.get("state") or "new"),
        stop_reason=doc.get("stop_reason"),
        parent=doc.get("parent"),
        children=tuple(doc.get("children") or ()),
        started=doc.get("started"),
        updated=doc.get("updated"),
        config=tuple(
            (label, str(value))
            for label, value in (
                ("wardrobe", config.get("wardrobe")),
                ("UI style", config.get("ui_style") or "all"),
                ("catalogs", ", ".join(catalogs) if isinstance(catalogs, list) else catalogs),
                ("quality", config.get("quality")),
                ("aspect", config.get("aspect")),
                ("model", config.get("model")),
            )
            if value
        ),
        counts=tuple(
            (status, int(summary.get(status, 0)))
            for status in ("total", "completed", "failed", "pending", "running", "retry")
        ),
        cost_usd=float(summary.get("cost_usd") or 0.0),
        duration_s=session_duration(jobs),
    )
    attention = tuple(
        card for _, card in cards if card.status == "failed" or (card.reason and card.detail)
    )
    return ContactSheet(header, tuple(sections), attention)

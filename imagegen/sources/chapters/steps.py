"""The chapters source's steps on the shared runner: the manifest and provenance, kept true.

``after_save`` runs after each chapter image is saved and journaled; ``after_run`` when a run of
the session ends (:mod:`imagegen.sources`). Both fold the session's chapter jobs into the
episode's ``images/manifest.json`` (merged, chapter order kept) and rewrite
``provenance/imagegen_provenance.json`` right after, each file atomically, under the episode's
lock (a thread lock, and ``images/.manifest.lock`` for other processes).

Why the files stay true after a crash at any point:

- the runner saves an image (under its final name) and journals it before ``after_save``
  runs; a crash in between leaves the job's delivery pending (or the job running with its
  temporary file), and resume runs the step again: each step only rewrites entries from the
  journal, so running it twice writes the same thing;
- each image is made to carry its own entry (a PNG text chunk, :mod:`.imagefile`) before the
  manifest is written, so a manifest lost or damaged later is rebuilt from the files by the
  next run's reconciliation, nothing paid again;
- the manifest is written before the provenance, so the provenance never names an image the
  manifest does not claim;
- an image they stop claiming (its chapter failed or was refused after a change, or the
  chapter was removed from ``chapters.json``) is moved aside, ``{id}.replaced-TIME.png``,
  after both are written: never deleted, and never claimed once gone;
- an entry written by a later session (another run of the same episode) is never replaced by
  an older job's.

``after_run`` also gives the manifest its final status: COST_LIMIT when the episode's cap (or
the run's ``--max-cost``) left chapters unmade, "complete" when every chapter with a visual
has an image, "partial" otherwise.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import filelock

from ...model import RUNNABLE, JobState
from ...report.sheet import session_duration
from ...sources import SessionView
from .config import EpisodeConfig, episode_of, episodes_of, text_spend
from .imagefile import read_embedded_entry, save_image
from .jsonfile import JSON, iso_utc
from .manifest import (
    MANIFEST_FILE,
    ImageEntry,
    Manifest,
    ManifestStatus,
    finish_manifest,
    merge_entry,
    progress_manifest,
    read_manifest,
    write_manifest,
)
from .outcome import ended_at, failure_entry, image_entry, made_by
from .plan import image_path
from .provenance import Provenance, RunFacts, build_provenance, write_provenance
from .tally import RunTally

LOCK_FILE = MANIFEST_FILE.parent / ".manifest.lock"
#: Seconds to wait for another process's step on the same episode before giving up.
LOCK_TIMEOUT = 60.0

_GUARD = threading.Lock()
_LOCKS: dict[Path, threading.Lock] = {}


@contextlib.contextmanager
def episode_lock(folder: Path) -> Iterator[None]:
    """Hold the episode's manifest for writing (threads of this process, then processes)."""
    key = folder.resolve()
    with _GUARD:
        lock = _LOCKS.setdefault(key, threading.Lock())
    path = folder / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with lock, filelock.FileLock(str(path), timeout=LOCK_TIMEOUT):
        yield


def after_save(state: JobState, view: SessionView) -> str | None:
    """Record one saved chapter image in its episode's manifest and provenance."""
    folder = str(state.job.label("episode_dir"))
    try:
        episode = episode_of(view.config, folder)
    except KeyError as exc:
        return str(exc)
    now = datetime.now(UTC)
    with episode_lock(episode.path):
        before = current_manifest(episode, now)
        manifest = apply_job(before, state, episode, view.session_id)
        if manifest.images == before.images:
            return None  # said already (a step run again after a crash)
        manifest = progress_manifest(manifest, episode.expected, now)
        _write(episode, before, manifest, view, now, touched=(str(state.job.label("chapter_id")),))
    return None


def after_run(view: SessionView) -> list[str]:
    """Fold every ended chapter job of the session into its episode's files, with the final
    status; one summary line per episode. Episodes whose chapters were all left alone are not
    touched."""
    lines = []
    for episode in episodes_of(view.config):
        jobs = jobs_of(view, episode)
        if all(js.status == "skipped" for js in jobs):
            continue
        try:
            manifest = finish_episode(episode, jobs, view)
        except (OSError, filelock.Timeout) as exc:
            lines.append(f"Episode {episode.episode_id} ({episode.dir}): not written: {exc}")
            continue
        lines.append(summary_line(episode, manifest, jobs, view))
    return lines


def summary_line(
    episode: EpisodeConfig, manifest: Manifest, jobs: Sequence[JobState], view: SessionView
) -> str:
    """``Episode ep1 (folder): COST_LIMIT: 2 generated, 1 drawn, ...; $0.28``."""
    tally = RunTally.of(jobs, text_spend(view.config, episode.dir))
    parts = [
        f"{n} {what}"
        for n, what in (
            (tally.generated, "generated"),
            (tally.template, "drawn"),
            (tally.rejected, "rejected"),
            (tally.failed, "failed"),
            (tally.stopped, "not made"),
            (tally.skipped, "left alone"),
        )
        if n
    ]
    line = (
        f"Episode {episode.episode_id} ({episode.dir}): {manifest.status}: "
        f"{', '.join(parts)}; ${tally.cost_usd:.2f}"
    )
    if manifest.status is ManifestStatus.COST_LIMIT:
        cap = view.config.get("max_episode_cost_usd")
        line += (
            f" (stopped at a cost limit: the episode's ${cap:.2f} or the run's --max-cost)"
            if isinstance(cap, int | float)
            else " (stopped at a cost limit)"
        )
    return line


def finish_episode(episode: EpisodeConfig, jobs: Sequence[JobState], view: SessionView) -> Manifest:
    """Fold the ended jobs into the episode's files with the final status; the manifest."""
    now = datetime.now(UTC)
    with episode_lock(episode.path):
        before = current_manifest(episode, now)
        manifest = before
        touched = []
        for js in jobs:
            if js.status in ("completed", "failed"):
                manifest = apply_job(manifest, js, episode, view.session_id)
                touched.append(str(js.job.label("chapter_id")))
        unmade = [js for js in jobs if js.status in RUNNABLE]
        budget_stop = (view.stop_reason or "").startswith("budget")
        capped = any(js.error_kind == "cost_cap" for js in unmade) or (budget_stop and unmade)
        manifest = finish_manifest(manifest, episode.expected, now, cost_limited=bool(capped))
        _write(episode, before, manifest, view, now, touched=touched)
    return manifest


def jobs_of(view: SessionView, episode: EpisodeConfig) -> list[JobState]:
    """The session's jobs of one episode, in plan order."""
    return [js for js in view.jobs.values() if js.job.label("episode_dir") == episode.dir]


def current_manifest(episode: EpisodeConfig, now: datetime) -> Manifest:
    """The manifest on disk, of this episode's chapters only; a new one if there is none (or
    it was damaged: then kept aside) or it is another episode's."""
    found = read_manifest(episode.path, now).manifest
    if found is None or found.episode_id != episode.episode_id:
        return Manifest(
            episode.episode_id, episode.schema_version, iso_utc(now), ManifestStatus.IN_PROGRESS, ()
        )
    wanted = set(episode.chapters)
    kept = tuple(e for e in found.images if e.chapter_id in wanted)
    return replace(found, schema_version=episode.schema_version, images=kept)


def apply_job(
    manifest: Manifest, state: JobState, episode: EpisodeConfig, session_id: str
) -> Manifest:
    """``manifest`` with the chapter's entry for an ended job (the same manifest if the job
    says nothing new: a later session's entry stands, and a failed remake of an unchanged
    chapter keeps its image)."""
    chapter_id = str(state.job.label("chapter_id"))
    existing = manifest.entry(chapter_id)
    if (
        existing is not None
        and made_by(existing) != (session_id, state.id)
        and existing.generated_at > ended_at(state)
    ):
        return manifest  # a later session wrote this chapter
    now = datetime.now(UTC)
    if state.status == "completed":
        if not Path(state.output or "").exists():
            return manifest  # gone since it was saved: nothing to claim
        entry = carry(episode.path, image_entry(state, session_id))
        if entry == existing:
            return manifest
        return merge_entry(manifest, entry, episode.chapters, now)
    if state.status != "failed":
        return manifest
    entry = failure_entry(state, session_id)
    if (
        existing is not None
        and existing.claims_file
        and existing.content_hash == entry.content_hash
        and (episode.path / image_path(chapter_id)).is_file()
    ):
        # --force or --chapter on an unchanged chapter failed: its image still answers its
        # inputs. Keep it, and say what happened to the remake.
        note: dict[str, JSON] = {
            "status": str(entry.status),
            "reason": entry.reason,
            "at": entry.generated_at,
        }
        if existing.details.get("last_remake") == note:
            return manifest
        kept = replace(existing, details={**existing.details, "last_remake": note})
        return merge_entry(manifest, kept, episode.chapters, now)
    return merge_entry(manifest, entry, episode.chapters, now)


def carry(folder: Path, entry: ImageEntry) -> ImageEntry:
    """Make the image carry its entry (:mod:`.imagefile`), unless it already does: a lost or
    damaged manifest is then rebuilt from the files, nothing paid again. Returns the entry
    with the file's final size."""
    assert entry.file_path is not None
    path = folder / entry.file_path
    if read_embedded_entry(path) == replace(entry, size_bytes=None):
        return replace(entry, size_bytes=path.stat().st_size)
    return save_image(folder, entry, path.read_bytes())


def _write(
    episode: EpisodeConfig,
    before: Manifest,
    manifest: Manifest,
    view: SessionView,
    now: datetime,
    *,
    touched: Iterable[str],
) -> None:
    """Manifest, then provenance, then images neither claims any more kept aside: a kill
    between any two leaves no file claimed that is not there."""
    write_manifest(episode.path, manifest)
    write_provenance(episode.path, provenance(episode, manifest, view, now))
    removed = {e.chapter_id for e in before.images} - set(episode.chapters)
    keep_unclaimed(episode.path, manifest, {*touched, *removed}, now)


def provenance(
    episode: EpisodeConfig, manifest: Manifest, view: SessionView, now: datetime
) -> Provenance:
    """The episode's provenance for the session as ``view`` shows it."""
    jobs = jobs_of(view, episode)
    config = view.config
    tally = RunTally.of(jobs, text_spend(config, episode.dir))
    facts = RunFacts(
        template_name=str(config.get("template_name") or "imagegen"),
        text_model=str(config.get("text_model") or ""),
        image_gen_model=str(config.get("model") or ""),
        force=bool(config.get("force")),
        chapter_id=config.get("chapter") or None,
        session_id=view.session_id,
    )
    return build_provenance(
        episode, manifest, tally, facts, now=now, duration_seconds=session_duration(jobs) or 0.0
    )


def keep_unclaimed(
    folder: Path, manifest: Manifest, chapter_ids: Iterable[str], now: datetime
) -> None:
    """Move ``images/{id}.png`` of these chapters aside when no entry claims it."""
    stamp = now.astimezone().strftime("%Y-%m-%d-%H-%M-%S")
    for chapter_id in chapter_ids:
        entry = manifest.entry(chapter_id)
        if entry is not None and entry.claims_file:
            continue
        path = folder / image_path(chapter_id)
        if not path.is_file():
            continue
        aside, n = path.with_name(f"{path.stem}.replaced-{stamp}{path.suffix}"), 1
        while aside.exists():
            n += 1
            aside = path.with_name(f"{path.stem}.replaced-{stamp}-{n}{path.suffix}")
        path.rename(aside)

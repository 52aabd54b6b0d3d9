"""``images/manifest.json``: one entry per chapter image, as seed 002 section 6 lays it out.

::

    {"episode_id": "ep001", "schema_version": "1.0", "generated_at": "...Z",
     "status": "complete",
     "images": [{"chapter_id": "ch02", "chapter_title": "Bitcoin'in Tarihi",
                 "visual_type": "diagram", "file_path": "images/ch02.png",
                 "prompt": "...", "generation_method": "gemini", "model": "gemini-3-pro-image",
                 "size": "2752x1536", "mime_type": "image/png", "size_bytes": 1523840,
                 "metadata": {"cost_usd": 0.134, "generated_at": "...Z", ...provider's...},
                 "content_hash": "sha256:...", "status": "ok", "reason": null}]}

``schema_version`` is the chapters file's (seed 002 section 5.2 copies it). ``file_path`` is
relative to the episode folder. Beyond the seed: ``content_hash`` (what the image was made
from, :mod:`.plan`), entry ``status`` ("ok", or "rejected" for a content-policy refusal and
"failed" after the retries, seed 001 step 8, both with a ``reason`` and no file), and the
manifest's ``status`` ("in_progress" while a run writes it after each image, then "complete",
"partial" when some chapter has no ok entry, or "COST_LIMIT" when the episode's cap stopped the run,
seed 002 section 9.4).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson

from .episode import Episode
from .jsonfile import JSON, iso_utc, write_json

MANIFEST_FILE = Path("images") / "manifest.json"


class EntryStatus(StrEnum):
    OK = "ok"
    REJECTED = "rejected"
    FAILED = "failed"


class ManifestStatus(StrEnum):
    IN_PROGRESS = "in_progress"
    COMPLETE = "complete"
    PARTIAL = "partial"
    COST_LIMIT = "COST_LIMIT"


@dataclass(frozen=True, slots=True)
class ImageEntry:
    """One chapter's latest outcome. Only an ``ok`` entry claims a file.

    ``cost_usd`` and ``generated_at`` (when it was made or refused) are written inside
    ``metadata`` with ``details``: the provider's own facts (finish reason, model version,
    request id, token usage) or the placeholder's (template name, colour, text).
    """

    chapter_id: str
    chapter_title: str
    visual_type: str
    status: EntryStatus
    content_hash: str
    generated_at: str
    cost_usd: float = 0.0
    file_path: str | None = None
    prompt: str | None = None
    generation_method: str | None = None
    model: str | None = None
    size: str | None = None
    mime_type: str | None = None
    size_bytes: int | None = None
    reason: str | None = None
    details: Mapping[str, JSON] = field(default_factory=dict)

    @property
    def claims_file(self) -> bool:
        return self.status is EntryStatus.OK and self.file_path is not None


@dataclass(frozen=True, slots=True)
class Manifest:
    """An episode's image entries, in chapter order."""

    episode_id: str
    schema_version: str
    generated_at: str
    status: ManifestStatus
    images: tuple[ImageEntry, ...]

    def entry(self, chapter_id: str) -> ImageEntry | None:
        return next((e for e in self.images if e.chapter_id == chapter_id), None)


@dataclass(frozen=True, slots=True)
class ManifestRead:
    """What :func:`read_manifest` found. ``damaged`` is where an unreadable file was moved."""

    manifest: Manifest | None
    damaged: Path | None = None
    problem: str | None = None


def begin_manifest(previous: Manifest | None, episode: Episode, now: datetime) -> Manifest:
    """The manifest a run starts from: ``previous`` entries of chapters still in ``episode``
    (chapter order), the episode's ids, status "in_progress". Pure."""
    kept = previous.images if previous and previous.episode_id == episode.episode_id else ()
    by_id = {e.chapter_id: e for e in kept}
    images = tuple(by_id[c] for c in episode.chapter_ids if c in by_id)
    return Manifest(
        episode.episode_id,
        episode.schema_version,
        iso_utc(now),
        ManifestStatus.IN_PROGRESS,
        images,
    )


def merge_entry(
    manifest: Manifest, entry: ImageEntry, order: Sequence[str], now: datetime
) -> Manifest:
    """``manifest`` with ``entry`` replacing its chapter's (or added), kept in ``order``. Pure.

    ``order`` is the episode's chapter ids; entries of other chapters keep their place after
    them. This is how ``--chapter ID`` updates one chapter and leaves the rest as they were.
    """
    by_id = {e.chapter_id: e for e in manifest.images} | {entry.chapter_id: entry}
    rank = {c: i for i, c in enumerate(order)}
    images = sorted(by_id.values(), key=lambda e: rank.get(e.chapter_id, len(rank)))
    return replace(manifest, images=tuple(images), generated_at=iso_utc(now))


def finish_manifest(
    manifest: Manifest, expected: Iterable[str], now: datetime, *, cost_limited: bool
) -> Manifest:
    """The manifest's final status. Pure.

    ``expected`` are the chapters that should have an image (those with a visual:
    :attr:`.plan.EpisodePlan.expected`). COST_LIMIT when the cap stopped the run; "complete"
    when each expected chapter has an ok entry; "partial" otherwise (refused, failed, or never
    made, as after ``--chapter`` on an episode a cap stopped earlier).
    """
    ok = {e.chapter_id for e in manifest.images if e.status is EntryStatus.OK}
    if cost_limited:
        status = ManifestStatus.COST_LIMIT
    elif set(expected) <= ok:
        status = ManifestStatus.COMPLETE
    else:
        status = ManifestStatus.PARTIAL
    return replace(manifest, status=status, generated_at=iso_utc(now))


def progress_manifest(manifest: Manifest, expected: Iterable[str], now: datetime) -> Manifest:
    """The manifest's status while a run writes it: "complete" once each expected chapter has
    an ok entry, "in_progress" until then. Pure."""
    ok = {e.chapter_id for e in manifest.images if e.status is EntryStatus.OK}
    status = ManifestStatus.COMPLETE if set(expected) <= ok else ManifestStatus.IN_PROGRESS
    return replace(manifest, status=status, generated_at=iso_utc(now))


def read_manifest(episode_dir: Path, now: datetime, *, keep_aside: bool = True) -> ManifestRead:
    """The episode's manifest; ``ManifestRead(None)`` when there is none yet.

    A manifest that is not JSON or not of this shape is moved aside to
    ``manifest.json.damaged-{UTC time}`` (never overwritten, never deleted) and reported in
    ``problem``; the run then plans as if no image had an entry. With ``keep_aside`` False
    (planning, a dry run) it is only reported, and left where it is.
    """
    path = episode_dir / MANIFEST_FILE
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return ManifestRead(None)
    try:
        return ManifestRead(manifest_from_json(orjson.loads(raw)))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        problem = f"{type(exc).__name__}: {exc}"
    if not keep_aside:
        return ManifestRead(None, None, f"{path}: damaged ({problem}); it will be kept aside")
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    aside, n = path.with_name(f"{path.name}.damaged-{stamp}"), 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.damaged-{stamp}-{n}")
    path.rename(aside)
    return ManifestRead(None, aside, f"{path}: damaged ({problem}); kept as {aside.name}")


def write_manifest(episode_dir: Path, manifest: Manifest) -> Path:
    """Replace the episode's manifest atomically (temp, fsync, rename, fsync folder)."""
    path = episode_dir / MANIFEST_FILE
    write_json(path, manifest_to_json(manifest))
    return path


def entry_to_json(entry: ImageEntry) -> dict[str, JSON]:
    metadata: dict[str, JSON] = {
        "cost_usd": entry.cost_usd,
        "generated_at": entry.generated_at,
        **entry.details,
    }
    return {
        "chapter_id": entry.chapter_id,
        "chapter_title": entry.chapter_title,
        "visual_type": entry.visual_type,
        "file_path": entry.file_path,
        "prompt": entry.prompt,
        "generation_method": entry.generation_method,
        "model": entry.model,
        "size": entry.size,
        "mime_type": entry.mime_type,
        "size_bytes": entry.size_bytes,
        "metadata": metadata,
        "content_hash": entry.content_hash,
        "status": str(entry.status),
        "reason": entry.reason,
    }


def entry_from_json(data: Any) -> ImageEntry:
    """Raises KeyError, TypeError or ValueError when ``data`` is not an entry.

    Missing ``status`` means "ok" and missing ``content_hash`` means "", so an entry written
    by the seed's own pipeline reads as an image whose inputs are unknown (made again once).
    """
    if not isinstance(data, dict):
        raise TypeError("an image entry is not an object")
    meta = data.get("metadata") or {}
    if not isinstance(meta, dict):
        raise TypeError(f"{data.get('chapter_id')}: metadata is not an object")
    size_bytes = data.get("size_bytes")
    return ImageEntry(
        chapter_id=_str(data["chapter_id"]),
        chapter_title=_str(data.get("chapter_title", "")),
        visual_type=_str(data.get("visual_type", "")),
        status=EntryStatus(data.get("status", "ok")),
        content_hash=_str(data.get("content_hash", "")),
        generated_at=_str(meta.get("generated_at", "")),
        cost_usd=float(meta.get("cost_usd") or 0.0),
        file_path=_opt(data.get("file_path")),
        prompt=_opt(data.get("prompt")),
        generation_method=_opt(data.get("generation_method")),
        model=_opt(data.get("model")),
        size=_opt(data.get("size")),
        mime_type=_opt(data.get("mime_type")),
        size_bytes=None if size_bytes is None else int(size_bytes),
        reason=_opt(data.get("reason")),
        details={k: v for k, v in meta.items() if k not in ("cost_usd", "generated_at")},
    )


def manifest_to_json(manifest: Manifest) -> dict[str, JSON]:
    return {
        "episode_id": manifest.episode_id,
        "schema_version": manifest.schema_version,
        "generated_at": manifest.generated_at,
        "status": str(manifest.status),
        "images": [entry_to_json(e) for e in manifest.images],
    }


def manifest_from_json(data: Any) -> Manifest:
    """Raises KeyError, TypeError or ValueError when ``data`` is not a manifest."""
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise TypeError("not a manifest object with an images list")
    images = tuple(entry_from_json(e) for e in data["images"])
    ids = [e.chapter_id for e in images]
    if len(set(ids)) != len(ids):
        raise ValueError("two entries for one chapter")
    return Manifest(
        _str(data["episode_id"]),
        str(data.get("schema_version", "")),
        _str(data.get("generated_at", "")),
        ManifestStatus(data.get("status", ManifestStatus.COMPLETE)),
        images,
    )


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{value!r} is not a string")
    return value


def _opt(value: object) -> str | None:
    return None if value is None else _str(value)

"""What became of one chapter: its manifest entry, and recording it on disk.

The builders are pure. The recorders are the only writes a run makes per chapter, in the order
that keeps the manifest honest after a crash: the image first (carrying its entry), then the
manifest. The caller writes provenance after them (:mod:`.provenance`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from ...errors import NoImage, ProviderError
from ...providers.placeholder import Placeholder
from .imagefile import save_image
from .jsonfile import JSON, iso_utc
from .manifest import EntryStatus, ImageEntry, Manifest, merge_entry, write_manifest
from .plan import ChapterDecision

PNG = "image/png"


def placeholder_entry(
    decision: ChapterDecision, placeholder: Placeholder, now: datetime
) -> ImageEntry:
    """The entry of a drawn placeholder (``generation_method`` "template", no model, $0)."""
    return _entry(
        decision,
        EntryStatus.OK,
        now,
        file_path=decision.file_path,
        generation_method="template",
        size=f"{placeholder.width}x{placeholder.height}",
        mime_type=PNG,
        details=placeholder.details(),
    )


def generated_entry(
    decision: ChapterDecision,
    *,
    prompt: str,
    method: str,
    model: str,
    width: int,
    height: int,
    cost_usd: float,
    now: datetime,
    details: Mapping[str, JSON] | None = None,
) -> ImageEntry:
    """The entry of a generated image. ``method`` is the provider's name ("gemini"; the seed
    wrote "dalle3"), ``width`` x ``height`` the image's real pixels, ``cost_usd`` the image's
    cost alone, ``details`` what the provider returned (finish reason, model version, request
    id, usage). ``size_bytes`` is set when the image is saved."""
    return _entry(
        decision,
        EntryStatus.OK,
        now,
        cost_usd=cost_usd,
        file_path=decision.file_path,
        prompt=prompt,
        generation_method=method,
        model=model,
        size=f"{width}x{height}",
        mime_type=PNG,
        details=dict(details or {}),
    )


def unmade_entry(
    decision: ChapterDecision,
    error: ProviderError,
    *,
    now: datetime,
    prompt: str | None = None,
    method: str | None = None,
    model: str | None = None,
    cost_usd: float = 0.0,
) -> ImageEntry:
    """The entry of a chapter that got no image: "rejected" for a refusal, else "failed".

    ``prompt`` is kept so a person can see what was refused (seed 002 section 3.3).
    """
    status = entry_status(error)
    reason = error.reason if isinstance(error, NoImage) else error.kind
    details: dict[str, JSON] = {"error": str(error)} if str(error) else {}
    return _entry(
        decision,
        status,
        now,
        cost_usd=cost_usd,
        prompt=prompt,
        generation_method=method,
        model=model,
        reason=reason,
        details=details,
    )


def _entry(
    decision: ChapterDecision, status: EntryStatus, now: datetime, **fields: Any
) -> ImageEntry:
    """An entry for ``decision``'s chapter: what every outcome shares, plus ``fields``."""
    return ImageEntry(
        chapter_id=decision.chapter_id,
        chapter_title=decision.chapter.title,
        visual_type=decision.visual_type or "",
        status=status,
        content_hash=decision.content_hash,
        generated_at=iso_utc(now),
        **fields,
    )


def entry_status(error: ProviderError) -> EntryStatus:
    """REJECTED for an answer without an image (a block or refusal: the same prompt gets the
    same answer, :class:`imagegen.errors.NoImage`), FAILED for anything else."""
    return EntryStatus.REJECTED if isinstance(error, NoImage) else EntryStatus.FAILED


def record_image(
    episode_dir: Path,
    manifest: Manifest,
    entry: ImageEntry,
    png: bytes,
    order: tuple[str, ...],
    now: datetime,
) -> Manifest:
    """Save the image (carrying its entry), then merge the entry and write the manifest.

    Returns the manifest as written. ``order`` is the episode's chapter ids.
    """
    saved = save_image(episode_dir, entry, png)
    return record_entry(episode_dir, manifest, saved, order, now)


def record_entry(
    episode_dir: Path,
    manifest: Manifest,
    entry: ImageEntry,
    order: tuple[str, ...],
    now: datetime,
) -> Manifest:
    """Merge an entry that claims no new file (rejected, failed) and write the manifest."""
    merged = merge_entry(manifest, entry, order, now)
    write_manifest(episode_dir, merged)
    return merged

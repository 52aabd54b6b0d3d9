"""Make a manifest agree with the image files on disk. Pure.

Run it after reading the manifest and before planning. Per chapter of the episode:

- an image carrying an entry (:mod:`.imagefile`) newer than the manifest's, or for a chapter
  the manifest does not list, is **adopted**: the run that wrote it died before the manifest;
- an ``ok`` entry whose file is gone is **dropped**, so the plan makes the image again;
- otherwise the entry stands (its ``size_bytes`` refreshed if the file's size changed).

Image files no entry claims afterwards (placed by hand, left by a removed chapter, or from an
older tool) are listed in ``unclaimed`` and left alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from .imagefile import DiskImage
from .jsonfile import iso_utc
from .manifest import ImageEntry, Manifest, merge_entry
from .plan import image_path


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """The agreed manifest; chapter ids dropped, adopted and refreshed; paths nobody claims."""

    manifest: Manifest
    dropped: tuple[str, ...] = ()
    adopted: tuple[str, ...] = ()
    refreshed: tuple[str, ...] = ()
    unclaimed: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        """True when the manifest on disk should be rewritten."""
        return bool(self.dropped or self.adopted or self.refreshed)


def reconcile(
    manifest: Manifest,
    on_disk: Mapping[str, DiskImage],
    chapter_ids: Sequence[str],
    now: datetime,
) -> Reconciliation:
    """``manifest`` agreeing with ``on_disk`` (from :func:`.imagefile.scan_images`)."""
    current = manifest
    dropped: list[str] = []
    adopted: list[str] = []
    refreshed: list[str] = []
    for chapter_id in chapter_ids:
        path = image_path(chapter_id)
        disk = on_disk.get(path)
        entry = current.entry(chapter_id)
        carried = disk.embedded if disk else None
        if disk and carried and carried.chapter_id == chapter_id and _newer(carried, entry):
            fixed = replace(carried, file_path=path, size_bytes=disk.size_bytes)
            current = merge_entry(current, fixed, chapter_ids, now)
            adopted.append(chapter_id)
        elif entry is None or not entry.claims_file:
            continue
        elif disk is None or entry.file_path != path:
            kept = tuple(e for e in current.images if e.chapter_id != chapter_id)
            current = replace(current, images=kept, generated_at=iso_utc(now))
            dropped.append(chapter_id)
        elif entry.size_bytes != disk.size_bytes:
            fixed = replace(entry, size_bytes=disk.size_bytes)
            current = merge_entry(current, fixed, chapter_ids, now)
            refreshed.append(chapter_id)
    claimed = {e.file_path for e in current.images if e.claims_file}
    unclaimed = tuple(p for p in sorted(on_disk) if p not in claimed)
    return Reconciliation(current, tuple(dropped), tuple(adopted), tuple(refreshed), unclaimed)


def _newer(carried: ImageEntry, entry: ImageEntry | None) -> bool:
    # Same-format UTC stamps ("...T10:30:00Z") order as strings; a tie keeps the manifest's.
    return entry is None or carried.generated_at > entry.generated_at

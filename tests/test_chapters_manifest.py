"""Manifest: shape, merge, atomic write, damaged files kept aside; images that carry their
entry; reconciling a manifest with the disk after a crash (a real killed process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from imagegen.images import sniff
from imagegen.sources.chapters import (
    MANIFEST_FILE,
    EntryStatus,
    ImageEntry,
    Manifest,
    ManifestStatus,
    begin_manifest,
    embed_entry,
    finish_manifest,
    load_episode,
    merge_entry,
    read_embedded_entry,
    read_manifest,
    reconcile,
    save_image,
    scan_images,
    write_manifest,
)
from tests.chapters_helpers import NOW, at, mixed_chapters, png, write_episode

ORDER = ("ch01", "ch02", "ch03")


def entry(chapter_id: str, **changes: object) -> ImageEntry:
    base = ImageEntry(
        chapter_id=chapter_id,
        chapter_title=f"Başlık {chapter_id}",  # noqa: RUF001 (Turkish, on purpose)
        visual_type="diagram",
        status=EntryStatus.OK,
        content_hash=f"sha256:{chapter_id}",
        generated_at="2026-03-01T10:00:00Z",
        cost_usd=0.134,
        file_path=f"images/{chapter_id}.png",
        prompt="A chain.",
        generation_method="gemini",
        model="gemini-3-pro-image",
        size="2752x1536",
        mime_type="image/png",
        size_bytes=10,
        details={"finish_reason": "STOP"},
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def manifest(*entries: ImageEntry) -> Manifest:
    return Manifest("ep001", "1.0", "2026-03-01T10:00:00Z", ManifestStatus.IN_PROGRESS, entries)


def test_written_manifest_has_the_seed_shape_and_readable_turkish(tmp_path: Path) -> None:
    rejected = entry(
        "ch02",
        status=EntryStatus.REJECTED,
        reason="IMAGE_SAFETY",
        file_path=None,
        size=None,
        mime_type=None,
        size_bytes=None,
        cost_usd=0.0,
    )
    path = write_manifest(tmp_path, manifest(entry("ch01"), rejected))
    assert path == tmp_path / "images" / "manifest.json"
    text = path.read_text(encoding="utf-8")
    assert "Başlık ch01" in text  # noqa: RUF001 (ensure_ascii=False keeps it readable)
    doc = json.loads(text)
    assert list(doc) == ["episode_id", "schema_version", "generated_at", "status", "images"]
    first = doc["images"][0]
    assert list(first) == [
        "chapter_id",
        "chapter_title",
        "visual_type",
        "file_path",
        "prompt",
        "generation_method",
        "model",
        "size",
        "mime_type",
        "size_bytes",
        "metadata",
        "content_hash",
        "status",
        "reason",
    ]
    assert first["metadata"] == {
        "cost_usd": 0.134,
        "generated_at": "2026-03-01T10:00:00Z",
        "finish_reason": "STOP",
    }
    assert doc["images"][1]["status"] == "rejected"
    assert doc["images"][1]["reason"] == "IMAGE_SAFETY"
    assert doc["images"][1]["file_path"] is None


def test_manifest_round_trips(tmp_path: Path) -> None:
    original = manifest(entry("ch01"), entry("ch02", status=EntryStatus.FAILED, file_path=None))
    write_manifest(tmp_path, original)
    assert read_manifest(tmp_path, NOW).manifest == original


def test_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    write_manifest(tmp_path, manifest(entry("ch01")))
    write_manifest(tmp_path, manifest(entry("ch02")))
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == ["manifest.json"]


def test_missing_manifest_reads_as_none(tmp_path: Path) -> None:
    read = read_manifest(tmp_path, NOW)
    assert (read.manifest, read.damaged, read.problem) == (None, None, None)


@pytest.mark.parametrize(
    "content",
    [b"{truncated", b"[]", b'{"episode_id": "e", "images": [{"no_chapter_id": 1}]}'],
)
def test_damaged_manifest_is_kept_aside_and_reported(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / MANIFEST_FILE
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    read = read_manifest(tmp_path, NOW)
    assert read.manifest is None
    assert read.damaged == path.with_name("manifest.json.damaged-20260301T100000Z")
    assert read.damaged.read_bytes() == content
    assert not path.exists()
    assert read.problem is not None and "damaged" in read.problem
    assert "manifest.json.damaged-20260301T100000Z" in read.problem
    # A second damaged file in the same second does not overwrite the first one kept.
    path.write_bytes(b"{again")
    again = read_manifest(tmp_path, NOW)
    assert again.damaged is not None and again.damaged.name.endswith("-2")
    assert read.damaged.read_bytes() == content


def test_a_manifest_written_by_the_seed_pipeline_reads(tmp_path: Path) -> None:
    """Seed 002 section 6.1's example: no status, no content hash."""
    seed = {
        "episode_id": "abc123",
        "schema_version": "1.0",
        "generated_at": "2026-02-28T10:30:00Z",
        "images": [
            {
                "chapter_id": "ch01",
                "chapter_title": "Giriş",
                "visual_type": "title_card",
                "file_path": "images/ch01_intro.png",
                "prompt": None,
                "generation_method": "template",
                "model": None,
                "size": "1920x1080",
                "mime_type": "image/png",
                "size_bytes": 245120,
                "metadata": {"template_name": "title_card_default"},
            }
        ],
    }
    path = tmp_path / MANIFEST_FILE
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(seed), encoding="utf-8")
    read = read_manifest(tmp_path, NOW)
    assert read.manifest is not None
    old = read.manifest.images[0]
    assert (old.status, old.content_hash, old.cost_usd) == (EntryStatus.OK, "", 0.0)
    assert old.details == {"template_name": "title_card_default"}


def test_merge_replaces_one_chapter_and_keeps_the_rest() -> None:
    """--chapter ch02 merges its new entry; ch01 and ch03 stay as they were."""
    start = manifest(entry("ch01"), entry("ch02"), entry("ch03"))
    new = entry("ch02", prompt="A new chain.", generated_at="2026-03-02T09:00:00Z")
    merged = merge_entry(start, new, ORDER, at(3600))
    assert [e.chapter_id for e in merged.images] == list(ORDER)
    assert merged.entry("ch02") == new
    assert merged.entry("ch01") == start.entry("ch01")
    assert merged.generated_at == "2026-03-01T11:00:00Z"


def test_merge_inserts_in_chapter_order() -> None:
    merged = merge_entry(manifest(entry("ch03"), entry("ch01")), entry("ch02"), ORDER, NOW)
    assert [e.chapter_id for e in merged.images] == ["ch01", "ch02", "ch03"]


def test_begin_keeps_entries_of_chapters_still_in_the_episode(tmp_path: Path) -> None:
    write_episode(tmp_path, mixed_chapters()[:2])
    episode = load_episode(tmp_path)
    start = begin_manifest(manifest(entry("ch02"), entry("gone"), entry("ch01")), episode, NOW)
    assert [e.chapter_id for e in start.images] == ["ch01", "ch02"]
    assert start.status is ManifestStatus.IN_PROGRESS
    other = replace(manifest(entry("ch01")), episode_id="another")
    assert begin_manifest(other, episode, NOW).images == ()
    assert begin_manifest(None, episode, NOW).schema_version == "1.0"


def test_finish_sets_the_status() -> None:
    ok = manifest(entry("ch01"))
    assert finish_manifest(ok, ["ch01"], NOW, cost_limited=False).status is ManifestStatus.COMPLETE
    bad = manifest(entry("ch01"), entry("ch02", status=EntryStatus.REJECTED, file_path=None))
    done = finish_manifest(bad, ["ch01", "ch02"], NOW, cost_limited=False)
    assert done.status is ManifestStatus.PARTIAL
    never_made = finish_manifest(ok, ["ch01", "ch02"], NOW, cost_limited=False)
    assert never_made.status is ManifestStatus.PARTIAL
    capped = finish_manifest(ok, ["ch01"], NOW, cost_limited=True)
    assert capped.status is ManifestStatus.COST_LIMIT
    assert str(ManifestStatus.COST_LIMIT) == "COST_LIMIT"


def test_an_image_carries_its_entry_and_stays_a_valid_png(tmp_path: Path) -> None:
    data = embed_entry(png(), entry("ch01"))
    assert sniff(data).format == "PNG"  # every chunk's CRC checked
    path = tmp_path / "ch01.png"
    path.write_bytes(data)
    carried = read_embedded_entry(path)
    assert carried == entry("ch01", size_bytes=None)
    # Embedding again replaces the record rather than adding a second one.
    again = embed_entry(data, entry("ch01", prompt="Another."))
    path.write_bytes(again)
    assert read_embedded_entry(path) == entry("ch01", prompt="Another.", size_bytes=None)
    assert again.count(b"imagegen:entry") == 1


def test_embedding_refuses_what_is_not_a_png() -> None:
    with pytest.raises(ValueError, match="not a PNG"):
        embed_entry(b"\xff\xd8\xff\xe0 jpeg", entry("ch01"))


def test_save_image_writes_durably_and_sets_size_bytes(tmp_path: Path) -> None:
    saved = save_image(tmp_path, entry("ch01", size_bytes=None), png())
    path = tmp_path / "images" / "ch01.png"
    assert saved.size_bytes == path.stat().st_size
    assert read_embedded_entry(path) == replace(saved, size_bytes=None)


def test_scan_lists_pngs_with_their_records(tmp_path: Path) -> None:
    save_image(tmp_path, entry("ch01"), png())
    (tmp_path / "images" / "hand.png").write_bytes(png())
    (tmp_path / "images" / ".ch02.png.123.tmp").write_bytes(b"half")
    (tmp_path / "images" / "notes.txt").write_text("x")
    found = scan_images(tmp_path)
    assert sorted(found) == ["images/ch01.png", "images/hand.png"]
    assert found["images/ch01.png"].embedded is not None
    assert found["images/hand.png"].embedded is None
    assert scan_images(tmp_path / "nowhere") == {}


def test_reconcile_drops_an_entry_whose_file_is_gone(tmp_path: Path) -> None:
    start = manifest(entry("ch01"), entry("ch02"))
    saved = save_image(tmp_path, entry("ch01"), png())
    start = merge_entry(start, saved, ORDER, NOW)
    result = reconcile(start, scan_images(tmp_path), ORDER, NOW)
    assert result.dropped == ("ch02",)
    assert [e.chapter_id for e in result.manifest.images] == ["ch01"]
    assert result.changed


def test_reconcile_keeps_entries_that_claim_no_file(tmp_path: Path) -> None:
    rejected = entry("ch01", status=EntryStatus.REJECTED, file_path=None)
    result = reconcile(manifest(rejected), scan_images(tmp_path), ORDER, NOW)
    assert result.manifest.images == (rejected,) and not result.changed


def test_reconcile_adopts_a_newer_image_than_its_entry(tmp_path: Path) -> None:
    old = save_image(tmp_path, entry("ch01"), png())
    newer = entry("ch01", content_hash="sha256:new", generated_at="2026-03-01T10:05:00Z")
    save_image(tmp_path, newer, png(colour=(1, 2, 3)))
    result = reconcile(manifest(old), scan_images(tmp_path), ORDER, NOW)
    assert result.adopted == ("ch01",)
    adopted = result.manifest.entry("ch01")
    assert adopted is not None and adopted.content_hash == "sha256:new"
    assert adopted.size_bytes == (tmp_path / "images" / "ch01.png").stat().st_size


def test_reconcile_keeps_a_later_failure_over_an_older_image(tmp_path: Path) -> None:
    save_image(tmp_path, entry("ch01"), png())
    failed = entry("ch01", status=EntryStatus.FAILED, file_path=None, generated_at="2026-03-02")
    result = reconcile(manifest(failed), scan_images(tmp_path), ORDER, NOW)
    assert result.manifest.images == (failed,)
    assert result.unclaimed == ("images/ch01.png",)


def test_reconcile_lists_files_nobody_claims(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "hand.png").write_bytes(png())
    save_image(tmp_path, entry("removed"), png())  # a chapter no longer in the episode
    result = reconcile(manifest(), scan_images(tmp_path), ORDER, NOW)
    assert result.unclaimed == ("images/hand.png", "images/removed.png")
    assert result.manifest.images == () and not result.changed


def test_reconcile_refreshes_a_changed_size(tmp_path: Path) -> None:
    saved = save_image(tmp_path, entry("ch01"), png())
    (tmp_path / "images" / "ch01.png").write_bytes(png(width=99))  # replaced by hand
    result = reconcile(manifest(saved), scan_images(tmp_path), ORDER, NOW)
    assert result.refreshed == ("ch01",)
    fixed = result.manifest.entry("ch01")
    assert fixed is not None
    assert fixed.size_bytes == (tmp_path / "images" / "ch01.png").stat().st_size


CRASH_AFTER_IMAGE = textwrap.dedent(
    """
    import os, signal, sys
    from dataclasses import replace
    from pathlib import Path
    from tests.test_chapters_manifest import entry, manifest
    from tests.chapters_helpers import png
    from imagegen.sources.chapters import save_image, write_manifest

    episode = Path(sys.argv[1])
    write_manifest(episode, manifest(save_image(episode, entry("ch01"), png())))
    newer = entry("ch02", generated_at="2026-03-01T10:01:00Z")
    save_image(episode, newer, png())
    os.kill(os.getpid(), signal.SIGKILL)  # dies before the manifest learns of ch02
    """
)


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL")
def test_a_killed_run_loses_no_image(tmp_path: Path) -> None:
    """A process killed between saving an image and writing the manifest: the manifest on
    disk is whole and claims only ch01; reconciling adopts ch02 from its file."""
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-c", CRASH_AFTER_IMAGE, str(tmp_path)],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == -9, done.stderr
    read = read_manifest(tmp_path, NOW)
    assert read.manifest is not None and read.damaged is None
    assert [e.chapter_id for e in read.manifest.images] == ["ch01"]
    result = reconcile(read.manifest, scan_images(tmp_path), ORDER, NOW)
    assert result.adopted == ("ch02",)
    assert [e.chapter_id for e in result.manifest.images] == ["ch01", "ch02"]
    assert all((tmp_path / e.file_path).is_file() for e in result.manifest.images if e.file_path)

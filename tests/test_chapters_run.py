"""Cost cap, tally, provenance and the API result; and whole runs of the reference driver
(tests/chapters_driver.py) that wire the blocks as the runner will."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from imagegen.errors import NoImage, ServerError
from imagegen.sources.chapters import (
    EntryStatus,
    EpisodeCostCap,
    ImageEntry,
    ManifestStatus,
    RunTally,
    TextUsage,
    read_manifest,
)
from imagegen.sources.chapters.prompt_cache import CACHE_FILE
from tests.chapters_driver import run_episode
from tests.chapters_helpers import NOW, SMALL, FakeImages, FakeWriter, at, mixed_chapters
from tests.chapters_helpers import write_episode as write

# --- cost cap -------------------------------------------------------------------------------


def test_cap_defaults_to_ten_dollars() -> None:
    assert EpisodeCostCap().limit_usd == 10.0


def test_next_image_fits_up_to_the_cap_exactly() -> None:
    """Seed 002 section 9.4 stops when spent + next > cap: reaching it exactly is allowed."""
    cap = EpisodeCostCap(0.4).charge(0.134).charge(0.134)
    assert cap.fits(0.132)
    assert not cap.fits(0.133)
    assert EpisodeCostCap(0.3).charge(0.1).charge(0.1).fits(0.1)  # float sums do not trip it


def test_reservations_hold_room_for_images_in_flight() -> None:
    cap = EpisodeCostCap(0.3).reserve(0.134).reserve(0.134)
    assert not cap.fits(0.134)
    with pytest.raises(ValueError, match="does not fit"):
        cap.reserve(0.134)
    cap = cap.settle(0.134, 0.0)  # one was not billed
    assert cap.fits(0.134)
    assert (cap.spent_usd, cap.reserved_usd) == (0.0, 0.134)
    cap = cap.settle(0.134, 0.14)
    assert cap.spent_usd == 0.14 and cap.reserved_usd == 0.0
    assert cap.remaining_usd == pytest.approx(0.16)


def test_cap_of_zero_allows_only_free_work() -> None:
    cap = EpisodeCostCap(0.0)
    assert cap.fits(0.0) and not cap.fits(0.01)


# --- tally ----------------------------------------------------------------------------------


def _entry(status: EntryStatus, method: str | None, cost: float) -> ImageEntry:
    return ImageEntry("c", "t", "diagram", status, "h", "g", cost, generation_method=method)


def test_tally_counts_outcomes_tokens_and_cost() -> None:
    tally = (
        RunTally()
        .add_entry(_entry(EntryStatus.OK, "gemini", 0.134))
        .add_entry(_entry(EntryStatus.OK, "template", 0.0))
        .add_entry(_entry(EntryStatus.REJECTED, "gemini", 0.0))
        .add_entry(_entry(EntryStatus.FAILED, "gemini", 0.0))
        .add_text(TextUsage("m", 100, 40, 0.002))
        .add_stopped(2)
    )
    assert (tally.generated, tally.template, tally.rejected, tally.failed, tally.stopped) == (
        1,
        1,
        1,
        1,
        2,
    )
    assert (tally.input_tokens, tally.output_tokens) == (100, 40)
    assert tally.cost_usd == pytest.approx(0.136)


# --- whole runs -----------------------------------------------------------------------------


@pytest.fixture
def episode(tmp_path: Path) -> Path:
    folder = tmp_path / "ep001"
    write(folder, mixed_chapters())
    return folder


@pytest.mark.asyncio
async def test_first_run_makes_every_image_and_writes_manifest_and_provenance(
    episode: Path,
) -> None:
    images, writer = FakeImages(), FakeWriter()
    result = await run_episode(episode, images=images, writer=writer)
    assert (result.generated_count, result.template_count, result.skipped_count) == (3, 2, 0)
    assert (result.image_count, result.status) == (5, ManifestStatus.COMPLETE)
    assert (result.input_tokens, result.output_tokens) == (100, 50)  # ch03's prompt written
    assert result.cost_usd == pytest.approx(3 * 0.134 + 0.001)
    assert not result.skipped
    assert sorted(p.name for p in (episode / "images").glob("*.png")) == [
        f"ch0{i}.png" for i in range(1, 6)
    ]
    assert result.manifest_path == episode / "images" / "manifest.json"
    manifest = json.loads(result.manifest_path.read_text(encoding="utf-8"))
    assert manifest["status"] == "complete"
    assert "Giriş: Bitcoin Nedir?" in result.manifest_path.read_text(encoding="utf-8")
    methods = {e["chapter_id"]: e["generation_method"] for e in manifest["images"]}
    assert [methods[f"ch0{i}"] for i in range(1, 6)] == ["template"] + ["fake"] * 3 + ["template"]
    assert all(
        e["size_bytes"] == (episode / e["file_path"]).stat().st_size for e in manifest["images"]
    )
    # The written prompt went to the image model behind nothing (empty style prefix).
    assert images.prompts[1] == "Prompt #1"


@pytest.mark.asyncio
async def test_provenance_has_the_seed_shape(episode: Path) -> None:
    result = await run_episode(episode, images=FakeImages(), writer=FakeWriter())
    doc = json.loads(result.provenance_path.read_text(encoding="utf-8"))
    seed_keys = [  # seed 002 section 8.1, in its order
        "stage",
        "episode_id",
        "timestamp",
        "prompt_name",
        "prompt_version",
        "prompt_hash",
        "model",
        "image_gen_model",
        "input_files",
        "input_content_hash",
        "output_files",
        "input_tokens",
        "output_tokens",
        "image_count",
        "generated_count",
        "template_count",
        "cost_usd",
        "duration_seconds",
    ]
    assert list(doc)[: len(seed_keys)] == seed_keys
    assert doc["stage"] == "imagegen"
    assert doc["prompt_hash"].startswith("sha256:")
    assert doc["input_content_hash"].startswith("sha256:")
    assert doc["input_files"] == ["chapters.json"]
    assert doc["output_files"][0] == "images/manifest.json"
    assert sorted(doc["output_files"][1:]) == [f"images/ch0{i}.png" for i in range(1, 6)]
    assert (doc["image_count"], doc["generated_count"], doc["template_count"]) == (5, 3, 2)
    assert doc["model"] == "gemini-2.5-flash"
    assert doc["image_gen_model"] == "gemini-3-pro-image"
    assert (doc["status"], doc["force"], doc["chapter_id"]) == ("complete", False, None)
    assert doc["duration_seconds"] == 1.5


@pytest.mark.asyncio
async def test_second_run_on_an_unchanged_episode_does_nothing(episode: Path) -> None:
    await run_episode(episode, images=FakeImages(), writer=FakeWriter())
    before = {p: p.stat().st_mtime_ns for p in episode.rglob("*") if p.is_file()}
    images, writer = FakeImages(), FakeWriter()
    result = await run_episode(episode, images=images, writer=writer, now=at(60))
    assert result.skipped and result.skipped_count == 5 and result.cost_usd == 0
    assert result.status is ManifestStatus.COMPLETE
    assert (images.prompts, writer.calls) == ([], [])
    assert {p: p.stat().st_mtime_ns for p in episode.rglob("*") if p.is_file()} == before


@pytest.mark.asyncio
async def test_an_edited_chapter_alone_is_regenerated_and_merged(episode: Path) -> None:
    await run_episode(episode, images=FakeImages(), writer=FakeWriter())
    chapters = mixed_chapters()
    chapters[3]["visuals"][0]["image_prompt"] = "A hardware wallet screen"
    write(episode, chapters)
    images = FakeImages()
    result = await run_episode(episode, images=images, writer=FakeWriter(), now=at(60))
    assert images.prompts == ["A hardware wallet screen"]
    assert (result.generated_count, result.skipped_count, result.image_count) == (1, 4, 5)
    read = read_manifest(episode, NOW).manifest
    assert read is not None
    ch04 = read.entry("ch04")
    assert ch04 is not None and ch04.generated_at == "2026-03-01T10:01:00Z"
    ch02 = read.entry("ch02")
    assert ch02 is not None and ch02.generated_at == "2026-03-01T10:00:00Z"


@pytest.mark.asyncio
async def test_force_and_chapter_flags(episode: Path) -> None:
    await run_episode(episode, images=FakeImages(), writer=FakeWriter())
    images = FakeImages()
    forced = await run_episode(episode, images=images, writer=FakeWriter(), force=True)
    assert (forced.generated_count, forced.template_count) == (3, 2)
    # ch03's written prompt comes from the cache: the text model is not paid again.
    assert forced.input_tokens == 0
    assert forced.cost_usd == pytest.approx(3 * 0.134)
    images = FakeImages()
    one = await run_episode(episode, images=images, writer=FakeWriter(), chapter_id="ch02")
    assert (one.generated_count, one.skipped_count, one.image_count) == (1, 4, 5)
    doc = json.loads(one.provenance_path.read_text(encoding="utf-8"))
    assert doc["chapter_id"] == "ch02" and doc["image_count"] == 5


@pytest.mark.asyncio
async def test_prompt_cache_survives_a_lost_image_and_misses_on_a_new_template(
    episode: Path, tmp_path: Path
) -> None:
    writer = FakeWriter()
    await run_episode(episode, images=FakeImages(), writer=writer)
    assert (episode / CACHE_FILE).is_file()
    (episode / "images" / "ch03.png").unlink()
    images = FakeImages()
    result = await run_episode(episode, images=images, writer=writer, now=at(60))
    assert len(writer.calls) == 1  # the cached prompt was reused
    assert images.prompts == ["Prompt #1"] and result.generated_count == 1
    template = tmp_path / "mine.md"
    template.write_text("Describe {{ visual_description }} plainly.", encoding="utf-8")
    settings = replace(SMALL, prompt_template=template)
    again = await run_episode(episode, settings, images=images, writer=writer, now=at(120))
    assert len(writer.calls) == 2 and again.generated_count == 1
    assert writer.calls[-1] == "Describe miners at work plainly.\n"


@pytest.mark.asyncio
async def test_a_rejection_is_recorded_and_the_episode_goes_on(episode: Path) -> None:
    images = FakeImages(errors={"wallet": NoImage("blocked", reason="IMAGE_SAFETY")})
    result = await run_episode(episode, images=images, writer=FakeWriter())
    assert (result.rejected_count, result.generated_count, result.template_count) == (1, 2, 2)
    assert result.status is ManifestStatus.PARTIAL
    read = read_manifest(episode, NOW).manifest
    assert read is not None
    ch04 = read.entry("ch04")
    assert ch04 is not None
    assert (ch04.status, ch04.reason, ch04.file_path) == (
        EntryStatus.REJECTED,
        "IMAGE_SAFETY",
        None,
    )
    assert ch04.prompt == "A generic wallet app screen"  # kept for a person to review
    # Unchanged, it is not sent again; a failure, by contrast, is retried.
    again = await run_episode(episode, images=FakeImages(), writer=FakeWriter(), now=at(60))
    assert again.skipped


@pytest.mark.asyncio
async def test_a_failure_is_recorded_and_retried_next_run(episode: Path) -> None:
    images = FakeImages(errors={"chain": ServerError("overloaded")})
    result = await run_episode(episode, images=images, writer=FakeWriter())
    assert result.failed_count == 1 and result.status is ManifestStatus.PARTIAL
    retry = FakeImages()
    again = await run_episode(episode, images=retry, writer=FakeWriter(), now=at(60))
    assert again.generated_count == 1 and again.status is ManifestStatus.COMPLETE
    assert retry.prompts == ["A clean diagram of blocks linked in a chain"]


@pytest.mark.asyncio
async def test_the_cost_cap_stops_the_episode_with_cost_limit(episode: Path) -> None:
    settings = replace(SMALL, max_episode_cost_usd=0.3)
    images = FakeImages()
    result = await run_episode(episode, settings, images=images, writer=FakeWriter(cost_usd=0))
    # ch01 placeholder, ch02 and ch03 ($0.268), then ch04 would pass $0.30: stop.
    assert len(images.prompts) == 2
    assert (result.generated_count, result.template_count, result.stopped_count) == (2, 1, 2)
    assert result.status is ManifestStatus.COST_LIMIT
    assert result.cost_usd <= 0.3
    read = read_manifest(episode, NOW).manifest
    assert read is not None and read.status is ManifestStatus.COST_LIMIT
    assert [e.chapter_id for e in read.images] == ["ch01", "ch02", "ch03"]
    doc = json.loads(result.provenance_path.read_text(encoding="utf-8"))
    assert doc["status"] == "COST_LIMIT" and doc["stopped_count"] == 2
    # The next run (a fresh cap) finishes what was left, nothing else.
    rest = await run_episode(episode, images=FakeImages(), writer=FakeWriter(), now=at(60))
    assert (rest.generated_count, rest.template_count, rest.skipped_count) == (1, 1, 3)
    assert rest.status is ManifestStatus.COMPLETE


@pytest.mark.asyncio
async def test_a_damaged_manifest_is_kept_and_the_run_goes_on(episode: Path) -> None:
    await run_episode(episode, images=FakeImages(), writer=FakeWriter())
    (episode / "images" / "manifest.json").write_text("{oops", encoding="utf-8")
    images = FakeImages()
    result = await run_episode(episode, images=images, writer=FakeWriter(), now=at(60))
    kept = list((episode / "images").glob("manifest.json.damaged-*"))
    assert len(kept) == 1 and kept[0].read_text(encoding="utf-8") == "{oops"
    # Every image carries its entry: the manifest is rebuilt from the files, nothing is paid.
    assert images.prompts == [] and result.image_count == 5
    read = read_manifest(episode, NOW).manifest
    assert read is not None and len(read.images) == 5


@pytest.mark.asyncio
async def test_result_paths_point_into_the_episode(episode: Path) -> None:
    result = await run_episode(episode, images=FakeImages(), writer=FakeWriter())
    assert result.images_path == episode / "images"
    assert result.provenance_path == episode / "provenance" / "imagegen_provenance.json"
    assert result.episode_id == "ep001"
    assert replace(result, generated_count=0, template_count=0).skipped

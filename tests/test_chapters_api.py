"""``generate_images`` from Python: the same planning, journal and runner as the command line,
from plain code and from inside a running event loop, with a typed result."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from imagegen import journal as journal_mod
from imagegen.emulator import Emulator, Outcome
from imagegen.errors import InputError
from imagegen.sources.chapters import (
    EpisodeError,
    ImageGenResult,
    ImageSettings,
    ManifestStatus,
    generate_images,
    generate_images_sync,
)

from .chapters_helpers import mixed_chapters, write_episode
from .cli_helpers import use_emulator

SMALL = ImageSettings(width=320, height=180, quality="1K")


@pytest.fixture
def episode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("IMAGE_GEN_STYLE_PREFIX", "IMAGE_GEN_SIZE", "MAX_EPISODE_COST_USD"):
        monkeypatch.delenv(name, raising=False)
    write_episode(tmp_path / "ep", mixed_chapters(), episode_id="ep001")
    return tmp_path / "ep"


@pytest.fixture
def emu(episode: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    with Emulator(render="plain") as emulator:
        use_emulator(monkeypatch, emulator)
        yield emulator


def test_from_plain_code_offline_with_a_typed_result(episode: Path, tmp_path: Path) -> None:
    result = generate_images_sync(
        episode, offline=True, settings=SMALL, sessions_dir=tmp_path / "s", min_interval=0
    )
    assert isinstance(result, ImageGenResult)
    assert (result.generated_count, result.template_count, result.skipped_count) == (3, 2, 0)
    assert (result.failed_count, result.rejected_count, result.stopped_count) == (0, 0, 0)
    assert (result.image_count, result.status) == (5, ManifestStatus.COMPLETE)
    assert result.input_tokens > 0 and result.output_tokens > 0  # ch03's prompt was written
    assert 3 * 0.134 < result.cost_usd < 3 * 0.14
    assert result.manifest_path == episode / "images" / "manifest.json"
    assert result.provenance_path.is_file() and not result.skipped and not result.dry_run
    # The same journal as the command line's: its session is there to --status or --resume.
    assert result.session_id in journal_mod.list_sessions(tmp_path / "s")
    again = generate_images_sync(
        episode, offline=True, settings=SMALL, sessions_dir=tmp_path / "s", min_interval=0
    )
    assert again.skipped and again.skipped_count == 5 and again.cost_usd == 0.0


@pytest.mark.asyncio
async def test_inside_a_running_loop_both_forms_work(episode: Path, emu: Emulator) -> None:
    """Awaited in the caller's loop, and the sync form called from a coroutine (it runs on a
    worker thread with a loop of its own instead of re-entering this one)."""
    result = await generate_images(episode, settings=SMALL, min_interval=0)
    assert result.generated_count == 3 and sum(emu.generated.values()) == 3
    asyncio.get_running_loop()  # this test's own loop is running here
    forced = generate_images_sync(episode, settings=SMALL, force=True, min_interval=0)
    assert forced.generated_count == 3 and sum(emu.generated.values()) == 6
    one = await generate_images(episode, settings=SMALL, chapter_id="ch02", min_interval=0)
    assert (one.generated_count, one.skipped_count, one.image_count) == (1, 4, 5)


@pytest.mark.asyncio
async def test_a_dry_run_counts_what_would_be_made_and_writes_nothing(
    episode: Path, emu: Emulator, tmp_path: Path
) -> None:
    result = await generate_images(episode, settings=SMALL, dry_run=True)
    assert result.dry_run and result.session_id is None
    assert (result.generated_count, result.template_count) == (3, 2)
    assert result.cost_usd == pytest.approx(3 * 0.134, abs=0.01)
    assert emu.requests == 0
    assert not (episode / "images").exists() and not (tmp_path / "sessions").exists()


@pytest.mark.asyncio
async def test_a_rejection_is_counted_not_raised(episode: Path, emu: Emulator) -> None:
    emu.enqueue(Outcome.finish("IMAGE_SAFETY"), match="wallet")
    result = await generate_images(episode, settings=SMALL, min_interval=0)
    assert (result.rejected_count, result.generated_count) == (1, 2)
    assert result.status is ManifestStatus.PARTIAL


@pytest.mark.asyncio
async def test_bad_input_raises_before_anything_is_written(
    episode: Path, emu: Emulator, tmp_path: Path
) -> None:
    chapters = mixed_chapters()
    del chapters[1]["title"]
    write_episode(tmp_path / "bad", chapters)
    with pytest.raises(EpisodeError, match=r"chapters\[1\]\.title"):
        await generate_images(tmp_path / "bad")
    with pytest.raises(InputError, match="--max-cost"):
        await generate_images(episode, max_cost=-1.0)
    with pytest.raises(InputError, match="not in"):
        await generate_images(episode, chapter_id="ch99")
    assert emu.requests == 0 and not (tmp_path / "sessions").exists()

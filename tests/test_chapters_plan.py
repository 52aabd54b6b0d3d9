"""Decisions and content hashes: which chapters a run makes, and why."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from imagegen.errors import InputError
from imagegen.sources.chapters import (
    Action,
    EntryStatus,
    EpisodePlan,
    ImageEntry,
    ImageSettings,
    Manifest,
    ManifestStatus,
    Reason,
    image_path,
    load_episode,
    load_template,
    plan_episode,
    plan_lines,
)
from imagegen.sources.chapters.prompts import parse_template
from tests.chapters_helpers import SMALL, chapter, mixed_chapters, write_episode

TEMPLATE = load_template()


def plan(
    folder: Path,
    chapters: list[dict[str, Any]],
    *,
    manifest: Manifest | None = None,
    on_disk: set[str] | None = None,
    settings: ImageSettings = SMALL,
    template: Any = TEMPLATE,
    **flags: Any,
) -> EpisodePlan:
    write_episode(folder, chapters)
    episode = load_episode(folder)
    disk = on_disk if on_disk is not None else {image_path(c) for c in episode.chapter_ids}
    return plan_episode(episode, settings, template, manifest, disk, **flags)


def done(p: EpisodePlan, *, status: EntryStatus = EntryStatus.OK) -> Manifest:
    """The manifest a successful run of ``p`` would leave."""
    entries = tuple(
        ImageEntry(
            chapter_id=d.chapter_id,
            chapter_title=d.chapter.title,
            visual_type=d.visual_type or "",
            status=status,
            content_hash=d.content_hash,
            generated_at="2026-03-01T10:00:00Z",
            file_path=d.file_path if status is EntryStatus.OK else None,
        )
        for d in p.decisions
        if d.action is not Action.SKIP
    )
    return Manifest("ep001", "1.0", "t", ManifestStatus.COMPLETE, entries)


def actions(p: EpisodePlan) -> dict[str, tuple[Action, Reason]]:
    return {d.chapter_id: (d.action, d.reason) for d in p.decisions}


def test_visual_type_decides_generate_or_placeholder(tmp_path: Path) -> None:
    p = plan(tmp_path, mixed_chapters())
    assert actions(p) == {
        "ch01": (Action.PLACEHOLDER, Reason.NEW),
        "ch02": (Action.GENERATE, Reason.NEW),
        "ch03": (Action.GENERATE, Reason.NEW),
        "ch04": (Action.GENERATE, Reason.NEW),
        "ch05": (Action.PLACEHOLDER, Reason.NEW),
    }
    assert [d.file_path for d in p.decisions][:2] == ["images/ch01.png", "images/ch02.png"]


def test_prompt_is_image_prompt_behind_the_style_prefix(tmp_path: Path) -> None:
    settings = replace(SMALL, style_prefix="Flat vector style.")
    p = plan(tmp_path, mixed_chapters(), settings=settings)
    by_id = {d.chapter_id: d for d in p.decisions}
    assert by_id["ch02"].prompt == "Flat vector style. A clean diagram of blocks linked in a chain"
    assert by_id["ch02"].instructions is None
    # A null image_prompt: instructions for the text model instead of a prompt.
    assert by_id["ch03"].prompt is None
    assert by_id["ch03"].instructions is not None
    assert "miners at work" in by_id["ch03"].instructions
    assert "House style: Flat vector style." in by_id["ch03"].instructions
    assert by_id["ch01"].prompt is None and by_id["ch01"].instructions is None


def test_an_unchanged_episode_plans_nothing(tmp_path: Path) -> None:
    first = plan(tmp_path, mixed_chapters())
    second = plan(tmp_path, mixed_chapters(), manifest=done(first))
    assert second.is_empty
    assert {r for _, r in actions(second).values()} == {Reason.UNCHANGED}
    assert second.input_content_hash == first.input_content_hash


def test_an_edited_chapter_alone_is_made_again(tmp_path: Path) -> None:
    first = plan(tmp_path, mixed_chapters())
    edited = mixed_chapters()
    edited[1]["visuals"][0]["image_prompt"] = "A different diagram"
    second = plan(tmp_path, edited, manifest=done(first))
    assert [(d.chapter_id, d.reason) for d in second.todo] == [("ch02", Reason.CHANGED)]
    assert second.input_content_hash != first.input_content_hash


@pytest.mark.parametrize(
    ("edit", "changed"),
    [
        # A given image_prompt is all that reaches the image model.
        (lambda c: c[1]["visuals"][0].update(description="new words"), []),
        (lambda c: c[1].update(title="New title"), []),
        (lambda c: c[1]["narration"].update(text="Other narration."), []),
        (lambda c: c[1]["visuals"][0].update(type="b_roll"), []),
        # A null image_prompt: what the text model reads.
        (lambda c: c[2]["visuals"][0].update(description="rigs at night"), ["ch03"]),
        (lambda c: c[2].update(title="Madencilik"), ["ch03"]),
        (lambda c: c[2]["narration"].update(text="Other narration."), ["ch03"]),
        (lambda c: c[2]["narration"].update(text="x " * 200), ["ch03"]),
        # A placeholder shows its title.
        (lambda c: c[0].update(title="Yeni Başlık"), ["ch01"]),  # noqa: RUF001 (Turkish)
        (lambda c: c[0]["visuals"][0].update(description="ignored"), []),
        (lambda c: c[0]["visuals"][0].update(type="talking_head"), ["ch01"]),
        (lambda c: c[0]["visuals"][0].update(type="diagram", image_prompt="Now drawn"), ["ch01"]),
        # Fields the stage does not read.
        (lambda c: c[3].update(duration_estimate_seconds=30), []),
    ],
)
def test_only_what_reaches_the_model_changes_a_hash(
    tmp_path: Path, edit: Any, changed: list[str]
) -> None:
    first = plan(tmp_path, mixed_chapters())
    chapters = mixed_chapters()
    edit(chapters)
    second = plan(tmp_path, chapters, manifest=done(first))
    assert [d.chapter_id for d in second.todo] == changed


def test_narration_past_what_the_template_sees_changes_nothing(tmp_path: Path) -> None:
    base = mixed_chapters()
    base[2]["narration"]["text"] = "word " * 100
    first = plan(tmp_path, base)
    longer = mixed_chapters()
    longer[2]["narration"]["text"] = "word " * 100 + "and a later sentence."
    assert plan(tmp_path, longer, manifest=done(first)).is_empty


def test_style_prefix_change_remakes_generated_images_not_placeholders(tmp_path: Path) -> None:
    first = plan(tmp_path, mixed_chapters())
    settings = replace(SMALL, style_prefix="Isometric.")
    second = plan(tmp_path, mixed_chapters(), manifest=done(first), settings=settings)
    assert [d.chapter_id for d in second.todo] == ["ch02", "ch03", "ch04"]


def test_template_change_remakes_only_chapters_whose_prompt_it_writes(tmp_path: Path) -> None:
    first = plan(tmp_path, mixed_chapters())
    other = parse_template(TEMPLATE.body + "\nBe brief.", "mine.md")
    second = plan(tmp_path, mixed_chapters(), manifest=done(first), template=other)
    assert [d.chapter_id for d in second.todo] == ["ch03"]
    assert second.prompt_hash != first.prompt_hash


def test_frame_size_change_redraws_placeholders_only(tmp_path: Path) -> None:
    first = plan(tmp_path, mixed_chapters())
    bigger = replace(SMALL, width=128, height=72)
    second = plan(tmp_path, mixed_chapters(), manifest=done(first), settings=bigger)
    assert [d.chapter_id for d in second.todo] == ["ch01", "ch05"]


def test_size_tier_change_remakes_generated_images(tmp_path: Path) -> None:
    first = plan(tmp_path, mixed_chapters())
    second = plan(
        tmp_path, mixed_chapters(), manifest=done(first), settings=replace(SMALL, quality="4K")
    )
    assert [d.chapter_id for d in second.todo] == ["ch02", "ch03", "ch04"]


def test_model_change_alone_remakes_nothing(tmp_path: Path) -> None:
    first = plan(tmp_path, mixed_chapters())
    flash = replace(SMALL, model="gemini-2.5-flash-image")
    assert plan(tmp_path, mixed_chapters(), manifest=done(first), settings=flash).is_empty


def test_a_missing_file_is_made_again(tmp_path: Path) -> None:
    first = plan(tmp_path, mixed_chapters())
    disk = {image_path(c) for c in ("ch01", "ch02", "ch04", "ch05")}
    second = plan(tmp_path, mixed_chapters(), manifest=done(first), on_disk=disk)
    assert [(d.chapter_id, d.reason) for d in second.todo] == [("ch03", Reason.MISSING)]


def test_force_remakes_everything(tmp_path: Path) -> None:
    first = plan(tmp_path, mixed_chapters())
    second = plan(tmp_path, mixed_chapters(), manifest=done(first), force=True)
    assert [d.reason for d in second.todo] == [Reason.FORCED] * 5
    assert [d.action for d in second.todo] == [d.action for d in first.todo]


def test_chapter_flag_remakes_that_chapter_only(tmp_path: Path) -> None:
    first = plan(tmp_path, mixed_chapters())
    edited = mixed_chapters()
    edited[1]["visuals"][0]["image_prompt"] = "Changed, but not named"
    second = plan(tmp_path, edited, manifest=done(first), chapter_id="ch04")
    assert [(d.chapter_id, d.reason) for d in second.todo] == [("ch04", Reason.SELECTED)]
    assert actions(second)["ch02"] == (Action.SKIP, Reason.NOT_SELECTED)


def test_chapter_flag_with_force_still_means_that_chapter(tmp_path: Path) -> None:
    p = plan(tmp_path, mixed_chapters(), chapter_id="ch01", force=True)
    assert [d.chapter_id for d in p.todo] == ["ch01"]


def test_unknown_chapter_flag_lists_the_ids(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"--chapter 'ch9' is not in .*chapters\.json; use one"):
        plan(tmp_path, mixed_chapters(), chapter_id="ch9")


def test_a_failed_chapter_is_tried_again(tmp_path: Path) -> None:
    first = plan(tmp_path, mixed_chapters())
    second = plan(tmp_path, mixed_chapters(), manifest=done(first, status=EntryStatus.FAILED))
    assert {d.reason for d in second.todo} == {Reason.FAILED}
    assert len(second.todo) == 5


def test_a_rejected_chapter_is_not_retried_until_it_changes(tmp_path: Path) -> None:
    first = plan(tmp_path, mixed_chapters())
    refused = done(first, status=EntryStatus.REJECTED)
    assert plan(tmp_path, mixed_chapters(), manifest=refused).is_empty
    edited = mixed_chapters()
    edited[1]["visuals"][0]["image_prompt"] = "A gentler diagram"
    again = plan(tmp_path, edited, manifest=refused)
    assert [(d.chapter_id, d.reason) for d in again.todo] == [("ch02", Reason.CHANGED)]
    named = plan(tmp_path, mixed_chapters(), manifest=refused, chapter_id="ch02")
    assert [d.chapter_id for d in named.todo] == ["ch02"]


def test_a_chapter_without_visual_is_skipped(tmp_path: Path) -> None:
    bare = chapter("ch09")
    bare["visuals"] = []
    p = plan(tmp_path, [*mixed_chapters(), bare])
    assert actions(p)["ch09"] == (Action.SKIP, Reason.NO_VISUAL)


def test_plan_lines_show_id_type_action_reason(tmp_path: Path) -> None:
    lines = plan_lines(plan(tmp_path, mixed_chapters()[:2]))
    assert lines == [
        "ch01  title_card    placeholder  new",
        "ch02  diagram       generate     new",
    ]

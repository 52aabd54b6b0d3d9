"""An episode's decisions as the runner's jobs: one per chapter, made, drawn or skipped. Pure.

Every chapter becomes a job, so the journal and the contact sheet list each one:

- generated (``diagram``, ``b_roll``, ``screen_share``): the run's provider, model, size tier
  and aspect; the prompt is the style prefix (its own part, stored once per session) and the
  chapter's prompt;
- placeholder (``title_card``, ``talking_head``): provider ``placeholder``, the visual type as
  its template, the episode's frame as its exact pixel size, the chapter title as the text;
- left alone (unchanged, refused before, not named by ``--chapter``, no visual): status
  ``skipped``, with the image that stands if there is one.

Each job's target is ``EPISODE/images/{chapter_id}.png`` with ``replace``: an existing image
is moved aside (``{chapter_id}.replaced-TIME.png``), never overwritten. The job's
``cost_group`` is the episode folder, so the episode's cap holds. Labels carry what the
after-save steps and the views need: the episode and chapter, the visual type, the content
hash, how the image is made and why, and where its prompt came from.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

from ...model import JSON, Job, JobState
from ...providers.placeholder import pixel_quality
from .. import RunDefaults
from .episode import Episode
from .plan import PLACEHOLDER_TYPES, Action, ChapterDecision, EpisodePlan, Reason
from .settings import ImageSettings

SOURCE_NAME = "chapters"
PLACEHOLDER_PROVIDER = "placeholder"
#: ``generation_method`` of a drawn placeholder (seed 002 section 6.1).
TEMPLATE_METHOD = "template"
#: Stands in for a prompt the text model has not written yet (a plan before completion).
UNWRITTEN = "(an image prompt the text model will write)"
#: Stands in for the prompt of a chapter left alone whose written prompt is no longer cached.
EARLIER = "(an image prompt the text model wrote in an earlier run: see the manifest)"


@dataclass(frozen=True, slots=True)
class BasePrompt:
    """A chapter's prompt before the style prefix, and where it came from ("chapters.json",
    "written by MODEL", "cache, written by MODEL")."""

    text: str
    source: str


def prompt_parts(style_prefix: str, base: str) -> tuple[str, ...]:
    """The prompt's parts: the style prefix and a space (one stored text for the whole
    session), then the chapter's prompt; joined they are :func:`.prompts.compose_prompt`."""
    prefix = style_prefix.strip()
    return (f"{prefix} ", base.strip()) if prefix else (base.strip(),)


def episode_jobs(
    episode: Episode,
    folder: str,
    plan: EpisodePlan,
    settings: ImageSettings,
    defaults: RunDefaults,
    prompts: Mapping[str, BasePrompt],
    on_disk: Collection[str],
    *,
    first: int,
    section: str,
) -> list[JobState]:
    """The jobs of one episode, numbered from ``first``. ``prompts`` holds the written (or
    cached) prompts of chapters whose ``image_prompt`` is null, by chapter id; a chapter still
    missing from it gets :data:`UNWRITTEN` until the plan is completed. ``on_disk`` are the
    image paths present (relative to the episode folder): a skipped job shows the one that
    stands."""
    return [
        _job_state(
            d, episode, folder, settings, defaults, prompts, on_disk, f"{first + i:03d}", section
        )
        for i, d in enumerate(plan.decisions)
    ]


def _job_state(
    d: ChapterDecision,
    episode: Episode,
    folder: str,
    settings: ImageSettings,
    defaults: RunDefaults,
    prompts: Mapping[str, BasePrompt],
    on_disk: Collection[str],
    job_id: str,
    section: str,
) -> JobState:
    chapter = d.chapter
    visual = chapter.visual
    target = Path(folder) / d.file_path
    if visual is None or visual.type in PLACEHOLDER_TYPES:
        parts: tuple[str, ...] = (chapter.title,)
        method, source = (TEMPLATE_METHOD if visual else "none"), "chapter title"
        provider = PLACEHOLDER_PROVIDER
        model = visual.type if visual else "plain"
        quality = pixel_quality(settings.width, settings.height)
    else:
        assert visual is not None
        if visual.image_prompt is not None:
            base = BasePrompt(visual.image_prompt, "chapters.json")
        else:
            missing = (
                BasePrompt(EARLIER, "an earlier run")
                if d.action is Action.SKIP
                else BasePrompt(UNWRITTEN, "to be written")
            )
            base = prompts.get(chapter.chapter_id, missing)
        parts = prompt_parts(settings.style_prefix, base.text)
        method, source = defaults.provider.name, base.source
        provider, model, quality = defaults.provider.name, defaults.model, defaults.quality
    labels: tuple[tuple[str, JSON], ...] = (
        ("episode_dir", folder),
        ("episode_id", episode.episode_id),
        ("chapter_id", chapter.chapter_id),
        ("chapter_title", chapter.title),
        ("visual_type", visual.type if visual else None),
        ("content_hash", d.content_hash),
        ("generation_method", method),
        ("reason", str(d.reason)),
        ("prompt_source", source),
    )
    job = Job(
        id=job_id,
        source=SOURCE_NAME,
        title=f"{episode.episode_id}/{chapter.chapter_id}: {chapter.title}",
        # The gallery's column: the chapter, its title and its visual type.
        group=(
            section,
            "chapters",
            f"{chapter.chapter_id}: {chapter.title} ({visual.type if visual else 'none'})",
        ),
        prompt_file=str(episode.source),
        prompt_parts=parts,
        references=(),
        target=str(target),
        quality=quality,
        aspect=settings.aspect,
        model=model,
        provider=provider,
        replace=True,
        labels=labels,
        cost_group=folder,
    )
    if d.action is not Action.SKIP:
        return JobState(job)
    standing = d.file_path in on_disk and d.reason is not Reason.REJECTED
    return JobState(job, status="skipped", output=str(target) if standing else None)

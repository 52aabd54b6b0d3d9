"""A reference driver: the building blocks wired the way the runner is meant to wire them
(the sequence in ``imagegen.sources.chapters``'s docstring), serially, with fake models."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from imagegen.errors import ProviderError
from imagegen.sources.chapters import (
    Action,
    EpisodeCostCap,
    ImageGenResult,
    ImageSettings,
    Manifest,
    Provenance,
    RunTally,
    begin_manifest,
    build_provenance,
    build_result,
    compose_prompt,
    draw_placeholder,
    finish_manifest,
    generated_entry,
    load_episode,
    load_template,
    placeholder_entry,
    plan_episode,
    read_manifest,
    read_prompt_cache,
    reconcile,
    record_entry,
    record_image,
    scan_images,
    unmade_entry,
    write_image_prompt,
    write_manifest,
    write_prompt_cache,
    write_provenance,
)
from tests.chapters_helpers import NOW, SMALL, FakeImages, FakeWriter


async def run_episode(
    episode_dir: Path,
    settings: ImageSettings = SMALL,
    *,
    images: FakeImages,
    writer: FakeWriter,
    force: bool = False,
    chapter_id: str | None = None,
    now: datetime = NOW,
) -> ImageGenResult:
    """The sequence the package docstring describes, as the runner will do it (serially)."""
    episode = load_episode(episode_dir)
    template = load_template(settings.prompt_template)
    read = read_manifest(episode_dir, now)
    disk = scan_images(episode_dir)
    fixed = reconcile(begin_manifest(read.manifest, episode, now), disk, episode.chapter_ids, now)
    manifest = fixed.manifest
    plan = plan_episode(
        episode, settings, template, manifest, disk.keys(), force=force, chapter_id=chapter_id
    )
    tally = RunTally()
    if plan.is_empty:
        manifest = finish_manifest(manifest, plan.expected, now, cost_limited=False)
        if fixed.changed:
            write_manifest(episode_dir, manifest)
        return build_result(episode_dir, plan, manifest, tally, duration_seconds=0.0)

    def provenance(manifest: Manifest, tally: RunTally) -> Provenance:
        return build_provenance(
            plan,
            manifest,
            tally,
            settings,
            template,
            now=now,
            duration_seconds=1.5,
            force=force,
            chapter_id=chapter_id,
        )

    cap = EpisodeCostCap(settings.max_episode_cost_usd)
    cache = read_prompt_cache(episode_dir)
    order = episode.chapter_ids
    stopped = False
    for i, d in enumerate(plan.todo):
        if d.action is Action.PLACEHOLDER:
            drawn = draw_placeholder(
                d.chapter.title, d.visual_type or "", (settings.width, settings.height)
            )
            entry = placeholder_entry(d, drawn, now)
            manifest = record_image(episode_dir, manifest, entry, drawn.png, order, now)
        else:
            if not cap.fits(images.price_usd):
                tally = tally.add_stopped(len(plan.todo) - i)
                stopped = True
                break
            prompt = d.prompt
            try:
                if d.instructions is not None:
                    written = await write_image_prompt(d.instructions, template, cache, writer, now)
                    if written.usage is not None:
                        cap = cap.charge(written.usage.cost_usd)
                        tally = tally.add_text(written.usage)
                        cache = cache.record(written.key, written.entry)
                        write_prompt_cache(episode_dir, cache)
                    prompt = compose_prompt(settings.style_prefix, written.prompt)
                assert prompt is not None
                cap = cap.reserve(images.price_usd)
                data = await images.generate(prompt)
                cap = cap.settle(images.price_usd, images.price_usd)
                entry = generated_entry(
                    d,
                    prompt=prompt,
                    method="fake",
                    model=settings.model,
                    width=48,
                    height=27,
                    cost_usd=images.price_usd,
                    now=now,
                    details={"finish_reason": "STOP"},
                )
                manifest = record_image(episode_dir, manifest, entry, data, order, now)
            except ProviderError as error:
                cap = cap.settle(cap.reserved_usd, 0.0)
                entry = unmade_entry(d, error, now=now, prompt=prompt, model=settings.model)
                manifest = record_entry(episode_dir, manifest, entry, order, now)
        tally = tally.add_entry(entry)
        write_provenance(episode_dir, provenance(manifest, tally))
    manifest = finish_manifest(manifest, plan.expected, now, cost_limited=stopped)
    write_manifest(episode_dir, manifest)
    write_provenance(episode_dir, provenance(manifest, tally))
    return build_result(episode_dir, plan, manifest, tally, duration_seconds=1.5)

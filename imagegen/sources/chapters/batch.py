"""Planning a chapters session: episode folders in, the runner's plan out.

:func:`plan_batch` reads and checks every episode (a malformed ``chapters.json`` is one line,
exit 2, before anything is written), reconciles each manifest with the images on disk, decides
each chapter (:mod:`.plan`), looks the null prompts up in the episode's cache, and returns a
:class:`~imagegen.sources.Plan` whose ``complete`` step (after every check, never on
``--dry-run``) writes the reconciled manifests and has the text model write the prompts the
cache lacks (:mod:`.writer`). Settings come from the seeds' environment variables, then the
command line (:func:`chapter_settings`).
"""

from __future__ import annotations

import argparse
import functools
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import anyio

from ... import providers
from ...model import JSON, JobState
from ...retry import RetryPolicy, load_policy
from .. import Plan, RunDefaults
from .config import EpisodeConfig, TextSpend, spend_to_json
from .episode import Episode, load_episode
from .imagefile import scan_images
from .jobs import BasePrompt, episode_jobs
from .manifest import (
    ManifestRead,
    begin_manifest,
    finish_manifest,
    progress_manifest,
    read_manifest,
    write_manifest,
)
from .plan import Action, EpisodePlan, plan_episode, plan_lines
from .prompt_cache import PromptCache, read_prompt_cache
from .prompts import PromptTemplate, load_template
from .reconcile import Reconciliation, reconcile
from .settings import ImageSettings, parse_size, settings_from_env
from .steps import episode_lock
from .writer import PromptTask, TextModel, cached_prompt, estimate_usd, write_prompts


@dataclass(frozen=True, slots=True)
class PlannedEpisode:
    """One episode as planned: its folder (as given), chapters, what the disk and manifest
    said, the decisions, the prompt cache, and the sheet section it goes in."""

    folder: str
    episode: Episode
    read: ManifestRead
    fixed: Reconciliation
    on_disk: frozenset[str]
    plan: EpisodePlan
    cache: PromptCache
    section: str

    @property
    def config(self) -> EpisodeConfig:
        return EpisodeConfig(
            dir=self.folder,
            episode_id=self.episode.episode_id,
            schema_version=self.episode.schema_version,
            chapters=self.episode.chapter_ids,
            expected=self.plan.expected,
            prompt_hash=self.plan.prompt_hash,
            input_content_hash=self.plan.input_content_hash,
        )


def chapter_settings(
    args: argparse.Namespace, defaults: RunDefaults, env: Mapping[str, str]
) -> ImageSettings:
    """The run's image settings: the run options' tier, aspect and model, the seeds'
    environment variables, then this subcommand's options (which win)."""
    base = ImageSettings(aspect=defaults.aspect, quality=defaults.quality, model=defaults.model)
    settings = settings_from_env(env, base)
    if args.style_prefix is not None:
        settings = replace(settings, style_prefix=args.style_prefix)
    if args.image_size is not None:
        width, height = parse_size(args.image_size, "--image-size")
        settings = replace(settings, width=width, height=height)
    if args.max_episode_cost is not None:
        settings = replace(settings, max_episode_cost_usd=args.max_episode_cost)
    if args.prompt_template is not None:
        settings = replace(settings, prompt_template=args.prompt_template)
    return settings


def plan_batch(
    args: argparse.Namespace,
    defaults: RunDefaults,
    env: Mapping[str, str],
    now: datetime | None = None,
) -> Plan:
    """The plan for ``args.episodes``; raises InputError (EpisodeError) naming the bad file,
    field or flag. Reads only; :func:`complete_batch` writes."""
    now = now or datetime.now(UTC)
    settings = chapter_settings(args, defaults, env)
    template = load_template(settings.prompt_template)
    folders = _folders(args.episodes)
    episodes = [load_episode(Path(f)) for f in folders]  # every file checked before the rest
    ids = Counter(e.episode_id for e in episodes)
    planned = [
        _plan_one(f, e, settings, template, args, now, section=_section(e, f, ids))
        for f, e in zip(folders, episodes, strict=True)
    ]
    # Cached prompts of every chapter (a skipped one's job shows the prompt that made its
    # image); prompts to write only for the chapters this run makes.
    prompts = {
        (p.folder, d.chapter_id): hit
        for p in planned
        for d in p.plan.decisions
        if d.instructions is not None
        and (hit := cached_prompt(template, p.cache, d.instructions)) is not None
    }
    needed = {
        (p.folder, d.chapter_id): (p, d.instructions)
        for p in planned
        for d in p.plan.todo
        if d.instructions is not None
    }
    tasks = [
        PromptTask(folder, chapter_id, p.episode.source, instructions)
        for (folder, chapter_id), (p, instructions) in needed.items()
        if (folder, chapter_id) not in prompts
    ]
    cached = Counter(folder for folder, chapter_id in needed if (folder, chapter_id) in prompts)
    jobs = _jobs(planned, settings, defaults, prompts)
    estimate = sum(estimate_usd(template, t.instructions) for t in tasks)
    config: dict[str, JSON] = {
        "episodes": [p.config.to_json() for p in planned],
        "force": bool(args.force),
        "chapter": args.chapter,
        "style_prefix": settings.style_prefix,
        "image_size": settings.size,
        "max_episode_cost_usd": settings.max_episode_cost_usd,
        "prompt_template": str(settings.prompt_template) if settings.prompt_template else None,
        "text_model": template.model,
        "template_name": template.name,
        "cost_caps": {p.folder: settings.max_episode_cost_usd for p in planned},
    }
    todo = Counter(d.action for p in planned for d in p.plan.todo)
    left = sum(1 for js in jobs if js.status == "skipped")
    describe = (
        f"{len(jobs)} chapters in {len(planned)} episode(s): {todo[Action.GENERATE]} to "
        f"generate, {todo[Action.PLACEHOLDER]} placeholder(s) to draw, {left} left alone"
        + (f", {len(tasks)} image prompt(s) to write" if tasks else "")
        + ("" if todo else " (nothing changed: no call will be made)")
    )
    notes = _notes(planned, template, tasks, sum(cached.values()), estimate, settings)
    plan = Plan(
        jobs=tuple(jobs),
        config=config,
        header=(
            f"Chapters: {', '.join(p.episode.episode_id for p in planned)} | "
            f"Quality: {defaults.quality} {defaults.aspect}",
            f"Episodes: {', '.join(folders)}",
        ),
        facts=(
            ("episodes", ", ".join(folders)),
            ("style prefix", settings.style_prefix or "(none)"),
            ("episode cap", f"${settings.max_episode_cost_usd:.2f}"),
        ),
        describe=describe,
        notes=notes,
        planning_usd=round(estimate, 6),
    )
    complete = functools.partial(
        complete_batch, plan, planned, tasks, prompts, cached, settings, template, defaults, args
    )
    return replace(plan, complete=complete)


def complete_batch(
    plan: Plan,
    planned: Sequence[PlannedEpisode],
    tasks: Sequence[PromptTask],
    prompts: Mapping[tuple[str, str], BasePrompt],
    cached: Mapping[str, int],
    settings: ImageSettings,
    template: PromptTemplate,
    defaults: RunDefaults,
    args: argparse.Namespace,
) -> Plan:
    """Write what planning found (damaged manifests kept aside, manifests reconciled with the
    disk) and the prompts the cache lacks; the plan with those prompts and what they cost."""
    now = datetime.now(UTC)
    for p in planned:
        _write_reconciled(p, now)
    spends = {p.folder: TextSpend(cached=cached.get(p.folder, 0)) for p in planned}
    written: dict[tuple[str, str], BasePrompt] = dict(prompts)
    if tasks:
        caches = {p.folder: p.cache for p in planned}
        new, paid = anyio.run(_write_all, tasks, template, caches, args, now)
        written |= new
        for folder, spend in paid.items():
            spends[folder] = replace(spend, cached=spends[folder].cached + spend.cached)
    jobs = _jobs(planned, settings, defaults, written)
    return replace(
        plan,
        jobs=tuple(jobs),
        config={**plan.config, **spend_to_json(spends)},
        planning_usd=round(sum(s.cost_usd for s in spends.values()), 6),
        complete=None,
    )


async def _write_all(
    tasks: Sequence[PromptTask],
    template: PromptTemplate,
    caches: dict[str, PromptCache],
    args: argparse.Namespace,
    now: datetime,
) -> tuple[dict[tuple[str, str], BasePrompt], dict[str, TextSpend]]:
    from ...providers.gemini import open_text_writer
    from ...session import api_key

    policy = load_policy(args.retry_policy) if args.retry_policy else RetryPolicy()
    key = api_key(providers.get("gemini"), args.offline)  # the text model is Gemini's
    async with open_text_writer(key, args.offline, args.offline_latency, args.timeout) as client:
        model = TextModel(client, template, policy)
        return await write_prompts(tasks, template, caches, model, now)


def _folders(given: Sequence[Path]) -> list[str]:
    """Episode folders as given (a ``chapters.json`` path names its folder), each once."""
    seen: dict[Path, str] = {}
    for path in given:
        folder = path.parent if path.name == "chapters.json" and path.is_file() else path
        seen.setdefault(folder.resolve(), str(folder))
    return list(seen.values())


def _section(episode: Episode, folder: str, ids: Counter[str]) -> str:
    """The contact sheet's section: the episode id, or the folder when two share an id."""
    return episode.episode_id if ids[episode.episode_id] == 1 else folder


def _plan_one(
    folder: str,
    episode: Episode,
    settings: ImageSettings,
    template: PromptTemplate,
    args: argparse.Namespace,
    now: datetime,
    *,
    section: str,
) -> PlannedEpisode:
    path = Path(folder)
    read = read_manifest(path, now, keep_aside=False)
    disk = scan_images(path)
    fixed = reconcile(begin_manifest(read.manifest, episode, now), disk, episode.chapter_ids, now)
    plan = plan_episode(
        episode,
        settings,
        template,
        fixed.manifest,
        disk.keys(),
        force=args.force,
        chapter_id=args.chapter,
    )
    cache = read_prompt_cache(path)
    return PlannedEpisode(folder, episode, read, fixed, frozenset(disk), plan, cache, section)


def _jobs(
    planned: Sequence[PlannedEpisode],
    settings: ImageSettings,
    defaults: RunDefaults,
    prompts: Mapping[tuple[str, str], BasePrompt],
) -> list[JobState]:
    jobs: list[JobState] = []
    for p in planned:
        mine = {chapter: base for (folder, chapter), base in prompts.items() if folder == p.folder}
        jobs += episode_jobs(
            p.episode,
            p.folder,
            p.plan,
            settings,
            defaults,
            mine,
            p.on_disk,
            first=len(jobs) + 1,
            section=p.section,
        )
    return jobs


def _write_reconciled(p: PlannedEpisode, now: datetime) -> None:
    """Keep a damaged manifest aside and write the one reconciled with the disk."""
    if not (p.fixed.changed or p.read.problem):
        return
    path = Path(p.folder)
    with episode_lock(path):
        if p.read.problem:
            read_manifest(path, now)  # moves it aside, as the plan said it would
        manifest = p.fixed.manifest
        if p.plan.todo:
            manifest = progress_manifest(manifest, p.plan.expected, now)
        else:
            manifest = finish_manifest(manifest, p.plan.expected, now, cost_limited=False)
        write_manifest(path, manifest)


def _notes(
    planned: Sequence[PlannedEpisode],
    template: PromptTemplate,
    tasks: Sequence[PromptTask],
    cached: int,
    estimate: float,
    settings: ImageSettings,
) -> tuple[str, ...]:
    """The plan's notes: one per episode (a line per chapter under it), the prompts to write,
    and the episode cap."""
    notes: list[str] = []
    for p in planned:
        lines = [f"Episode {p.episode.episode_id} ({p.folder}):"]
        lines += [f"  {line}" for line in plan_lines(p.plan)]
        if p.read.problem:
            lines.append(f"  {p.read.problem}")
        for what, ids in (("adopted", p.fixed.adopted), ("dropped", p.fixed.dropped)):
            if ids:
                lines.append(f"  manifest entries {what} to match the disk: {', '.join(ids)}")
        notes.append("\n".join(lines))
    if tasks or cached:
        notes.append(
            f"Image prompts: {len(tasks)} to be written by {template.model} "
            f"(about ${estimate:.4f}), {cached} from the cache"
        )
    notes.append(
        f"Each episode stops before an image would take it past "
        f"${settings.max_episode_cost_usd:.2f} (max_episode_cost_usd)"
    )
    return tuple(notes)

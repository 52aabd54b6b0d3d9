"""The chapter stage from Python: ``generate_images(episode_dir, ...) -> ImageGenResult``.

The seeds' function (seed 002 section 5.1; seed 001 step 6), on the same planning, journal,
runner and files as ``image-gen.sh chapters``: it builds the command line's arguments from its
typed parameters and runs the very code the command runs, so a session it starts can be
inspected, resumed or retried from the command line (``--status``, ``--resume SESSION_ID``).

    result = await generate_images("data/outputs/ep001", offline=True)
    result = generate_images_sync("data/outputs/ep001", force=True)   # from plain code

:func:`generate_images` runs inside the caller's event loop (asyncio or trio, through anyio):
planning and file work go to worker threads, the calls to the provider run on the loop, and it
leaves the caller's signal handlers alone. :func:`generate_images_sync` runs it on its own loop,
or, when called from inside a running loop, on a worker thread with a loop of its own.

Raises InputError (EpisodeError for a malformed ``chapters.json``) for bad input before anything
is written or paid; a failed or refused image does not raise (seed 001 step 8): it is an entry
and a count.
"""

from __future__ import annotations

import concurrent.futures
import functools
import io
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import sniffio
from rich.console import Console

from ... import pricing
from ...journal import Journal
from ...model import JobState
from ...report.sheet import session_duration
from ...session import run_session
from ...sources import SessionView
from .config import episode_of, episodes_of, text_spend
from .jobs import TEMPLATE_METHOD
from .manifest import read_manifest
from .result import ImageGenResult, build_result
from .settings import ImageSettings
from .steps import jobs_of
from .tally import RunTally

SOURCE = "chapters"


async def generate_images(
    episode_dir: Path | str,
    *,
    force: bool = False,
    chapter_id: str | None = None,
    dry_run: bool = False,
    settings: ImageSettings | None = None,
    provider: str = "gemini",
    offline: bool = False,
    offline_latency: float = 0.0,
    sessions_dir: Path | str = Path("sessions"),
    max_cost: float | None = None,
    concurrency: int | None = None,
    min_interval: float | None = None,
    attempt_seconds: float = 90.0,
    new: bool = False,
    console: Console | None = None,
) -> ImageGenResult:
    """Make (or remake) the chapter images of the episode in ``episode_dir``.

    ``force`` remakes every chapter, ``chapter_id`` that one chapter (merged into the
    manifest); ``dry_run`` plans and writes nothing (the counts then say what would be made,
    ``cost_usd`` the estimate). ``settings`` (style prefix, frame size, tier, aspect, model,
    ``max_episode_cost_usd``, prompt template) replace the environment's (IMAGE_GEN_STYLE_PREFIX,
    IMAGE_GEN_SIZE, MAX_EPISODE_COST_USD, IMAGE_GEN_PROMPT_TEMPLATE) when given. ``provider``,
    ``offline`` (the built-in emulator: no key, no network), ``max_cost`` (USD for this run),
    ``concurrency``, ``min_interval`` and ``attempt_seconds`` (``--timeout``) are the command
    line's run options; ``new`` starts a session even if an unfinished one has the same selection.
    ``console`` receives what the command line prints (nothing is printed without one).

    Raises InputError as described in the module docstring.
    """
    args = _arguments(
        episode_dir,
        force=force,
        chapter_id=chapter_id,
        dry_run=dry_run,
        settings=settings,
        provider=provider,
        offline=offline,
        offline_latency=offline_latency,
        sessions_dir=sessions_dir,
        max_cost=max_cost,
        concurrency=concurrency,
        min_interval=min_interval,
        attempt_seconds=attempt_seconds,
        new=new,
    )
    from ...cli.options import source_parser
    from ...cli.verbs import create_session, plan_new, prepare_new

    parser = source_parser(SOURCE)
    parser.raising = True
    namespace = parser.parse_args(args)
    out = console or Console(file=io.StringIO())
    plan, info = await anyio.to_thread.run_sync(plan_new, SOURCE, namespace)
    folder = episodes_of(plan.config)[0].dir
    if dry_run:
        return await anyio.to_thread.run_sync(
            _dry_result, plan.config, plan.jobs, folder, plan.planning_usd
        )
    ready = await anyio.to_thread.run_sync(prepare_new, SOURCE, namespace, plan, info)
    journal = await anyio.to_thread.run_sync(
        create_session, namespace.sessions_dir, ready.config, ready.plan
    )
    with journal:
        out.print(f"Session {journal.session_id}: {ready.plan.describe}")
        quiet = replace(ready.settings, signals=False, live=False)
        await run_session(journal, quiet, ready.keys, out)
        return await anyio.to_thread.run_sync(_result, journal, folder)


def generate_images_sync(episode_dir: Path | str, **options: object) -> ImageGenResult:
    """:func:`generate_images` from synchronous code (same parameters). Inside a running
    event loop (a notebook, an async web handler) it runs on a worker thread with its own loop,
    so the caller's loop is never re-entered."""
    call = functools.partial(generate_images, episode_dir, **options)  # type: ignore[arg-type]
    try:
        sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        return anyio.run(call)
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="imagegen") as pool:
        return pool.submit(anyio.run, call).result()


def _arguments(
    episode_dir: Path | str,
    *,
    force: bool,
    chapter_id: str | None,
    dry_run: bool,
    settings: ImageSettings | None,
    provider: str,
    offline: bool,
    offline_latency: float,
    sessions_dir: Path | str,
    max_cost: float | None,
    concurrency: int | None,
    min_interval: float | None,
    attempt_seconds: float,
    new: bool,
) -> list[str]:
    """The command line's arguments for these parameters (the parser checks every value)."""
    args = [
        str(episode_dir),
        "--provider",
        provider,
        "--sessions-dir",
        str(sessions_dir),
        "--timeout",
        str(attempt_seconds),
        "--plain",
    ]
    if force:
        args.append("--force")
    if chapter_id is not None:
        args += ["--chapter", chapter_id]
    if dry_run:
        args.append("--dry-run")
    if offline:
        args += ["--offline", "--offline-latency", str(offline_latency)]
    if max_cost is not None:
        args += ["--max-cost", str(max_cost)]
    if concurrency is not None:
        args += ["--concurrency", str(concurrency)]
    if min_interval is not None:
        args += ["--min-interval", str(min_interval)]
    if new:
        args.append("--new")
    if settings is not None:
        args += [
            "--style-prefix",
            settings.style_prefix,
            "--image-size",
            settings.size,
            "--quality",
            settings.quality,
            "--aspect",
            settings.aspect,
            "--model",
            settings.model,
            "--max-episode-cost",
            str(settings.max_episode_cost_usd),
        ]
        if settings.prompt_template is not None:
            args += ["--prompt-template", str(settings.prompt_template)]
    return args


def _result(journal: Journal, folder: str) -> ImageGenResult:
    """The episode's result from the session as it ended and the manifest it left."""
    state = journal.state
    episode = episode_of(state.config, folder)
    view = SessionView(state.session_id, state.config, dict(state.jobs), state.stop_reason)
    jobs = jobs_of(view, episode)
    tally = RunTally.of(jobs, text_spend(state.config, folder))
    manifest = read_manifest(episode.path, datetime.now(UTC), keep_aside=False).manifest
    return build_result(
        episode.path,
        episode.episode_id,
        manifest,
        tally,
        duration_seconds=session_duration(jobs) or 0.0,
        session_id=state.session_id,
    )


def _dry_result(
    config: Mapping[str, Any], jobs: Sequence[JobState], folder: str, text_usd: float
) -> ImageGenResult:
    """What a run would do: chapters to make, left alone, and the estimated cost (USD)."""
    episode = episode_of(config, folder)
    generated = template = skipped = 0
    cost = text_usd
    for js in jobs:
        if js.status == "skipped":
            skipped += 1
        elif js.job.label("generation_method") == TEMPLATE_METHOD:
            template += 1
        else:
            generated += 1
            cost += pricing.price(js)  # as the command line's --dry-run prices it
    tally = RunTally(
        generated=generated, template=template, skipped=skipped, cost_usd=round(cost, 6)
    )
    manifest = read_manifest(episode.path, datetime.now(UTC), keep_aside=False).manifest
    return build_result(
        episode.path,
        episode.episode_id,
        manifest,
        tally,
        duration_seconds=0.0,
        session_id=None,
        dry_run=True,
    )

"""The command line's verbs: start a batch from a source, resume, retry, upgrade.

Everything that can be refused is refused before anything is written: the plan (every input
file), the provider's capabilities, the key, an unfinished twin session, the job ids named.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import anyio
from rich.console import Console

from .. import journal as journal_mod
from .. import providers, sources
from ..errors import EXIT_INTERRUPTED, EXIT_STOPPED, ImagegenError, InputError
from ..executors.batch import DEFAULT_DEADLINE, DEFAULT_POLL, BatchSettings
from ..executors.limiter import Limits
from ..journal import Journal
from ..model import JSON, Job, JobState, SessionUpdate
from ..providers import ProviderInfo
from ..recovery import parse_job_ids
from ..retry import RetryPolicy, load_policy
from ..session import Settings, keys_for, provider_names, run_session, session_providers
from ..sources import Plan, RunDefaults
from .dryrun import print_dry_run, print_notes
from .options import default_provider

#: Config keys that describe how a session ran, not what it makes (ignored by the twin check).
RUN_KEYS = (
    "concurrency",
    "min_interval",
    "rpm",
    "timeout",
    "offline",
    "header",
    "facts",
    "batch",
    "batch_poll",
    "batch_deadline",
    "fallback",
    "references",
)


def parse_job_list(text: str | None) -> list[str]:
    """``--job``: ``015``, ``003,007,019``, ranges ``001-040``, or ``@FILE`` (a job a line, or
    the same forms; ``#`` starts a comment line). Raises InputError for a range that is not two
    numbers or a file that cannot be read as UTF-8 text."""
    if not text:
        return []
    items: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if part.startswith("@"):
            path = Path(part[1:])
            try:
                lines = path.read_text(encoding="utf-8-sig").splitlines()
            except OSError as exc:
                raise InputError(f"--job {part}: cannot read {path} ({exc.strerror})") from exc
            except UnicodeDecodeError:
                raise InputError(
                    f"--job {part}: {path} is not UTF-8 text; list one job id a line"
                ) from None
            for line in (x.strip() for x in lines):
                if line and not line.startswith(("#", "@")):
                    items += parse_job_list(line)
                elif line.startswith("@"):
                    raise InputError(f"--job {part}: {path} names another file ({line})")
        elif "-" in part and part.replace("-", "").isdigit():
            low, _, high = part.partition("-")
            if not (low.isdigit() and high.isdigit()) or int(low) > int(high):
                raise InputError(f"--job {part!r}: a range is LOW-HIGH, e.g. 001-040")
            items += [str(n).zfill(len(low)) for n in range(int(low), int(high) + 1)]
        else:
            items.append(part)
    return items


def check_capabilities(jobs: Sequence[JobState]) -> None:
    """Refuse, before anything is paid, what each job's own provider cannot do (sizes, ratios,
    the number of reference images); one line naming the job and the fix."""
    for js in jobs:
        _check_job(js, providers.get(js.job.provider))


def _check_job(js: JobState, info: ProviderInfo) -> None:
    job = js.job
    if info.validate is not None:
        problem = info.validate(job.model, job.quality, job.aspect)
        if problem is not None:
            raise InputError(f"{job.title}: {problem}")
    else:
        if job.quality not in info.qualities:
            raise InputError(
                f"{info.name} cannot make {job.quality} images ({job.title}); use --quality "
                f"{' or '.join(info.qualities)}"
            )
        if job.aspect not in info.aspects:
            raise InputError(
                f"{info.name} does not support aspect {job.aspect} ({job.title}, "
                f"{job.prompt_file}); use one of {', '.join(info.aspects)}"
            )
    if len(job.references) > info.max_references:
        folder = Path(job.references[0]).parent if job.references else job.prompt_file
        raise InputError(
            f"{job.title}: {len(job.references)} reference images, {info.title} takes at "
            f"most {info.max_references}; remove some from {folder}"
        )


def check_batch(
    args: argparse.Namespace, info: ProviderInfo, jobs: Sequence[JobState] = ()
) -> None:
    """Refuse ``--batch`` in one line: for a session whose provider has no Batch API imagegen
    can use (Vertex AI's reads Cloud Storage, not uploaded files), and with ``--variants``
    (a batch request line makes one image; ``jobs``: a resumed session's unfinished ones)."""
    if not args.batch:
        return
    if not info.has_batch:
        raise InputError(
            f"--batch: {info.title} has no Batch API imagegen can use (only the Gemini API's "
            "takes uploaded files); run without --batch"
        )
    varied = getattr(args, "variants", 1) > 1 or any(
        js.job.variants > 1 for js in jobs if js.status not in ("completed", "skipped")
    )
    if varied:
        raise InputError(
            "--batch makes one image per job; --variants runs online only: drop one of them"
        )


def _batch_config(
    args: argparse.Namespace, config: dict[str, JSON] | None = None
) -> dict[str, Any]:
    """The batch-mode keys of a session's config: the flags, else what the session recorded."""
    old = config or {}
    return {
        "batch": bool(args.batch or old.get("batch")),
        "batch_poll": args.batch_poll or old.get("batch_poll") or DEFAULT_POLL,
        "batch_deadline": args.batch_deadline or old.get("batch_deadline") or DEFAULT_DEADLINE,
        "fallback": not args.no_fallback and old.get("fallback", True) is not False,
        "references": "inline"
        if args.inline_references or old.get("references") == "inline"
        else "upload",
    }


def _limits(args: argparse.Namespace, infos: Sequence[ProviderInfo]) -> dict[str, Any]:
    """The pool limits: the flags, else the strictest default of the providers used (one
    pool serves a session's jobs, whichever provider each names)."""
    pools = [info.pool for info in infos]
    return {
        "concurrency": args.concurrency
        if args.concurrency is not None
        else min(p.concurrency for p in pools),
        "min_interval": args.min_interval
        if args.min_interval is not None
        else max(p.min_interval for p in pools),
        "rpm": args.rpm if args.rpm is not None else min(p.rpm for p in pools),
        "timeout": args.timeout,
        "offline": args.offline,
    }


def settings_from(args: argparse.Namespace, config: dict[str, JSON]) -> Settings:
    """Run settings from a session's recorded config, the policy file and the flags."""
    policy = load_policy(args.retry_policy) if args.retry_policy else RetryPolicy()
    mode = _batch_config(args, config)
    uploads = mode["references"] == "upload"
    batch = (
        BatchSettings(
            poll=float(mode["batch_poll"]),
            deadline=float(mode["batch_deadline"]),
            fallback=bool(mode["fallback"]),
        )
        if mode["batch"]
        else None
    )
    return Settings(
        limits=Limits(
            int(config["concurrency"]), float(config["min_interval"]), int(config["rpm"])
        ),
        policy=policy,
        timeout=float(config["timeout"]),
        offline=bool(args.offline or config.get("offline")),
        offline_latency=args.offline_latency,
        live=not args.plain and sys.stdout.isatty(),
        max_cost=args.max_cost,
        batch=batch,
        upload_references=uploads,
    )


def _unfinished_twin(sessions_dir: Path, config: dict[str, JSON]) -> str | None:
    """An unfinished session planned from the same selection (seed 003, "Notes": "Always check
    session log before starting new batch"). Keys starting with ``planning_`` record what
    planning spent, not what is made: ignored too."""

    def selection(cfg: dict[str, JSON]) -> dict[str, JSON]:
        return {k: v for k, v in cfg.items() if k not in RUN_KEYS and not k.startswith("planning_")}

    wanted = selection(config)
    for session_id in reversed(journal_mod.list_sessions(sessions_dir)):
        try:
            state = journal_mod.load(sessions_dir, session_id)
        except InputError:
            continue
        if selection(state.config) == wanted and state.summary().unfinished:
            return session_id
    return None


@dataclass(frozen=True, slots=True)
class Prepared:
    """A new session ready to be created: its finished plan, config, run settings and keys."""

    plan: Plan
    config: dict[str, JSON]
    settings: Settings
    keys: dict[str, str]


def run_defaults(args: argparse.Namespace) -> RunDefaults:
    """What the run options ask planning for: each typed option, else the source's default
    (``default_quality``, ``default_aspect``), else the project's; and which were typed."""
    chosen = frozenset(
        name for name in ("provider", "model", "quality", "aspect") if getattr(args, name)
    )
    info = providers.get(args.provider or default_provider())
    return RunDefaults(
        info,
        args.model or info.default_model,
        args.quality or args.default_quality,
        args.aspect or args.default_aspect,
        chosen,
    )


def plan_new(source_name: str, args: argparse.Namespace) -> tuple[Plan, ProviderInfo]:
    """A source's plan for ``args`` (with ``--variants``), each job checked against its own
    provider, and the ``--provider`` default it was planned with; nothing written, nothing
    paid. Raises InputError naming the bad input."""
    defaults = run_defaults(args)
    plan = _varied(sources.get(source_name).plan(args, defaults), args.variants)
    check_capabilities(plan.jobs)
    return plan, defaults.provider


def _varied(plan: Plan, variants: int) -> Plan:
    """``--variants N``: N candidates for each job that makes an image with a paid call (a
    skipped job makes none; a provider drawing locally would draw the same image N times).
    Idempotent: a completed plan (``Plan.complete``) gets them again."""
    if variants == 1:
        return plan
    suffix = f", {variants} variants each"
    return replace(
        plan,
        jobs=tuple(
            js
            if js.status == "skipped" or providers.get(js.job.provider).local
            else replace(js, job=replace(js.job, variants=variants))
            for js in plan.jobs
        ),
        describe=plan.describe if plan.describe.endswith(suffix) else plan.describe + suffix,
    )


def _used(info: ProviderInfo, plan: Plan) -> list[str]:
    """The providers a new session opens: the session's own first (``--provider`` when a job
    uses it, else the first one its jobs name), then every other its jobs name."""
    used = provider_names(info.name, plan.jobs)
    if not any(js.job.provider == info.name for js in plan.jobs):
        used = used[1:]  # --provider's default, which no job uses: no key needed for it
    return used


def _config(
    source_name: str, args: argparse.Namespace, plan: Plan, info: ProviderInfo
) -> dict[str, JSON]:
    defaults = run_defaults(args)
    used = _used(info, plan)
    main = providers.get(used[0])
    return {
        **plan.config,
        "quality": defaults.quality,
        "aspect": defaults.aspect,
        "model": defaults.model
        if main.name == info.name
        else next(js.job.model for js in plan.jobs if js.job.provider == main.name),
        "provider": main.name,
        "source": source_name,
        "header": list(plan.header),
        "facts": [list(f) for f in plan.facts],
        "variants": args.variants,
        **_limits(args, [providers.get(name) for name in used]),
        **_batch_config(args),
    }


def prepare_new(
    source_name: str,
    args: argparse.Namespace,
    plan: Plan,
    info: ProviderInfo,
    *,
    single: bool = False,
) -> Prepared:
    """Everything a new session with jobs needs, refused before anything is written: every
    provider's key, an unfinished twin session; then the plan's paid completion
    (``Plan.complete``)."""
    config = _config(source_name, args, plan, info)
    settings = settings_from(args, config)
    keys = keys_for(_used(info, plan), settings.offline)  # before writing
    if not (args.new or single) and (twin := _unfinished_twin(args.sessions_dir, config)):
        raise InputError(
            f"session {twin} has the same selection and is unfinished: continue it with "
            f"--resume {twin}, or pass --new to start another"
        )
    if plan.complete is not None:
        plan = _varied(plan.complete(), args.variants)
        config = _config(source_name, args, plan, info)
    return Prepared(plan, config, settings, keys)


def start(
    source_name: str, args: argparse.Namespace, console: Console, *, single: bool = False
) -> int:
    """Plan a new session from a source and run it (or show it, with ``--dry-run``).

    A plan without jobs starts nothing (exit 0). The session's own provider is ``--provider``
    when a job uses it, else the first one its jobs name; every provider named is opened and
    its key read before anything is written. A file the planning cannot read is InputError
    (exit 2: no session exists to resume).
    """
    with _planning():
        plan, info = plan_new(source_name, args)
    if not plan.jobs:
        print_notes(plan.notes, console)
        console.print(f"Nothing to generate: {plan.describe}", markup=False, highlight=False)
        return 0
    check_batch(args, providers.get(_used(info, plan)[0]))  # the session's own provider
    if args.dry_run:
        print_dry_run(plan, console, max_cost=args.max_cost, as_json=args.json, batch=args.batch)
        return 0
    with _planning():
        ready = prepare_new(source_name, args, plan, info, single=single)
    print_notes(ready.plan.notes, console)
    return _create_and_run(
        args.sessions_dir, ready.config, ready.plan, ready.settings, ready.keys, console
    )


@contextmanager
def _planning() -> Iterator[None]:
    """An OSError while a source reads its inputs (a folder without permission, a name too
    long) as InputError: one line, exit 2, and no "--resume" hint for a session never made."""
    try:
        yield
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename else ""
        raise InputError(
            f"cannot read{where}: {exc.strerror or exc}; check the path and its permissions "
            "(nothing was started)"
        ) from exc


def create_session(
    sessions_dir: Path, config: dict[str, JSON], plan: Plan, parent: Journal | None = None
) -> Journal:
    """Create the session (its journal, holding its lock); InputError if it cannot be."""
    try:
        return Journal.create(
            sessions_dir, config, plan.jobs, parent=parent.session_id if parent else None
        )
    except OSError as exc:
        raise InputError(
            f"cannot create a session in {sessions_dir}: {exc.strerror or exc}; choose a "
            "writable --sessions-dir (nothing was started)"
        ) from exc


def _create_and_run(
    sessions_dir: Path,
    config: dict[str, JSON],
    plan: Plan,
    settings: Settings,
    keys: dict[str, str],
    console: Console,
    parent: Journal | None = None,
) -> int:
    journal = create_session(sessions_dir, config, plan, parent)
    try:
        with journal:
            if parent is not None:
                anyio.run(_link_child, parent, journal.session_id)
                parent.close()  # the child runs on its own; the parent is free again
            console.print(
                f"Session {journal.session_id}: {plan.describe}; journal {journal.snapshot_path}"
            )
            return anyio.run(run_session, journal, settings, keys, console)
    except KeyboardInterrupt:
        return interrupted(sessions_dir, journal.session_id, console)


def interrupted(sessions_dir: Path, session_id: str, console: Console) -> int:
    """A Ctrl-C the run's own handler did not see: while the providers open, before the pool's
    first call, or while the summary and contact sheet are written.

    A session left "new" or "running" is recorded as stopped (read again from disk: an event
    the interrupted writer had not written is not assumed), so ``--status`` shows it stopped
    and ``--resume`` continues it; returns EXIT_STOPPED. A session that had already finished
    keeps its state; returns EXIT_INTERRUPTED. Best effort: a journal that cannot be written
    now is settled by the next ``--resume`` as after a crash.
    """
    state = None
    try:
        with Journal.open(sessions_dir, session_id) as journal:
            state = journal.state.state
            if state in ("new", "running"):
                anyio.run(_mark_interrupted, journal)
    except (ImagegenError, OSError):
        pass
    if state == "finished":
        console.print(
            f"Interrupted after the session finished; its contact sheet: image-gen.sh --report "
            f"{session_id}"
        )
        return EXIT_INTERRUPTED
    console.print(f"Interrupted (Ctrl-C). Continue with: image-gen.sh --resume {session_id}")
    return EXIT_STOPPED


async def _mark_interrupted(journal: Journal) -> None:
    async with journal.writing():
        await journal.update_session(
            SessionUpdate(state="stopped", stop_reason="interrupted (Ctrl-C)", owner=None)
        )


async def _link_child(parent: Journal, child_id: str) -> None:
    """Record an upgrade session on its parent; the parent changes in no other way."""
    async with parent.writing():
        await parent.update_session(SessionUpdate(children=(*parent.state.children, child_id)))


def continue_session(args: argparse.Namespace, session_id: str, console: Console) -> int:
    """``--resume`` and ``--retry``: the session's own config and jobs, nothing re-planned."""
    if args.dry_run:
        raise InputError(
            f"--dry-run previews a new batch; --status {session_id} shows what is left to run"
        )
    mode = "retry" if args.retry else "resume"
    wanted = parse_job_list(args.job)
    try:
        return _continue(args, session_id, mode, wanted, console)
    except KeyboardInterrupt:
        return interrupted(args.sessions_dir, session_id, console)


def _continue(
    args: argparse.Namespace,
    session_id: str,
    mode: str,
    wanted: list[str],
    console: Console,
) -> int:
    with Journal.open(args.sessions_dir, session_id) as journal:  # takes the lock
        job_ids = parse_job_ids(journal, wanted)  # refused before anything is written
        waiting = [j for j in job_ids if journal.job(j).status == "submitted"]
        if waiting:  # sent again, it would be paid twice when its batch answers
            raise InputError(
                f"job {waiting[0]} is in a batch the service is still running; --resume "
                f"{session_id} collects it (--status {session_id} shows the batch)"
            )
        if (
            mode == "retry"
            and not job_ids
            and not any(js.status == "failed" for js in journal.state.jobs.values())
        ):
            raise InputError(
                f"session {session_id} has no failed jobs; retry one with --job ID"
                + (
                    f", or continue it with --resume {session_id}"
                    if journal.state.summary().unfinished
                    else ""
                )
            )
        if journal.damaged_snapshot:
            console.print(
                f"The session's JSON was damaged: kept as {journal.damaged_snapshot}; rebuilt "
                "from its event log."
            )
        config = journal.state.config
        main = providers.get(str(config.get("provider", "gemini")))
        check_batch(args, main, list(journal.state.jobs.values()))
        settings = settings_from(args, config)
        keys = keys_for(session_providers(journal.state), settings.offline)
        console.print(f"Session {session_id}: {mode}; journal {journal.snapshot_path}")
        return anyio.run(
            lambda: run_session(journal, settings, keys, console, mode=mode, job_ids=job_ids)
        )


UPGRADE_INSTRUCTION = (
    "\n\nThe first reference image is the accepted result of this brief at {old}. Reproduce "
    "that image at {new} resolution: keep its composition, framing, pose, colours, text and "
    "every detail exactly; add resolution and fine detail only, do not redesign it."
)


def upgrade_jobs(
    parent: Sequence[JobState],
    to_quality: str,
    info: ProviderInfo,
    chosen: Mapping[str, int | None] | None = None,
) -> list[JobState]:
    """One job per completed parent job (or per job in ``chosen``, job id -> the variant picked
    or None for the first) at ``to_quality``.

    Regeneration is not deterministic, so each job sends the accepted image (the picked
    variant) first, then its references (up to the provider's limit), with an instruction to
    reproduce it. Outputs land where the parent's did, named with the new quality. Raises
    InputError if none completed or a picked variant does not exist.
    """
    picked = [
        js
        for js in parent
        if js.status == "completed" and js.output and not providers.get(js.job.provider).local
    ]  # a drawn placeholder has nothing to upgrade
    if chosen:
        missing = [js.id for js in parent if js.id in chosen and js not in picked]
        if missing:
            raise InputError(f"job {missing[0]} has no completed image to upgrade")
        picked = [js for js in picked if js.id in chosen]
    if not picked:
        raise InputError("the session has no completed jobs to upgrade")
    out = []
    for n, js in enumerate(picked, 1):
        old = js.job
        accepted = js.output or ""
        variant = (chosen or {}).get(js.id)
        if variant is not None:
            if not 1 <= variant <= len(js.variant_outputs):
                raise InputError(
                    f"job {js.id} has no variant {variant} (it has "
                    f"{len(js.variant_outputs) or 1}); name it as {js.id}:1"
                )
            accepted = js.variant_outputs[variant - 1]
        job: Job = replace(
            old,
            id=f"{n:03d}",
            prompt_parts=(
                *old.prompt_parts,
                UPGRADE_INSTRUCTION.format(old=old.quality, new=to_quality),
            ),
            references=(str(Path(accepted).resolve()), *old.references)[: info.max_references],
            quality=to_quality,
            labels=(*old.labels, ("upgrade_of", old.id)),
            variants=1,
        )
        out.append(JobState(job))
    return out


def upgrade(args: argparse.Namespace, console: Console) -> int:
    """``--upgrade SID --to-quality 4K [--job ...]``: a child session of the chosen images."""
    if not args.to_quality:
        raise InputError("--upgrade needs --to-quality (2K or 4K)")
    parent_state = journal_mod.load(args.sessions_dir, args.upgrade)
    known = set(parent_state.jobs)
    width = max(len(i) for i in known)
    chosen: dict[str, int | None] = {}
    for raw in parse_job_list(args.job):
        job_id, _, variant = raw.partition(":")  # 003:2 is job 003's second variant
        job_id = job_id.zfill(width) if job_id.isdigit() else job_id
        if job_id not in known:
            raise InputError(f"session {args.upgrade} has no job {raw!r} (see --status)")
        if variant and not variant.isdigit():
            raise InputError(f"--job {raw!r}: a variant is a number, e.g. {job_id}:2")
        chosen[job_id] = int(variant) if variant else None
    config = dict(parent_state.config)
    info = providers.get(str(config.get("provider", "gemini")))
    jobs = upgrade_jobs(list(parent_state.jobs.values()), args.to_quality, info, chosen)
    check_capabilities(jobs)
    plan = Plan(
        tuple(jobs),
        {},
        tuple(
            str(line).replace(f"Quality: {config.get('quality')}", f"Quality: {args.to_quality}")
            for line in config.get("header") or ()
        ),
        (),
        f"{len(jobs)} jobs: upgrade of {args.upgrade} to {args.to_quality}",
    )
    check_batch(args, info)
    if args.dry_run:
        print_dry_run(plan, console, max_cost=args.max_cost, as_json=args.json, batch=args.batch)
        return 0
    config.update(
        quality=args.to_quality,
        header=list(plan.header),
        **_limits(args, [info]),
        **_batch_config(args),
    )
    settings = settings_from(args, config)
    keys = keys_for(provider_names(info.name, jobs), settings.offline)
    # The parent's lock is held while the child is created: a parent another process runs
    # gets no stray child.
    with Journal.open(args.sessions_dir, args.upgrade) as parent:
        return _create_and_run(args.sessions_dir, config, plan, settings, keys, console, parent)

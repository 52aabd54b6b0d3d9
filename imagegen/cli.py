"""Command line: ``imagegen`` / ``image-gen.sh`` (seed 003, "CLI Commands").

Errors are reported here, once, as one line (a traceback only with ``--verbose``); exit codes
are those of :mod:`imagegen.errors`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from rich.console import Console
from rich.table import Table

from . import pricing, sessionfiles
from .errors import EXIT_STOPPED, EXIT_USAGE, ImagegenError, InputError
from .sizes import ASPECTS, QUALITIES
from .status import list_sessions, show_session

# Planning, running and reporting load PIL, YAML, tenacity and the SDK; they are imported in the
# verbs that use them so that --status answers fast from a fresh process.
if TYPE_CHECKING:
    from .planner import Job, PlanRequest
    from .session import Settings

DEFAULT_MODEL = "gemini-3-pro-image"


def _csv(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _positive_int(name: str, low: int, high: int) -> Any:
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{name} must be a whole number, not {value!r}"
            ) from None
        if not low <= number <= high:
            raise argparse.ArgumentTypeError(
                f"{name} must be between {low} and {high}, not {number}"
            )
        return number

    return parse


def _number(name: str, *, allow_zero: bool, unit: str = "seconds") -> Any:
    """An argparse type for a non-negative finite number of ``unit`` (seconds, USD)."""

    def parse(value: str) -> float:
        try:
            number = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{name} must be a number of {unit}, not {value!r}"
            ) from None
        if (
            number < 0
            or (number == 0 and not allow_zero)
            or number != number
            or number == float("inf")
        ):
            raise argparse.ArgumentTypeError(
                f"{name} must be {'>= 0' if allow_zero else '> 0'} {unit}"
            )
        return number

    return parse


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="imagegen",
        description="Batch-generate images with Nano Banana Pro: combos x catalog prompts.",
        epilog="Exit codes: 0 all completed, 1 some failed, 2 usage or input error, "
        "3 batch stopped (key, permission, quota, budget, Ctrl-C). "
        "'imagegen emulator --help' for the emulator.",
    )
    verbs = p.add_argument_group("session verbs (default: start a new batch)")
    verbs.add_argument("--resume", metavar="SESSION_ID", help="continue a session from its journal")
    verbs.add_argument(
        "--retry",
        metavar="SESSION_ID",
        help="re-run every failed job of a session, or one with --job",
    )
    verbs.add_argument("--job", help="with --retry: the job id, e.g. 015")
    verbs.add_argument(
        "--status",
        metavar="SESSION_ID",
        nargs="?",
        const="",
        help="list sessions, or show one (with --watch to follow it, --json)",
    )
    verbs.add_argument("--watch", action="store_true", help="with --status ID: update live")
    verbs.add_argument("--json", action="store_true", help="with --status: machine-readable")
    verbs.add_argument(
        "--single",
        action="store_true",
        help="one image: --combo ID --prompt catalog_vX.Y/FILE.md --wardrobe W",
    )
    verbs.add_argument("--combo", help="with --single: the combo id")
    verbs.add_argument("--prompt", help="with --single: the prompt file, catalog_vX.Y/NAME.md")
    verbs.add_argument(
        "--upgrade",
        metavar="SESSION_ID",
        help="regenerate a session's completed images at --to-quality",
    )
    verbs.add_argument("--to-quality", choices=QUALITIES, help="with --upgrade: 2K or 4K")
    verbs.add_argument(
        "--report",
        metavar="SESSION_ID",
        help="write the session's HTML contact sheet (finished runs write it too)",
    )
    verbs.add_argument(
        "--new",
        action="store_true",
        help="start a new batch even if an unfinished one has the same config",
    )

    sel = p.add_argument_group("what to generate")
    sel.add_argument("--wardrobe", type=_csv, default=(), help="wardrobe name(s), comma separated")
    sel.add_argument(
        "--ui-style", type=_csv, default=(), help="UI style(s), e.g. Orange; default all"
    )
    sel.add_argument("--catalogs", type=_csv, default=(), help='catalogs, e.g. "v3.2,v4.2"')
    sel.add_argument("--combos", type=_csv, default=(), help="only these combo ids")
    sel.add_argument("--prompts", type=_csv, default=(), help="only these prompt ids or short ids")
    sel.add_argument("--quality", default="1K", choices=QUALITIES, help="image size tier (1K)")
    sel.add_argument("--aspect", default="1:1", choices=ASPECTS, help="aspect ratio (1:1)")
    sel.add_argument("--model", default=DEFAULT_MODEL, help=f"model id ({DEFAULT_MODEL})")

    loc = p.add_argument_group("locations (relative to the working directory)")
    loc.add_argument("--combos-root", type=Path, default=Path("combos"))
    loc.add_argument("--catalogs-root", type=Path, default=Path("catalogs"))
    loc.add_argument(
        "--sessions-dir",
        type=Path,
        default=Path("sessions"),
        help="session journals (seed layout: Result_images/.sessions)",
    )
    loc.add_argument("--output", type=Path, default=Path("Result_images"))

    run = p.add_argument_group("running")
    run.add_argument("--concurrency", type=_positive_int("--concurrency", 1, 64), default=3)
    run.add_argument(
        "--min-interval",
        type=_number("--min-interval", allow_zero=True),
        default=1.0,
        help="seconds between request starts (1.0)",
    )
    run.add_argument(
        "--rpm",
        type=_positive_int("--rpm", 1, 10_000),
        default=60,
        help="request starts per 60 s (60)",
    )
    run.add_argument(
        "--timeout",
        type=_number("--timeout", allow_zero=False),
        default=90.0,
        help="seconds per attempt (90)",
    )
    run.add_argument(
        "--max-cost",
        type=_number("--max-cost", allow_zero=False, unit="USD"),
        metavar="USD",
        help="stop starting jobs before this run would spend more than USD",
    )
    run.add_argument("--retry-policy", type=Path, help="TOML file with a [retry] table (README)")
    run.add_argument(
        "--dry-run", action="store_true", help="print the job table and cost; write nothing"
    )
    run.add_argument(
        "--offline",
        action="store_true",
        help="run against the built-in emulator on loopback: no key, no network",
    )
    run.add_argument(
        "--offline-latency",
        type=_number("--offline-latency", allow_zero=True),
        default=1.0,
        help="seconds the offline emulator takes per image (1.0)",
    )
    run.add_argument("--plain", action="store_true", help="plain lines instead of the live display")
    run.add_argument("--verbose", action="store_true", help="tracebacks on errors")
    return p


def _plan_request(args: argparse.Namespace) -> PlanRequest:
    from .planner import PlanRequest

    if not args.wardrobe:
        raise InputError("--wardrobe is required (e.g. --wardrobe zip-hoodie)")
    if not args.catalogs:
        raise InputError('--catalogs is required (e.g. --catalogs "v3.2,v4.2")')
    return PlanRequest(
        wardrobes=args.wardrobe,
        catalogs=args.catalogs,
        ui_styles=args.ui_style,
        combos=args.combos,
        prompts=args.prompts,
        quality=args.quality,
        aspect=args.aspect,
        model=args.model,
        combos_root=args.combos_root,
        catalogs_root=args.catalogs_root,
        output=args.output,
    )


def _config(args: argparse.Namespace) -> dict[str, Any]:
    """The session's ``config``: the seed's keys first, then everything resume needs."""
    return {
        "wardrobe": ",".join(args.wardrobe),
        "catalogs": list(args.catalogs),
        "ui_style": ",".join(args.ui_style) or None,
        "quality": args.quality,
        "aspect": args.aspect,
        "model": args.model,
        "combos": list(args.combos),
        "prompts": list(args.prompts),
        "combos_root": str(args.combos_root),
        "catalogs_root": str(args.catalogs_root),
        "output": str(args.output),
        "concurrency": args.concurrency,
        "min_interval": args.min_interval,
        "rpm": args.rpm,
        "timeout": args.timeout,
        "offline": args.offline,
    }


def print_dry_run(jobs: Sequence[Job], console: Console, max_cost: float | None = None) -> None:
    """The job table and the estimated cost at published prices; needs no key."""
    from .budget import THINKING_ALLOWANCE_USD, reservation
    from .planner import describe

    table = Table(title=describe(jobs), show_lines=False)
    for column in ("id", "combo", "prompt", "refs", "output"):
        table.add_column(column, overflow="fold")
    total = 0.0
    for job in jobs:
        total += pricing.estimate(job.model, job.quality, len(job.references))
        output = f"{job.output_dir}/{{timestamp}}-{job.short_id}-{job.quality}.png"
        table.add_row(
            job.id, f"{job.ui_style}/{job.combo}", job.prompt_file, str(len(job.references)), output
        )
    console.print(table)
    console.print(
        f"Estimated cost: ${total:.2f} for {len(jobs)} images at {jobs[0].quality} "
        f"({jobs[0].model}, standard prices of {pricing.PRICES_AS_OF}, before thinking tokens)"
    )
    if max_cost is not None:
        held = [reservation(j.model, j.quality, len(j.references)) for j in jobs]
        fits = next((n for n in range(len(held)) if sum(held[: n + 1]) > max_cost), len(held))
        covered = "every job" if fits == len(jobs) else f"the first {fits} of {len(jobs)} jobs"
        console.print(
            f"Budget ${max_cost:.2f} covers {covered} (each job reserves its price "
            f"+ ${THINKING_ALLOWANCE_USD:.2f} for thinking tokens)"
        )


def _settings(args: argparse.Namespace, config: dict[str, Any] | None = None) -> Settings:
    """Run settings from the flags, or from a session's recorded ``config`` (resume, retry)."""
    from .limiter import Limits
    from .retry import RetryPolicy, load_policy
    from .session import Settings

    c = config or _config(args)
    policy = load_policy(args.retry_policy) if args.retry_policy else RetryPolicy()
    return Settings(
        limits=Limits(int(c["concurrency"]), float(c["min_interval"]), int(c["rpm"])),
        policy=policy,
        timeout=float(c["timeout"]),
        offline=bool(args.offline or c.get("offline")),
        offline_latency=args.offline_latency,
        live=not args.plain and sys.stdout.isatty(),
        max_cost=args.max_cost,
    )


def _unfinished_twin(sessions_dir: Path, config: dict[str, Any]) -> str | None:
    """An unfinished session planned from the same selection (seed: "Always check session log
    before starting new batch")."""
    keys = (
        "wardrobe",
        "catalogs",
        "ui_style",
        "quality",
        "aspect",
        "model",
        "combos",
        "prompts",
        "output",
    )
    for session_id in reversed(sessionfiles.list_sessions(sessions_dir)):
        try:
            doc = sessionfiles.load(sessions_dir, session_id)
        except InputError:
            continue
        if all(doc["config"].get(k) == config.get(k) for k in keys) and doc["summary"]["total"] > (
            doc["summary"]["completed"] + doc["summary"]["failed"]
        ):
            return session_id
    return None


def _start(
    args: argparse.Namespace, jobs: list[Job], console: Console, parent: str | None = None
) -> int:
    from . import journal as journal_mod
    from .planner import describe
    from .session import link_child, run_session

    if args.dry_run:
        print_dry_run(jobs, console, args.max_cost)
        return 0
    config = _config(args)
    settings = _settings(args)
    api_key = settings.api_key()  # fails before anything is written
    if not args.new and parent is None and (twin := _unfinished_twin(args.sessions_dir, config)):
        raise InputError(
            f"session {twin} has the same selection and is unfinished: continue it with "
            f"--resume {twin}, or pass --new to start another"
        )
    # An upgrade holds its parent's lock before the child exists, so a parent that another
    # process runs gets no stray child.
    parent_journal = journal_mod.open_session(args.sessions_dir, parent) if parent else None
    journal = journal_mod.create(args.sessions_dir, config, jobs, parent=parent)
    if parent_journal is not None:
        anyio.run(link_child, parent_journal, journal.session_id)
    console.print(
        f"Session {journal.session_id}: {describe(jobs)}; journal {journal.snapshot_path}"
    )
    return anyio.run(run_session, journal, [j.id for j in jobs], settings, api_key, console)


def _continue(args: argparse.Namespace, session_id: str, console: Console) -> int:
    """--resume and --retry: the session's own config, its own jobs, nothing re-planned."""
    from . import journal as journal_mod
    from .session import run_session

    if args.dry_run:
        raise InputError(
            f"--dry-run previews a new batch; --status {session_id} shows what is left to run"
        )
    journal = journal_mod.open_session(args.sessions_dir, session_id)  # takes the lock
    if damaged := journal.doc["journal"].pop("damaged_snapshot", None):
        console.print(
            f"The session's JSON was damaged: kept as {damaged}; rebuilt from its event log."
        )
    settings = _settings(args, journal.doc["config"])
    try:
        api_key = settings.api_key()
    except InputError:
        journal.release()
        raise
    mode = "retry" if args.retry else "resume"
    console.print(f"Session {session_id}: {mode}; journal {journal.snapshot_path}")
    return anyio.run(
        run_session,
        journal,
        None,
        settings,
        api_key,
        console,
        (args.job if mode == "retry" else None),
        mode,
    )


def _upgrade(args: argparse.Namespace, console: Console) -> int:
    from .planner import upgrade_jobs

    if not args.to_quality:
        raise InputError("--upgrade needs --to-quality (2K or 4K)")
    parent = sessionfiles.load(args.sessions_dir, args.upgrade)
    jobs = upgrade_jobs(parent["jobs"], args.to_quality)
    config = parent["config"]
    for key in ("concurrency", "min_interval", "rpm", "timeout"):
        config[key] = getattr(args, key)
    args.wardrobe = tuple(str(config["wardrobe"]).split(","))
    args.catalogs = tuple(config["catalogs"])
    args.ui_style = tuple(filter(None, str(config.get("ui_style") or "").split(",")))
    args.quality, args.aspect, args.model = args.to_quality, config["aspect"], config["model"]
    args.output = Path(config["output"])
    return _start(args, jobs, console, parent=args.upgrade)


def _single(args: argparse.Namespace, console: Console) -> int:
    from .planner import plan

    if not (args.combo and args.prompt and args.wardrobe):
        raise InputError("--single needs --combo ID --prompt catalog_vX.Y/NAME.md --wardrobe W")
    catalog = args.prompt.split("/", 1)[0] if "/" in args.prompt else None
    if not catalog:
        raise InputError(f"--prompt {args.prompt!r}: give it as catalog_vX.Y/NAME.md")
    args.catalogs, args.combos, args.prompts = (catalog,), (args.combo,), (args.prompt,)
    args.new = True
    return _start(args, plan(_plan_request(args)), console)


def _run(args: argparse.Namespace, console: Console) -> int:
    if args.status is not None:
        if args.status:
            return show_session(
                args.sessions_dir, args.status, console, as_json=args.json, watch=args.watch
            )
        return list_sessions(args.sessions_dir, console, as_json=args.json)
    from .planner import plan
    from .report import write_report

    if args.report:
        console.print(f"Contact sheet: {write_report(args.sessions_dir, args.report)}")
        return 0
    if args.job and not args.retry:
        raise InputError("--job goes with --retry SESSION_ID")
    if args.resume:
        return _continue(args, args.resume, console)
    if args.retry:
        return _continue(args, args.retry, console)
    if args.upgrade:
        return _upgrade(args, console)
    if args.single:
        return _single(args, console)
    return _start(args, plan(_plan_request(args)), console)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["emulator"]:
        from .emulator import main as emulator_main

        return emulator_main(argv[1:])
    args = build_parser().parse_args(argv)
    console = Console(stderr=False)
    try:
        return _run(args, console)
    except ImagegenError as exc:
        if args.verbose:
            raise
        print(f"imagegen: error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", EXIT_USAGE)
    except OSError as exc:
        if args.verbose:
            raise
        where = f" {exc.filename}" if exc.filename else ""
        print(
            f"imagegen: error: cannot write{where}: {exc.strerror or exc}; free space or fix "
            "permissions, then continue with --resume SESSION_ID (imagegen --status lists them)",
            file=sys.stderr,
        )
        return EXIT_STOPPED
    except KeyboardInterrupt:
        print("imagegen: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

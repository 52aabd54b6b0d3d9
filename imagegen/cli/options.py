"""The command line's parsers: the session verbs, the run options every source shares, and
argparse set to report a bad value in one line (exit 2) instead of its usage block."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from .. import providers, sources
from ..errors import EXIT_USAGE, InputError
from ..providers.vertex import vertex_by_default

QUALITIES = ("1K", "2K", "4K")
PROVIDERS = ("gemini", "vertex", "openai", "fal")
DEFAULT_PROVIDER = "gemini"


def default_provider() -> str:
    """``--provider`` when not given: vertex when the SDK's ``GOOGLE_GENAI_USE_VERTEXAI`` says
    so (as the SDK itself would), else gemini."""
    return "vertex" if vertex_by_default() else DEFAULT_PROVIDER


DEFAULT_QUALITY = "1K"
DEFAULT_ASPECT = "1:1"


class Parser(argparse.ArgumentParser):
    """argparse, with an error as one line naming the option and the fix (README, "Exit
    codes": 2), not the usage block first. With ``raising``, the error is an InputError
    instead (a library call must not exit the caller's program)."""

    raising = False

    def error(self, message: str) -> NoReturn:
        if self.raising:
            raise InputError(f"{message} (see {self.prog} --help)")
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        sys.exit(EXIT_USAGE)


def positive_int(name: str, low: int, high: int) -> Callable[[str], int]:
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


def number(name: str, *, allow_zero: bool, unit: str = "seconds") -> Callable[[str], float]:
    """An argparse type for a non-negative finite number of ``unit`` (seconds, USD)."""

    def parse(value: str) -> float:
        try:
            result = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{name} must be a number of {unit}, not {value!r}"
            ) from None
        if (
            result < 0
            or (result == 0 and not allow_zero)
            or result != result
            or result == float("inf")
        ):
            raise argparse.ArgumentTypeError(
                f"{name} must be {'>= 0' if allow_zero else '> 0'} {unit}, not {value}"
            )
        return result

    return parse


def quality(value: str) -> str:
    if value not in QUALITIES:
        hint = f"; did you mean {value.upper()}?" if value.upper() in QUALITIES else ""
        raise argparse.ArgumentTypeError(
            f"--quality must be one of {', '.join(QUALITIES)}, not {value!r}{hint}"
        )
    return value


def aspect(value: str) -> str:
    width, _, height = value.partition(":")
    if not (width.isdigit() and height.isdigit() and int(width) and int(height)):
        raise argparse.ArgumentTypeError(f"--aspect must be a ratio like 16:9, not {value!r}")
    return value


def _pool_defaults(field: str) -> str:
    """Each provider's default for a pool limit, for the help text: "gemini 3, vertex 4, ..."."""
    return ", ".join(f"{name} {getattr(providers.get(name).pool, field):g}" for name in PROVIDERS)


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """The options every way of starting a batch shares (README, "Options").

    ``--provider`` defaults to gemini, or to vertex when the google-genai SDK's own switch
    ``GOOGLE_GENAI_USE_VERTEXAI`` (or ``GOOGLE_GENAI_USE_ENTERPRISE``) says so. The pool limits
    default to the provider's own (:class:`~imagegen.providers.PoolDefaults`). A source may
    set its own default size tier and aspect first, in its ``add_arguments``
    (``parser.set_defaults(default_quality=..., default_aspect=...)``): an untyped
    ``--quality`` or ``--aspect`` then means the source's, not the project's."""
    tier = parser.get_default("default_quality") or DEFAULT_QUALITY
    ratio = parser.get_default("default_aspect") or DEFAULT_ASPECT
    parser.set_defaults(default_quality=tier, default_aspect=ratio)
    gen = parser.add_argument_group("images")
    # No argparse defaults for these four: a source with defaults of its own (an input file's
    # provider) must know which ones the user typed. verbs.start fills in the defaults.
    gen.add_argument(
        "--provider",
        choices=PROVIDERS,
        help="who makes the images (gemini; vertex when GOOGLE_GENAI_USE_VERTEXAI is true)",
    )
    gen.add_argument("--model", help="model id (default: the provider's first, README)")
    gen.add_argument("--quality", type=quality, help=f"size tier 1K, 2K or 4K ({tier})")
    gen.add_argument("--aspect", type=aspect, help=f"aspect ratio, e.g. 16:9 ({ratio})")
    gen.add_argument(
        "--variants",
        type=positive_int("--variants", 1, 4),
        default=1,
        help="candidates per job, each its own call and file, all kept (1)",
    )
    run = parser.add_argument_group("running")
    run.add_argument(
        "--sessions-dir",
        type=Path,
        default=Path("sessions"),
        help="session journals (seed layout: Result_images/.sessions)",
    )
    run.add_argument(
        "--concurrency",
        type=positive_int("--concurrency", 1, 64),
        help=f"calls in flight (the provider's default: {_pool_defaults('concurrency')})",
    )
    run.add_argument(
        "--min-interval",
        type=number("--min-interval", allow_zero=True),
        help=f"seconds between request starts (default: {_pool_defaults('min_interval')})",
    )
    run.add_argument(
        "--rpm",
        type=positive_int("--rpm", 1, 10_000),
        help=f"request starts per 60 s (default: {_pool_defaults('rpm')})",
    )
    run.add_argument(
        "--timeout",
        type=number("--timeout", allow_zero=False),
        default=90.0,
        help="seconds per attempt (90)",
    )
    run.add_argument(
        "--max-cost",
        type=number("--max-cost", allow_zero=False, unit="USD"),
        metavar="USD",
        help="stop starting jobs before this run would spend more than USD",
    )
    run.add_argument("--retry-policy", type=Path, help="TOML file with a [retry] table (README)")
    run.add_argument(
        "--dry-run", action="store_true", help="show the jobs and their cost; write nothing"
    )
    run.add_argument("--json", action="store_true", help="with --dry-run or --status: JSON")
    run.add_argument(
        "--new",
        action="store_true",
        help="start a new batch even if an unfinished one has the same selection",
    )
    run.add_argument(
        "--offline",
        action="store_true",
        help="run against the built-in emulator on loopback: no key, no network",
    )
    run.add_argument(
        "--offline-latency",
        type=number("--offline-latency", allow_zero=True),
        default=1.0,
        help="seconds the offline emulator takes per image (1.0)",
    )
    run.add_argument("--plain", action="store_true", help="plain lines instead of the live display")
    run.add_argument("--verbose", action="store_true", help="tracebacks on errors")
    run.add_argument(
        "--inline-references",
        action="store_true",
        help="send reference images inline in every request instead of uploading each "
        "distinct one once (Files API)",
    )
    batch = parser.add_argument_group("batch mode (issue 15)")
    batch.add_argument(
        "--batch",
        action="store_true",
        help="send the pending jobs through the provider's Batch API at half price (results "
        "within 24 h); a session started so resumes so",
    )
    batch.add_argument(
        "--batch-poll",
        type=number("--batch-poll", allow_zero=False),
        metavar="SECONDS",
        help="seconds between checks of a batch, growing up to 10x, at most 10 min apart (30)",
    )
    batch.add_argument(
        "--batch-deadline",
        type=number("--batch-deadline", allow_zero=False),
        metavar="SECONDS",
        help="cancel a batch still unfinished this long after it was created (86400)",
    )
    batch.add_argument(
        "--no-fallback",
        action="store_true",
        help="when a batch expires, is cancelled or fails, stop instead of running its jobs online",
    )


EXIT_CODES = (
    "Exit codes: 0 all done, 1 some jobs failed or unfinished, 2 usage or input error "
    "(nothing written), 3 batch stopped (key, permission, quota, budget, destination, full "
    "disk, Ctrl-C; continue with --resume), 130 interrupted before a session existed or "
    "after it finished."
)


def build_parser() -> Parser:
    """The default form: the session verbs, the combos source's options and the run options.
    ``image-gen.sh SOURCE ...`` (shots, ...) uses :func:`source_parser`."""
    p = Parser(
        prog="imagegen",
        description="Batch-generate images with Nano Banana Pro: combos x catalog prompts, "
        f"or another job source ({', '.join(n for n in sources.NAMES if n != 'combos')}: "
        "imagegen SOURCE --help).",
        epilog=f"{EXIT_CODES} 'imagegen emulator --help' for the emulator.",
    )
    verbs = p.add_argument_group("session verbs (default: start a new batch)")
    verbs.add_argument("--resume", metavar="SESSION_ID", help="continue a session from its journal")
    verbs.add_argument(
        "--retry",
        metavar="SESSION_ID",
        help="re-run every failed job of a session, or those named with --job",
    )
    verbs.add_argument(
        "--job",
        help="with --retry, --upgrade, --report: job ids, e.g. 015 or 003,007,019 or 001-040 "
        "or @FILE (ids, lists or ranges, one a line)",
    )
    verbs.add_argument(
        "--status",
        metavar="SESSION_ID",
        nargs="?",
        const="",
        help="list sessions, or show one (with --watch to follow it, --json)",
    )
    verbs.add_argument("--watch", action="store_true", help="with --status ID: follow it")
    verbs.add_argument(
        "--upgrade",
        metavar="SESSION_ID",
        help="regenerate a session's completed images (or those named with --job) at --to-quality",
    )
    verbs.add_argument("--to-quality", type=quality, help="with --upgrade: 2K or 4K")
    verbs.add_argument(
        "--report",
        metavar="SESSION_ID",
        help="write the session's HTML contact sheet (finished runs write it too)",
    )
    sources.get("combos").add_arguments(p)
    add_run_options(p)
    return p


def source_parser(name: str) -> Parser:
    """``imagegen NAME ...``: one source's options and the run options."""
    source = sources.get(name)
    p = Parser(
        prog=f"imagegen {name}",
        description=source.help,
        epilog=f"{EXIT_CODES} Continue or inspect a session with imagegen --resume/--retry/"
        "--status/--report SESSION_ID.",
    )
    source.add_arguments(p)
    add_run_options(p)
    return p

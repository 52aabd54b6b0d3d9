"""Command line: ``imagegen`` / ``image-gen.sh`` (seed 003, "CLI Commands").

``imagegen [--verb ...] [combos options] [run options]`` is the core workflow's form, kept
exactly as the user's design card has it; ``imagegen SOURCE ...`` starts a batch from another
job source (``shots``, ...); ``imagegen emulator`` runs the loopback emulator. Errors are
reported here, once, as one line (a traceback only with ``--verbose``); exit codes are those
of :mod:`imagegen.errors` (README, "Exit codes").
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import IO, Any

from rich.console import Console

from .. import providers, sources
from ..errors import EXIT_INTERRUPTED, EXIT_STOPPED, EXIT_USAGE, ImagegenError, InputError
from ..secrets import redact, register_environment
from .options import build_parser, source_parser


class _QuietPipe:
    """stdout that stops writing, silently, once the reader has gone (``| head -1``): a run
    must finish (and write its contact sheet) whoever reads its output."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self.closed_by_reader = False

    def write(self, text: str) -> int:
        if not self.closed_by_reader:
            try:
                return self._stream.write(redact(text))
            except (BrokenPipeError, ValueError):
                self.closed_by_reader = True
        return len(text)

    def flush(self) -> None:
        if not self.closed_by_reader:
            try:
                self._stream.flush()
            except (BrokenPipeError, ValueError):
                self.closed_by_reader = True

    def isatty(self) -> bool:
        return self._stream.isatty()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _run(args: argparse.Namespace, console: Console) -> int:
    from ..status import list_sessions, show_session

    if args.status is not None:
        if args.status:
            return show_session(
                args.sessions_dir, args.status, console, as_json=args.json, watch=args.watch
            )
        return list_sessions(args.sessions_dir, console, as_json=args.json)
    from .verbs import continue_session, parse_job_list, start, upgrade

    if args.report:
        from ..report import write_report

        jobs = parse_job_list(args.job)
        console.print(f"Contact sheet: {write_report(args.sessions_dir, args.report, jobs)}")
        return 0
    if args.job and not (args.retry or args.upgrade):
        raise InputError("--job goes with --retry, --upgrade or --report SESSION_ID")
    if args.resume:
        return continue_session(args, args.resume, console)
    if args.retry:
        return continue_session(args, args.retry, console)
    if args.upgrade:
        return upgrade(args, console)
    return start("combos", args, console, single=args.single)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    for name in providers.REGISTRY:  # every key this process could hold, whatever runs
        register_environment(providers.get(name).key_vars)
    if argv[:1] == ["emulator"]:
        from ..emulator import main as emulator_main

        return emulator_main(argv[1:])
    source = argv[0] if argv and argv[0] in sources.NAMES else None
    args = (source_parser(source) if source else build_parser()).parse_args(
        argv[1:] if source else argv
    )
    stdout = _QuietPipe(sys.stdout)
    console = Console(file=stdout)  # type: ignore[arg-type]
    try:
        if source is not None:
            from .verbs import start

            return start(source, args, console)
        return _run(args, console)
    except ImagegenError as exc:
        if args.verbose:
            raise
        print(redact(f"imagegen: error: {exc}"), file=sys.stderr)
        return int(getattr(exc, "exit_code", EXIT_USAGE))
    except OSError as exc:
        if args.verbose:
            raise
        where = f" {exc.filename}" if exc.filename else ""
        print(
            redact(
                f"imagegen: error: cannot write{where}: {exc.strerror or exc}; free space or fix "
                "permissions, then continue with --resume SESSION_ID (imagegen --status lists "
                "them)"
            ),
            file=sys.stderr,
        )
        return EXIT_STOPPED
    except KeyboardInterrupt:
        print("imagegen: interrupted before a session was started", file=sys.stderr)
        return EXIT_INTERRUPTED

"""The benchmark (issue 5): the real runner and the real SDK against the loopback emulator.

``python -m imagegen.bench`` runs every scenario, each in a fresh worker process (so CPU time
and peak memory do not mix), and prints one table: measure, value, target, ok. A worker is
``python -m imagegen.bench --scenario NAME --json``. ``--quick`` shrinks every size for a smoke
run. It is a script, not a timed test: each number is a ratio or a cost measured in one run.

Scenarios (sizes of the full run; ``--quick`` in :data:`QUICK`):

- ``slots``: 300 jobs, emulator latency 0.5 s, 3 calls in flight, no spacing; wall time over
  the ideal ``jobs x latency / concurrency``. Then 120 jobs (not 300: that is 5 minutes of
  spacing) under the seed's defaults (1 s spacing, 60 per minute) over the ideal the limits
  allow (:func:`ideal_wall`).
- ``scale``: 100 and 10,000 jobs, no latency, 32 in flight, 1K flat images: runner CPU per
  job, journal bytes written per status change (and the ratio 10,000 / 100), peak memory. The
  process's CPU is split between the provider's own coroutine steps (the google-genai SDK and
  httpx2, timed step by step: :class:`~imagegen.bench.harness.TracedProvider`) and the rest,
  the runner's; the same 10,000 jobs against :class:`~imagegen.bench.harness.StubProvider`
  (no SDK, no HTTP) measure the runner alone, median of 3 runs.
- ``large``: 60 jobs at 4K (collage images), 3 in flight: peak memory against the process
  baseline plus three decoded 4K images.
- ``bigref`` (issue 11, :mod:`.bigref`): 3 jobs whose combo holds a 12,000 x 12,000 JPEG and
  PNG reference, run through the command line in a child process, references uploaded and
  inline: its peak memory over the same run with small references.
- ``reads``: ``--status ID`` and ``--resume`` planning on a 10,000-job session left as a crash
  leaves it (snapshot behind the log, jobs still ``running``); in-process and in a fresh process.
- ``storm``: 60 jobs, a third answered 429 with ``retryDelay`` 1 s on their first attempt:
  calls made over the minimum, and the longest stretch with no call in flight while jobs remain
  and no pause holds the pool.
- ``photos`` and ``batch`` (issue 15, :mod:`.batch_scenarios`): real-size reference photos made
  by the benchmark; bytes per request inline and uploaded once, slot use with uploads, and the
  Batch API for 10,000 jobs over 36 combos (bytes uploaded per job, memory while the shards
  are built, time to fold the results, cost against the same session online).
- ``report``: the contact sheet of 1,000 images at 1K, written with the thumbnails made as
  each image was saved (the runner's ``saved`` hook), rebuilt, and with every thumbnail made
  at the end: seconds each (:mod:`.sheet`).

The emulator runs in its own process (``python -m imagegen.emulator``) so that the runner's CPU
and memory are its own; only ``storm`` runs it in-process, to script answers and read its
request log. Times are seconds (``time.perf_counter``), CPU is ``time.process_time`` of the
runner process (every thread), memory is ``ru_maxrss`` in MB (10^6 bytes). On a virtual
machine the host may give CPU time to others ("steal"); the scenarios that measure CPU report the
share, since CPU numbers measured under a high share come out inflated.

Modules: :mod:`.harness` (sizes, rows, one batch through the runner), :mod:`.scenarios`,
:mod:`.sheet` (the ``report`` scenario), :mod:`.bigref`, and this one (worker processes, the
table, the command line).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import orjson

from .harness import (
    FULL,
    QUICK,
    SCENARIOS,
    Row,
    ideal_wall,
    idle_stretches,
    measure,
    peak_overlap,
)
from .scenarios import RUNNERS

__all__ = ["ideal_wall", "idle_stretches", "main", "measure", "peak_overlap", "print_table"]


# -- output and the command line -----------------------------------------------------------


def machine() -> dict[str, Any]:
    """Cores, Python, platform, and how long an fsync of a small append takes here."""
    with tempfile.NamedTemporaryFile() as fh:
        started = time.perf_counter()
        for _ in range(20):
            fh.write(b"x" * 300)
            fh.flush()
            os.fsync(fh.fileno())
        fsync_ms = (time.perf_counter() - started) / 20 * 1000
    return {
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "fsync_ms": round(fsync_ms, 2),
    }


def print_table(rows: Sequence[Row], info: dict[str, Any], quick: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 150)
    console.print(
        f"Machine: {info['cores']} cores ({info['usable_cores']} usable), Python "
        f"{info['python']}, {info['platform']}, fsync ≈ {info['fsync_ms']} ms"
        + ("  [quick sizes]" if quick else "")
    )
    table = Table(title="imagegen benchmark")
    for column in ("scenario", "measure", "value", "target", "ok"):
        table.add_column(column, justify="right" if column == "value" else "left")
    last = None
    for row in rows:
        if last is not None and row.scenario != last:
            table.add_section()
        last = row.scenario
        ok = "" if row.ok is None else ("yes" if row.ok else "[bold red]NO[/]")
        table.add_row(row.scenario, row.measure, row.shown(), row.target, ok)
    console.print(table)


def run_workers(names: Sequence[str], quick: bool, work: Path) -> list[Row]:
    """Each scenario in its own ``--scenario NAME --json`` process; a failure is a row."""
    rows: list[Row] = []
    for name in names:
        print(f"running scenario {name} ...", file=sys.stderr, flush=True)
        cmd = [
            sys.executable,
            "-m",
            "imagegen.bench",
            "--scenario",
            name,
            "--json",
            "--workdir",
            str(work / name),
        ] + (["--quick"] if quick else [])
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
        lines = proc.stdout.strip().splitlines()
        if not lines or not lines[-1].startswith("{"):  # exit 1 alone is a missed target
            rows.append(
                Row(
                    name, f"worker crashed (exit {proc.returncode}, see stderr)", math.nan, ok=False
                )
            )
            continue
        for r in orjson.loads(lines[-1])["rows"]:
            rows.append(Row(**(r | {"value": math.nan if r["value"] is None else r["value"]})))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m imagegen.bench [--quick] [--scenario NAME] [--json] [--workdir DIR]``.

    Exit 0 when every target is met, 1 otherwise.
    """
    parser = argparse.ArgumentParser(
        prog="python -m imagegen.bench", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument(
        "--scenario",
        choices=SCENARIOS,
        action="append",
        help="run only these scenarios, in this process (repeatable)",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--json", action="store_true", help="print rows as JSON, not a table")
    parser.add_argument("--workdir", type=Path, help="keep sessions and images here")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    with contextlib.ExitStack() as stack:
        work = args.workdir or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="imagegen-bench-"))
        )
        work.mkdir(parents=True, exist_ok=True)
        if args.scenario:
            rows = [row for name in args.scenario for row in RUNNERS[name](work, sizes)]
        else:
            rows = run_workers(SCENARIOS, args.quick, work)
    info = machine()
    if args.json:
        print(
            orjson.dumps(
                {"machine": info, "quick": args.quick, "rows": [asdict(r) for r in rows]}
            ).decode()
        )
    else:
        print_table(rows, info, args.quick)
    return 0 if all(r.ok is not False for r in rows) else 1

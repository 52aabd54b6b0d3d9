"""The benchmark's ``report`` scenario: the contact sheet of a 1,000-image session.

A 1,000-job session runs at 1K through the real runner against the emulator in its own process
(``collage`` images: detailed, so decoding them costs what real images cost), with the runner's
``saved`` hook making each image's thumbnails as it is saved, as ``run_session`` does. Then the
report is written three ways: as at the end of that run (every thumbnail already made), again
(a rebuild), and with the thumbnails folder removed first (every image decoded at the end, as
before thumbnails were made at save time). The issue's target: a 1,000-image sheet in a few
seconds (here, at most 5 s) when the thumbnails were made during the run.
"""

from __future__ import annotations

import functools
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

from ..executors.limiter import Limits
from ..report import prepare_thumbnails, report_dir, write_report
from .harness import (
    MB,
    UNLIMITED_RPM,
    Row,
    Sizes,
    _completed,
    cpu_steal,
    emulator_process,
    make_jobs,
    measure,
    run_batch,
    steal_row,
)

#: Seconds the report of the benchmark's session may take when the thumbnails exist.
REPORT_TARGET = 5.0


def scenario_report(work: Path, s: Sizes) -> list[Row]:
    steal = cpu_steal()
    root = work / "report"
    jobs = make_jobs(root, s.report_jobs)
    sessions = root / "sessions"
    spent: list[float] = []

    def saved(image: Path, references: Sequence[str]) -> None:
        started = time.perf_counter()
        prepare_thumbnails(sessions, session_id(), image, references)
        spent.append(time.perf_counter() - started)

    @functools.cache
    def session_id() -> str:  # run_batch creates the session: its one journal in the folder
        return next(p.name.removesuffix("-session.json") for p in sessions.glob("*-session.json"))

    with emulator_process(0.0, render="collage") as url:
        batch = run_batch(root, jobs, url, Limits(4, 0.0, UNLIMITED_RPM), saved=saved)
    sid = session_id()
    label = f"{s.report_jobs:,} images at 1K"

    def timed_report() -> float:
        started = time.perf_counter()
        write_report(sessions, sid)
        return time.perf_counter() - started

    at_end_of_run = timed_report()
    rebuild = timed_report()
    page = report_dir(sessions, sid) / "index.html"
    page_mb = page.stat().st_size / MB
    shutil.rmtree(report_dir(sessions, sid) / "thumbs")
    cold = timed_report()
    return [
        measure(
            "report",
            f"{label}: report, thumbnails made as each image was saved",
            at_end_of_run,
            "s",
            at_most=REPORT_TARGET,
        ),
        measure("report", f"{label}: report rebuilt (nothing changed)", rebuild, "s"),
        measure("report", f"{label}: report, every thumbnail made at the end", cold, "s"),
        measure(
            "report",
            f"{label}: thumbnails during the run, per image (worker thread)",
            sum(spent) / max(1, len(spent)) * 1000,
            "ms",
        ),
        measure("report", f"{label}: run wall time (thumbnails included)", batch.wall, "s"),
        measure("report", f"{label}: page size", page_mb, "MB"),
        _completed("report", label, batch),
        steal_row("report", steal),
    ]

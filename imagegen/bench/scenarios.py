"""The benchmark's scenarios: each takes a work folder and sizes and returns table rows."""

from __future__ import annotations

import contextlib
import io
import math
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import anyio
from PIL import Image

from .. import providers
from ..executors.limiter import Limits
from ..journal import Journal, now_iso
from ..model import Attempt, ImageMeta, JobUpdate, Usage
from ..outputs import Outputs
from ..recovery import recover_interrupted
from ..retry import RetryPolicy
from .batch_scenarios import scenario_batch, scenario_photos
from .bigref import scenario_bigref
from .harness import (
    MB,
    UNLIMITED_RPM,
    Row,
    Sizes,
    _completed,
    cpu_steal,
    emulator_process,
    ideal_wall,
    idle_stretches,
    make_jobs,
    measure,
    new_session,
    peak_overlap,
    run_batch,
    steal_row,
)
from .sheet import scenario_report

# -- scenarios ------------------------------------------------------------------------------


def scenario_slots(work: Path, s: Sizes) -> list[Row]:
    steal = cpu_steal()
    rows = []
    free = Limits(3, 0.0, UNLIMITED_RPM)
    runs = (
        (f"{s.slot_jobs} jobs, {s.slot_latency:g} s, 3 in flight, no spacing", s.slot_jobs, free),
        (
            f"{s.spacing_jobs} jobs, {s.slot_latency:g} s, {s.spacing.concurrency} in flight, "
            f"{s.spacing.min_interval:g} s apart, {s.spacing.rpm}/min",
            s.spacing_jobs,
            s.spacing,
        ),
    )
    for i, (label, count, limits) in enumerate(runs):
        root = work / f"slots-{i}"
        with emulator_process(s.slot_latency) as url:
            batch = run_batch(root, make_jobs(root, count), url, limits)
        ideal = ideal_wall(count, s.slot_latency, limits)
        rows += [
            measure(
                "slots",
                f"{label}: wall / ideal ({batch.wall:.1f} / {ideal:.1f} s)",
                batch.wall / ideal,
                "x",
                at_most=1.05,
            ),
            measure(
                "slots",
                f"{label}: first call starts after",
                min(lo for lo, _ in batch.trace.calls) - batch.started,
                "s",
            ),
            measure(
                "slots",
                f"{label}: calls in flight at most",
                peak_overlap(batch.trace.calls),
                at_most=limits.concurrency,
            ),
            _completed("slots", label, batch),
        ]
    return [*rows, steal_row("slots", steal)]


def scenario_scale(work: Path, s: Sizes) -> list[Row]:
    steal = cpu_steal()
    limits = Limits(s.scale_concurrency, 0.0, UNLIMITED_RPM)
    root = work / "scale-small"
    with emulator_process(0.0) as url:
        small = run_batch(root, make_jobs(root, s.scale_small), url, limits)
    root = work / "scale"
    jobs = make_jobs(root, s.scale_jobs)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with emulator_process(0.0) as url:
        big = run_batch(root, jobs, url, limits)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    emulator_cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    del jobs
    stubs = []
    for n in range(s.stub_repeats):
        root = work / f"scale-stub-{n}"
        stubs.append(run_batch(root, make_jobs(root, s.scale_jobs), None, limits).cpu)
        shutil.rmtree(root)
    n = big.jobs
    own = statistics.median(stubs) / n * 1000
    label = f"{n:,} jobs, {s.scale_concurrency} in flight, 1K"
    spread = f"median of {len(stubs)}" + (
        f", {min(stubs) / n * 1000:.2f}-{max(stubs) / n * 1000:.2f}" if len(stubs) > 1 else ""
    )
    in_provider = big.trace.provider_cpu / n * 1000
    return [
        measure(
            "scale",
            f"{label}: runner CPU per job (all CPU but the provider's own steps)",
            big.cpu / n * 1000 - in_provider,
            "ms",
            below=2.0,
        ),
        measure(
            "scale",
            f"{label}: CPU per job in GeminiProvider.generate (google-genai SDK + httpx2)",
            in_provider,
            "ms",
        ),
        measure("scale", f"{label}: CPU per job in all (runner + SDK)", big.cpu / n * 1000, "ms"),
        measure(
            "scale",
            f"same, stub provider (no SDK, no HTTP): runner CPU per job ({spread})",
            own,
            "ms",
            below=2.0,
        ),
        measure("scale", f"{label}: wall time", big.wall, "s"),
        measure("scale", f"{label}: throughput", n / big.wall, "jobs/s"),
        measure(
            "scale",
            f"{label}: emulator CPU per job (its own process)",
            emulator_cpu / n * 1000,
            "ms",
        ),
        measure("scale", f"{label}: peak memory", big.rss_after, "MB", below=200),
        measure(
            "scale",
            f"journal bytes per status change, {small.jobs:,} jobs",
            small.bytes_per_change,
            "B",
        ),
        measure("scale", f"journal bytes per status change, {n:,} jobs", big.bytes_per_change, "B"),
        measure(
            "scale",
            f"journal bytes per change, {n:,} / {small.jobs:,} jobs",
            big.bytes_per_change / small.bytes_per_change,
            "x",
            below=1.5,
        ),
        measure("scale", f"{label}: journal bytes written in all", big.bytes_written / MB, "MB"),
        measure("scale", f"{label}: journal write time (writer thread)", big.write_seconds, "s"),
        _completed("scale", label, big),
        steal_row("scale", steal),
    ]


def scenario_large(work: Path, s: Sizes) -> list[Row]:
    steal = cpu_steal()
    root = work / "large"
    with emulator_process(0.0, render="collage") as url:
        batch = run_batch(
            root, make_jobs(root, s.large_jobs, "4K"), url, Limits(3, 0.0, UNLIMITED_RPM)
        )
    image = 4096 * 4096 * 3 / MB  # one decoded RGB 4K image, MB
    pngs = [p.stat().st_size for p in (root / "out").rglob("*.png")]
    label = f"{s.large_jobs} jobs at 4K, 3 in flight"
    allowed = batch.rss_before + 2 * 3 * image
    return [
        measure("large", f"{label}: process baseline (before the run)", batch.rss_before, "MB"),
        measure("large", "one 4K image decoded (4096 x 4096 RGB)", image, "MB"),
        measure(
            "large",
            "one 4K image as PNG from the emulator (mean)",
            statistics.fmean(pngs) / MB if pngs else math.nan,
            "MB",
        ),
        measure(
            "large",
            f"{label}: peak memory (≤ baseline + 2 x three 4K images)",
            batch.rss_after,
            "MB",
            at_most=allowed,
        ),
        measure(
            "large",
            f"{label}: (peak - baseline) / three 4K images",
            (batch.rss_after - batch.rss_before) / (3 * image),
            "x",
            at_most=2.0,
        ),
        measure("large", f"{label}: runner CPU per job", batch.cpu / batch.jobs * 1000, "ms"),
        _completed("large", label, batch),
        steal_row("large", steal),
    ]


async def _record_done(journal: Journal, job_id: str, output: str) -> None:
    """The two changes the runner makes for a job that succeeds at once."""
    await journal.update(
        job_id, JobUpdate(status="running", attempts=1, started=now_iso(), output=output)
    )
    await journal.update(
        job_id,
        JobUpdate(
            status="completed",
            output=output,
            completed=now_iso(),
            error=None,
            finish_reason="STOP",
            cost_usd=0.134,
            usage=Usage(820, 1120, 312, 1120),
            image=ImageMeta("PNG", 1024, 1024, True),
        ),
        Attempt(1, now_iso(), now_iso(), "completed", output=output, cost_usd=0.134),
    )


def crashed_session(root: Path, count: int) -> tuple[Path, str, int, Callable[[], None]]:
    """A ``count``-job session as a crash leaves it: 60% completed, 2% failed, three jobs
    ``running`` (one whose attempt wrote its image), the rest pending; the snapshot lags the
    log by 5% of the jobs. Returns the sessions folder, the session id, how many jobs resume
    runs, and a function that puts the crashed attempt's image back as it was (a resume
    adopts it: each timed resume needs it again)."""
    jobs = make_jobs(root, count)
    journal = new_session(root, jobs, fsync=False)
    ids = [j.id for j in jobs]
    done, failed = int(count * 0.60), int(count * 0.02)
    late = int(count * 0.05)

    async def phase_one() -> None:
        async with journal.writing():
            for job_id in ids[:done]:
                await _record_done(journal, job_id, f"{root}/out/{job_id}.png")
            for job_id in ids[done : done + failed]:
                await journal.update(
                    job_id, JobUpdate(status="running", attempts=1, started=now_iso())
                )
                await journal.update(
                    job_id,
                    JobUpdate(
                        status="failed",
                        error="no image (finish reason IMAGE_SAFETY)",
                        error_kind="no_image",
                        completed=now_iso(),
                        finish_reason="IMAGE_SAFETY",
                    ),
                )

    anyio.run(phase_one)
    journal.close()
    saved = journal.snapshot_path.read_bytes()
    reopened = Journal.open(journal.sessions_dir, journal.session_id, fsync=False)
    tail = ids[done + failed : done + failed + late + 3]
    planned = root / "out" / "crashed.png"
    written = Outputs(journal.session_id, root / "kept").temp_path(planned, tail[late], 1)

    def restore() -> None:
        planned.unlink(missing_ok=True)
        written.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (1024, 1024), (200, 120, 40)).save(written, format="PNG")

    restore()

    async def phase_two() -> None:
        async with reopened.writing():
            for job_id in tail[:late]:
                await _record_done(reopened, job_id, f"{root}/out/{job_id}.png")
            for n, job_id in enumerate(tail[late:]):
                output = planned if n == 0 else root / "out" / f"{job_id}-lost.png"
                await reopened.update(
                    job_id,
                    JobUpdate(status="running", attempts=1, started=now_iso(), output=str(output)),
                )

    with reopened:
        anyio.run(phase_two)
    journal.snapshot_path.write_bytes(saved)  # the snapshot of before the last 5%
    return journal.sessions_dir, journal.session_id, count - done - failed - late - 1, restore


_RESUME_CHILD = """
import sys, time
import anyio
from pathlib import Path
from imagegen import providers
from imagegen.journal import Journal
from imagegen.outputs import Outputs
from imagegen.recovery import recover_interrupted

async def plan(journal):
    async with journal.writing():
        outputs = Outputs(journal.session_id, Path(sys.argv[1]) / "kept")
        ids = await recover_interrupted(journal, outputs, providers.get, lambda _n: None)
        print(time.time(), len(ids), flush=True)

with Journal.open(Path(sys.argv[1]), sys.argv[2]) as journal:
    anyio.run(plan, journal)
"""


def _plan_resume(sessions: Path, session_id: str) -> tuple[float, int]:
    """Seconds until resume knows which jobs to run (open + settle), and how many."""
    started = time.perf_counter()

    async def plan(journal: Journal) -> tuple[float, int]:
        async with journal.writing():
            outputs = Outputs(journal.session_id, sessions / "kept")
            ids = await recover_interrupted(journal, outputs, providers.get, lambda _n: None)
            return time.perf_counter() - started, len(ids)

    with Journal.open(sessions, session_id) as journal:
        return anyio.run(plan, journal)


def scenario_reads(work: Path, s: Sizes) -> list[Row]:
    from .. import cli

    sessions, sid, expected, restore = crashed_session(work / "reads", s.read_jobs)
    status_argv = ["--status", sid, "--sessions-dir", str(sessions)]
    in_status, out_status, in_resume, out_resume, to_run = [], [], [], [], []
    for n in range(s.read_repeats):
        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            assert cli.main(status_argv) == 0
        in_status.append(time.perf_counter() - started)
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "imagegen", *status_argv], check=True, stdout=subprocess.DEVNULL
        )
        out_status.append(time.perf_counter() - started)
        # Resume settles the crash in the journal: each run gets a fresh copy.
        copy = work / "reads" / f"resume-{n}"
        shutil.copytree(sessions, copy)
        restore()
        seconds, count = _plan_resume(copy, sid)
        in_resume.append(seconds)
        to_run.append(count)
        copy = work / "reads" / f"resume-fresh-{n}"
        shutil.copytree(sessions, copy)
        restore()
        started = time.time()
        child = subprocess.run(
            [sys.executable, "-c", _RESUME_CHILD, str(copy), sid],
            check=True,
            capture_output=True,
            text=True,
        )
        ready, count_text = child.stdout.split()
        out_resume.append(float(ready) - started)
        to_run.append(int(count_text))
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", "import imagegen.cli, imagegen.providers.gemini.client"], check=True
    )
    imports = time.perf_counter() - started
    label = f"{s.read_jobs:,}-job session"
    med = statistics.median
    return [
        measure("reads", f"--status, {label}, fresh process", med(out_status), "s", below=0.5),
        measure("reads", f"--status, {label}, in-process", med(in_status), "s"),
        measure(
            "reads", f"--resume planning, {label}, fresh process", med(out_resume), "s", below=1.0
        ),
        measure("reads", f"--resume planning, {label}, in-process", med(in_resume), "s"),
        measure(
            "reads",
            "jobs resume plans to run (every repeat)",
            to_run[0] if len(set(to_run)) == 1 else math.nan,
            equals=expected,
        ),
        measure(
            "reads",
            "fresh process: import imagegen.cli + imagegen.providers.gemini.client (what --resume "
            "loads before planning)",
            imports,
            "s",
        ),
    ]


def scenario_storm(work: Path, s: Sizes) -> list[Row]:
    from ..emulator import Emulator, Outcome

    root = work / "storm"
    jobs = make_jobs(root, s.storm_jobs)
    delay = f"{s.storm_delay:g}s"
    policy = RetryPolicy(jitter=s.storm_jitter)
    with Emulator(latency=s.storm_latency, render="plain") as emu:
        scripted = 0
        for n, job in enumerate(jobs):
            if n % 3 == 1:  # a third of first attempts
                emu.enqueue(Outcome.error(429, retry_delay=delay), match=f"job {job.id}:")
                scripted += 1
        batch = run_batch(root, jobs, emu.base_url, Limits(3, 0.0, UNLIMITED_RPM), policy)
        calls, forced, in_flight = emu.requests, scripted - emu.pending, emu.max_in_flight
    trace = batch.trace
    end = max(hi for _, hi in trace.calls)
    idle = idle_stretches(batch.started, end, trace.calls + trace.pauses)
    allowed_idle = s.storm_delay * s.storm_jitter + 0.05  # retry jitter + scheduling slack
    label = f"{s.storm_jobs} jobs, 1/3 get 429 (retryDelay {delay}), 3 in flight"
    return [
        measure("storm", f"{label}: calls made", calls),
        measure(
            "storm",
            f"{label}: calls / minimum (jobs + {forced} 429s)",
            calls / (s.storm_jobs + forced),
            "x",
            at_most=1.0,
        ),
        measure(
            "storm",
            f"{label}: longest idle stretch (no call, no pause, jobs left)",
            max(idle, default=0.0),
            "s",
            at_most=allowed_idle,
        ),
        measure("storm", f"{label}: idle time in all", sum(idle), "s"),
        measure("storm", f"{label}: wall time ({len(trace.pauses)} pauses)", batch.wall, "s"),
        measure("storm", f"{label}: calls in flight at most (emulator)", in_flight, at_most=3),
        _completed("storm", label, batch),
    ]


RUNNERS = {
    "slots": scenario_slots,
    "scale": scenario_scale,
    "large": scenario_large,
    "bigref": scenario_bigref,  # issue 11, item 10 (.bigref)
    "reads": scenario_reads,
    "storm": scenario_storm,
    "photos": scenario_photos,  # issue 15 (.batch_scenarios)
    "batch": scenario_batch,
    "report": scenario_report,
}

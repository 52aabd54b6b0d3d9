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
- ``scale``: 100 and 10,000 jobs, no latency, 32 in flight, 1K flat images: runner CPU seconds
  per job, journal bytes written per status change (and the ratio 10,000 / 100), peak memory.
- ``large``: 60 jobs at 4K (collage images), 3 in flight: peak memory against the process
  baseline plus three decoded 4K images.
- ``reads``: ``--status ID`` and ``--resume`` planning on a 10,000-job session left as a crash
  leaves it (snapshot behind the log, jobs still ``running``); in-process and in a fresh process.
- ``storm``: 60 jobs, a third answered 429 with ``retryDelay`` 1 s on their first attempt:
  calls made over the minimum, and the longest stretch with no call in flight while jobs remain
  and no pause holds the pool.

The emulator runs in its own process (``python -m imagegen.emulator``) so that the runner's CPU
and memory are its own; only ``storm`` runs it in-process, to script answers and read its
request log. Times are seconds (``time.perf_counter``), CPU is ``time.process_time`` of the
runner process (every thread), memory is ``ru_maxrss`` in MB (10^6 bytes).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import anyio
import orjson
from PIL import Image

from . import journal as journal_mod
from .journal import Journal, now_iso, running
from .limiter import Limits, StartGate
from .planner import Job
from .provider import Generation, ImageProvider, ImageRequest, Usage
from .recovery import recover_interrupted
from .retry import RetryPolicy
from .runner import Runner

SCENARIOS = ("slots", "scale", "large", "reads", "storm")
MODEL = "gemini-3-pro-image"
UNLIMITED_RPM = 1_000_000_000
MB = 1_000_000
SEED_LIMITS = Limits()  # the seed's defaults: 3 in flight, 1 s apart, 60 starts a minute
PROMPT = (
    "A candid lifestyle photo of the model wearing the garment, soft morning light, shallow "
    "depth of field, the product in sharp focus, clean background, natural skin tones.\n\n"
    "Reference images, in order:\n1. ui: UI layout, composition, background, lighting\n"
    "2. wardrobe: the garment the model must wear\n3. pose: the model's pose and framing\n"
    "Keep exact: layout structure, text positions, color scheme, typography style.\n"
    "Replace model wardrobe with: Red zip hoodie"
)


@dataclass(frozen=True, slots=True)
class Sizes:
    """Job counts, latencies (s) and limits of one benchmark run."""

    slot_jobs: int = 300
    slot_latency: float = 0.5
    spacing_jobs: int = 120
    spacing: Limits = SEED_LIMITS
    scale_small: int = 100
    scale_jobs: int = 10_000
    scale_concurrency: int = 32
    large_jobs: int = 60
    read_jobs: int = 10_000
    read_repeats: int = 3
    storm_jobs: int = 60
    storm_latency: float = 0.2
    storm_delay: float = 1.0
    storm_jitter: float = 0.05


FULL = Sizes()
QUICK = Sizes(30, 0.1, 10, Limits(3, 0.1, 60), 100, 1000, 32, 6, 1000, 1, 30, 0.05, 0.3)


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the table. ``ok`` is None for numbers reported without a target."""

    scenario: str
    measure: str
    value: float
    unit: str = ""
    target: str = ""
    ok: bool | None = None

    def shown(self) -> str:
        return _fmt(self.value, self.unit)


def _fmt(value: float, unit: str) -> str:
    if math.isnan(value):
        return "-"
    digits = {"": 0, "x": 3, "s": 3, "ms": 2, "MB": 1, "B": 0, "jobs/s": 0}.get(unit, 2)
    return f"{value:,.{digits}f} {unit}".strip()


def measure(
    scenario: str,
    name: str,
    value: float,
    unit: str = "",
    *,
    at_most: float | None = None,
    below: float | None = None,
    equals: float | None = None,
) -> Row:
    """A row, checked against at most one of ``at_most`` (<=), ``below`` (<), ``equals``."""
    if at_most is not None:
        return Row(scenario, name, value, unit, f"≤ {_fmt(at_most, unit)}", value <= at_most)
    if below is not None:
        return Row(scenario, name, value, unit, f"< {_fmt(below, unit)}", value < below)
    if equals is not None:
        return Row(scenario, name, value, unit, f"= {_fmt(equals, unit)}", value == equals)
    return Row(scenario, name, value, unit)


# -- pure helpers -------------------------------------------------------------------------


def ideal_wall(jobs: int, latency: float, limits: Limits) -> float:
    """Seconds the limits allow for ``jobs`` calls of ``latency`` s each, started greedily."""
    starts: list[float] = []
    for i in range(jobs):
        t = starts[-1] + limits.min_interval if starts else 0.0
        if i >= limits.concurrency:
            t = max(t, starts[i - limits.concurrency] + latency)  # a slot frees
        if i >= limits.rpm:
            t = max(t, starts[i - limits.rpm] + limits.window)
        starts.append(t)
    return starts[-1] + latency if starts else 0.0


def idle_stretches(start: float, end: float, busy: Sequence[tuple[float, float]]) -> list[float]:
    """Lengths of the stretches of ``[start, end]`` that no ``busy`` interval covers."""
    gaps, reached = [], start
    for lo, hi in sorted(busy):
        if lo > reached:
            gaps.append(min(lo, end) - reached)
        reached = max(reached, hi)
        if reached >= end:
            break
    if reached < end:
        gaps.append(end - reached)
    return [g for g in gaps if g > 0]


def peak_overlap(intervals: Sequence[tuple[float, float]]) -> int:
    """The most intervals open at one instant."""
    edges = sorted([(lo, 1) for lo, _ in intervals] + [(hi, -1) for _, hi in intervals])
    peak = now = 0
    for _, step in edges:
        now += step
        peak = max(peak, now)
    return peak


def max_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MB


# -- a batch: jobs, journal, emulator, runner ----------------------------------------------


def make_jobs(root: Path, count: int, quality: str = "1K") -> list[Job]:
    """``count`` jobs sharing three small reference images, one output folder each (as the
    planner's ``{prompt_id}/{ui_style}/{combo}`` folders are)."""
    refs = root / "refs"
    refs.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, fmt in (("ui.png", "PNG"), ("wardrobe.jpg", "JPEG"), ("pose.png", "PNG")):
        path = refs / name
        Image.new("RGB", (64, 48), (10, 200, 90)).save(path, format=fmt)
        paths.append(str(path))
    width = max(5, len(str(count)))
    jobs = []
    for n in range(1, count + 1):
        job_id = f"{n:0{width}d}"
        prompt_id, combo = f"P{n % 100:02d}", f"C-{n // 100:04d}"
        jobs.append(
            Job(
                id=job_id,
                wardrobe="bench",
                ui_style="Studio",
                combo=combo,
                catalog="catalog_bench",
                prompt_id=f"{prompt_id}_bench",
                short_id=prompt_id,
                prompt_file=f"catalog_bench/{prompt_id}_bench.md",
                prompt=f"Benchmark job {job_id}: {PROMPT}",
                references=tuple(paths),
                quality=quality,
                aspect="1:1",
                model=MODEL,
                output_dir=str(root / "out" / prompt_id / combo),
            )
        )
    return jobs


def new_session(root: Path, jobs: list[Job], *, fsync: bool = True) -> Journal:
    config = {
        "wardrobe": "bench",
        "catalogs": ["catalog_bench"],
        "ui_style": None,
        "quality": jobs[0].quality,
        "aspect": "1:1",
        "model": MODEL,
        "offline": True,
    }
    return journal_mod.create(root / "sessions", config, jobs, fsync=fsync)


@dataclass
class Trace:
    """The runner's view: each call's (start, end), each pause's (from, until), monotonic s."""

    calls: list[tuple[float, float]] = field(default_factory=list)
    pauses: list[tuple[float, float]] = field(default_factory=list)


class TracedProvider:
    """Records when each call to the wrapped provider starts and ends."""

    def __init__(self, inner: ImageProvider, trace: Trace) -> None:
        self.inner, self.trace = inner, trace

    async def generate(self, request: ImageRequest) -> Generation:
        started = time.monotonic()
        try:
            return await self.inner.generate(request)
        finally:
            self.trace.calls.append((started, time.monotonic()))


class TracedGate(StartGate):
    """A StartGate that records every pool-wide pause."""

    def __init__(self, limits: Limits, trace: Trace) -> None:
        super().__init__(limits)
        self.trace = trace

    def pause(self, seconds: float, reason: str) -> None:
        super().pause(seconds, reason)
        self.trace.pauses.append((self.now(), self.paused_until))


@dataclass(frozen=True, slots=True)
class Batch:
    """What one run of a session measured (the journal itself is let go: memory)."""

    jobs: int
    completed: int
    wall: float
    cpu: float
    started: float  # monotonic
    bytes_written: int
    changes: int
    write_seconds: float
    trace: Trace
    rss_before: float
    rss_after: float

    @property
    def bytes_per_change(self) -> float:
        return self.bytes_written / max(1, self.changes)


class StubProvider:
    """Answers every request at once with the same 1K PNG: the runner without the SDK."""

    def __init__(self) -> None:
        from .emulator.render import render_png

        self.png = render_png("plain", 1024, 1024, digest="5ab1e5")

    async def generate(self, request: ImageRequest) -> Generation:
        await anyio.lowlevel.checkpoint()
        return Generation(self.png, "image/png", "STOP", Usage(800, 1120, 300, 1120))

    async def aclose(self) -> None:
        return None


def run_batch(
    root: Path,
    jobs: list[Job],
    base_url: str | None,
    limits: Limits,
    policy: RetryPolicy | None = None,
) -> Batch:
    """Run ``jobs`` as a new session through the real Runner and the real GeminiProvider
    (the :class:`StubProvider` when ``base_url`` is None)."""
    from .gemini import GeminiProvider

    journal = new_session(root, jobs)
    trace = Trace()

    async def go() -> Batch:
        provider = (
            StubProvider() if base_url is None else GeminiProvider("bench-key", base_url=base_url)
        )
        try:
            gate = TracedGate(limits, trace)
            runner = Runner(journal, TracedProvider(provider, trace), gate, policy=policy)
            rss = max_rss_mb()
            wall, cpu, started = time.perf_counter(), time.process_time(), time.monotonic()
            async with running(journal):
                await journal.record_session(state="running", stop_reason=None)
                result = await runner.run([j.id for j in jobs])
                await journal.record_session(state="finished", stop_reason=result.stop_reason)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        finally:
            await provider.aclose()
        return Batch(
            len(jobs),
            result.completed,
            wall,
            cpu,
            started,
            journal.bytes_written,
            journal.doc["journal"]["seq"],
            journal.write_seconds,
            trace,
            rss,
            max_rss_mb(),
        )

    return anyio.run(go)


@contextlib.contextmanager
def emulator_process(latency: float, render: str = "plain") -> Iterator[str]:
    """An emulator in its own process; yields its base URL, stops it (Ctrl-C) on exit."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "imagegen.emulator",
            "--port",
            "0",
            "--latency",
            f"{latency}",
            "--render",
            render,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("Emulator listening on "):
            raise RuntimeError(f"the emulator did not start: {line!r}")
        yield line.rsplit(" ", 1)[-1].strip()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def _completed(scenario: str, label: str, batch: Batch) -> Row:
    return measure(scenario, f"{label}: jobs completed", batch.completed, equals=batch.jobs)


# -- scenarios ------------------------------------------------------------------------------


def scenario_slots(work: Path, s: Sizes) -> list[Row]:
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
    return rows


def scenario_scale(work: Path, s: Sizes) -> list[Row]:
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
    root = work / "scale-stub"
    stub = run_batch(root, make_jobs(root, s.scale_jobs), None, limits)
    n = big.jobs
    label = f"{n:,} jobs, {s.scale_concurrency} in flight, 1K"
    return [
        measure("scale", f"{label}: runner CPU per job", big.cpu / n * 1000, "ms", below=2.0),
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
        measure(
            "scale",
            "same, stub provider (no SDK, no HTTP): runner CPU per job",
            stub.cpu / n * 1000,
            "ms",
            below=2.0,
        ),
        measure("scale", "same, stub provider: wall time", stub.wall, "s"),
    ]


def scenario_large(work: Path, s: Sizes) -> list[Row]:
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
    ]


async def _record_done(journal: Journal, job_id: str, output: str) -> None:
    """The two changes the runner makes for a job that succeeds at once."""
    await journal.record(job_id, status="running", attempts=1, started=now_iso(), output=output)
    await journal.record(
        job_id,
        status="completed",
        output=output,
        completed=now_iso(),
        error=None,
        finish_reason="STOP",
        cost_usd=0.134,
        usage={
            "prompt_tokens": 820,
            "output_tokens": 1120,
            "thought_tokens": 312,
            "image_tokens": 1120,
        },
        image={"format": "PNG", "width": 1024, "height": 1024, "size_ok": True},
        history={
            "attempt": 1,
            "started": now_iso(),
            "ended": now_iso(),
            "outcome": "completed",
            "output": output,
            "cost_usd": 0.134,
        },
    )


def crashed_session(root: Path, count: int) -> tuple[Path, str, int]:
    """A ``count``-job session as a crash leaves it: 60% completed, 2% failed, three jobs
    ``running`` (one whose image is on disk), the rest pending; the snapshot lags the log by
    5% of the jobs. Returns the sessions folder, the session id and how many jobs resume runs."""
    jobs = make_jobs(root, count)
    journal = new_session(root, jobs, fsync=False)
    ids = [j.id for j in jobs]
    done, failed = int(count * 0.60), int(count * 0.02)
    late = int(count * 0.05)

    async def phase_one() -> None:
        async with running(journal):
            for job_id in ids[:done]:
                await _record_done(journal, job_id, f"{root}/out/{job_id}.png")
            for job_id in ids[done : done + failed]:
                await journal.record(job_id, status="running", attempts=1, started=now_iso())
                await journal.record(
                    job_id,
                    status="failed",
                    error="no_image: IMAGE_SAFETY",
                    completed=now_iso(),
                    finish_reason="IMAGE_SAFETY",
                )

    anyio.run(phase_one)
    saved = journal.snapshot_path.read_bytes()
    reopened = journal_mod.open_session(journal.sessions_dir, journal.session_id, fsync=False)
    tail = ids[done + failed : done + failed + late + 3]
    on_disk = root / "out" / "crashed.png"
    on_disk.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (1024, 1024), (200, 120, 40)).save(on_disk, format="PNG")

    async def phase_two() -> None:
        async with running(reopened):
            for job_id in tail[:late]:
                await _record_done(reopened, job_id, f"{root}/out/{job_id}.png")
            for n, job_id in enumerate(tail[late:]):
                output = on_disk if n == 0 else root / "out" / f"{job_id}-lost.png"
                await reopened.record(
                    job_id, status="running", attempts=1, started=now_iso(), output=str(output)
                )

    anyio.run(phase_two)
    journal.snapshot_path.write_bytes(saved)  # the snapshot of before the last 5%
    return journal.sessions_dir, journal.session_id, count - done - failed - late - 1


_RESUME_CHILD = """
import sys, time
import anyio
from pathlib import Path
from imagegen import journal as j
from imagegen.recovery import recover_interrupted

async def plan(journal):
    async with j.running(journal):
        ids = await recover_interrupted(journal)
        print(time.time(), len(ids), flush=True)

anyio.run(plan, j.open_session(Path(sys.argv[1]), sys.argv[2]))
"""


def _plan_resume(sessions: Path, session_id: str) -> tuple[float, int]:
    """Seconds until resume knows which jobs to run (open + settle), and how many."""
    started = time.perf_counter()
    journal = journal_mod.open_session(sessions, session_id)

    async def plan() -> tuple[float, int]:
        async with running(journal):
            ids = await recover_interrupted(journal)
            return time.perf_counter() - started, len(ids)

    return anyio.run(plan)


def scenario_reads(work: Path, s: Sizes) -> list[Row]:
    from . import cli

    sessions, sid, expected = crashed_session(work / "reads", s.read_jobs)
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
        seconds, count = _plan_resume(copy, sid)
        in_resume.append(seconds)
        to_run.append(count)
        copy = work / "reads" / f"resume-fresh-{n}"
        shutil.copytree(sessions, copy)
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
    subprocess.run([sys.executable, "-c", "import imagegen.cli, imagegen.gemini"], check=True)
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
            "fresh process: import imagegen.cli + imagegen.gemini (what --resume "
            "loads before planning)",
            imports,
            "s",
        ),
    ]


def scenario_storm(work: Path, s: Sizes) -> list[Row]:
    from .emulator import Emulator, Outcome

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
    "reads": scenario_reads,
    "storm": scenario_storm,
}


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


if __name__ == "__main__":
    sys.exit(main())

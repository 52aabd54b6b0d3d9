"""The benchmark's harness: sizes, table rows, and one batch through the real runner.

A batch (:func:`run_batch`) is a new session of generated jobs run by the real Runner against
the emulator in its own process (:func:`emulator_process`), or against :class:`StubProvider`.
"""

from __future__ import annotations

import contextlib
import math
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import anyio
from PIL import Image

from .. import providers
from ..executors.limiter import Limits, StartGate
from ..executors.pool import Runner
from ..journal import Journal, current_owner
from ..model import Job, JobState, SessionUpdate, Usage
from ..outputs import Outputs
from ..providers.base import Checkpoint, Generation, ImageProvider, ImageRequest
from ..retry import RetryPolicy

SCENARIOS = (
    "slots",
    "scale",
    "large",
    "bigref",
    "reads",
    "storm",
    "report",
    "photos",
    "batch",
)
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
    stub_repeats: int = 3
    report_jobs: int = 1000
    bigref_side: int = 12_000  # pixels


FULL = Sizes()
QUICK = Sizes(
    slot_jobs=30,
    slot_latency=0.1,
    spacing_jobs=10,
    spacing=Limits(3, 0.1, 60),
    scale_small=100,
    scale_jobs=1000,
    scale_concurrency=32,
    large_jobs=6,
    read_jobs=1000,
    read_repeats=1,
    storm_jobs=30,
    storm_latency=0.05,
    storm_delay=0.3,
    stub_repeats=1,
    report_jobs=30,
    bigref_side=3_000,
)


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
    digits = {"": 0, "x": 3, "s": 3, "ms": 2, "MB": 1, "B": 0, "jobs/s": 0, "%": 1}.get(unit, 2)
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
                source="combos",
                title=f"{prompt_id}_bench + {combo}",
                group=("bench · Studio", f"{prompt_id}_bench", combo),
                prompt_file=f"catalog_bench/{prompt_id}_bench.md",
                prompt_parts=(PROMPT, f" Benchmark job {job_id}."),
                references=tuple(paths),
                target=str(
                    root / "out" / prompt_id / combo / f"{{time}}-{prompt_id}-{{quality}}.png"
                ),
                quality=quality,
                aspect="1:1",
                model=MODEL,
                labels=(("combo", combo), ("prompt_id", f"{prompt_id}_bench")),
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
        "provider": "gemini",
        "source": "combos",
        "header": ["Benchmark"],
        "offline": True,
    }
    return Journal.create(root / "sessions", config, [JobState(j) for j in jobs], fsync=fsync)


@dataclass
class Trace:
    """The runner's view: each call's (start, end), each pause's (from, until), monotonic s;
    and the CPU seconds spent running the provider's own code (see :class:`TracedProvider`)."""

    calls: list[tuple[float, float]] = field(default_factory=list)
    pauses: list[tuple[float, float]] = field(default_factory=list)
    provider_cpu: float = 0.0


class TracedProvider:
    """Records when each call to the wrapped provider starts and ends, and the thread CPU time
    of each step of its coroutine.

    An event loop runs one coroutine step at a time on its thread, so the sum of
    ``time.thread_time`` over the provider's steps is exactly the CPU its own code (the SDK and
    the HTTP client) used on the loop, whatever else was in flight; the rest of the process's
    CPU is the runner's (and the loop's). Work the provider hands to threads is not in the sum.
    """

    def __init__(self, inner: ImageProvider, trace: Trace) -> None:
        self.inner, self.trace = inner, trace

    async def generate(
        self, request: ImageRequest, checkpoint: Checkpoint | None = None
    ) -> Generation:
        started = time.monotonic()
        try:
            return await _StepTimed(self.inner.generate(request, checkpoint), self.trace)
        finally:
            self.trace.calls.append((started, time.monotonic()))


class _StepTimed:
    """Awaits a coroutine step by step, adding each step's thread CPU time to the trace."""

    def __init__(self, coro: Coroutine[Any, Any, Generation], trace: Trace) -> None:
        self.coro, self.trace = coro, trace

    def __await__(self) -> Generator[Any, Any, Generation]:
        sent: Any = None
        thrown: BaseException | None = None
        while True:
            step = time.thread_time()
            try:
                waited = self.coro.send(sent) if thrown is None else self.coro.throw(thrown)
            except StopIteration as done:
                return cast(Generation, done.value)
            finally:
                self.trace.provider_cpu += time.thread_time() - step
            try:
                sent, thrown = (yield waited), None
            except BaseException as exc:  # cancellation too: handed to the provider
                sent, thrown = None, exc


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
        from ..emulator.render import render_png

        self.png = render_png("plain", 1024, 1024, digest="5ab1e5")

    async def generate(
        self, request: ImageRequest, checkpoint: Checkpoint | None = None
    ) -> Generation:
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
    saved: Callable[[Path, Sequence[str]], None] | None = None,
) -> Batch:
    """Run ``jobs`` as a new session through the real Runner and the real GeminiProvider
    (the :class:`StubProvider` when ``base_url`` is None); ``saved`` is the runner's hook
    after each save (none: the runner's own cost alone is measured)."""
    from ..providers.gemini.client import GeminiProvider

    journal = new_session(root, jobs)
    trace = Trace()

    async def go() -> Batch:
        provider = (
            StubProvider() if base_url is None else GeminiProvider("bench-key", base_url=base_url)
        )
        try:
            gate = TracedGate(limits, trace)
            outputs = Outputs(journal.session_id, root / "kept")
            runner = Runner(
                journal,
                TracedProvider(provider, trace),
                providers.get("gemini"),
                gate,
                policy=policy,
                outputs=outputs,
                saved=saved,
            )
            rss = max_rss_mb()
            wall, cpu, started = time.perf_counter(), time.process_time(), time.monotonic()
            with journal:
                async with journal.writing():
                    await journal.update_session(
                        SessionUpdate(state="running", stop_reason=None, owner=current_owner())
                    )
                    result = await runner.run([j.id for j in jobs])
                    await journal.update_session(
                        SessionUpdate(state="finished", stop_reason=result.stop_reason, owner=None)
                    )
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
            journal.state.seq,
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


def cpu_steal() -> tuple[int, int] | None:
    """(steal, all) CPU time of the machine so far, in clock ticks, from ``/proc/stat``: time a
    virtual machine's host gave to others. None where there is no such file (not Linux)."""
    try:
        with Path("/proc/stat").open(encoding="ascii") as fh:
            ticks = [int(v) for v in fh.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    return (ticks[7] if len(ticks) > 7 else 0), sum(ticks)


def steal_row(scenario: str, before: tuple[int, int] | None) -> Row:
    """Share of CPU time the host took away while the scenario ran: CPU numbers measured under
    a high share are inflated (a busy neighbour on the same host)."""
    after = cpu_steal()
    if before is None or after is None or after[1] == before[1]:
        return measure(scenario, "host CPU steal during the scenario", math.nan, "%")
    share = (after[0] - before[0]) / (after[1] - before[1]) * 100
    return measure(scenario, "host CPU steal during the scenario", share, "%")


def _completed(scenario: str, label: str, batch: Batch) -> Row:
    return measure(scenario, f"{label}: jobs completed", batch.completed, equals=batch.jobs)

"""The benchmark's scenarios for issue 15: uploaded references online, and the Batch API.

- ``photos``: a workspace of real-size photos (:mod:`.photos`: 4 combos x 4 photos of ~3 MB).
  Bytes each ``generateContent`` request sends, inline and with the references uploaded once
  (target: at most 1/20); then 300 jobs at 500 ms latency, 3 in flight, no spacing, with
  uploads, wall time over the ideal (target <= 1.05, as ``slots``); then the same jobs through
  the Batch API: the two sessions' costs side by side (target: the batch costs half).
- ``batch``: 10,000 jobs over 36 combos of the same photos through the Batch API: bytes
  uploaded per job (references + input files) against what an online inline request sends
  (target <= 1/5), peak memory while the shards are built and uploaded (target < 200 MB),
  the time to fold the 10,000 results into the journal (target < 30 s), and the cost against
  the same session online (priced from each result's own usage).

Both run the real session shell (:func:`imagegen.session.run_jobs`) and the real SDK against
the emulator in its own process (batch turnaround 2 + 3 s on the real clock).
"""

from __future__ import annotations

import io
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx2
from rich.console import Console

from .. import providers
from ..executors.batch import BatchSettings
from ..executors.limiter import Limits
from ..journal import Journal
from ..model import Job
from ..providers.base import ImageRequest, Reference
from ..providers.batch import BatchService, BatchStatus, FileStore, RemoteFile, ResultLine
from ..providers.gemini import batch_lines
from ..providers.gemini.client import GeminiProvider
from ..retry import RetryPolicy
from ..session import Settings, run_jobs
from .harness import MB, QUICK, UNLIMITED_RPM, Row, Sizes, emulator_process, measure, new_session
from .harness import max_rss_mb as rss_mb
from .photos import make_photos, photo_jobs

MODEL = "gemini-3-pro-image"


@dataclass(frozen=True, slots=True)
class BatchSizes:
    photo_combos: int = 4
    inline_jobs: int = 12
    online_jobs: int = 300
    online_latency: float = 0.5
    batch_combos: int = 36
    batch_jobs: int = 10_000


FULL = BatchSizes()
SMALL = BatchSizes(
    inline_jobs=6, online_jobs=30, online_latency=0.1, batch_combos=6, batch_jobs=600
)


def _sizes(s: Sizes) -> BatchSizes:
    return SMALL if s == QUICK else FULL


@dataclass
class Traffic:
    """What one run sent: the bytes of each ``generateContent`` body, and (from the
    :class:`CountingProvider`) each upload's bytes, and the notify lines with their time and
    the process's peak memory so far."""

    request_bytes: list[int] = field(default_factory=list)
    upload_bytes: list[int] = field(default_factory=list)
    lines: list[tuple[float, float, str]] = field(default_factory=list)
    first_call: float | None = None  # perf_counter of the first upload or call
    last_answer: float = 0.0

    @property
    def calls_wall(self) -> float:
        """Seconds from the first upload or call to the last answer (what ``slots`` times:
        the pool's work, not the session's setup)."""
        return self.last_answer - (self.first_call or self.last_answer)

    def started(self) -> None:
        if self.first_call is None:
            self.first_call = time.perf_counter()

    def first(self, text: str) -> tuple[float, float] | None:
        return next(((t, rss) for t, rss, line in self.lines if text in line), None)


class CountingProvider:
    """The Gemini adapter, counting the bytes of every upload (references and input files);
    everything else is the adapter's own.

    Every method of :class:`FileStore` and :class:`BatchService` is written out, not left to
    ``__getattr__``: from Python 3.12 ``isinstance`` against a runtime Protocol looks methods
    up statically, so a forwarded-only method would make the session take the inline, online
    path and the scenarios measure the wrong thing (:func:`run_session` checks it)."""

    def __init__(self, inner: GeminiProvider, traffic: Traffic) -> None:
        self._inner = inner
        self._traffic = traffic

    async def generate(self, request: Any, checkpoint: Any = None) -> Any:
        self._traffic.started()
        try:
            return await self._inner.generate(request, checkpoint)
        finally:
            self._traffic.last_answer = time.perf_counter()

    # -- FileStore

    async def upload_file(
        self, path: Path, mime_type: str, display_name: str | None = None
    ) -> RemoteFile:
        self._traffic.started()
        self._traffic.upload_bytes.append((await anyio.Path(path).stat()).st_size)
        return await self._inner.upload_file(path, mime_type, display_name)

    async def file_status(self, name: str) -> RemoteFile | None:
        return await self._inner.file_status(name)

    def inline_is_smaller(self, size: int, uses: int = 1) -> bool:
        return self._inner.inline_is_smaller(size, uses)

    # -- BatchService

    def request_line(self, key: str, request: ImageRequest) -> bytes:
        return self._inner.request_line(key, request)

    async def create_batch(self, model: str, input_file: str, display_name: str) -> BatchStatus:
        return await self._inner.create_batch(model, input_file, display_name)

    async def batch_status(self, name: str) -> BatchStatus:
        return await self._inner.batch_status(name)

    async def find_batches(self, display_name: str) -> list[BatchStatus]:
        return await self._inner.find_batches(display_name)

    async def cancel_batch(self, name: str) -> None:
        await self._inner.cancel_batch(name)

    async def download_results(self, results_file: str, path: Path) -> None:
        await self._inner.download_results(results_file, path)

    def read_result(self, line: bytes, want: Callable[[str], tuple[int, int] | None]) -> ResultLine:
        return self._inner.read_result(line, want)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _settings(limits: Limits, *, upload: bool, batch: BatchSettings | None) -> Settings:
    return Settings(
        limits=limits,
        policy=RetryPolicy(),
        timeout=120.0,
        fsync=True,
        upload_references=upload,
        batch=batch,
    )


def run_session(
    journal: Journal, url: str, settings: Settings, traffic: Traffic
) -> tuple[float, Any]:
    """Run a session through the session shell; returns (wall seconds, RunResult)."""

    async def go() -> tuple[float, Any]:
        async with GeminiProvider("bench-key", base_url=url) as provider:

            async def count(request: httpx2.Request) -> None:
                if request.url.path.endswith(":generateContent"):
                    traffic.request_bytes.append(len(request.content))

            provider._http.event_hooks = {"request": [count], "response": []}
            console = Console(file=_Lines(traffic), width=200)
            counting = CountingProvider(provider, traffic)
            # Else the session would silently send references inline and skip the Batch API.
            assert isinstance(counting, FileStore), "CountingProvider is no FileStore"
            assert isinstance(counting, BatchService), "CountingProvider is no BatchService"
            started = time.perf_counter()
            result = await run_jobs(
                journal,
                settings,
                counting,
                providers.get("gemini"),
                console,
            )
            return time.perf_counter() - started, result

    with journal:
        return anyio.run(go)


class _Lines(io.StringIO):
    """The run's plain output, each line noted with its time and peak memory so far."""

    def __init__(self, traffic: Traffic) -> None:
        super().__init__()
        self._traffic = traffic

    def write(self, text: str) -> int:
        for line in text.splitlines():
            if line.strip():
                self._traffic.lines.append((time.perf_counter(), rss_mb(), line))
        return len(text)


def _photos(folder: Path, combos: int) -> list[tuple[str, ...]]:
    """The photo workspace, made in a child process so this one's peak memory stays its own."""
    code = (
        "import sys; from pathlib import Path; from imagegen.bench.photos import make_photos; "
        "make_photos(Path(sys.argv[1]), int(sys.argv[2]))"
    )
    subprocess.run([sys.executable, "-c", code, str(folder), str(combos)], check=True)
    return make_photos(folder, combos)  # present now: only the paths


def _inline_bytes(job: Job) -> int:
    """Bytes of the JSON body an online request with inline references sends for ``job``:
    the request with empty data, plus each photo's standard base64 (computed, not built: a
    16 MB body per combo would be this process's peak memory)."""
    refs = tuple(Reference(Path(p).stem, "image/jpeg", b"") for p in job.references)
    request = ImageRequest(job.model, job.prompt, refs, job.quality, job.aspect, 90.0)
    empty = len(batch_lines.request_line(job.id, request))
    return empty + sum(4 * ((Path(p).stat().st_size + 2) // 3) for p in job.references)


def _costs(journal: Journal) -> tuple[float, float]:
    """(what the session cost, what the same results would have cost online), USD."""
    info = providers.get("gemini")
    spent = online = 0.0
    for state in journal.state.jobs.values():
        job = state.job
        spent += state.cost_usd or 0.0
        if state.usage is not None:
            online += info.cost(
                job.model, job.quality, job.aspect, len(job.references), state.usage
            )
    return spent, online


# -- scenarios ------------------------------------------------------------------------------


def scenario_photos(work: Path, s: Sizes) -> list[Row]:
    z = _sizes(s)
    combos = _photos(work / "photos", z.photo_combos)
    photo_mb = statistics.fmean(Path(p).stat().st_size for c in combos for p in c) / MB
    free = Limits(3, 0.0, UNLIMITED_RPM)
    rows = [
        measure(
            "photos",
            f"reference photos: {len(combos)} combos x {len(combos[0])}, mean size",
            photo_mb,
            "MB",
        ),
    ]
    with emulator_process(0.0) as url:
        root = work / "inline"
        inline = Traffic()
        jobs = photo_jobs(root, combos, z.inline_jobs, MODEL)
        run_session(new_session(root, jobs), url, _settings(free, upload=False, batch=None), inline)
    with emulator_process(z.online_latency) as url:
        root = work / "uploaded"
        uploaded = Traffic()
        jobs = photo_jobs(root, combos, z.online_jobs, MODEL)
        online_journal = new_session(root, jobs)
        _, result = run_session(
            online_journal, url, _settings(free, upload=True, batch=None), uploaded
        )
        wall = uploaded.calls_wall
    with emulator_process(0.0) as url:
        root = work / "batched"
        batched = Traffic()
        batch_journal = new_session(root, photo_jobs(root, combos, z.online_jobs, MODEL))
        run_session(
            batch_journal,
            url,
            _settings(free, upload=True, batch=BatchSettings(poll=0.5)),
            batched,
        )
    per_inline = statistics.fmean(inline.request_bytes)
    per_uploaded = statistics.fmean(uploaded.request_bytes)
    ideal = z.online_jobs * z.online_latency / 3
    # Timed from the first upload to the last answer, as ``slots`` times the pool's work.
    label = f"{z.online_jobs} jobs, {z.online_latency:g} s, 3 in flight, no spacing, uploaded"
    online_cost = online_journal.state.summary().cost_usd
    batch_cost = batch_journal.state.summary().cost_usd
    return [
        *rows,
        measure(
            "photos",
            "bytes per generateContent request, references inline (mean)",
            per_inline / MB,
            "MB",
        ),
        measure(
            "photos",
            "bytes per request, references uploaded once (mean)",
            per_uploaded / 1000,
            "kB",
        ),
        measure(
            "photos",
            "bytes per request: uploaded / inline",
            per_uploaded / per_inline,
            "x",
            at_most=1 / 20,
        ),
        measure(
            "photos",
            "reference bytes uploaded (once per distinct photo)",
            sum(uploaded.upload_bytes) / MB,
            "MB",
        ),
        measure(
            "photos",
            f"{label}: wall / ideal ({wall:.1f} / {ideal:.1f} s)",
            wall / ideal,
            "x",
            at_most=1.05,
        ),
        measure("photos", f"{label}: jobs completed", result.completed, equals=z.online_jobs),
        measure("photos", f"the same {z.online_jobs} jobs online: cost", online_cost, "USD"),
        measure(
            "photos",
            f"the same {z.online_jobs} jobs through the Batch API: cost",
            batch_cost,
            "USD",
        ),
        measure("photos", "cost: batch / online", batch_cost / online_cost, "x", at_most=0.51),
        measure(
            "photos",
            "batch: jobs completed",
            batch_journal.state.counts.get("completed", 0),
            equals=z.online_jobs,
        ),
    ]


def scenario_batch(work: Path, s: Sizes) -> list[Row]:
    z = _sizes(s)
    combos = _photos(work / "photos", z.batch_combos)
    root = work / "batch"
    jobs = photo_jobs(root, combos, z.batch_jobs, MODEL)
    inline = statistics.fmean(_inline_bytes(jobs[n]) for n in range(len(combos)))
    journal = new_session(root, jobs)
    del jobs
    traffic = Traffic()
    baseline = rss_mb()
    with emulator_process(0.0) as url:
        wall, result = run_session(
            journal,
            url,
            _settings(Limits(3, 0.0, UNLIMITED_RPM), upload=True, batch=BatchSettings(poll=1.0)),
            traffic,
        )
    n = z.batch_jobs
    shards = len(journal.state.batches)
    downloads = [t for t, _, line in traffic.lines if "downloading results" in line]
    collected = [t for t, _, line in traffic.lines if ": collected" in line]
    fold = sum(b - a for a, b in zip(downloads, collected, strict=False))
    built = traffic.first("downloading results")
    uploaded_per_job = sum(traffic.upload_bytes) / n
    spent, online = _costs(journal)
    label = f"{n:,} jobs over {len(combos)} combos"
    return [
        measure("batch", f"{label}: jobs completed", result.completed, equals=n),
        measure("batch", f"{label}: shards (batches)", shards),
        measure(
            "batch", "online request with inline references, per job (mean)", inline / MB, "MB"
        ),
        measure(
            "batch",
            "bytes uploaded per job (references once + input lines)",
            uploaded_per_job / 1000,
            "kB",
        ),
        measure(
            "batch",
            "uploaded per job / online inline per job",
            uploaded_per_job / inline,
            "x",
            at_most=1 / 5,
        ),
        measure("batch", "process baseline before the run", baseline, "MB"),
        measure(
            "batch",
            "peak memory while building and uploading the shards",
            built[1] if built else float("nan"),
            "MB",
            below=200,
        ),
        measure(
            "batch",
            f"folding {n:,} results into the journal (download, check, save, journal)",
            fold,
            "s",
            below=30,
        ),
        measure("batch", f"{label}: wall time (turnaround 5 s per batch)", wall, "s"),
        measure("batch", f"{label}: peak memory in all", rss_mb(), "MB"),
        measure("batch", f"{label}: cost through the Batch API", spent, "USD"),
        measure("batch", f"{label}: the same results online", online, "USD"),
        measure(
            "batch",
            "cost: batch / online",
            spent / online if online else float("nan"),
            "x",
            at_most=0.51,
        ),
    ]

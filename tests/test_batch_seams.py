"""Where the Batch API executor meets the other seams: a batch result is recorded exactly as an
online one (the source's after-save step, one at a time; the contact sheet's thumbnails; the
request id and model version), local jobs are drawn online and never sent, cost groups' caps
hold for shards, a job of several variants goes online, Vertex uploads nothing, and the views
show submitted jobs beside the pace line and the batches on the contact sheet."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

import imagegen.session as session_mod
from imagegen import providers, sources
from imagegen.emulator import Emulator
from imagegen.emulator.batches import BatchOutcome
from imagegen.emulator.clock import ManualClock
from imagegen.errors import EXIT_OK, EXIT_STOPPED
from imagegen.executors.budget import THINKING_ALLOWANCE_USD
from imagegen.model import BatchChange, Job, JobState, JobUpdate, SessionUpdate
from imagegen.progress import render, view_of
from imagegen.providers.base import Checkpoint, Generation, ImageRequest
from imagegen.providers.gemini.client import GeminiProvider
from imagegen.providers.placeholder import INFO as PLACEHOLDER
from imagegen.providers.placeholder import PlaceholderProvider
from imagegen.report import prepare_thumbnails, report_dir, write_report
from imagegen.session import _uploads, closing_line
from imagegen.sources import SessionView

from .batch_helpers import (
    KEY,
    Combos,
    Sleeper,
    batch_settings,
    make_jobs,
    new_session,
    run,
    settings,
)

INFO = providers.get("gemini")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def emu(clock: ManualClock) -> Iterator[Emulator]:
    with Emulator(render="plain", clock=clock) as emulator:
        emulator.batches.pending_seconds = 60.0
        emulator.batches.running_seconds = 60.0
        yield emulator


@pytest.fixture
def sleep(clock: ManualClock) -> Sleeper:
    return Sleeper(clock)


@pytest.fixture
def combos(tmp_path: Path) -> Combos:
    return Combos.make(tmp_path / "combos")


@dataclass
class Steps:
    """A source whose after-save step records what it saw, and notices overlapping calls."""

    name: str = "combos"
    help: str = ""
    saved: list[str] = field(default_factory=list)
    overlap: int = 0
    _busy: threading.Lock = field(default_factory=threading.Lock)

    def after_save(self, state: JobState, view: SessionView) -> str | None:
        if not self._busy.acquire(blocking=False):
            self.overlap += 1
            self._busy.acquire()
        try:
            time.sleep(0.002)
            assert view.jobs[state.id].status == "completed"
            self.saved.append(state.id)
            return None
        finally:
            self._busy.release()

    after_run = None

    def add_arguments(self, parser: Any) -> None:
        raise NotImplementedError

    def plan(self, args: Any, defaults: Any) -> Any:
        raise NotImplementedError


@pytest.fixture
def steps(monkeypatch: pytest.MonkeyPatch) -> Steps:
    source = Steps()
    monkeypatch.setattr(sources, "get", lambda name: source)
    return source


def test_batch_results_are_recorded_as_online_ones(
    tmp_path: Path,
    emu: Emulator,
    clock: ManualClock,
    sleep: Sleeper,
    combos: Combos,
    steps: Steps,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every image a batch returned gets the source's after-save step (once, never two at a
    time although the fold saves several at once), its thumbnails once the shard is folded,
    and the answer's request id and model version in the journal."""
    emu.batches.enqueue(BatchOutcome.succeed(shuffle=True))
    jobs = make_jobs(tmp_path, combos, prompts=3)
    journal = new_session(tmp_path, jobs, batch=True)
    thumbed: list[str] = []

    def thumbnails(sessions_dir: Path, session_id: str, image: Path, refs: Any = ()) -> None:
        thumbed.append(str(image))
        prepare_thumbnails(sessions_dir, session_id, image, refs)

    monkeypatch.setattr(session_mod, "prepare_thumbnails", thumbnails)
    with journal:
        result = run(journal, emu, settings(clock, sleep, batch=batch_settings()))
    assert result.exit_code == EXIT_OK and result.completed == 9 and result.unrecorded == 0
    assert emu.last_request_json is None  # all through the batch
    assert sorted(steps.saved) == [j.id for j in jobs] and steps.overlap == 0
    assert sorted(thumbed) == sorted(str(journal.job(j.id).output) for j in jobs)
    thumbs = report_dir(journal.sessions_dir, journal.session_id) / "thumbs"
    assert len(list(thumbs.iterdir())) >= len(jobs)  # made by the run, not left for the report
    for job in jobs:
        state = journal.job(job.id)
        assert state.delivery == "done"
        assert state.request_id and state.model_version == job.model


def test_local_jobs_are_drawn_online_and_never_sent_in_a_batch(
    tmp_path: Path, emu: Emulator, clock: ManualClock, sleep: Sleeper, combos: Combos
) -> None:
    """A placeholder job is drawn at once (before the batch is even sent), the others go in
    the batch: its request lines name only them."""
    jobs = make_jobs(tmp_path, combos, prompts=1)
    drawn = [
        Job(
            id=f"10{n}",
            source="combos",
            title=f"card {n}",
            group=("test", "cards", str(n)),
            prompt_file="cards.md",
            prompt_parts=(f"Card {n}",),
            references=(),
            target=str(tmp_path / "out" / f"card-{n}.png"),
            quality="64x64",
            aspect="16:9",
            model="title_card",
            provider="placeholder",
        )
        for n in (1, 2)
    ]
    journal = new_session(tmp_path, [*jobs, *drawn], batch=True)
    uploads_when_drawn: list[int] = []

    class Drawing(PlaceholderProvider):
        async def generate(
            self, request: ImageRequest, checkpoint: Checkpoint | None = None
        ) -> Generation:
            uploads_when_drawn.append(emu.files.uploads)
            return await super().generate(request, checkpoint)

    with journal:
        result = run(
            journal,
            emu,
            settings(clock, sleep, batch=batch_settings()),
            others={"placeholder": (Drawing(), PLACEHOLDER)},
        )
    assert result.exit_code == EXIT_OK and result.completed == len(jobs) + 2
    (batch,) = emu.batches.listing()
    assert [r.key for r in batch.requests] == [j.id for j in jobs]
    assert uploads_when_drawn == [0, 0]  # both drawn before anything was sent to the service
    for job in drawn:
        assert journal.job(job.id).cost_usd == 0.0


def test_a_cost_group_at_its_cap_is_not_sent_and_the_other_groups_are(
    tmp_path: Path, emu: Emulator, clock: ManualClock, sleep: Sleeper, combos: Combos
) -> None:
    """Group "a" has room for two jobs at batch prices: those two go in the batch with all of
    group "b"; a's third stays pending with cost_cap, and nothing of it goes online."""
    jobs = make_jobs(tmp_path, combos, prompts=2)  # 6 jobs
    grouped = [replace(j, cost_group="a" if n < 3 else "b") for n, j in enumerate(jobs)]
    assert INFO.batch_estimate is not None
    held = [
        INFO.batch_estimate(j.model, j.quality, j.aspect, len(j.references))
        + THINKING_ALLOWANCE_USD
        for j in grouped
    ]
    journal = new_session(
        tmp_path, grouped, batch=True, cost_caps={"a": held[0] + held[1] + 0.001, "b": 10.0}
    )
    with journal:
        result = run(journal, emu, settings(clock, sleep, batch=batch_settings()))
    statuses = [journal.job(j.id).status for j in grouped]
    assert statuses == ["completed", "completed", "pending", "completed", "completed", "completed"]
    capped = journal.job(grouped[2].id)
    assert capped.error_kind == "cost_cap" and capped.attempts == 0
    (batch,) = emu.batches.listing()
    assert [r.key for r in batch.requests] == [j.id for j in grouped if j.id != grouped[2].id]
    assert emu.last_request_json is None  # the capped job did not go online instead
    spent_a = sum(journal.job(j.id).cost_usd or 0.0 for j in grouped[:3])
    assert spent_a <= held[0] + held[1] + 0.001
    assert result.stop_reason is None
    assert "1 job(s) not started: their cost group reached its cap" in closing_line(journal, result)


def test_a_job_of_several_variants_goes_online_not_in_a_batch(
    tmp_path: Path, emu: Emulator, clock: ManualClock, sleep: Sleeper, combos: Combos
) -> None:
    """The command line refuses --batch with --variants; a journal that has such a job anyway
    (an older session) runs it online, each variant its own call, the rest in the batch."""
    jobs = make_jobs(tmp_path, combos, prompts=1)
    varied = [replace(jobs[0], variants=2), *jobs[1:]]
    journal = new_session(tmp_path, varied, batch=True)
    with journal:
        result = run(journal, emu, settings(clock, sleep, batch=batch_settings()))
    assert result.exit_code == EXIT_OK
    (batch,) = emu.batches.listing()
    assert [r.key for r in batch.requests] == [j.id for j in jobs[1:]]
    assert len(journal.job(jobs[0].id).variant_outputs) == 2


@pytest.mark.asyncio
async def test_vertex_sessions_upload_no_reference(tmp_path: Path, combos: Combos) -> None:
    """The Gemini adapter in Vertex mode has the Files API's methods, but Vertex has no Files
    API: a Vertex session sends its references inline (no uploads)."""
    journal = new_session(tmp_path, make_jobs(tmp_path, combos, prompts=1))
    vertex = providers.get("vertex")
    s = settings(ManualClock(), Sleeper(ManualClock()))
    with journal:
        async with GeminiProvider(KEY, vertexai=True, base_url="http://127.0.0.1:9") as adapter:
            assert _uploads(journal, adapter, vertex, s) is None
        async with GeminiProvider(KEY, base_url="http://127.0.0.1:9") as adapter:
            assert _uploads(journal, adapter, INFO, s) is not None
    assert not vertex.file_store and not vertex.has_batch and INFO.file_store


@pytest.mark.asyncio
async def test_views_show_submitted_jobs_beside_the_pace_and_the_batches_on_the_sheet(
    tmp_path: Path, combos: Combos
) -> None:
    """A batch session half collected: the time to finish counts only what the pool has to
    run, the pace line says how many wait in batches; the contact sheet shows the submitted
    cells and a line per batch."""
    jobs = make_jobs(tmp_path, combos, prompts=2)
    journal = new_session(tmp_path, jobs, batch=True)
    with journal:
        async with journal.writing():
            await journal.update_many(
                (
                    j.id,
                    JobUpdate(status="submitted", attempts=1, started="2026-07-01T10:00:00"),
                    None,
                )
                for j in jobs[:4]
            )
            await journal.update_session(
                SessionUpdate(
                    batch=BatchChange(
                        shard=0,
                        display_name=f"imagegen-{journal.session_id}-shard-000",
                        job_ids=tuple(j.id for j in jobs[:4]),
                        state="running",
                        model=jobs[0].model,
                        name="batches/abc123",
                        created="2026-07-01T10:00:05",
                    )
                )
            )
        state = journal.state
        text = render(view_of(state))
        assert "Submitted: 4" in text and "Pending: 2" in text
        assert "4 in batches, at the service's pace" in text
        assert "shard 000 batches/abc123 running: 4 jobs, 4 submitted" in text
        page = write_report(journal.sessions_dir, journal.session_id).read_text(encoding="utf-8")
    assert page.count('class="ph submitted"') == 4
    assert "in a batch the service is running" in page
    assert '<details class="batches">' in page and "shard 000 batches/abc123 running" in page


def test_a_resumed_run_counts_the_jobs_still_in_batches_against_their_group_cap(
    tmp_path: Path,
    emu: Emulator,
    clock: ManualClock,
    sleep: Sleeper,
    combos: Combos,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Group "a" has room for two jobs: they are sent, the rest capped, and the run is
    interrupted while the batch runs. The resumed run holds the two still in the batch
    against the cap before it sends anything: the others stay capped, not sent past it."""
    jobs = [replace(j, cost_group="a") for j in make_jobs(tmp_path, combos, prompts=2)]
    assert INFO.batch_estimate is not None
    held = [
        INFO.batch_estimate(j.model, j.quality, j.aspect, len(j.references))
        + THINKING_ALLOWANCE_USD
        for j in jobs
    ]
    journal = new_session(tmp_path, jobs, batch=True, cost_caps={"a": held[0] + held[1] + 1e-4})
    runners: list[Any] = []
    real = session_mod._batch_runner

    def capture(*args: Any, **kw: Any) -> Any:
        runners.append(real(*args, **kw))
        return runners[-1]

    async def stop_at_the_first_wait(seconds: float) -> None:
        runners[-1].stop("interrupted (Ctrl-C)")
        await sleep(seconds)

    monkeypatch.setattr(session_mod, "_batch_runner", capture)
    with journal:
        first = run(
            journal,
            emu,
            settings(clock, stop_at_the_first_wait, batch=batch_settings()),  # type: ignore[arg-type]
        )
        assert first.stop_reason == "interrupted (Ctrl-C)"
        statuses = [journal.job(j.id).status for j in jobs]
        assert statuses == ["submitted"] * 2 + ["pending"] * 4
        result = run(journal, emu, settings(clock, sleep, batch=batch_settings()), mode="resume")
    statuses = [journal.job(j.id).status for j in jobs]
    assert statuses == ["completed"] * 2 + ["pending"] * 4
    assert {journal.job(j.id).error_kind for j in jobs[2:]} == {"cost_cap"}
    assert len(emu.batches.listing()) == 1  # nothing more was sent
    assert emu.last_request_json is None  # nor online
    assert result.pending == 4 and result.stop_reason is None


def test_a_broken_destination_stops_a_batch_run_before_anything_is_sent(
    tmp_path: Path, emu: Emulator, clock: ManualClock, sleep: Sleeper, combos: Combos
) -> None:
    """The output folder is a file: the run stops at once, no reference uploaded, no batch
    created, nothing paid; the jobs wait for --resume."""
    jobs = make_jobs(tmp_path, combos, prompts=1)
    (tmp_path / "out").write_text("not a folder", encoding="utf-8")
    journal = new_session(tmp_path, jobs, batch=True)
    with journal:
        result = run(journal, emu, settings(clock, sleep, batch=batch_settings()))
    assert result.exit_code == EXIT_STOPPED
    assert result.stop_reason is not None and "nothing was sent or paid" in result.stop_reason
    assert emu.files.uploads == 0 and not emu.batches.listing()
    assert {journal.job(j.id).status for j in jobs} == {"pending"}
    assert journal.state.summary().cost_usd == 0.0


def test_the_pace_line_is_the_pools_and_batch_results_stay_out_of_it(
    tmp_path: Path, emu: Emulator, clock: ManualClock, sleep: Sleeper, combos: Combos
) -> None:
    """A batch folds its images in a second, hours after it was sent: neither its results'
    rate nor their turnaround is the pool's pace. After a run whose images all came from a
    batch, the summary shows the time elapsed and no images per minute."""
    emu.batches.enqueue(BatchOutcome.succeed())
    jobs = make_jobs(tmp_path, combos, prompts=2)
    journal = new_session(tmp_path, jobs, batch=True)
    with journal:
        result = run(journal, emu, settings(clock, sleep, batch=batch_settings()))
    assert result.completed == len(jobs)
    view = view_of(journal.state)
    assert view.pace.per_minute is None and view.pace.elapsed is not None
    assert "images/min" not in render(view) and "Time:" in render(view)

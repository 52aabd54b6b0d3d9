"""The runner against a scripted fake provider, on virtual time: files, statuses, limits, policy."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest
from PIL import Image

from imagegen import journal as journal_mod
from imagegen import providers
from imagegen.errors import (
    AttemptTimeout,
    BadRequest,
    BatchStop,
    NoImage,
    RateLimited,
    ServerError,
)
from imagegen.executors.limiter import Limits, StartGate
from imagegen.executors.pool import Runner, RunResult
from imagegen.journal import Journal
from imagegen.model import Job, JobState
from imagegen.retry import RetryPolicy

from .conftest import FakeProvider, VirtualClock, Workspace, plan_combos

NO_JITTER = RetryPolicy(jitter=0.0)
FAST_LIMITS = Limits(3, 0.0, 1000)


@dataclass
class Run:
    result: RunResult
    doc: dict[str, Any]
    clock: VirtualClock
    starts: list[tuple[float, str]]
    grants: list[float]
    sessions: Path

    def job(self, job_id: str) -> dict[str, Any]:
        return next(j for j in self.doc["jobs"] if j["id"] == job_id)


def jobs_of(ws: Workspace, **kw: Any) -> list[Job]:
    args: dict[str, Any] = {"wardrobes": ("zip-hoodie",), "catalogs": ("v1.0",)} | kw
    return plan_combos(ws, **args)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> VirtualClock:
    clock = VirtualClock()
    clock.track_threads(monkeypatch)
    return clock


async def run_jobs(
    ws: Workspace,
    jobs: list[Job],
    provider: FakeProvider,
    clock: VirtualClock,
    *,
    limits: Limits = FAST_LIMITS,
    policy: RetryPolicy = NO_JITTER,
    saved: Callable[[Path, Sequence[str]], None] | None = None,
) -> Run:
    starts: list[tuple[float, str]] = []
    provider.on_call = lambda req: starts.append((clock.now, req.prompt))
    provider.sleep = clock.sleep
    sessions = ws.root / "sessions"
    config = {"quality": "1K", "provider": "gemini", "source": "combos"}
    journal = Journal.create(sessions, config, [JobState(j) for j in jobs], fsync=False)
    gate = StartGate(limits, clock=clock, sleep=clock.sleep)
    grant = gate.wait_turn

    async def recorded_turn() -> float:
        # The gate's grants are the request starts the limits govern (the journal write between
        # a grant and the call takes real, not virtual, time).
        started = await grant()
        grants.append(started)
        return started

    gate.wait_turn = recorded_turn  # type: ignore[method-assign]
    grants: list[float] = []
    runner = Runner(
        journal,
        provider,
        providers.get("gemini"),
        gate,
        policy=policy,
        clock=clock,
        sleep=clock.sleep,
        saved=saved,
    )
    with journal:
        async with anyio.create_task_group() as tg:
            tg.start_soon(clock.drive)
            async with journal.writing():
                result = await runner.run([j.id for j in jobs])
            tg.cancel_scope.cancel()
    doc = orjson.loads(journal.snapshot_path.read_bytes())
    return Run(result, doc, clock, starts, grants, sessions)


@pytest.mark.asyncio
async def test_every_job_completes_with_an_image_of_the_tier_size(
    workspace: Workspace, clock: VirtualClock
) -> None:
    jobs = jobs_of(workspace)
    run = await run_jobs(workspace, jobs, FakeProvider(), clock)
    assert run.result.exit_code == 0
    assert run.doc["summary"]["completed"] == len(jobs) == 6
    for entry in run.doc["jobs"]:
        path = Path(entry["output"])
        assert path.parent == Path(entry["target"]).parent and path.name.endswith(
            f"-{entry['short_id']}-1K.png"
        )
        with Image.open(path) as img:
            assert img.size == (1024, 1024)
        assert entry["status"] == "completed" and entry["attempts"] == 1
        assert entry["image"] == {"format": "PNG", "width": 1024, "height": 1024, "size_ok": True}
        assert entry["cost_usd"] == pytest.approx(
            0.134 + 0.0011 * len(entry["references"]) + 100 * 12e-6
        )
        assert entry["history"][-1]["outcome"] == "completed"


@pytest.mark.asyncio
async def test_the_saved_hook_hears_of_each_image_once_it_is_saved(
    workspace: Workspace, clock: VirtualClock
) -> None:
    """The contact sheet's thumbnails are made from this hook, in a worker thread."""
    heard: list[tuple[Path, tuple[str, ...], bool]] = []
    jobs = jobs_of(workspace)
    run = await run_jobs(
        workspace,
        jobs,
        FakeProvider(),
        clock,
        saved=lambda image, refs: heard.append((image, tuple(refs), image.is_file())),
    )
    outputs = {Path(e["output"]): tuple(e["references"]) for e in run.doc["jobs"]}
    assert sorted(heard) == sorted((path, refs, True) for path, refs in outputs.items())


@pytest.mark.asyncio
async def test_one_call_at_a_time_starts_the_calls_in_plan_order(
    workspace: Workspace, clock: VirtualClock
) -> None:
    jobs = jobs_of(workspace, catalogs=("v1.0", "v2.0"))
    provider = FakeProvider()
    run = await run_jobs(workspace, jobs, provider, clock, limits=Limits(1, 0.0, 1000))
    assert [prompt for _, prompt in run.starts] == [j.prompt for j in jobs]


@pytest.mark.asyncio
async def test_pool_respects_concurrency_spacing_and_per_minute_cap(
    workspace: Workspace, clock: VirtualClock
) -> None:
    jobs = jobs_of(workspace, catalogs=("v1.0", "v2.0"))
    provider = FakeProvider(call_duration=5.0)
    run = await run_jobs(workspace, jobs, provider, clock, limits=Limits(2, 1.0, 3, window=60.0))
    times = run.grants
    assert len(times) == len(jobs) == 9
    assert provider.max_in_flight == 2
    assert all(b - a >= 1.0 for a, b in itertools.pairwise(times)), times
    assert all(sum(1 for t in times if s <= t < s + 60.0) <= 3 for s in times)
    assert times[3] >= times[0] + 60.0  # the 4th start waits for the window


@pytest.mark.asyncio
async def test_429_waits_retry_delay_and_pauses_the_whole_pool(
    workspace: Workspace, clock: VirtualClock
) -> None:
    provider = FakeProvider()
    provider.enqueue(RateLimited("HTTP 429", retry_after=7.0))
    run = await run_jobs(
        workspace, jobs_of(workspace), provider, clock, limits=Limits(3, 1.0, 1000)
    )
    assert run.result.exit_code == 0
    # Nothing starts during the pause: the next start is 7 s after the 429.
    assert run.grants[1] >= run.grants[0] + 7.0
    retried = [j for j in run.doc["jobs"] if j["attempts"] == 2]
    assert len(retried) == 1
    assert retried[0]["history"][0]["outcome"] == "rate_limited"
    assert retried[0]["history"][0]["wait"] == 7.0


@pytest.mark.asyncio
async def test_429_without_retry_delay_waits_30s(workspace: Workspace, clock: VirtualClock) -> None:
    provider = FakeProvider()
    provider.enqueue(RateLimited("HTTP 429"))
    run = await run_jobs(workspace, jobs_of(workspace, prompts=("ZH01",)), provider, clock)
    assert 30.0 in run.clock.slept
    assert {j["status"] for j in run.doc["jobs"]} == {"completed"}


@pytest.mark.asyncio
async def test_server_errors_wait_15s_and_give_up_after_3_attempts(
    workspace: Workspace, clock: VirtualClock
) -> None:
    jobs = jobs_of(workspace, combos=("C-U-000",), prompts=("ZH01",))
    provider = FakeProvider()
    provider.enqueue(*(ServerError("HTTP 503 UNAVAILABLE") for _ in range(3)))
    run = await run_jobs(workspace, jobs, provider, clock)
    entry = run.job("001")
    assert (entry["status"], entry["attempts"]) == ("failed", 3)
    assert [h["wait"] for h in entry["history"]] == [15.0, 15.0, None]
    assert entry["error_kind"] == "server_error" and entry["error"].startswith("HTTP 503")
    assert run.result.exit_code == 1


@pytest.mark.asyncio
async def test_timeouts_back_off_5_15_30_then_succeed(
    workspace: Workspace, clock: VirtualClock
) -> None:
    jobs = jobs_of(workspace, combos=("C-U-000",), prompts=("ZH01",))
    provider = FakeProvider()
    provider.enqueue(*(AttemptTimeout("no answer in 90 s") for _ in range(3)))
    run = await run_jobs(workspace, jobs, provider, clock)
    entry = run.job("001")
    assert (entry["status"], entry["attempts"]) == ("completed", 4)
    assert [h["wait"] for h in entry["history"][:3]] == [5.0, 15.0, 30.0]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("error", "finish_reason"),
    [
        (BadRequest("HTTP 400 INVALID_ARGUMENT: bad"), None),
        (NoImage("finish reason IMAGE_SAFETY", reason="IMAGE_SAFETY"), "IMAGE_SAFETY"),
        (NoImage("prompt blocked", reason="PROMPT_BLOCKED:SAFETY"), "PROMPT_BLOCKED:SAFETY"),
    ],
)
async def test_terminal_outcomes_fail_at_once(
    workspace: Workspace, clock: VirtualClock, error: Exception, finish_reason: str | None
) -> None:
    jobs = jobs_of(workspace, combos=("C-U-000",), prompts=("ZH01", "GN01"))
    provider = FakeProvider()
    provider.enqueue(error, match="Unboxing")
    run = await run_jobs(workspace, jobs, provider, clock)
    failed = [j for j in run.doc["jobs"] if j["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["attempts"] == 1
    assert failed[0]["finish_reason"] == finish_reason and failed[0]["output"] is None
    assert not list(Path(failed[0]["target"]).parent.glob("*.png"))
    assert run.result.exit_code == 1 and run.clock.slept == []


@pytest.mark.asyncio
async def test_403_stops_the_batch_leaving_the_rest_pending(
    workspace: Workspace, clock: VirtualClock
) -> None:
    jobs = jobs_of(workspace, catalogs=("v1.0", "v2.0"))
    provider = FakeProvider(call_duration=2.0)
    provider.enqueue(
        "image", "image", BatchStop("HTTP 403 PERMISSION_DENIED", reason="permission_denied")
    )
    run = await run_jobs(workspace, jobs, provider, clock, limits=Limits(3, 0.0, 1000))
    assert run.result.exit_code == 3 and "403" in (run.result.stop_reason or "")
    statuses = [j["status"] for j in run.doc["jobs"]]
    assert statuses.count("completed") == 2  # the calls in flight finished and were saved
    assert statuses.count("pending") == len(jobs) - 2
    assert len(run.starts) == 3


@pytest.mark.asyncio
async def test_wrong_pixel_size_is_recorded_on_the_job(
    workspace: Workspace, clock: VirtualClock
) -> None:
    jobs = jobs_of(workspace, combos=("C-U-000",), prompts=("ZH01",))
    run = await run_jobs(workspace, jobs, FakeProvider(size_override=(512, 512)), clock)
    entry = run.job("001")
    assert entry["status"] == "completed"
    assert entry["image"]["size_ok"] is False
    assert entry["error"] == "wrong size: got 512x512, 1K 1:1 is 1024x1024"


@pytest.mark.asyncio
async def test_journal_is_in_the_seed_schema_and_replays_from_the_log(
    workspace: Workspace, clock: VirtualClock
) -> None:
    jobs = jobs_of(workspace)
    provider = FakeProvider()
    provider.enqueue(NoImage("finish reason NO_IMAGE", reason="NO_IMAGE"), match="Morning")
    run = await run_jobs(workspace, jobs, provider, clock)
    doc = run.doc
    assert {"session_id", "started", "config", "jobs", "summary"} <= doc.keys()
    for key in (
        "id",
        "prompt_file",
        "combo",
        "status",
        "attempts",
        "output",
        "error",
        "started",
        "completed",
        "error_kind",
        "catalog",
        "prompt_id",
        "ui_style",
        "wardrobe",
        "prompt_file",
        "combo",
        "quality",
        "model",
        "references",
        "finish_reason",
        "usage",
        "cost_usd",
    ):
        assert key in doc["jobs"][0]
    assert doc["summary"]["total"] == 6 and doc["summary"]["failed"] == 1
    # The event log alone rebuilds the same session.
    (run.sessions / f"{doc['session_id']}-session.json").unlink()
    rebuilt = journal_mod.load(run.sessions, doc["session_id"])
    assert [j.status for j in rebuilt.jobs.values()] == [j["status"] for j in doc["jobs"]]


@pytest.mark.asyncio
async def test_a_full_disk_keeps_the_paid_image_stops_the_batch_and_resume_places_it(
    workspace: Workspace,
    clock: VirtualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Nowhere to save: the bytes go to the spool, nothing new starts, no second call."""
    import errno
    import os

    from imagegen.outputs import Outputs
    from imagegen.recovery import recover_interrupted

    real_link = os.link

    def full_disk(src: object, dst: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(dst))

    monkeypatch.setattr("imagegen.outputs.os.link", full_disk)
    jobs = jobs_of(workspace, combos=("C-U-000",), catalogs=("v1.0", "v2.0"))  # 3 jobs
    provider = FakeProvider()
    run = await run_jobs(workspace, jobs, provider, clock, limits=Limits(1, 0.0, 1000))
    assert run.result.exit_code == 3 and "no space left on device" in (run.result.stop_reason or "")
    entry = run.job("001")
    assert entry["status"] == "pending" and entry["error_kind"] == "write_failed"
    assert entry["cost_usd"] == pytest.approx(0.1385)  # paid for, and kept
    kept = Path(entry["kept"])
    assert kept.parent == run.sessions / f"{run.doc['session_id']}-kept"
    with Image.open(kept) as img:
        assert img.size == (1024, 1024)
    # The second call started while the first image was being saved; it is kept too. The
    # third never starts: the broken destination stopped the batch.
    assert run.job("002")["kept"] and run.job("003")["kept"] is None
    assert sum(provider.calls.values()) == 2
    assert not list(Path(entry["target"]).parent.glob("*.png"))
    # Room again: resume places the kept images without a call, then runs the last job.
    monkeypatch.setattr("imagegen.outputs.os.link", real_link)
    again = FakeProvider()
    with Journal.open(run.sessions, run.doc["session_id"], fsync=False) as journal:
        outputs = Outputs(journal.session_id, kept.parent, fsync=False)
        runner = Runner(
            journal,
            again,
            providers.get("gemini"),
            StartGate(Limits(1, 0.0, 60)),
            policy=NO_JITTER,
            outputs=outputs,
        )
        async with journal.writing():
            todo = await recover_interrupted(journal, outputs, providers.get, lambda _n: None)
            result = await runner.run(todo)
    assert result.exit_code == 0
    state = journal_mod.load(run.sessions, journal.session_id)
    placed = state.jobs["001"]
    assert placed.status == "completed" and placed.kept is None
    assert placed.history[-1].outcome == "placed from the spool"
    assert Path(placed.output or "").is_file() and not kept.exists()
    assert placed.cost_usd == pytest.approx(0.1385)  # the one payment, not two
    assert state.jobs["002"].status == "completed"
    assert sum(again.calls.values()) == 1  # only job 003 was called


@pytest.mark.asyncio
async def test_resume_removes_only_the_temporary_files_a_kill_left_beside_completed_images(
    workspace: Workspace, clock: VirtualClock
) -> None:
    """A kill between a "completed" entry and the removal of the attempt's temporary file
    leaves a second name of the saved image: resume removes it, and no other file."""
    from imagegen.outputs import Outputs
    from imagegen.recovery import recover_interrupted

    jobs = jobs_of(workspace, combos=("C-U-000", "C-U-001"), catalogs=("v1.0",))  # 4 jobs
    run = await run_jobs(workspace, jobs, FakeProvider(), clock)
    outputs = Outputs(run.doc["session_id"], run.sessions / "kept", fsync=False)
    leftovers, kept = [], []
    for entry in run.doc["jobs"]:
        final = Path(entry["output"])
        leftover = outputs.temp_path(final, entry["id"], entry["attempts"])
        leftover.write_bytes(final.read_bytes())
        leftovers.append(leftover)
        # Not a leftover of a completed attempt: another attempt's, another session's.
        kept.append(outputs.temp_path(final, entry["id"], entry["attempts"] + 1))
        kept.append(Outputs("2000-01-01-00-00-00", run.sessions).temp_path(final, entry["id"], 1))
        kept.append(final.with_name(f"{final.stem}-mine.png"))
    for path in kept:
        path.write_bytes(b"the user's")
    with Journal.open(run.sessions, run.doc["session_id"], fsync=False) as journal:
        async with journal.writing():
            todo = await recover_interrupted(journal, outputs, providers.get, lambda _n: None)
    assert todo == []
    assert [p for p in leftovers if p.exists()] == []
    assert all(p.read_bytes() == b"the user's" for p in kept)
    assert all(Path(e["output"]).is_file() for e in run.doc["jobs"])


@pytest.mark.asyncio
async def test_the_budget_stops_exactly_where_the_arithmetic_says(
    workspace: Workspace, clock: VirtualClock
) -> None:
    from imagegen.executors.budget import Budget

    jobs = jobs_of(workspace, catalogs=("v1.0", "v2.0"), combos=("C-U-000", "C-U-001"))  # 6 jobs
    budget = Budget(limit=0.0)
    held = budget.reservation(0.134 + 3 * 0.0011)  # the price + 0.01 for thinking tokens
    # Room for three reservations and a cent more: the fourth call must not start.
    budget.limit = 3 * held + 0.01
    result, journal = await _run_budget(workspace, jobs, clock, budget, FakeProvider())
    assert result.exit_code == 3 and (result.stop_reason or "").startswith("budget reached")
    statuses = [journal.job(j.id).status for j in jobs]
    assert statuses.count("completed") == 3 and statuses.count("pending") == 3, statuses
    # Each image cost 0.134 + 3 x 0.0011 + 100 thinking tokens x $12/1M = 0.1385.
    assert result.spent_usd == pytest.approx(3 * 0.1385)
    assert budget.spent <= budget.limit and budget.reserved == pytest.approx(0.0)


@pytest.mark.asyncio
async def test_the_budget_holds_when_the_server_reports_huge_thinking_counts(
    workspace: Workspace, clock: VirtualClock
) -> None:
    """20,000 thinking tokens ($0.24) a call took a $0.50 ceiling to $1.14 before: the first
    call now runs alone and the rest reserve the dearest thinking seen."""
    from imagegen.executors.budget import Budget

    jobs = jobs_of(workspace, catalogs=("v1.0", "v2.0"), combos=("C-U-000", "C-U-001"))
    provider = FakeProvider(thought_tokens=20_000)
    budget = Budget(limit=0.50)
    result, _ = await _run_budget(workspace, jobs, clock, budget, provider)
    assert result.exit_code == 3
    assert result.spent_usd is not None and result.spent_usd <= 0.50
    assert provider.max_in_flight == 1  # the reservation after the first was too dear to pair
    per_call = 0.134 + 3 * 0.0011 + 20_000 * 12 / 1_000_000
    assert result.spent_usd == pytest.approx(per_call)  # one call fits, the second would not


async def _run_budget(
    ws: Workspace, jobs: list[Job], clock: VirtualClock, budget: Any, provider: FakeProvider
) -> tuple[RunResult, Journal]:
    config = {"provider": "gemini"}
    journal = Journal.create(ws.root / "sessions", config, [JobState(j) for j in jobs], fsync=False)
    gate = StartGate(Limits(3, 0.0, 1000), clock=clock, sleep=clock.sleep)
    provider.sleep = clock.sleep
    runner = Runner(
        journal,
        provider,
        providers.get("gemini"),
        gate,
        policy=NO_JITTER,
        clock=clock,
        sleep=clock.sleep,
        budget=budget,
    )
    with journal:
        async with anyio.create_task_group() as tg:
            tg.start_soon(clock.drive)
            async with journal.writing():
                result = await runner.run([j.id for j in jobs])
            tg.cancel_scope.cancel()
    return result, journal

"""The Batch API executor end to end: the real session shell and the real google-genai SDK
against the emulator's Files and Batch routes, on a ManualClock (no real waits: the injected
sleep advances the emulator's clock)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from imagegen import journal as journal_mod
from imagegen import providers
from imagegen.emulator import Emulator, Outcome
from imagegen.emulator.batches import BatchOutcome
from imagegen.emulator.clock import ManualClock
from imagegen.errors import EXIT_FAILED, EXIT_OK, EXIT_STOPPED
from imagegen.providers.gemini import tier_size

from .batch_helpers import (
    Combos,
    Sleeper,
    batch_settings,
    make_jobs,
    new_session,
    run,
    settings,
    small_limits,
)

PENDING, RUNNING = 120.0, 600.0  # the emulator's batch turnaround, seconds
INFO = providers.get("gemini")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def emu(clock: ManualClock) -> Iterator[Emulator]:
    with Emulator(render="plain", clock=clock) as emulator:
        emulator.batches.pending_seconds = PENDING
        emulator.batches.running_seconds = RUNNING
        yield emulator


@pytest.fixture
def sleep(clock: ManualClock) -> Sleeper:
    return Sleeper(clock)


@pytest.fixture
def combos(tmp_path: Path) -> Combos:
    return Combos.make(tmp_path / "combos")


def batch_cost(journal: journal_mod.Journal, job_id: str, thought_tokens: int) -> float:
    job = journal.job(job_id).job
    from imagegen.model import Usage

    assert INFO.batch_cost is not None
    return INFO.batch_cost(
        job.model,
        job.quality,
        job.aspect,
        len(job.references),
        Usage(thought_tokens=thought_tokens),
    )


# -- the whole round trip -------------------------------------------------------------------


def test_a_batch_session_uploads_each_reference_once_and_folds_shuffled_results_back(
    tmp_path: Path, emu: Emulator, clock: ManualClock, sleep: Sleeper, combos: Combos
) -> None:
    """Files uploaded once per distinct content, one JSONL line per job keyed by its id,
    results out of order matched by key, images saved, half-price costs, journal statuses."""
    emu.batches.enqueue(BatchOutcome.succeed(shuffle=True))
    jobs = make_jobs(tmp_path, combos, prompts=3)
    journal = new_session(tmp_path, jobs, batch=True)
    with journal:
        result = run(journal, emu, settings(clock, sleep, batch=batch_settings()))

    assert result.exit_code == EXIT_OK and result.completed == 9
    # 4 distinct reference contents (5 files: one is a copy) + 1 input file.
    assert emu.files.uploads == Combos.distinct + 1
    assert len(journal.state.uploads) == Combos.distinct
    (batch,) = emu.batches.listing()
    assert [r.key for r in batch.requests] == [j.id for j in jobs]
    for request in batch.requests:
        parts = request.request["contents"][0]["parts"]
        assert all("fileData" in p for p in parts[1:])  # references by URI, never inline
    assert emu.last_request_json is None  # no online generateContent call at all
    assert all(n == 1 for n in emu.generated.values()) and len(emu.generated) == 9

    (record,) = journal.state.batches.values()
    assert record.state == "collected" and record.name == batch.name
    assert record.job_ids == tuple(j.id for j in jobs) and record.polls >= 2
    assert record.display_name == f"imagegen-{journal.session_id}-shard-000"
    for job in jobs:
        state = journal.job(job.id)
        assert state.status == "completed" and state.output is not None
        with Image.open(state.output) as img:
            assert img.size == tier_size("1K", "1:1")
        assert state.history[-1].outcome == "completed" and state.attempts == 1
        usage = state.usage
        assert usage is not None
        assert state.cost_usd == pytest.approx(batch_cost(journal, job.id, usage.thought_tokens))
        online = INFO.estimate(job.model, job.quality, job.aspect, len(job.references))
        assert state.cost_usd < online * 0.6
    # Polls backed off from --batch-poll and stopped once the batch was done.
    assert sleep.waits[:3] == [30.0, 45.0, 67.5]
    assert sum(sleep.waits) >= PENDING + RUNNING
    # The shard's files (and their folder) are gone once collected.
    assert not list((tmp_path / "sessions").glob("*-batch"))


def test_the_journal_shows_submitted_jobs_and_their_batch_while_it_runs(
    tmp_path: Path, emu: Emulator, clock: ManualClock, sleep: Sleeper, combos: Combos
) -> None:
    """Interrupted while the batch is pending: the jobs stay submitted, the batch is live in
    the journal with its last poll, and --status shows both."""
    from imagegen.status import render_session

    emu.batches.enqueue(BatchOutcome.stuck())
    journal = new_session(tmp_path, make_jobs(tmp_path, combos), batch=True)
    calls = 0

    async def interrupt_after_two_polls(seconds: float) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            journal_runner_stop()
        await sleep(seconds)

    stoppers: list[object] = []

    def journal_runner_stop() -> None:
        for stopper in stoppers:
            stopper.stop("interrupted (Ctrl-C)")  # type: ignore[attr-defined]

    import imagegen.session as session_mod

    real = session_mod._batch_runner

    def capture(*args: object, **kw: object) -> object:
        runner = real(*args, **kw)  # type: ignore[arg-type]
        stoppers.append(runner)
        return runner

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(session_mod, "_batch_runner", capture)
        with journal:
            result = run(
                journal,
                emu,
                settings(clock, interrupt_after_two_polls, batch=batch_settings()),  # type: ignore[arg-type]
            )
    assert result.exit_code == EXIT_STOPPED
    state = journal_mod.load(journal.sessions_dir, journal.session_id)
    assert {js.status for js in state.jobs.values()} == {"submitted"}
    (record,) = state.batches.values()
    assert record.state == "pending" and record.polls == 2 and record.last_poll
    text = render_session(state)
    assert "Submitted: 6" in text
    assert f"shard 000 {record.name} pending: 6 jobs, 6 submitted" in text
    assert "last poll" in text and "(2 polls)" in text
    assert state.summary().unfinished == 6
    from imagegen.report import write_report

    page = write_report(journal.sessions_dir, journal.session_id).read_text(encoding="utf-8")
    assert page.count('class="ph submitted"') == 6  # the contact sheet's "submitted" cells
    assert '<span class="count submitted">6 submitted</span>' in page


# -- results that fail -------------------------------------------------------------------------


def test_failed_results_follow_the_online_policy_and_retryable_ones_run_online(
    tmp_path: Path, emu: Emulator, clock: ManualClock, sleep: Sleeper, combos: Combos
) -> None:
    jobs = make_jobs(tmp_path, combos)
    blocked, bad, flaky, limited = jobs[0], jobs[1], jobs[2], jobs[3]
    emu.enqueue(Outcome.prompt_blocked("PROHIBITED_CONTENT"), match=blocked.prompt)
    emu.enqueue(Outcome.error(400), match=bad.prompt)
    emu.enqueue(Outcome.error(500), match=flaky.prompt)
    emu.enqueue(Outcome.error(429, retry_delay="5s"), match=limited.prompt)
    journal = new_session(tmp_path, jobs, batch=True)
    with journal:
        result = run(journal, emu, settings(clock, sleep, batch=batch_settings()))
    assert result.exit_code == EXIT_FAILED
    by_id = {j.id: journal.job(j.id) for j in jobs}
    assert by_id[blocked.id].status == "failed"
    assert by_id[blocked.id].error_kind == "no_image"
    assert by_id[blocked.id].finish_reason == "PROMPT_BLOCKED:PROHIBITED_CONTENT"
    assert by_id[bad.id].status == "failed" and by_id[bad.id].error_kind == "bad_request"
    for job in (flaky, limited):  # retryable: back to pending, then the online pool
        state = by_id[job.id]
        assert state.status == "completed", state
        assert [a.outcome for a in state.history] == [
            "server_error" if job is flaky else "rate_limited",
            "completed",
        ]
        assert state.attempts == 2
    assert emu.last_request_json is not None  # the online pool ran the retryable two


def test_a_result_whose_reference_expired_is_uploaded_again_and_run_online(
    tmp_path: Path, emu: Emulator, clock: ManualClock, sleep: Sleeper, combos: Combos
) -> None:
    """The service read a reference after it expired: that line fails (403, file gone); the
    job is not failed: the reference is uploaded again and the job runs online."""
    # References uploaded at 0 expire at 600 s, before the batch ends (720 s); its results
    # file, made at its end, lives until 1320 s: the executor fetches it before.
    emu.files.ttl = 600.0
    jobs = make_jobs(tmp_path, combos, prompts=1)
    journal = new_session(tmp_path, jobs, batch=True)
    with journal:
        result = run(journal, emu, settings(clock, sleep, batch=batch_settings()))
    assert result.exit_code == EXIT_OK and result.completed == 3
    for job in jobs:
        state = journal.job(job.id)
        assert [a.outcome for a in state.history] == ["file_gone", "completed"]
    # 4 references + the input file, then the 4 references again for the online requests.
    assert emu.files.uploads == 2 * Combos.distinct + 1
    assert len(journal.state.uploads) == Combos.distinct  # the new uploads replaced the old


# -- batches that misbehave -------------------------------------------------------------------


def test_a_batch_stuck_past_the_deadline_is_cancelled_and_its_jobs_run_online(
    tmp_path: Path, emu: Emulator, clock: ManualClock, sleep: Sleeper, combos: Combos
) -> None:
    emu.batches.enqueue(BatchOutcome.stuck())
    journal = new_session(tmp_path, make_jobs(tmp_path, combos), batch=True)
    with journal:
        result = run(journal, emu, settings(clock, sleep, batch=batch_settings(deadline=3600.0)))
    assert result.exit_code == EXIT_OK and result.completed == 6
    (batch,) = emu.batches.listing()
    assert batch.state_at(clock())[0] == "CANCELLED"
    (record,) = journal.state.batches.values()
    assert record.state == "abandoned" and "--batch-deadline" in (record.error or "")
    assert 3600 <= sum(sleep.waits) < 3600 + 600  # cancelled at the first poll past it
    for state in journal.state.jobs.values():
        assert [a.outcome for a in state.history] == ["batch gave no result", "completed"]
        assert state.cost_usd == pytest.approx(
            INFO.cost(
                state.job.model,
                state.job.quality,
                state.job.aspect,
                len(state.job.references),
                state.usage,  # type: ignore[arg-type]
            )
        )  # run online: the online price


def test_a_stuck_batch_that_cannot_be_cancelled_yet_keeps_its_jobs(
    tmp_path: Path, emu: Emulator, clock: ManualClock, sleep: Sleeper, combos: Combos
) -> None:
    """Until the cancel goes through, the batch may still answer: its jobs do not run online
    (they would be paid twice); the next poll cancels again."""
    from imagegen.emulator import wire

    emu.batches.enqueue(BatchOutcome.stuck())
    real_cancel = emu.batches.cancel
    refused: list[float] = []

    def cancel(batch_id: str) -> object:
        if len(refused) < 3:  # the policy's three attempts at a server error
            refused.append(clock())
            raise wire.WireError(503, "UNAVAILABLE", "The service is currently unavailable.")
        return real_cancel(batch_id)

    emu.batches.cancel = cancel  # type: ignore[method-assign]
    journal = new_session(tmp_path, make_jobs(tmp_path, combos), batch=True)
    with journal:
        result = run(journal, emu, settings(clock, sleep, batch=batch_settings(deadline=3600.0)))
    assert result.exit_code == EXIT_OK and result.completed == 6
    assert len(refused) == 3
    (batch,) = emu.batches.listing()
    assert batch.state_at(clock())[0] == "CANCELLED"
    assert len(emu.generated) == 6 and all(n == 1 for n in emu.generated.values())


@pytest.mark.parametrize(
    ("outcome", "state"),
    [
        (BatchOutcome.expire(), "expired"),
        (BatchOutcome.cancel(), "cancelled"),
        (BatchOutcome.fail("Quota exceeded."), "failed"),
    ],
)
def test_a_batch_that_ends_without_results_hands_its_jobs_to_the_online_pool(
    tmp_path: Path,
    emu: Emulator,
    clock: ManualClock,
    sleep: Sleeper,
    combos: Combos,
    outcome: BatchOutcome,
    state: str,
) -> None:
    emu.batches.enqueue(outcome)
    journal = new_session(tmp_path, make_jobs(tmp_path, combos), batch=True)
    with journal:
        result = run(journal, emu, settings(clock, sleep, batch=batch_settings()))
    assert result.exit_code == EXIT_OK and result.completed == 6
    (record,) = journal.state.batches.values()
    assert record.state == "abandoned" and f"ended {state}" in (record.error or "")
    assert len(emu.generated) == 6  # each image made once, online


@pytest.mark.parametrize("outcome", [BatchOutcome.expire(), BatchOutcome.stuck()])
def test_with_no_fallback_the_run_stops_and_says_so(
    tmp_path: Path,
    emu: Emulator,
    clock: ManualClock,
    sleep: Sleeper,
    combos: Combos,
    outcome: BatchOutcome,
) -> None:
    emu.batches.enqueue(outcome)
    journal = new_session(tmp_path, make_jobs(tmp_path, combos), batch=True)
    with journal:
        result = run(
            journal,
            emu,
            settings(clock, sleep, batch=batch_settings(fallback=False, deadline=7200.0)),
        )
    assert result.exit_code == EXIT_STOPPED
    assert result.stop_reason is not None and "--no-fallback" in result.stop_reason
    assert {js.status for js in journal.state.jobs.values()} == {"pending"}
    assert emu.generated == {} and emu.last_request_json is None


def test_a_503_on_the_results_download_is_retried(
    tmp_path: Path, emu: Emulator, clock: ManualClock, sleep: Sleeper, combos: Combos
) -> None:
    emu.batches.enqueue(BatchOutcome.succeed())
    journal = new_session(tmp_path, make_jobs(tmp_path, combos), batch=True)
    emu.files.fail_downloads(2, code=503)
    with journal:
        result = run(journal, emu, settings(clock, sleep, batch=batch_settings()))
    assert result.exit_code == EXIT_OK and result.completed == 6
    assert (emu.files.failed_downloads, emu.files.downloads) == (2, 1)
    assert len(emu.generated) == 6 and emu.last_request_json is None


def test_a_create_answer_lost_after_the_service_took_it_is_found_not_created_again(
    tmp_path: Path, emu: Emulator, clock: ManualClock, sleep: Sleeper, combos: Combos
) -> None:
    emu.batches.fail_creates(1, code=503, after_create=True)
    journal = new_session(tmp_path, make_jobs(tmp_path, combos), batch=True)
    with journal:
        result = run(journal, emu, settings(clock, sleep, batch=batch_settings()))
    assert result.exit_code == EXIT_OK and result.completed == 6
    assert emu.batches.create_attempts == 1
    assert emu.batches.created == [f"imagegen-{journal.session_id}-shard-000"]


def test_a_create_that_failed_is_made_again_once(
    tmp_path: Path, emu: Emulator, clock: ManualClock, sleep: Sleeper, combos: Combos
) -> None:
    emu.batches.fail_creates(1, code=503)
    journal = new_session(tmp_path, make_jobs(tmp_path, combos), batch=True)
    with journal:
        result = run(journal, emu, settings(clock, sleep, batch=batch_settings()))
    assert result.exit_code == EXIT_OK
    assert emu.batches.create_attempts == 2 and len(emu.batches.created) == 1


# -- shards and the budget --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requests", "size", "at_least"),
    [(5, 2_000_000, 3), (1000, 1000, 6)],  # lines are 300-450 bytes: 2 fit in 1000
    ids=["by-count", "by-bytes"],
)
def test_shards_respect_the_request_count_and_byte_limits(
    tmp_path: Path,
    emu: Emulator,
    clock: ManualClock,
    sleep: Sleeper,
    combos: Combos,
    requests: int,
    size: int,
    at_least: int,
) -> None:
    jobs = make_jobs(tmp_path, combos, prompts=4)  # 12 jobs
    journal = new_session(tmp_path, jobs, batch=True)
    limits = small_limits(requests=requests, size=size)
    inputs: list[bytes] = []
    real_create = emu.batches.create

    def create(model: str, name: str, reqs: tuple[object, ...], input_file: str | None) -> object:
        assert input_file is not None
        inputs.append(emu.files.get(input_file).data)
        return real_create(model, name, reqs, input_file)  # type: ignore[arg-type]

    emu.batches.create = create  # type: ignore[method-assign]
    with journal:
        result = run(journal, emu, settings(clock, sleep, batch=batch_settings(limits=limits)))
    assert result.exit_code == EXIT_OK and result.completed == 12
    batches = sorted(emu.batches.listing(), key=lambda b: b.seq)
    assert len(batches) >= at_least
    keys = [r.key for b in batches for r in b.requests]
    assert keys == [j.id for j in jobs]  # every job once, in order
    for batch, data in zip(batches, inputs, strict=True):
        assert 1 <= len(batch.requests) <= requests
        assert len(data) <= size and data.count(b"\n") == len(batch.requests)
    assert sorted(journal.state.batches) == list(range(len(batches)))
    assert emu.files.uploads == Combos.distinct + len(batches)


def test_max_cost_reserves_a_whole_shard_before_sending_it(
    tmp_path: Path, emu: Emulator, clock: ManualClock, sleep: Sleeper, combos: Combos
) -> None:
    """Each job holds its batch price + the thinking allowance; shards of 2: with room for
    3 jobs, 3 are sent (a shard of 2 and one of 1), the other 3 stay pending."""
    jobs = make_jobs(tmp_path, combos, prompts=2)
    assert INFO.batch_estimate is not None
    held = [
        INFO.batch_estimate(j.model, j.quality, j.aspect, len(j.references)) + 0.01 for j in jobs
    ]
    limit = sum(held[:3]) + 0.001
    journal = new_session(tmp_path, jobs, batch=True)
    with journal:
        result = run(
            journal,
            emu,
            settings(
                clock,
                sleep,
                batch=batch_settings(limits=small_limits(requests=2)),
                max_cost=limit,
            ),
        )
    assert result.exit_code == EXIT_STOPPED
    assert result.stop_reason is not None and result.stop_reason.startswith("budget reached")
    statuses = [journal.job(j.id).status for j in jobs]
    assert statuses == ["completed"] * 3 + ["pending"] * 3
    assert [len(b.requests) for b in sorted(emu.batches.listing(), key=lambda b: b.seq)] == [2, 1]
    assert journal.state.summary().cost_usd <= limit
    assert emu.last_request_json is None  # the rest did not go online either


def test_resume_of_a_batch_session_sends_only_what_is_left(
    tmp_path: Path, emu: Emulator, clock: ManualClock, sleep: Sleeper, combos: Combos
) -> None:
    jobs = make_jobs(tmp_path, combos, prompts=2)
    journal = new_session(tmp_path, jobs, batch=True)
    limit = 0.2  # two jobs' worth
    with journal:
        first = run(journal, emu, settings(clock, sleep, batch=batch_settings(), max_cost=limit))
        assert first.exit_code == EXIT_STOPPED
        done = [j.id for j in jobs if journal.job(j.id).status == "completed"]
        second = run(journal, emu, settings(clock, sleep, batch=batch_settings()), mode="resume")
    assert second.exit_code == EXIT_OK and second.completed == 6
    batches = sorted(emu.batches.listing(), key=lambda b: b.seq)
    assert [r.key for r in batches[1].requests] == [j.id for j in jobs if j.id not in done]
    assert sorted(journal.state.batches) == [0, 1]
    assert all(n == 1 for n in emu.generated.values())
    assert emu.files.uploads == Combos.distinct + 2  # references reused from the journal


def test_an_input_file_that_cannot_be_uploaded_again_stops_the_run_and_resume_finishes(
    tmp_path: Path,
    emu: Emulator,
    clock: ManualClock,
    sleep: Sleeper,
    combos: Combos,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The service lost the shard's input file at create and the upload again is refused: the
    run stops with one reason (it escaped as an error before), the batch stays "creating" with
    its jobs submitted, and --resume creates it and finishes, each job made once."""
    from imagegen.errors import BadRequest, FileGone
    from imagegen.providers.gemini.client import GeminiProvider

    real_upload = GeminiProvider.upload_file
    uploads: list[str] = []

    async def create_losing_the_input(self: GeminiProvider, *args: object) -> object:
        raise FileGone("HTTP 403: You do not have permission to access the File x", name="x")

    async def upload_refused_the_second_time(
        self: GeminiProvider, path: Path, mime_type: str, display_name: str | None = None
    ) -> object:
        if mime_type == "application/jsonl":
            uploads.append(path.name)
            if len(uploads) > 1:
                raise BadRequest("HTTP 400: the input file is refused")
        return await real_upload(self, path, mime_type, display_name)

    journal = new_session(tmp_path, make_jobs(tmp_path, combos), batch=True)
    with monkeypatch.context() as patch:
        patch.setattr(GeminiProvider, "create_batch", create_losing_the_input)
        patch.setattr(GeminiProvider, "upload_file", upload_refused_the_second_time)
        with journal:
            result = run(journal, emu, settings(clock, sleep, batch=batch_settings()))
    assert result.exit_code == EXIT_STOPPED
    assert "cannot upload batch input" in (result.stop_reason or "")
    state = journal_mod.load(tmp_path / "sessions", journal.session_id)
    assert state.state == "stopped" and [r.state for r in state.batches.values()] == ["creating"]
    assert {js.status for js in state.jobs.values()} == {"submitted"}
    again = journal_mod.Journal.open(tmp_path / "sessions", journal.session_id, fsync=False)
    with again:
        result = run(again, emu, settings(clock, sleep, batch=batch_settings()), "resume")
    assert result.exit_code == EXIT_OK and result.completed == 6
    assert sum(emu.generated.values()) == 6

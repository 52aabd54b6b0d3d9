"""A source's after-save step, as the runner and recovery run it, whatever the source: an image
adopted after a crash gets the step, a job planned as skipped with the step pending gets it
without a call, and a step that could not record its image shows in the exit code, --status and
the closing line."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest

from imagegen import journal as journal_mod
from imagegen import providers
from imagegen.executors.limiter import Limits, StartGate
from imagegen.executors.pool import Runner
from imagegen.journal import Journal
from imagegen.model import JobState, JobUpdate
from imagegen.outputs import Outputs
from imagegen.recovery import recover_interrupted
from imagegen.retry import RetryPolicy
from imagegen.session import closing_line
from imagegen.sources import SessionView
from imagegen.status import render_session, session_summary

from .conftest import FakeProvider, Workspace, plan_combos, png_bytes


class Step:
    """An after-save step that records what it was given and answers ``problem``."""

    def __init__(self, problem: str | None = None) -> None:
        self.problem = problem
        self.seen: list[JobState] = []

    def __call__(self, state: JobState, view: SessionView) -> str | None:
        self.seen.append(state)
        return self.problem


def journal_of(ws: Workspace, sessions: Path, states: list[JobState]) -> Journal:
    config = {"quality": "1K", "provider": "gemini", "source": "combos", "header": ["test"]}
    return Journal.create(sessions, config, states, fsync=False)


@pytest.mark.asyncio
async def test_an_image_adopted_after_a_crash_gets_its_after_save_step(
    workspace: Workspace, tmp_path: Path
) -> None:
    (job,) = plan_combos(workspace, combos=("C-U-000",), catalogs=("v2.0",))
    step = Step()
    with journal_of(workspace, tmp_path / "sessions", [JobState(job)]) as journal:
        outputs = Outputs(journal.session_id, tmp_path / "kept", fsync=False)
        planned = outputs.plan(job, datetime.now())
        async with journal.writing():
            await journal.update(
                job.id, JobUpdate(status="running", attempts=1, output=str(planned))
            )
        # The crash came after the image was written, before "completed" was journaled.
        planned.parent.mkdir(parents=True, exist_ok=True)
        outputs.temp_path(planned, job.id, 1).write_bytes(png_bytes(1024, 1024))
        async with journal.writing():
            todo = await recover_interrupted(journal, outputs, providers.get, lambda _n: step)
        assert todo == []
        state = journal.job(job.id)
    assert state.status == "completed" and state.history[-1].outcome == "adopted after a crash"
    assert state.delivery == "done"
    assert [s.id for s in step.seen] == [job.id]


@pytest.mark.asyncio
async def test_an_adopted_variant_that_is_not_the_last_leaves_the_step_for_the_last(
    workspace: Workspace, tmp_path: Path
) -> None:
    """The step records a job once, after its last candidate: an adopted first of two
    variants leaves the job pending with no step pending, and the run's last variant runs it."""
    (job,) = plan_combos(workspace, combos=("C-U-000",), catalogs=("v2.0",))
    job = replace(job, variants=2)
    step = Step()
    provider = FakeProvider()
    with journal_of(workspace, tmp_path / "sessions", [JobState(job)]) as journal:
        outputs = Outputs(journal.session_id, tmp_path / "kept", fsync=False)
        planned = outputs.plan(job, datetime.now(), 1)
        async with journal.writing():
            await journal.update(
                job.id, JobUpdate(status="running", attempts=1, output=str(planned))
            )
        planned.parent.mkdir(parents=True, exist_ok=True)
        outputs.temp_path(planned, job.id, 1).write_bytes(png_bytes(1024, 1024))
        runner = Runner(
            journal,
            provider,
            providers.get("gemini"),
            StartGate(Limits(1, 0.0, 1000)),
            policy=RetryPolicy(jitter=0.0),
            outputs=outputs,
            after_save=lambda _n: step,
        )
        async with journal.writing():
            todo = await recover_interrupted(journal, outputs, providers.get, lambda _n: step)
            adopted = journal.job(job.id)
            assert todo == [job.id] and adopted.status == "pending"
            assert adopted.delivery is None and len(adopted.variant_outputs) == 1
            assert step.seen == []
            await runner.run(todo)
        state = journal.job(job.id)
    assert sum(provider.calls.values()) == 1  # only the second variant
    assert state.status == "completed" and len(state.variant_outputs) == 2
    assert state.delivery == "done" and [s.id for s in step.seen] == [job.id]


@pytest.mark.asyncio
async def test_a_skipped_job_with_its_step_pending_gets_the_step_and_no_call(
    workspace: Workspace, tmp_path: Path
) -> None:
    first, second = plan_combos(workspace, combos=("C-U-000", "C-U-001"), catalogs=("v2.0",))
    made = tmp_path / "made-earlier.png"
    made.write_bytes(png_bytes(1024, 1024))
    states = [
        JobState(first, status="skipped", output=str(made), delivery="pending"),
        JobState(replace(second, id="002")),
    ]
    step = Step(problem="stale: prompt changed: made from the old prompt")
    provider = FakeProvider()
    with journal_of(workspace, tmp_path / "sessions", states) as journal:
        outputs = Outputs(journal.session_id, tmp_path / "kept", fsync=False)
        runner = Runner(
            journal,
            provider,
            providers.get("gemini"),
            StartGate(Limits(1, 0.0, 1000)),
            policy=RetryPolicy(jitter=0.0),
            outputs=outputs,
            after_save=lambda _n: step,
        )
        async with journal.writing():
            todo = await recover_interrupted(journal, outputs, providers.get, lambda _n: step)
            assert todo == ["002"]
            result = await runner.run(todo)
        sid = journal.session_id
        last = closing_line(journal, result)
    assert sum(provider.calls.values()) == 1  # only the job that was not made yet
    assert [s.id for s in step.seen] == [first.id, "002"]
    state = journal_mod.load(tmp_path / "sessions", sid)
    assert state.jobs[first.id].status == "skipped"
    assert (
        state.jobs[first.id].delivery
        == "not written: stale: prompt changed: made from the old prompt"
    )
    assert state.jobs["002"].delivery.startswith("not written: stale")
    # Reported everywhere a user looks, and in the exit code.
    assert result.unrecorded == 2 and result.exit_code == 1
    assert "2 image(s) saved but not recorded by the job source" in last
    assert f"--status {sid}" in last
    shown = render_session(state)
    assert "Saved, but not recorded by the job source (the images are kept):" in shown
    assert f"! [{first.id}] {first.title}: not written: stale: prompt changed" in shown
    assert [row["id"] for row in session_summary(state)["unrecorded"]] == [first.id, "002"]

"""A source's two steps: ``after_save`` after each image (one at a time, seeing the session as
journaled), again on resume when a crash came first (adopted images too); ``after_run`` once at
the end of every run, with why it stopped."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from imagegen import providers, sources
from imagegen.errors import BatchStop
from imagegen.executors.limiter import Limits
from imagegen.journal import Journal
from imagegen.model import JobState, JobUpdate
from imagegen.outputs import Outputs
from imagegen.retry import RetryPolicy
from imagegen.session import Settings, run_jobs
from imagegen.sources import SessionView

from .conftest import FakeProvider, Workspace, new_journal


@dataclass
class Recorder:
    """A source whose steps record what they saw; ``after_save`` fails for ``fail_for``."""

    name: str = "combos"
    help: str = ""
    saved: list[tuple[str, int]] = field(default_factory=list)
    runs: list[tuple[str | None, dict[str, str]]] = field(default_factory=list)
    overlap: int = 0
    fail_for: str | None = None
    _busy: threading.Lock = field(default_factory=threading.Lock)

    def after_save(self, state: JobState, view: SessionView) -> str | None:
        if not self._busy.acquire(blocking=False):
            self.overlap += 1
            self._busy.acquire()
        try:
            time.sleep(0.005)  # a real write takes a moment: another step must not overlap it
            done = sum(1 for js in view.jobs.values() if js.status == "completed")
            self.saved.append((state.id, done))
            assert view.jobs[state.id].status == "completed"
            return "disk full" if state.id == self.fail_for else None
        finally:
            self._busy.release()

    def after_run(self, view: SessionView) -> str | None:
        self.runs.append((view.stop_reason, {j: js.status for j, js in view.jobs.items()}))
        return None

    def add_arguments(self, parser: Any) -> None:
        raise NotImplementedError

    def plan(self, args: Any, defaults: Any) -> Any:
        raise NotImplementedError


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    source = Recorder()
    monkeypatch.setattr(sources, "get", lambda name: source)
    return source


SETTINGS = Settings(Limits(3, 0.0, 1000), RetryPolicy(jitter=0.0), signals=False)


async def _run(journal: Journal, provider: FakeProvider, mode: str = "run") -> None:
    with journal:
        await run_jobs(
            journal, SETTINGS, provider, providers.get("gemini"), Console(quiet=True), mode
        )


@pytest.mark.asyncio
async def test_after_save_runs_once_per_image_one_at_a_time(
    workspace: Workspace, tmp_path: Path, recorder: Recorder
) -> None:
    recorder.fail_for = "002"
    journal = new_journal(workspace, tmp_path / "sessions")
    await _run(journal, FakeProvider())
    assert sorted(job for job, _ in recorder.saved) == [f"00{i}" for i in range(1, 7)]
    assert recorder.overlap == 0
    # Each step saw every image journaled before it: the counts only grow.
    seen = [done for _, done in recorder.saved]
    assert seen == sorted(seen) and seen[-1] == 6
    states = journal.state.jobs
    assert states["002"].delivery == "not written: disk full"
    assert {states[j].delivery for j in states if j != "002"} == {"done"}
    assert recorder.runs == [(None, dict.fromkeys(states, "completed"))]


@pytest.mark.asyncio
async def test_after_run_sees_why_the_run_stopped_and_runs_again_on_resume(
    workspace: Workspace, tmp_path: Path, recorder: Recorder
) -> None:
    sessions = tmp_path / "sessions"
    journal = new_journal(workspace, sessions)
    stop = FakeProvider()
    stop.enqueue(BatchStop("HTTP 403 PERMISSION_DENIED", reason="permission_denied"))
    await _run(journal, stop)
    reason, statuses = recorder.runs[-1]
    assert reason is not None and "403" in reason and "pending" in statuses.values()
    await _run(Journal.open(sessions, journal.session_id, fsync=False), FakeProvider(), "resume")
    assert len(recorder.runs) == 2
    reason, statuses = recorder.runs[-1]
    assert reason is None and set(statuses.values()) == {"completed"}


@pytest.mark.asyncio
async def test_resume_runs_the_step_a_crash_skipped_and_for_adopted_images(
    workspace: Workspace, tmp_path: Path, recorder: Recorder
) -> None:
    """A kill after the image was journaled (delivery pending) and one after it was written
    but before it was journaled (running, temporary file whole): resume delivers both, with
    no new call."""
    sessions = tmp_path / "sessions"
    journal = new_journal(workspace, sessions)
    await _run(journal, FakeProvider())
    assert len(recorder.saved) == 6
    recorder.saved.clear()
    with Journal.open(sessions, journal.session_id, fsync=False) as again:
        done = again.state.jobs["003"]
        out = Path(again.state.jobs["004"].output or "")
        temp = Outputs(again.session_id, tmp_path).temp_path(out, "004", 2)
        temp.write_bytes(out.read_bytes())  # attempt 2 wrote its image, then the kill
        out.unlink()

        async def crash() -> None:
            async with again.writing():
                await again.update("003", JobUpdate(delivery="pending"))
                await again.update("004", JobUpdate(status="running", attempts=2, output=str(out)))

        await crash()
        assert done.delivery == "done"
    fresh = FakeProvider()
    await _run(Journal.open(sessions, journal.session_id, fsync=False), fresh, "resume")
    assert not fresh.calls
    assert sorted(job for job, _ in recorder.saved) == ["003", "004"]
    state = Journal.open(sessions, journal.session_id, fsync=False)
    with state:
        assert state.state.jobs["004"].history[-1].outcome == "adopted after a crash"
        assert state.state.jobs["004"].delivery == "done" and out.is_file()

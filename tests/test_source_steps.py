"""A source's two steps: ``after_save`` after each image (one at a time, seeing the session as
journaled), again on resume when a crash came first (adopted images too); ``after_run`` once at
the end of every run, with why it stopped."""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from imagegen import providers, sources
from imagegen.errors import BatchStop
from imagegen.executors.limiter import Limits
from imagegen.executors.pool import RunResult
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

    def after_run(self, view: SessionView) -> list[str]:
        self.runs.append((view.stop_reason, {j: js.status for j, js in view.jobs.items()}))
        return [f"ran {len(self.runs)}"]

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


async def _run(journal: Journal, provider: FakeProvider, mode: str = "run") -> RunResult:
    with journal:
        return await run_jobs(
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
    result = await _run(
        Journal.open(sessions, journal.session_id, fsync=False), FakeProvider(), "resume"
    )
    assert len(recorder.runs) == 2 and result.notes == ("ran 2",)  # the summary's lines
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


# -- a plan's paid completion (Plan.complete), its notes and its planning cost ---------------


@dataclass
class Completing:
    """A source whose plan is finished by paid work: one drawn job and one generated job whose
    cost group has a cap of zero (so it stays pending and the session unfinished)."""

    name: str = "fake"
    help: str = "a test source"
    after_save: Any = None
    after_run: Any = None
    completed: int = 0
    paid: float = 0.01

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--tag", default="x")

    def plan(self, args: Any, defaults: Any) -> Any:
        from imagegen.model import Job
        from imagegen.sources import Plan

        def job(n: int, provider: str) -> JobState:
            drawn = provider == "placeholder"
            return JobState(
                Job(
                    id=f"00{n}",
                    source="fake",
                    title=f"job {n}",
                    group=("s", "r", str(n)),
                    prompt_file="-",
                    prompt_parts=(f"Job {n} {args.tag}",),
                    references=(),
                    target=f"out/{n}.png",
                    quality="64x36" if drawn else "1K",
                    aspect="16:9",
                    model="plain" if drawn else defaults.model,
                    provider=provider,
                    cost_group="g",
                )
            )

        base = Plan(
            jobs=(job(1, "placeholder"), job(2, "gemini")),
            config={"tag": args.tag, "cost_caps": {"g": 0.0}},
            header=("fake",),
            facts=(),
            describe="two jobs",
            notes=("a note for the dry run",),
            planning_usd=0.25,
        )

        def complete() -> Any:
            self.completed += 1
            config = {**base.config, "planning_cost_usd": self.paid, "planning_costs": {"g": 0}}
            return replace(base, config=config, planning_usd=self.paid, complete=None)

        return replace(base, complete=complete)


@pytest.fixture
def completing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Completing:
    source = Completing()
    monkeypatch.setattr(sources, "get", lambda name: source)
    monkeypatch.chdir(tmp_path)
    return source


def test_a_dry_run_shows_notes_and_planning_cost_without_completing(
    completing: Completing, capsys: pytest.CaptureFixture[str]
) -> None:
    from imagegen.cli.options import source_parser
    from imagegen.cli.verbs import start

    args = source_parser("fake").parse_args(["--dry-run", "--offline", "--plain"])
    assert start("fake", args, Console(file=sys.stdout, width=200)) == 0
    out = capsys.readouterr().out
    assert "a note for the dry run" in out and "1 drawn locally, free" in out
    assert "Estimated cost: $0.38" in out  # 0.134 for the image + 0.25 planning would spend
    assert completing.completed == 0


def test_variants_are_priced_per_call_and_survive_the_plans_completion(
    completing: Completing, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--variants N: the paid job makes N candidates (priced N times), the drawn one makes
    one; a plan finished by Plan.complete keeps them."""
    import orjson

    from imagegen import journal as journal_mod
    from imagegen.cli.options import source_parser
    from imagegen.cli.verbs import start

    shown = ["--dry-run", "--offline", "--variants", "2"]
    assert start("fake", source_parser("fake").parse_args([*shown, "--json"]), Console()) == 0
    rows = {row["id"]: row for row in orjson.loads(capsys.readouterr().out)["jobs"]}
    assert rows["001"]["price_usd"] == 0.0
    assert rows["002"]["price_usd"] == pytest.approx(2 * 0.134)
    assert start("fake", source_parser("fake").parse_args(shown), Console(width=200)) == 0
    out = capsys.readouterr().out
    assert "Estimated cost: $0.52 for 3 images (1 drawn locally, free)" in out
    argv = ["--offline", "--offline-latency", "0", "--plain", "--variants", "2"]
    assert start("fake", source_parser("fake").parse_args(argv), Console(quiet=True)) == 1
    assert completing.completed == 1
    (sid,) = journal_mod.list_sessions(tmp_path / "sessions")
    state = journal_mod.load(tmp_path / "sessions", sid)
    assert {i: js.job.variants for i, js in state.jobs.items()} == {"001": 1, "002": 2}
    assert state.config["variants"] == 2


def test_a_note_of_several_lines_reads_as_one_paragraph() -> None:
    from imagegen.cli.dryrun import print_notes

    console = Console(record=True, width=200)
    print_notes(("Episode ep1 (ep1):\n  ch01  generate  new", "one line"), console)
    assert console.export_text().splitlines() == [
        "Note: Episode ep1 (ep1):",
        "        ch01  generate  new",
        "Note: one line",
    ]


def test_completion_runs_once_after_the_checks_and_its_cost_is_the_sessions(
    completing: Completing, tmp_path: Path
) -> None:
    from imagegen import journal as journal_mod
    from imagegen.cli.options import source_parser
    from imagegen.cli.verbs import start
    from imagegen.errors import InputError

    argv = ["--offline", "--offline-latency", "0", "--plain", "--min-interval", "0"]
    code = start("fake", source_parser("fake").parse_args(argv), Console(quiet=True))
    assert code == 1 and completing.completed == 1  # job 2 held by its group's cap of $0
    (sid,) = journal_mod.list_sessions(tmp_path / "sessions")
    state = journal_mod.load(tmp_path / "sessions", sid)
    assert state.config["planning_cost_usd"] == 0.01
    assert state.summary().cost_usd == 0.01  # the drawn job cost nothing; planning did
    assert state.jobs["002"].error_kind == "cost_cap"
    # The same selection while that session is unfinished is refused before completing again,
    # although planning would spend another amount this time.
    completing.paid = 0.02
    with pytest.raises(InputError, match=f"--resume {sid}"):
        start("fake", source_parser("fake").parse_args(argv), Console(quiet=True))
    assert completing.completed == 1


def test_a_new_sessions_budget_starts_with_what_planning_spent(
    workspace: Workspace, tmp_path: Path
) -> None:
    from imagegen.session import _budget

    journal = new_journal(workspace, tmp_path / "sessions")
    journal.state.config["planning_cost_usd"] = 0.3
    with journal:
        budget = _budget(journal, 1.0, (0, 0.0), new=True)
        assert budget is not None and budget.spent == 0.3
        resumed = _budget(journal, 1.0, (0, 0.0), new=False)  # a resume's budget is its own
        assert resumed is not None and resumed.spent == 0.0

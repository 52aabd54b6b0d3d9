"""Cost groups: a ceiling per group of jobs within a session, on top of the run's budget. A group
that reaches it stops (its jobs stay pending, error_kind "cost_cap"); other groups go on."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import anyio
import pytest

from imagegen import providers
from imagegen.executors.budget import THINKING_ALLOWANCE_USD, group_caps
from imagegen.executors.limiter import Limits, StartGate
from imagegen.executors.pool import Runner, RunResult
from imagegen.journal import Journal
from imagegen.model import Job, JobState
from imagegen.retry import RetryPolicy
from imagegen.session import closing_line

from .conftest import FakeProvider, VirtualClock, Workspace, plan_combos

# One image of the test workspace: 0.134 + 3 reference images x 0.0011 + 100 thinking tokens.
PRICE = 0.134 + 3 * 0.0011
COST = PRICE + 100 * 12e-6
HELD = PRICE + THINKING_ALLOWANCE_USD


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> VirtualClock:
    clock = VirtualClock()
    clock.track_threads(monkeypatch)
    return clock


def grouped(ws: Workspace) -> list[Job]:
    """Six jobs: the first four in group "a", the last two in group "b"."""
    jobs = plan_combos(ws, catalogs=("v1.0", "v2.0"), combos=("C-U-000", "C-U-001"))
    assert len(jobs) == 6
    return [replace(j, cost_group="a" if i < 4 else "b") for i, j in enumerate(jobs)]


async def run(
    ws: Workspace,
    jobs: list[Job],
    clock: VirtualClock,
    config: dict[str, Any],
    provider: FakeProvider,
    *,
    session: str | None = None,
) -> tuple[RunResult, Journal]:
    sessions = ws.root / "sessions"
    if session is None:
        journal = Journal.create(sessions, config, [JobState(j) for j in jobs], fsync=False)
    else:
        journal = Journal.open(sessions, session, fsync=False)
    provider.sleep = clock.sleep
    caps = group_caps(
        journal.state.config,
        ((js.job.cost_group, js.cost_usd) for js in journal.state.jobs.values()),
    )
    runner = Runner(
        journal,
        provider,
        providers.get("gemini"),
        StartGate(Limits(3, 0.0, 1000), clock=clock, sleep=clock.sleep),
        policy=RetryPolicy(jitter=0.0),
        clock=clock,
        sleep=clock.sleep,
        caps=caps,
    )
    with journal:
        async with anyio.create_task_group() as tg:
            tg.start_soon(clock.drive)
            async with journal.writing():
                todo = [js.id for js in journal.state.jobs.values() if js.status == "pending"]
                result = await runner.run(todo)
            tg.cancel_scope.cancel()
    return result, journal


@pytest.mark.asyncio
async def test_a_group_stops_at_its_cap_while_the_others_complete(
    workspace: Workspace, clock: VirtualClock
) -> None:
    jobs = grouped(workspace)
    # Room for two images of group "a" (and a cent): the third would pass the cap.
    config = {"provider": "gemini", "cost_caps": {"a": 2 * COST + HELD - 0.01, "b": 10.0}}
    provider = FakeProvider(call_duration=1.0)
    result, journal = await run(workspace, jobs, clock, config, provider)
    states = [journal.job(j.id) for j in jobs]
    # Which two of group "a" ran depends on who reached the start gate first (three workers).
    assert sorted(s.status for s in states[:4]) == ["completed"] * 2 + ["pending"] * 2
    assert [s.status for s in states[4:]] == ["completed"] * 2
    for held in (s for s in states if s.status == "pending"):
        assert held.error_kind == "cost_cap" and held.attempts == 0
        assert "cost cap of a reached ($" in (held.error or "")
    assert sum(provider.calls.values()) == 4  # the held jobs were never called
    assert result.stop_reason is None and result.exit_code == 1
    spent_a = sum(s.cost_usd or 0.0 for s in states[:4])
    assert spent_a <= config["cost_caps"]["a"]
    line = closing_line(journal, result)
    assert "2 job(s) not started: their cost group reached its cap" in line
    assert "--resume" not in line


@pytest.mark.asyncio
async def test_what_planning_spent_for_a_group_counts_against_its_cap(
    workspace: Workspace, clock: VirtualClock
) -> None:
    jobs = grouped(workspace)
    config = {
        "provider": "gemini",
        "cost_caps": {"a": 2 * COST + HELD - 0.01},
        "planning_costs": {"a": COST},  # text written for the group before the session
    }
    _, journal = await run(workspace, jobs, clock, config, FakeProvider())
    statuses = [journal.job(j.id).status for j in jobs]
    assert statuses.count("completed") == 1 + 2  # one of group "a", both of "b" (no cap)


@pytest.mark.asyncio
async def test_the_cap_covers_the_whole_session_across_runs(
    workspace: Workspace, clock: VirtualClock
) -> None:
    """A resume counts what earlier runs of the session spent: held jobs stay held, no call."""
    jobs = grouped(workspace)[:4]
    config = {"provider": "gemini", "cost_caps": {"a": 2 * COST + HELD - 0.01}}
    _, journal = await run(workspace, jobs, clock, config, FakeProvider())
    again = FakeProvider()
    result, journal = await run(workspace, jobs, clock, config, again, session=journal.session_id)
    assert not again.calls
    assert sorted(journal.job(j.id).status for j in jobs) == ["completed"] * 2 + ["pending"] * 2
    assert result.exit_code == 1


@pytest.mark.asyncio
async def test_a_call_in_flight_is_waited_for_before_the_group_is_stopped(
    workspace: Workspace, clock: VirtualClock
) -> None:
    """With one call in flight holding room, the next waits for its real cost instead of being
    refused on the reservation: the first image's thinking cost is small, so both fit."""
    jobs = grouped(workspace)[:2]
    config = {"provider": "gemini", "cost_caps": {"a": COST + HELD + 0.001}}
    provider = FakeProvider(call_duration=5.0)
    _, journal = await run(workspace, jobs, clock, config, provider)
    assert [journal.job(j.id).status for j in jobs] == ["completed", "completed"]
    assert provider.max_in_flight == 1

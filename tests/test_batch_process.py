"""Batch sessions in real processes: a SIGKILL between the create call and its journal entry
(resume finds the batch by display name, never creates a second), ``--status --watch`` of a
batch session from another process, and a session left waiting collected by ``--resume``
from a new process. The emulator runs in the test on a ManualClock the test advances."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from imagegen import journal as journal_mod
from imagegen.emulator import Emulator
from imagegen.emulator.clock import ManualClock
from imagegen.model import SessionState

from .cli_helpers import (
    SAMPLE_CATALOGS,
    SAMPLE_COMBOS,
    SESSIONS,
    Proc,
    spawn,
    wait_for,
)

pytestmark = pytest.mark.slow

BATCH = (
    "--wardrobe",
    "zip-hoodie",
    "--ui-style",
    "Orange",
    "--catalogs",
    "v3.2",
    "--combos",
    "C-U-009,C-U-010",
    "--combos-root",
    str(SAMPLE_COMBOS),
    "--catalogs-root",
    str(SAMPLE_CATALOGS),
    "--batch",
    "--batch-poll",
    "0.05",
    "--min-interval",
    "0",
    "--plain",
)
JOBS = 6  # 2 combos x the 3 zip-hoodie prompts of catalog v3.2
HOUR = 3600.0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def emu(clock: ManualClock) -> Iterator[Emulator]:
    with Emulator(render="plain", clock=clock) as emulator:
        emulator.batches.pending_seconds = HOUR  # pending until the test moves the clock
        emulator.batches.running_seconds = 0.0
        yield emulator


def session(root: Path) -> SessionState | None:
    ids = journal_mod.list_sessions(root / SESSIONS)
    if not ids:
        return None
    try:
        return journal_mod.load(root / SESSIONS, ids[0])
    except Exception:
        return None  # caught between two writes: look again


def finish(proc: Proc, timeout: float = 60.0) -> int:
    try:
        return proc.wait(timeout)
    finally:
        proc.stop()


def test_sigkill_between_create_and_its_journal_entry_then_resume_finds_the_batch(
    tmp_path: Path, emu: Emulator, clock: ManualClock
) -> None:
    created = threading.Event()
    release = threading.Event()
    real_create = emu.batches.create

    def slow_create(*args: Any, **kw: Any) -> Any:
        batch = real_create(*args, **kw)  # the service has it ...
        created.set()
        release.wait(30)  # ... and its answer has not left when the process dies
        return batch

    emu.batches.create = slow_create  # type: ignore[method-assign]
    proc = spawn(tmp_path, emu, *BATCH)
    try:
        assert created.wait(60), proc.output()
        proc.popen.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        proc.stop()
        release.set()
    state = session(tmp_path)
    assert state is not None
    (record,) = state.batches.values()
    assert record.state == "creating" and record.name is None  # the answer never came
    assert {js.status for js in state.jobs.values()} == {"submitted"}
    assert emu.batches.created == [record.display_name]

    emu.batches.create = real_create  # type: ignore[method-assign]
    clock.advance(HOUR)  # the batch has succeeded meanwhile
    resume = spawn(tmp_path, emu, "--resume", state.session_id, "--batch-poll", "0.05", "--plain")
    code = finish(resume)
    assert code == 0, resume.output()
    assert "found on the service" in resume.output()
    assert emu.batches.created == [record.display_name]  # never a second batch
    assert emu.batches.create_attempts == 1
    done = session(tmp_path)
    assert done is not None and done.summary().counts.get("completed") == JOBS
    assert all(n == 1 for n in emu.generated.values()) and len(emu.generated) == JOBS


def test_status_watch_follows_a_batch_session_from_another_process(
    tmp_path: Path, emu: Emulator, clock: ManualClock
) -> None:
    run = spawn(tmp_path, emu, *BATCH)
    watch: Proc | None = None
    try:
        wait_for(
            lambda: (
                (s := session(tmp_path)) is not None
                and any(r.polls >= 2 for r in s.batches.values())
            ),
            60,
            "the batch is created and polled",
            run,
        )
        state = session(tmp_path)
        assert state is not None
        watch = spawn(tmp_path, emu, "--status", state.session_id, "--watch")
        wait_for(lambda: "last poll" in watch.output(), 30, "the watcher shows the batch", watch)
        clock.advance(HOUR)  # the batch succeeds: the run collects it and finishes
        assert finish(run) == 0, run.output()
        assert finish(watch) == 0, watch.output()
    finally:
        run.stop()
        if watch is not None:
            watch.stop()
    shown = watch.output()
    assert f"Submitted: {JOBS}" in shown
    assert "Batches:" in shown and " pending: " in shown and "last poll" in shown
    assert "collected" in shown and "State: finished" in shown.rsplit("\n\n", 2)[-2]


def test_a_batch_session_left_waiting_is_collected_by_resume_in_a_new_process(
    tmp_path: Path, emu: Emulator, clock: ManualClock
) -> None:
    run = spawn(tmp_path, emu, *BATCH)
    try:
        wait_for(
            lambda: (
                (s := session(tmp_path)) is not None
                and any(r.polls >= 1 for r in s.batches.values())
            ),
            60,
            "the batch is created and polled",
            run,
        )
        run.popen.send_signal(signal.SIGINT)  # Ctrl-C: stop waiting, the batch runs on
        code = finish(run)
    finally:
        run.stop()
    assert code == 3, run.output()
    said = " ".join(run.output().split())  # however the console wrapped it
    assert "Interrupted." in said and "in batches the service keeps running" in said
    state = session(tmp_path)
    assert state is not None and state.summary().counts.get("submitted") == JOBS

    clock.advance(HOUR)
    resume = spawn(tmp_path, emu, "--resume", state.session_id, "--plain")
    assert finish(resume) == 0, resume.output()
    done = session(tmp_path)
    assert done is not None and done.summary().counts.get("completed") == JOBS
    assert len(emu.batches.created) == 1 and len(emu.generated) == JOBS

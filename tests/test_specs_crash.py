"""SIGKILL a real ``imagegen specs`` process between an image and its spec update, and at
random points, then finish with ``--resume``: the specs always parse, every pending item is
generated once (twice only when a kill landed while its call was in flight) and recorded
once, and the diff of every spec is exactly the output fields.

The processes run against an in-test emulator (Gemini and OpenAI routes) with cheap ``plain``
images, as in test_crash.py.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import filelock
import pytest

from imagegen import journal as journal_mod
from imagegen.emulator import Emulator
from imagegen.sources.specs import load_root
from imagegen.sources.specs.update import lock_path

from .cli_helpers import SESSIONS, Proc, load, prompt_of, spawn, wait_for, whole_lines
from .specs_tree import (
    CHAPTER_1_FILE,
    FILES,
    PENDING,
    assert_only_output_fields,
    calls,
    make_tree,
    recorded,
    texts,
)

pytestmark = pytest.mark.slow

RUN = ("--concurrency", "3", "--min-interval", "0", "--plain")
LATENCY = 0.05
OPENAI_KEY = "sk-test-" + "0123456789abcdefcrash"


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    with Emulator(render="plain", latency=LATENCY) as emulator:
        # spawn() passes the test's environment on: the OpenAI tasks reach the emulator too.
        monkeypatch.setenv("OPENAI_BASE_URL", emulator.base_url + "/v1")
        monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
        yield emulator


def sessions(cwd: Path) -> list[str]:
    return journal_mod.list_sessions(cwd / SESSIONS)


def test_a_crash_between_the_image_and_its_spec_update_is_finished_by_resume_without_a_call(
    tmp_path: Path, emu: Emulator
) -> None:
    root = make_tree(tmp_path / "specs")
    before = texts(root)
    argv = ("specs", "specs", "chapters", "--only", "dawn", *RUN)
    # Holding the spec's lock stops the process inside its update, after the image is saved
    # and journaled: the kill lands exactly between the two.
    held = filelock.FileLock(str(lock_path(root / CHAPTER_1_FILE)))
    held.acquire()
    proc = spawn(tmp_path, emu, *argv)
    try:

        def waiting_to_record() -> bool:
            ids = sessions(tmp_path)
            if not ids:
                return False
            jobs = journal_mod.load(tmp_path / SESSIONS, ids[0]).jobs.values()
            return len(jobs) == 3 and all(js.delivery == "pending" for js in jobs)

        wait_for(waiting_to_record, 60, "three images saved, their spec update pending", proc)
        proc.popen.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        proc.stop()
        held.release()
    (sid,) = sessions(tmp_path)
    assert texts(root) == before  # not a byte written: the update never started
    made = calls(emu)
    assert sum(made.values()) == 3
    for name in ("dawn-quay", "dawn-road", "dawn-osk"):
        assert (root / f"generated/chapters/dawn/{name}.png").is_file()

    # Starting the same batch again would not pay twice: it is refused, naming the session.
    again = spawn(tmp_path, emu, *argv)
    try:
        assert again.wait(timeout=60) == 2
        assert f"--resume {sid}" in again.output()
    finally:
        again.stop()
    resume = spawn(tmp_path, emu, "--resume", sid, *RUN)
    try:
        assert resume.wait(timeout=60) == 0, resume.output()
    finally:
        resume.stop()
    assert calls(emu) == made  # finished from the journal, no new call
    for name in FILES:
        assert_only_output_fields(before[name], (root / name).read_text(encoding="utf-8"))
    now = recorded(root)
    for task in ("dawn-quay", "dawn-road", "dawn-osk"):
        assert now[task] == [f"generated/chapters/dawn/{task}.png"]
    doc = load(tmp_path, sid)
    assert [j["delivery"] for j in doc["jobs"]] == ["done"] * 3


# Where each process dies: after this many new event-log lines and then, for the modes other
# than "lines", at the moment the mode describes.
#   lines     any moment
#   running   right after a job's "running" line (its call is starting)
#   saved     right after a "completed" line whose spec update has not been journaled yet
#   spec      right after a spec file changed on disk (an update was just written)
MODES = ("lines", "running", "saved", "spec")


def _trigger(
    cwd: Path, root: Path, sid: str | None, mode: str, lines: int, start: int, specs: float
) -> bool:
    if sid is None:
        return False
    events = whole_lines(journal_mod.events_path(cwd / SESSIONS, sid))
    if len(events) < start + lines:
        return False
    last = events[-1].get("set", {})
    if mode == "running":
        return bool(last.get("status") == "running")
    if mode == "saved":
        return bool(last.get("delivery") == "pending")
    if mode == "spec":
        return _latest_spec_change(root) > specs
    return True


def _latest_spec_change(root: Path) -> float:
    return max((root / name).stat().st_mtime_ns for name in FILES if "characters" not in name)


def _kill_when(
    proc: Proc, cwd: Path, root: Path, sid: str | None, mode: str, lines: int
) -> tuple[int | None, str | None]:
    """Poll every millisecond; SIGKILL at the trigger. Returns (exit code or None, session)."""
    start = len(whole_lines(journal_mod.events_path(cwd / SESSIONS, sid))) if sid else 0
    specs = _latest_spec_change(root)
    deadline = time.monotonic() + 60
    while proc.poll() is None:
        if sid is None and (ids := sessions(cwd)):
            sid = ids[0]
        if _trigger(cwd, root, sid, mode, lines, start, specs):
            proc.popen.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            time.sleep(LATENCY + 0.2)  # calls the dead process left in flight are answered
            return None, sid
        if time.monotonic() > deadline:
            proc.stop()
            pytest.fail(f"process did not finish or reach its kill point:\n{proc.output()}")
        time.sleep(0.001)
    return proc.poll(), sid or (sessions(cwd) or [None])[0]


def test_sigkill_at_random_points_never_breaks_a_spec_and_each_item_is_made_once(
    tmp_path: Path, emu: Emulator
) -> None:
    """The rule on calls is test_crash.py's: a job `running` in the journal at a kill may be
    generated once more per such kill; any other job exactly once. Every spec parses after
    every kill, and at the end each pending item is recorded exactly once."""
    root = make_tree(tmp_path / "specs")
    before = texts(root)
    rng = random.Random(int(os.environ.get("SPECS_CRASH_SEED", "5")))
    plans = [(rng.choice(MODES), rng.randint(0, 4)) for _ in range(12)]
    sid: str | None = None
    running_at_kill: Counter[str] = Counter()
    kills, code, modes = 0, None, []
    for plan in [*plans, None, None]:
        argv = ("specs", "specs", *RUN) if sid is None else ("--resume", sid, *RUN)
        proc = spawn(tmp_path, emu, *argv)
        try:
            mode, lines = plan if plan else ("never", 10**9)
            code, sid = _kill_when(proc, tmp_path, root, sid, mode, lines)
        finally:
            proc.stop()
        if code is not None:
            assert code == 0, proc.output()
            break
        kills += 1
        modes.append(mode)
        load_root(root)  # every spec still parses and validates
        if sid is not None:
            state = journal_mod.load(tmp_path / SESSIONS, sid)
            running_at_kill.update(
                js.job.title for js in state.jobs.values() if js.status == "running"
            )
    assert code == 0, "no resume finished"
    assert sid is not None and sessions(tmp_path) == [sid]
    doc = load(tmp_path, sid)
    made = calls(emu)
    for job in doc["jobs"]:
        count = made[prompt_of(doc, job)]
        assert 1 <= count <= 1 + running_at_kill[job["title"]], (job["title"], count)
        assert (job["status"], job["delivery"]) == ("completed", "done"), job["title"]
    assert sorted(j["title"] for j in doc["jobs"]) == sorted(PENDING)
    now = recorded(root)
    for task in PENDING:
        assert len(now[task]) == 1, (task, now[task])  # recorded exactly once
    for name in FILES:
        assert_only_output_fields(before[name], (root / name).read_text(encoding="utf-8"))
    twice = {t: n for t, n in Counter(running_at_kill).items() if n}
    print(f"{kills} kills ({', '.join(modes)}); running at a kill: {twice or 'none'}")
    assert kills >= 5, f"only {kills} kills landed"
    # And a new run of the same command finds nothing to do.
    proc = spawn(tmp_path, emu, "specs", "specs", *RUN)
    try:
        assert proc.wait(timeout=60) == 0
        assert "Nothing to generate" in proc.output()
    finally:
        proc.stop()
    assert calls(emu) == made

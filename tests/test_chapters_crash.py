"""SIGKILL ``imagegen chapters`` at many points, then ``--resume`` until it finishes: after each
kill the manifest and provenance claim no image that is not on disk; at the end they match
the disk exactly, and no chapter was paid for twice without need.

Real processes against an in-test emulator (latency 50 ms), as ``tests/test_crash.py`` does for
combos. An episode of every visual type and a null image_prompt; kill points: after some event
lines, right after a job's ``running`` line, right after the emulator answered a call the
journal has not recorded yet, right after a chapter image appeared that the manifest does not
claim yet, and right after an image was journaled but before its after-save step ran.
"""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from imagegen import journal as journal_mod
from imagegen.emulator import Emulator

from .chapters_helpers import chapter, write_episode
from .cli_helpers import SESSIONS, Proc, load, prompt_of, spawn, whole_lines

pytestmark = pytest.mark.slow

RUN = ("--concurrency", "3", "--min-interval", "0", "--plain")
FIRST = ("--image-size", "320x180")  # small placeholders: the stage's option, not --resume's
LATENCY = 0.05
EPISODE = Path("ep")

# (mode, lines): once the log has grown by `lines` lines in this process and, for the modes
# other than "lines", the moment the mode describes (module docstring).
KILLS = [
    ("lines", 2),
    ("running", 2),
    ("answered", 2),
    ("file", 2),
    ("saved", 2),
    ("lines", 4),
    ("running", 3),
    ("answered", 3),
    ("file", 3),
    ("saved", 3),
    ("running", 4),
    ("answered", 2),
    ("file", 2),
    ("saved", 2),
    ("lines", 3),
]


def chapters() -> list[dict[str, Any]]:
    out = [chapter("ch01", "title_card", title="Giriş", image_prompt=None)]
    out += [
        chapter(f"ch{i:02d}", kind, image_prompt=f"Picture number {i} of the lesson")
        for i, kind in zip(range(2, 14), ["diagram", "b_roll", "screen_share"] * 4, strict=True)
    ]
    out.append(chapter("ch14", "b_roll", image_prompt=None, description="miners at dawn"))
    out.append(chapter("ch15", "talking_head", title="Özet", image_prompt=None))
    return out


@dataclass
class Run:
    root: Path
    emu: Emulator
    sid: str | None = None
    running_at_kill: Counter[str] = field(default_factory=Counter)
    completed_at_kill: list[dict[str, int]] = field(default_factory=list)
    kills: list[str] = field(default_factory=list)

    @property
    def log(self) -> Path:
        assert self.sid is not None
        return journal_mod.events_path(self.root / SESSIONS, self.sid)

    def find_session(self) -> bool:
        if self.sid is None:
            ids = journal_mod.list_sessions(self.root / SESSIONS)
            self.sid = ids[0] if ids else None
        return self.sid is not None


def _claimed(folder: Path, name: str) -> set[str]:
    """Images a JSON file of the episode claims (manifest or provenance); empty if absent."""
    try:
        doc = json.loads((folder / name).read_text("utf-8"))
    except FileNotFoundError:
        return set()
    if "images" in doc:
        return {e["file_path"] for e in doc["images"] if e["status"] == "ok"}
    return set(doc["output_files"][1:])


def _on_disk(folder: Path) -> set[str]:
    images = folder / "images"
    if not images.is_dir():
        return set()
    return {
        f"images/{p.name}"
        for p in images.glob("*.png")
        if ".replaced-" not in p.name and not p.name.startswith(".")
    }


def _trigger(run: Run, mode: str, lines: int, start_lines: int, start: Counter[str]) -> bool:
    if not run.find_session():
        return False
    events = whole_lines(run.log)
    if len(events) < start_lines + lines:
        return False
    if mode == "lines":
        return True
    last = events[-1]
    if mode == "running":
        return last.get("set", {}).get("status") == "running"
    if mode == "saved":  # journaled completed, the after-save step not yet done
        return last.get("set", {}).get("delivery") == "pending"
    create = events[0]["create"]
    done = {
        e["job"] for e in events if "job" in e and e.get("set", {}).get("status") == "completed"
    }
    if mode == "answered":
        generated = run.emu.generated
        return any(
            generated[prompt_of(create, job)] > start[prompt_of(create, job)]
            and job["id"] not in done
            for job in create["jobs"]
        )
    assert mode == "file"
    folder = run.root / EPISODE
    return bool(_on_disk(folder) - _claimed(folder, "images/manifest.json"))


def _after_kill(run: Run) -> None:
    time.sleep(LATENCY + 0.25)  # calls the dead process left in the emulator are answered
    folder = run.root / EPISODE
    on_disk = _on_disk(folder)
    manifest = _claimed(folder, "images/manifest.json")
    prov = _claimed(folder, "provenance/imagegen_provenance.json")
    # At any instant: nothing claimed that is not there, the provenance never ahead.
    assert manifest <= on_disk, manifest - on_disk
    assert prov <= on_disk, prov - on_disk
    assert run.sid is not None
    doc = load(run.root, run.sid)
    generated = run.emu.generated
    run.running_at_kill.update(j["id"] for j in doc["jobs"] if j["status"] == "running")
    run.completed_at_kill.append(
        {j["id"]: generated[prompt_of(doc, j)] for j in doc["jobs"] if j["status"] == "completed"}
    )


def _run_until_killed(run: Run, proc: Proc, mode: str | None, lines: int) -> int | None:
    start_lines = len(whole_lines(run.log)) if run.sid else 0
    start = run.emu.generated
    deadline = time.monotonic() + 60
    while proc.poll() is None:
        if mode is not None and _trigger(run, mode, lines, start_lines, start):
            proc.popen.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            run.kills.append(mode)
            _after_kill(run)
            return None
        if time.monotonic() > deadline:
            proc.stop()
            pytest.fail(f"process did not finish or reach its kill point:\n{proc.output()}")
        time.sleep(0.001)
    return proc.poll()


def test_sigkill_at_many_points_then_resume_leaves_files_true_and_pays_once(
    tmp_path: Path,
) -> None:
    write_episode(tmp_path / EPISODE, chapters(), episode_id="crash-ep")
    with Emulator(render="plain", latency=LATENCY) as emu:
        run = Run(tmp_path, emu)
        code: int | None = None
        for n, plan in enumerate([*KILLS, None, None]):
            argv = (
                ("chapters", str(EPISODE), *FIRST, *RUN)
                if n == 0
                else ("--resume", str(run.sid), *RUN)
            )
            proc = spawn(tmp_path, emu, *argv)
            try:
                mode, lines = plan if plan else (None, 0)
                code = _run_until_killed(run, proc, mode, lines)
            finally:
                proc.stop()
            if code is not None:
                assert code == 0, proc.output()
                break
        assert code == 0, "no resume finished"
        generated = emu.generated
        written = emu.written

    folder = tmp_path / EPISODE
    doc = load(tmp_path, str(run.sid))
    assert doc["state"] == "finished" and doc["summary"]["completed"] == 15
    assert {j["delivery"] for j in doc["jobs"]} == {"done"}
    manifest = json.loads((folder / "images" / "manifest.json").read_text("utf-8"))
    assert manifest["status"] == "complete" and len(manifest["images"]) == 15
    for entry in manifest["images"]:
        assert (folder / entry["file_path"]).stat().st_size == entry["size_bytes"]
    on_disk = _on_disk(folder)
    assert _claimed(folder, "images/manifest.json") == on_disk
    assert _claimed(folder, "provenance/imagegen_provenance.json") == on_disk
    assert len(on_disk) == 15
    # Paid once: a job is generated again only if a kill found it running (its answer may have
    # been lost), and never after a kill found it completed. Placeholders cost nothing.
    for job in doc["jobs"]:
        if job["provider"] == "placeholder":
            continue
        count = generated[prompt_of(doc, job)]
        assert 1 <= count <= 1 + run.running_at_kill[job["id"]], (job["id"], count)
    for seen in run.completed_at_kill:
        for job_id, count in seen.items():
            job = next(j for j in doc["jobs"] if j["id"] == job_id)
            assert generated[prompt_of(doc, job)] == count, f"{job_id} was paid again"
    assert sum(written.values()) == 1  # ch14's prompt, written while planning, once
    assert len(run.kills) == len(KILLS), run.kills
    print(f"kills: {run.kills}; running at a kill: {dict(run.running_at_kill)}")

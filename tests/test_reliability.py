"""Reliability, round two (issue 11): a paid image is never thrown away, nothing passes the
budget, and every failure a hostile user can cause ends in one line and a documented code.

Each test names the issue's item it holds. Real file systems where it matters: a tiny tmpfs
for a full disk and a read-only mount (these need root, as on CI; they skip otherwise).
"""

from __future__ import annotations

import errno
import importlib
import inspect
import os
import signal
import subprocess
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
from PIL import Image

from imagegen.emulator import Emulator, Outcome
from imagegen.journal import Journal

from .cli_helpers import (
    FAST,
    RESULTS,
    SESSIONS,
    image_size,
    load,
    only_session,
    prompt_of,
    run_cli,
    session_ids,
    spawn,
    use_emulator,
)
from .conftest import Workspace, write_image, write_prompt

TINY = ["--wardrobe", "zip-hoodie", "--catalogs", "v1.0"]  # 3 combos x 2 prompts = 6 jobs


@pytest.fixture
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_GEMINI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.fixture
def ws(workspace: Workspace, cwd: Path) -> Workspace:
    for txt in workspace.combos.rglob("wardrobe.txt"):  # one prompt text per job
        txt.write_text(f"Zip hoodie of combo {txt.parent.name}\n", encoding="utf-8")
    return workspace


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch, cwd: Path) -> Iterator[Emulator]:
    with Emulator(render="plain") as emulator:
        use_emulator(monkeypatch, emulator)
        yield emulator


def pngs_in(folder: Path) -> list[Path]:
    """Every visible .png under ``folder`` (temporary files are hidden dot files)."""
    return sorted(p for p in folder.rglob("*.png") if not p.name.startswith("."))


def paid(emu: Emulator) -> int:
    return sum(emu.generated.values())


@contextmanager
def mounted(path: Path, options: str) -> Iterator[Path]:
    """A tmpfs at ``path`` with mount ``options``; skips the test where mounting is refused."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip()}): needs root")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


# -- 1. nowhere to save the image --------------------------------------------------------------


def test_1_output_that_is_a_file_stops_before_paying_and_resume_finishes(
    ws: Workspace, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    (ws.root / "outfile").write_text("not a folder")
    r = run_cli(capsys, *TINY, "--output", "outfile", *FAST)
    assert r.code == 3, r.out + r.err
    assert paid(emu) == 0
    text = " ".join(r.out.split())
    assert "outfile is a file, not a folder" in text and "nothing was paid" in text
    sid = only_session(ws.root)
    (ws.root / "outfile").unlink()
    r = run_cli(capsys, "--resume", sid, *FAST)
    assert r.code == 0, r.out + r.err
    assert paid(emu) == 6 and len(pngs_in(ws.root / "outfile")) == 6


def test_1_read_only_output_stops_before_paying(
    ws: Workspace, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    with mounted(ws.root / "ro", "ro,size=1m") as ro:
        r = run_cli(capsys, *TINY, "--output", str(ro), *FAST)
        assert r.code == 3, r.out + r.err
        assert "read-only file system" in " ".join(r.out.split())
        assert paid(emu) == 0


def test_1_a_full_disk_loses_no_paid_image_and_resume_needs_no_second_call(
    ws: Workspace, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 3 MB disk: every image the service made is on disk or kept, never thrown away;
    with room again, resume completes the rest and nothing is paid twice."""
    with mounted(ws.root / "small", "size=3m") as small:
        # Noise, so each PNG is big: 3 MB holds about two 1K images.
        r = run_cli(capsys, *TINY, "--output", str(small), *FAST)
        assert r.code == 3, r.out + r.err
        sid = only_session(ws.root)
        doc = load(ws.root, sid)
        saved = [j for j in doc["jobs"] if j["status"] == "completed"]
        kept = [j for j in doc["jobs"] if j["kept"]]
        assert paid(emu) == len(saved) + len(kept)  # every paid image is somewhere
        for job in saved:
            assert image_size(job["output"]) == (1024, 1024)
        for job in kept:
            assert Path(job["kept"]).is_file()
        subprocess.run(["mount", "-o", "remount,size=64m", str(small)], check=True)
        r = run_cli(capsys, "--resume", sid, *FAST)
        assert r.code == 0, r.out + r.err
        doc = load(ws.root, sid)
        assert {j["status"] for j in doc["jobs"]} == {"completed"}
        assert paid(emu) == 6  # one call per job, in all
        assert all(emu.generated[prompt_of(doc, j)] == 1 for j in doc["jobs"])
        assert len(pngs_in(small)) == 6


def test_1_a_very_long_prompt_name_fits_the_file_system(
    ws: Workspace, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """A legal 235-character prompt file name with no "_": the output name is cut to fit."""
    name = "A" * 235
    write_prompt(ws.catalogs / "catalog_v9.0" / f"{name}.md", "A long name.\n")
    r = run_cli(capsys, "--wardrobe", "zip-hoodie", "--catalogs", "v9.0", *FAST)
    assert r.code == 0, r.out + r.err
    outputs = pngs_in(ws.root / RESULTS)
    assert len(outputs) == 3
    for path in outputs:
        assert len(os.fsencode(path.name)) <= 255 and image_size(path) == (1024, 1024)
    assert len({p.name for p in outputs}) == 1 or len({p.parent for p in outputs}) == 3


# -- 2. two jobs for one image ---------------------------------------------------------------


def test_2_a_catalog_combo_or_wardrobe_named_twice_is_one_job(
    ws: Workspace, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    r = run_cli(
        capsys,
        "--wardrobe",
        "zip-hoodie,Hoodie_combo",
        "--catalogs",
        "v1.0,1.0,catalog_v1.0",
        "--combos",
        "C-U-009,C-U-009,C-U-000",
        *FAST,
    )
    assert r.code == 0, r.out + r.err
    doc = load(ws.root, only_session(ws.root))
    assert len(doc["jobs"]) == 4  # 2 combos x 2 prompts
    assert paid(emu) == 4 and len(pngs_in(ws.root / RESULTS)) == 4


# -- 5. a full journal disk -------------------------------------------------------------------


def test_5_a_full_journal_disk_is_one_line_exit_3_and_resume_works(
    ws: Workspace,
    emu: Emulator,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from imagegen.journal import writer

    real = writer.Journal._append_sync
    calls = {"n": 0}

    def full(self: Journal, data: bytes) -> None:
        calls["n"] += 1
        if calls["n"] > 4:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(self, data)

    monkeypatch.setattr(writer.Journal, "_append_sync", full)
    r = run_cli(capsys, *TINY, *FAST)
    assert r.code == 3
    assert len(r.err_lines) == 1 and "cannot write the journal" in r.err
    assert "No space left on device" in r.err and "--resume" in r.err
    monkeypatch.setattr(writer.Journal, "_append_sync", real)
    sid = only_session(ws.root)
    r = run_cli(capsys, "--resume", sid, *FAST)
    assert r.code == 0, r.out + r.err
    doc = load(ws.root, sid)
    assert {j["status"] for j in doc["jobs"]} == {"completed"}
    # Images saved while the journal was failing were adopted, not paid again.
    assert len(pngs_in(ws.root / RESULTS)) == 6


# -- 6. the key near the cut -----------------------------------------------------------------


def test_6_a_key_echoed_near_the_message_cut_leaves_no_part_of_it_anywhere(
    ws: Workspace,
    emu: Emulator,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = "AIza" + "Sy" + "Q" * 16 + "nearTheCut" + "x" * 7  # 39 characters, key-shaped
    monkeypatch.setenv("GEMINI_API_KEY", key)
    # The service's message puts the key across the 400-character cut.
    message = "x" * 380 + f" key={key} " + "y" * 40
    emu.enqueue(Outcome.error(400, message=message), match="combo C-U-009")
    r = run_cli(capsys, *TINY, *FAST)
    assert r.code == 1
    sid = only_session(ws.root)
    written = [r.out, r.err]
    for path in (ws.root / SESSIONS).rglob("*"):
        if path.is_file() and path.suffix in (".json", ".jsonl", ".html"):
            written.append(path.read_text(encoding="utf-8"))
    for part in (key[i : i + 8] for i in range(len(key) - 7)):
        for text in written:
            assert part not in text, part
    failed = [j for j in load(ws.root, sid)["jobs"] if j["status"] == "failed"]
    assert failed and all("***" in j["error"] for j in failed)


# -- 7. two images in one answer --------------------------------------------------------------


@pytest.mark.parametrize(
    ("outcome", "note"),
    [
        (Outcome.image_then_small(), "kept the one of the requested size"),
        (Outcome.thought_only(), "marked thought"),
    ],
)
def test_7_the_image_that_answers_the_request_is_kept(
    ws: Workspace,
    emu: Emulator,
    capsys: pytest.CaptureFixture[str],
    outcome: Outcome,
    note: str,
) -> None:
    emu.enqueue(outcome, match="combo C-U-009")
    r = run_cli(capsys, *TINY, "--combos", "C-U-009", "--prompts", "GN01", *FAST)
    assert r.code == 0, r.out + r.err
    job = load(ws.root, only_session(ws.root))["jobs"][0]
    assert job["status"] == "completed" and image_size(job["output"]) == (1024, 1024)
    assert job["image"]["size_ok"] is True and note in (job["error"] or "")


def test_13_a_jpeg_answer_is_saved_and_recorded_as_png(
    ws: Workspace, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    emu.enqueue(Outcome.jpeg(), match="combo C-U-009")
    r = run_cli(capsys, *TINY, "--combos", "C-U-009", "--prompts", "GN01", *FAST)
    assert r.code == 0, r.out + r.err
    job = load(ws.root, only_session(ws.root))["jobs"][0]
    assert job["image"]["format"] == "PNG"
    with Image.open(job["output"]) as img:
        assert img.format == "PNG"


# -- 8. retry after a crash or a batch stop -----------------------------------------------------


def test_8_retry_after_a_batch_stop_says_what_stays_pending(
    ws: Workspace, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    emu.enqueue(Outcome.finish("IMAGE_SAFETY"), match="combo C-U-000")
    emu.enqueue(Outcome.error(403), match="combo C-U-001")
    r = run_cli(capsys, *TINY, "--concurrency", "1", *FAST)
    assert r.code == 3, r.out + r.err
    sid = only_session(ws.root)
    before = load(ws.root, sid)["summary"]
    assert before["failed"] >= 1 and before["pending"] >= 1
    r = run_cli(capsys, "--retry", sid, *FAST)
    text = " ".join(r.out.split())
    after = load(ws.root, sid)["summary"]
    assert after["failed"] == 0 and after["pending"] == before["pending"]
    assert r.code == 1, text
    assert f"{before['pending']} job(s) still to run" in text and f"--resume {sid}" in text
    assert "All" not in text
    state = load(ws.root, sid)
    assert state["state"] == "finished"  # this run ended; the session still has work
    r = run_cli(capsys, "--resume", sid, *FAST)
    assert r.code == 0 and load(ws.root, sid)["summary"]["completed"] == 6


def test_8_retry_after_a_crash_recovers_interrupted_jobs_first(
    ws: Workspace, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    from .test_cli import _edit_journal

    emu.enqueue(Outcome.finish("IMAGE_SAFETY"), match="combo C-U-000")
    assert run_cli(capsys, *TINY, *FAST).code == 1
    sid = only_session(ws.root)
    done = next(j for j in load(ws.root, sid)["jobs"] if j["status"] == "completed")
    # A crash during another call of this job: `running`, nothing written.
    _edit_journal(
        ws.root / SESSIONS,
        sid,
        {done["id"]: {"status": "running", "attempts": 2, "output": done["output"] + ".x"}},
        state="running",
    )
    r = run_cli(capsys, "--retry", sid, *FAST)
    text = " ".join(r.out.split())
    doc = load(ws.root, sid)
    statuses = {j["id"]: j["status"] for j in doc["jobs"]}
    assert "running" not in statuses.values()  # recovered as resume does
    assert statuses[done["id"]] == "pending" and list(statuses.values()).count("completed") == 5
    assert r.code == 1 and "1 job(s) still to run" in text and f"--resume {sid}" in text
    r = run_cli(capsys, "--resume", sid, *FAST)
    assert r.code == 0 and "All 6 jobs completed" in " ".join(r.out.split())


# -- 9. a journal edited by hand --------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (lambda d: d["jobs"][1].update(status="banana"), "job 002: status 'banana'"),
        (lambda d: d["jobs"][0].update(status=None), "job 001: status None"),
        (
            lambda d: (d["jobs"].pop(3), d["summary"].update(total=5)),
            "job 004 is missing from it",
        ),
    ],
)
def test_9_a_hand_edited_journal_is_one_line_exit_2_for_every_verb(
    ws: Workspace, emu: Emulator, capsys: pytest.CaptureFixture[str], edit: object, needle: str
) -> None:
    assert run_cli(capsys, *TINY, *FAST).code == 0
    sid = only_session(ws.root)
    snap = ws.root / SESSIONS / f"{sid}-session.json"
    doc = orjson.loads(snap.read_bytes())
    edit(doc)  # type: ignore[operator]
    snap.write_bytes(orjson.dumps(doc))
    for argv in (["--status", sid], ["--resume", sid, *FAST], ["--retry", sid], ["--report", sid]):
        r = run_cli(capsys, *argv)
        assert r.code == 2, (argv, r.out, r.err)
        assert len(r.err_lines) == 1 and needle in r.err, (argv, r.err)
    assert not (ws.root / SESSIONS / f"{sid}.lock").read_bytes()  # nothing new written


# -- 10. bad references at planning ------------------------------------------------------------


def _bomb_png(path: Path) -> None:
    """A tiny PNG whose header claims 100000 x 100000 pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")
        )

    ihdr = (100_000).to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("spoil", "needle"),
    [
        (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "not a whole"),
        (_bomb_png, "too large for a reference image"),
        (
            lambda p: (p.unlink(), p.symlink_to(p.with_name("gone.jpg"))),
            "symbolic link to a missing",
        ),
    ],
)
def test_10_a_bad_reference_is_refused_at_planning(
    ws: Workspace, emu: Emulator, capsys: pytest.CaptureFixture[str], spoil: object, needle: str
) -> None:
    folder = ws.combos / "Hoodie_combo" / "Orange_UI_Combos" / "C-U-009"
    ref = folder / "wardrobe.png"
    if needle == "not a whole":  # a truncated JPEG: the kind the old check let through
        ref = write_image(folder / "ui.jpg", (320, 240), "JPEG")
    spoil(ref)  # type: ignore[operator]
    r = run_cli(capsys, *TINY, *FAST)
    assert r.code == 2, r.out + r.err
    assert len(r.err_lines) == 1 and needle in r.err and "C-U-009" in r.err
    assert paid(emu) == 0 and not session_ids(ws.root)


# -- 12. exit codes and messages -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--concurrency", "0"], "--concurrency must be between 1 and 64, not 0"),
        (["--quality", "8K"], "--quality must be one of 1K, 2K, 4K, not '8K'"),
        (["--timeout", "-5"], "--timeout must be > 0 seconds"),
    ],
)
def test_12_a_bad_option_value_is_one_line_exit_2(
    cwd: Path, capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    r = run_cli(capsys, *TINY, *argv)
    assert r.code == 2 and len(r.err_lines) == 1 and needle in r.err, r.err


def test_12_a_read_only_sessions_folder_is_one_line_and_names_no_session(
    ws: Workspace, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    with mounted(ws.root / "rosessions", "ro,size=1m") as ro:
        r = run_cli(capsys, *TINY, "--sessions-dir", str(ro), *FAST)
    assert r.code == 2 and len(r.err_lines) == 1
    assert "cannot create a session" in r.err and "--resume" not in r.err
    assert paid(emu) == 0


@pytest.mark.parametrize("source", ["shots", "chapters", "specs"])
def test_12_a_path_the_planner_cannot_read_is_one_line_exit_2_without_a_resume_hint(
    cwd: Path, capsys: pytest.CaptureFixture[str], source: str
) -> None:
    """An OSError while a source reads its inputs (here a name over the file system's limit)
    is not "cannot write ...; continue with --resume SESSION_ID": no session exists."""
    too_long = "q" * 300
    argv = {
        "shots": ["shots", "--all", "--shots-root", too_long],
        "chapters": ["chapters", too_long],
        "specs": ["specs", too_long],
    }[source]
    r = run_cli(capsys, *argv, "--offline")
    assert r.code == 2 and len(r.err_lines) == 1, r.err
    assert "File name too long" in r.err and "nothing was started" in r.err
    assert "--resume" not in r.err and not (cwd / SESSIONS).exists()


@pytest.mark.parametrize(
    "verb",
    [["--status"], ["--resume"], ["--retry"], ["--report"], ["--upgrade", "--to-quality", "2K"]],
)
@pytest.mark.parametrize("session_id", ["q" * 300, "../../etc/passwd"])
def test_12_a_session_id_that_is_a_path_or_too_long_is_no_session(
    cwd: Path, capsys: pytest.CaptureFixture[str], verb: list[str], session_id: str
) -> None:
    """Not 'cannot write sessions/...-session.json: File name too long ... continue with
    --resume' (exit 3) for a session id typed wrong."""
    (cwd / SESSIONS).mkdir()  # the sessions of earlier runs are there
    r = run_cli(capsys, verb[0], session_id, *verb[1:])
    assert r.code == 2 and len(r.err_lines) == 1, r.err
    assert "no session" in r.err and "see imagegen --status" in r.err
    assert not list((cwd / SESSIONS).iterdir())


def test_12_a_sessions_folder_that_cannot_be_read_is_named(
    cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in (["--status"], ["--status", "2026-01-01-00-00-00"]):
        r = run_cli(capsys, *argv, "--sessions-dir", "q" * 300)
        assert r.code == 2 and len(r.err_lines) == 1, r.err
        assert "cannot read the sessions folder" in r.err and "--sessions-dir" in r.err


def test_12_two_starts_in_the_same_second_get_two_sessions(ws: Workspace, emu: Emulator) -> None:
    procs = [spawn(ws.root, emu, *TINY, *FAST, "--new") for _ in range(2)]
    codes = [p.wait(timeout=60) for p in procs]
    assert codes == [0, 0], [p.output() for p in procs]
    assert len(session_ids(ws.root)) == 2


def test_12_a_reader_that_goes_away_does_not_break_the_run(ws: Workspace, emu: Emulator) -> None:
    """`| head -1`: the run finishes, exits 0 and writes its contact sheet."""
    proc = spawn(ws.root, emu, *TINY, *FAST, pipe_stdout=True)
    assert proc.popen.stdout is not None
    proc.popen.stdout.readline()
    proc.popen.stdout.close()
    assert proc.wait(timeout=60) == 0
    sid = only_session(ws.root)
    assert (ws.root / SESSIONS / f"{sid}-report" / "index.html").is_file()
    assert load(ws.root, sid)["summary"]["completed"] == 6


def _ctrl_c_in(target: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real Ctrl-C (SIGINT, as the terminal sends it) while ``target`` runs, then ``target``
    itself: the run sees it at its next await, as it would between two steps."""
    module, name = target.rsplit(".", 1)
    original = getattr(importlib.import_module(module), name)

    if inspect.iscoroutinefunction(original):

        async def interrupted(*args: Any, **kwargs: Any) -> Any:
            signal.raise_signal(signal.SIGINT)
            return await original(*args, **kwargs)

    else:

        def interrupted(*args: Any, **kwargs: Any) -> Any:
            signal.raise_signal(signal.SIGINT)
            return original(*args, **kwargs)

    monkeypatch.setattr(target, interrupted)


def test_12_ctrl_c_before_the_first_call_leaves_the_session_stopped_and_resumable(
    ws: Workspace,
    emu: Emulator,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The window before the pool's own Ctrl-C handler (providers opened, nothing called): the
    session existed but stayed "new", which --status could not tell from a fresh one."""
    with monkeypatch.context() as patch:
        _ctrl_c_in("imagegen.session.run_jobs", patch)
        r = run_cli(capsys, *TINY, *FAST)
    sid = only_session(ws.root)
    assert r.code == 3, r.out + r.err
    assert f"Continue with: image-gen.sh --resume {sid}" in " ".join(r.out.split())
    doc = load(ws.root, sid)
    assert (doc["state"], doc["stop_reason"], doc["owner"]) == (
        "stopped",
        "interrupted (Ctrl-C)",
        None,
    )
    assert paid(emu) == 0
    with monkeypatch.context() as patch:  # the same window on --resume: still stopped
        _ctrl_c_in("imagegen.session.recover_interrupted", patch)
        r = run_cli(capsys, "--resume", sid, *FAST)
    assert r.code == 3 and f"--resume {sid}" in " ".join(r.out.split()), r.out + r.err
    assert load(ws.root, sid)["state"] == "stopped"
    r = run_cli(capsys, "--resume", sid, *FAST)
    assert r.code == 0, r.out + r.err
    assert load(ws.root, sid)["summary"]["completed"] == 6 and paid(emu) == 6


def test_12_ctrl_c_while_the_contact_sheet_is_written_keeps_the_session_finished(
    ws: Workspace,
    emu: Emulator,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _ctrl_c_in("imagegen.session.write_report", monkeypatch)
    r = run_cli(capsys, *TINY, *FAST)
    sid = only_session(ws.root)
    assert r.code == 130 and f"--report {sid}" in " ".join(r.out.split()), r.out + r.err
    assert "--resume" not in r.out
    doc = load(ws.root, sid)
    assert doc["state"] == "finished" and doc["summary"]["completed"] == 6


# -- 13. durability and size -------------------------------------------------------------------


def test_13_a_huge_prompt_is_stored_once_in_the_journal_and_shortened_in_the_report(
    ws: Workspace, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    big = "A very long brief. " * 270_000  # about 5 MB
    write_prompt(ws.catalogs / "catalog_v5.0" / "BIG01_brief.md", big)
    r = run_cli(capsys, "--wardrobe", "zip-hoodie", "--catalogs", "v5.0", *FAST)
    assert r.code == 0, r.out + r.err
    only_session(ws.root)
    size = sum(
        p.stat().st_size
        for p in (ws.root / SESSIONS).rglob("*")
        if p.is_file() and p.suffix != ".jpg"
    )
    assert size < 3 * len(big), size  # log + snapshot hold it once each; the report a part


def test_13_status_watch_into_a_pipe_prints_as_the_session_runs(
    ws: Workspace, emu: Emulator
) -> None:
    emu.latency = 1.0
    run = spawn(ws.root, emu, *TINY, *FAST)
    try:
        from .cli_helpers import wait_for

        wait_for(lambda: bool(session_ids(ws.root)), 30, "the session to exist", run)
        sid = only_session(ws.root)
        watch = spawn(ws.root, emu, "--status", sid, "--watch", pipe_stdout=True)
        try:
            assert watch.popen.stdout is not None
            first = watch.popen.stdout.readline()
            assert first.strip(), "nothing printed while the session runs"
            assert run.poll() is None  # the block came while the run was still going
            assert run.wait(timeout=60) == 0
            assert watch.wait(timeout=60) == 0
        finally:
            watch.stop()
    finally:
        run.stop()


def test_13_snapshot_temp_files_a_kill_left_are_removed_on_open(
    ws: Workspace, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(capsys, *TINY, *FAST).code == 0
    sid = only_session(ws.root)
    stale = ws.root / SESSIONS / f".{sid}-session.json.4242.tmp"
    stale.write_text("{}")
    assert run_cli(capsys, "--resume", sid, *FAST).code == 0
    assert not stale.exists()


def test_13_a_rename_is_followed_by_a_folder_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from imagegen import files

    synced: list[str] = []
    real = files.fsync_dir
    monkeypatch.setattr(
        files, "fsync_dir", lambda folder: (synced.append(str(folder)), real(folder))
    )
    files.write_atomic(tmp_path / "a" / "x.json", b"{}")
    assert synced == [str(tmp_path / "a")]


def test_11_a_service_that_fails_every_call_stops_the_batch(
    ws: Workspace, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = ws.root / "fast.toml"
    policy.write_text(
        "[retry]\nserver_error_wait = 0.0\njitter = 0.0\nbreaker_pause = 0.0\n"
        "breaker_threshold = 2\nbreaker_trips_to_stop = 2\n"
    )
    for _job in range(30):
        emu.enqueue(*[Outcome.error(500)] * 3, match=None)
    r = run_cli(capsys, *TINY, "--retry-policy", str(policy), "--concurrency", "1", *FAST)
    assert r.code == 3, r.out + r.err
    text = " ".join(r.out.split())
    assert "failed 4 calls in a row with no success" in text and "--resume" in text
    assert emu.requests < 10  # not 6 jobs x 3 attempts

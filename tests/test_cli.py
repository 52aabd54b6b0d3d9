"""End to end through the command line: what a user sees (exit codes, messages, files on disk,
attempts and the session journal), for every verb of seed 003's "CLI Commands".

Most tests call ``imagegen.cli.main`` in-process in a temporary working directory, either with
``--offline`` (the built-in emulator) or against an in-test :class:`Emulator` (``plain``
images) reached through ``GOOGLE_GEMINI_BASE_URL``, which lets a test script failures and count
the calls made per prompt. The session lock and Ctrl-C need real processes.
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest

from imagegen import journal as journal_mod
from imagegen.emulator import Emulator, Outcome
from imagegen.journal import Journal
from imagegen.model import Job, JobUpdate, SessionUpdate
from imagegen.providers import get as provider
from imagegen.sources import RunDefaults
from imagegen.sources.combos import Selection, plan_jobs

from .cli_helpers import (
    FAST,
    OFFLINE,
    RESULTS,
    SAMPLE_CATALOGS,
    SAMPLE_COMBOS,
    SESSIONS,
    by_id,
    image_size,
    load,
    only_session,
    png_file,
    pngs,
    prompt_of,
    run_cli,
    session_ids,
    snapshot,
    spawn,
    truncated_png,
    use_emulator,
    wait_for,
    whole_lines,
)
from .conftest import Workspace

TINY = ("--wardrobe", "zip-hoodie", "--catalogs", "v1.0")  # 6 jobs in the `ws` workspace
TIMESTAMP = r"\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d"


@pytest.fixture
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean working directory and no key in the environment."""
    monkeypatch.chdir(tmp_path)
    for name in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GEMINI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.fixture
def ws(workspace: Workspace, cwd: Path) -> Workspace:
    """conftest's workspace, as the working directory (so the default roots find it), with a
    distinct wardrobe description per combo: every job's prompt text is then unique, and the
    emulator's per-prompt counts are per-job counts."""
    assert workspace.root == cwd
    for txt in workspace.combos.rglob("wardrobe.txt"):
        txt.write_text(f"Zip hoodie of combo {txt.parent.name}\n", encoding="utf-8")
    return workspace


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch, cwd: Path) -> Iterator[Emulator]:
    """An emulator with cheap flat images; runs without --offline reach it with a test key."""
    with Emulator(render="plain") as emulator:
        use_emulator(monkeypatch, emulator)
        yield emulator


def tiny_plan(**kw: Any) -> list[Job]:
    """The plan the CLI makes for TINY (to script outcomes by each job's exact prompt)."""
    args: dict[str, Any] = {"wardrobes": ("zip-hoodie",), "catalogs": ("v1.0",)} | kw
    quality = args.pop("quality", "1K")
    info = provider("gemini")
    return plan_jobs(Selection(**args), RunDefaults(info, info.default_model, quality, "1:1"))


def flat(text: str) -> str:
    """Output with the console's line wrapping undone (it wraps at 80 columns in a pipe)."""
    return " ".join(text.split())


def calls(emu: Emulator, doc: dict[str, Any]) -> dict[str, int]:
    """Images the emulator handed out per job id (prompts are unique per job)."""
    generated = emu.generated
    return {job["id"]: generated[prompt_of(doc, job)] for job in doc["jobs"]}


# -- the sample batch ------------------------------------------------------------------------


def test_sample_batch_offline_writes_36_images_in_the_seed_layout(
    cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Seed 003's example: Orange UI combos with catalogs v3.2 and v4.2 (collage images)."""
    started = time.monotonic()
    r = run_cli(
        capsys,
        *OFFLINE,
        "--wardrobe",
        "zip-hoodie",
        "--ui-style",
        "Orange",
        "--catalogs",
        "v3.2,v4.2",
        "--combos-root",
        str(SAMPLE_COMBOS),
        "--catalogs-root",
        str(SAMPLE_CATALOGS),
    )
    elapsed = time.monotonic() - started
    assert r.code == 0, r.err
    assert "All 36 jobs completed" in r.out
    assert elapsed < 30, f"the sample batch took {elapsed:.1f} s"

    sid = only_session(cwd)
    snap = snapshot(cwd, sid)  # the JSON file itself, as jq reads it
    assert snap["summary"]["total"] == snap["summary"]["completed"] == 36
    assert snap["config"]["wardrobe"] == "zip-hoodie" and snap["config"]["ui_style"] == "Orange"
    assert snap["config"]["catalogs"] == ["v3.2", "v4.2"] and snap["config"]["quality"] == "1K"
    assert snap["state"] == "finished"
    assert load(cwd, sid)["jobs"] == snap["jobs"]  # the snapshot is complete after a clean exit

    files = pngs(cwd)
    assert len(files) == 36
    assert {str(p.relative_to(cwd)) for p in files} == {j["output"] for j in snap["jobs"]}
    assert [j["id"] for j in snap["jobs"]] == [f"{n:03d}" for n in range(1, 37)]
    assert {j["combo"] for j in snap["jobs"]} == {f"C-U-{n:03d}" for n in range(9, 15)}
    assert {j["short_id"] for j in snap["jobs"]} == {"ZH01", "ZH02", "ZH03", "ZH04", "GN01", "GN02"}
    for job in snap["jobs"]:
        assert job["status"] == "completed" and job["attempts"] == 1 and job["error"] is None
        out = Path(job["output"])
        # {wardrobe}/{catalog}/{prompt_id}/{ui_style}/{combo_id}/{timestamp}-{short}-{quality}.png
        assert out.parts[:6] == (
            "Result_images",
            "zip-hoodie",
            job["catalog"],
            job["prompt_id"],
            "Orange",
            job["combo"],
        ), out
        assert re.fullmatch(rf"{TIMESTAMP}-{job['short_id']}-1K\.png", out.name), out
        assert job["catalog"] == ("v3.2" if job["short_id"] in ("ZH01", "ZH02", "GN01") else "v4.2")
        want = (928, 1152) if job["short_id"] == "ZH02" else (1024, 1024)  # ZH02 is 4:5
        assert image_size(out) == want, out
        assert job["image"] == {
            "format": "PNG",
            "width": want[0],
            "height": want[1],
            "size_ok": True,
        }
        assert job["cost_usd"] > 0 and len(job["history"]) == 1


# -- what needs no key, and what fails before anything is written ----------------------------


def test_dry_run_prints_the_job_table_and_cost_needs_no_key_and_writes_nothing(
    cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    r = run_cli(
        capsys,
        "--dry-run",
        "--wardrobe",
        "zip-hoodie",
        "--ui-style",
        "Orange",
        "--catalogs",
        "v3.2,v4.2",
        "--combos-root",
        str(SAMPLE_COMBOS),
        "--catalogs-root",
        str(SAMPLE_CATALOGS),
    )
    assert r.code == 0, r.err
    assert r.err == ""
    assert "36 jobs: 6 combos x 6 prompts" in r.out
    assert "Estimated cost: $" in r.out
    assert "001" in r.out and "036" in r.out and "C-U-014" in r.out
    assert sorted(p.name for p in cwd.iterdir()) == []  # no sessions/, no Result_images/


def test_missing_key_without_offline_exits_2_naming_the_fixes_and_writes_nothing(
    ws: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    before = sorted(p.name for p in ws.root.iterdir())
    r = run_cli(capsys, *TINY, *FAST)
    assert r.code == 2
    assert len(r.err_lines) == 1, r.err
    assert r.err_lines[0].startswith("imagegen: error: ")
    assert "GEMINI_API_KEY" in r.err and "--offline" in r.err
    assert sorted(p.name for p in ws.root.iterdir()) == before


@pytest.mark.parametrize(
    ("argv", "must_say"),
    [
        pytest.param(
            ["--wardrobe", "zip-hoody", "--catalogs", "v1.0"],
            ["unknown wardrobe 'zip-hoody'", "did you mean zip-hoodie"],
            id="wardrobe",
        ),
        pytest.param(
            ["--wardrobe", "zip-hoodie", "--catalogs", "v9.9"],
            ["unknown catalog 'v9.9'"],
            id="catalog",
        ),
        pytest.param(["--quality", "3K"], ["--quality", "'3K'"], id="quality"),
        pytest.param(["--quality", "2k"], ["--quality", "'2k'"], id="quality-lowercase"),
        pytest.param(
            ["--concurrency", "0"], ["--concurrency", "between 1 and 64"], id="concurrency-0"
        ),
        pytest.param(["--rpm", "abc"], ["--rpm", "whole number", "'abc'"], id="rpm-abc"),
        pytest.param(["--min-interval", "-1"], ["--min-interval"], id="min-interval"),
        pytest.param(["--job", "002"], ["--job goes with --retry"], id="job-without-retry"),
    ],
)
def test_bad_input_exits_2_with_one_error_line_and_writes_nothing(
    ws: Workspace, capsys: pytest.CaptureFixture[str], argv: list[str], must_say: list[str]
) -> None:
    if "--wardrobe" not in argv:
        argv = [*argv, "--wardrobe", "zip-hoodie", "--catalogs", "v1.0"]
    r = run_cli(capsys, *OFFLINE, *argv)
    assert r.code == 2
    errors = [line for line in r.err_lines if "error" in line]
    assert len(errors) == 1, r.err
    assert errors[0].startswith("imagegen: error: ")
    assert r.err_lines[-1] == errors[0]  # the error is the last thing said
    for words in must_say:
        assert words in errors[0], errors[0]
    assert "Traceback" not in r.err
    assert not (ws.root / SESSIONS).exists() and not (ws.root / RESULTS).exists()


def test_unknown_wardrobe_is_exactly_one_line_on_stderr(
    ws: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    r = run_cli(capsys, *OFFLINE, "--wardrobe", "zip-hoody", "--catalogs", "v1.0")
    assert r.code == 2
    assert r.err_lines == [r.err.strip()] and len(r.err_lines) == 1, r.err
    assert r.out == ""


# -- resume ----------------------------------------------------------------------------------


def _stopped_session(
    ws: Workspace,
    emu: Emulator,
    capsys: pytest.CaptureFixture[str],
    jobs: list[Job],
    stop_at: str = "003",
) -> str:
    """A 6-job session (concurrency 1) stopped by a 403 on job ``stop_at``: exit 3."""
    emu.enqueue(Outcome.error(403), match=next(j.prompt for j in jobs if j.id == stop_at))
    r = run_cli(capsys, *TINY, *FAST, "--concurrency", "1")
    assert r.code == 3, r.out + r.err
    sid = only_session(ws.root)
    assert f"--resume {sid}" in flat(r.out)  # however the console wrapped the line
    return sid


def test_resume_after_a_batch_stop_runs_only_unfinished_jobs(
    ws: Workspace, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs = tiny_plan()
    assert len(jobs) == 6
    sid = _stopped_session(ws, emu, capsys, jobs)
    doc = load(ws.root, sid)
    assert [j["status"] for j in doc["jobs"]] == ["completed", "completed", *["pending"] * 4]
    assert doc["jobs"][2]["attempts"] == 1 and doc["jobs"][2]["error_kind"] == "batch_stop"
    assert doc["state"] == "stopped" and "403" in doc["stop_reason"]
    assert calls(emu, doc) == {"001": 1, "002": 1, "003": 0, "004": 0, "005": 0, "006": 0}
    first_outputs = {j["id"]: j["output"] for j in doc["jobs"][:2]}

    r = run_cli(capsys, "--resume", sid, *FAST)
    assert r.code == 0, r.out + r.err
    assert "All 6 jobs completed" in r.out
    assert session_ids(ws.root) == [sid]  # resume adds no session
    doc = load(ws.root, sid)
    assert all(j["status"] == "completed" for j in doc["jobs"])
    assert calls(emu, doc) == dict.fromkeys(by_id(doc), 1)  # completed jobs not called again
    assert {j["id"]: j["output"] for j in doc["jobs"][:2]} == first_outputs
    attempts = {j["id"]: j["attempts"] for j in doc["jobs"]}
    assert attempts == {"001": 1, "002": 1, "003": 2, "004": 1, "005": 1, "006": 1}
    job3 = by_id(doc)["003"]
    assert [h["outcome"] for h in job3["history"]] == ["batch_stop", "completed"]
    assert [h["attempt"] for h in job3["history"]] == [1, 2]
    assert job3["error"] is None
    assert sum(len(j["history"]) for j in doc["jobs"]) == sum(attempts.values())
    assert len(pngs(ws.root)) == 6
    assert doc["state"] == "finished" and doc["stop_reason"] is None


def test_same_selection_while_unfinished_exits_2_suggesting_resume_and_new_overrides(
    ws: Workspace, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    sid = _stopped_session(ws, emu, capsys, tiny_plan())
    r = run_cli(capsys, *TINY, *FAST, "--concurrency", "1")
    assert r.code == 2
    assert len(r.err_lines) == 1, r.err
    assert f"--resume {sid}" in r.err and "--new" in r.err
    assert session_ids(ws.root) == [sid]

    # Another selection is not a twin.
    r = run_cli(capsys, "--wardrobe", "zip-hoodie", "--catalogs", "v2.0", *FAST)
    assert r.code == 0, r.out + r.err
    assert len(session_ids(ws.root)) == 2

    r = run_cli(capsys, *TINY, *FAST, "--concurrency", "1", "--new")
    assert r.code == 0, r.out + r.err
    ids = session_ids(ws.root)
    assert len(ids) == 3
    new = next(i for i in ids if i != sid and load(ws.root, i)["config"]["catalogs"] == ["v1.0"])
    assert load(ws.root, new)["summary"]["completed"] == 6
    assert load(ws.root, sid)["summary"]["pending"] == 4  # the first one is left as it was


def test_resume_after_a_crash_adopts_the_images_interrupted_attempts_wrote(
    ws: Workspace, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """A crash leaves jobs ``running``. One whose attempt wrote and fsynced its image (the
    temporary file) is completed without a call, linked to its final name; one with nothing
    written, or a truncated temporary file, is generated again. A file that merely sits at the
    planned name (another session's, a copy) is never taken as this job's result."""
    jobs = tiny_plan()
    sid = _stopped_session(ws, emu, capsys, jobs)
    sessions = ws.root / SESSIONS
    before = load(ws.root, sid)
    entries = by_id(before)

    def planned(jid: str) -> Path:
        return Path(
            entries[jid]["target"]
            .replace("{time}", "2025-01-15-14-30-22")
            .replace("{quality}", "1K")
        )

    def temp(jid: str) -> Path:
        return planned(jid).with_name(f".imagegen-{sid}-{jid}-a1.tmp")

    # What a SIGKILL in the middle of three calls leaves: `running` with their planned outputs.
    whole = png_file(temp("004"), (1024, 1024))  # written and fsynced, not linked yet
    cut = truncated_png(temp("006"), (1024, 1024))  # killed while writing
    foreign = png_file(planned("005"), (1024, 1024))  # not this attempt's: no temp file
    _edit_journal(
        sessions,
        sid,
        {
            jid: {
                "status": "running",
                "attempts": 1,
                "started": "2025-01-15T14:30:22",
                "output": str(planned(jid)),
            }
            for jid in ("004", "005", "006")
        },
        state="running",
    )
    crashed = load(ws.root, sid)
    assert crashed["summary"]["running"] == 3

    r = run_cli(capsys, "--resume", sid, *FAST)
    assert r.code == 0, r.out + r.err
    doc = load(ws.root, sid)
    job = by_id(doc)
    assert all(j["status"] == "completed" for j in doc["jobs"])
    assert calls(emu, doc) == {"001": 1, "002": 1, "003": 1, "004": 0, "005": 1, "006": 1}
    assert job["004"]["output"] == str(planned("004")) and job["004"]["attempts"] == 1
    assert job["004"]["history"][-1]["outcome"] == "adopted after a crash"
    assert job["004"]["image"] == {"format": "PNG", "width": 1024, "height": 1024, "size_ok": True}
    assert job["004"]["cost_usd"] > 0
    assert image_size(job["004"]["output"]) == (1024, 1024) and not whole.exists()
    for jid in ("005", "006"):
        assert job[jid]["attempts"] == 2
        assert image_size(job[jid]["output"]) == (1024, 1024)
    assert job["005"]["output"] != str(foreign) and foreign.exists()
    assert not cut.exists()  # a temporary file that is not a whole image is removed
    assert not list(planned("004").parent.glob(".imagegen-*"))


def _edit_journal(
    sessions: Path, sid: str, changes: dict[str, dict[str, Any]], **session: Any
) -> None:
    """Change jobs through imagegen's own journal writer (as the crashed run would have)."""

    async def edit() -> None:
        with Journal.open(sessions, sid) as journal:
            async with journal.writing():
                for job_id, fields in changes.items():
                    await journal.update(job_id, JobUpdate(**fields))
                if session:
                    await journal.update_session(SessionUpdate(**session))

    anyio.run(edit)


# -- retry -----------------------------------------------------------------------------------


def test_retry_reruns_failed_jobs_or_one_job_and_keeps_old_files(
    ws: Workspace, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs = tiny_plan()
    emu.enqueue(Outcome.error(400), match=jobs[2].prompt)  # 003: bad request, fails at once
    emu.enqueue(Outcome.prompt_blocked(), match=jobs[4].prompt)  # 005: no image, fails
    r = run_cli(capsys, *TINY, *FAST)
    assert r.code == 1, r.out + r.err
    sid = only_session(ws.root)
    assert "2 job(s) failed" in r.out
    doc = load(ws.root, sid)
    assert [j["id"] for j in doc["jobs"] if j["status"] == "failed"] == ["003", "005"]
    assert by_id(doc)["003"]["error_kind"] == "bad_request"
    assert by_id(doc)["005"]["finish_reason"] == "PROMPT_BLOCKED:SAFETY"
    old_002 = by_id(doc)["002"]

    # --retry ID: the failed jobs only.
    r = run_cli(capsys, "--retry", sid, *FAST)
    assert r.code == 0, r.out + r.err
    doc = load(ws.root, sid)
    assert all(j["status"] == "completed" for j in doc["jobs"])
    assert calls(emu, doc) == dict.fromkeys(by_id(doc), 1)
    for jid in ("003", "005"):
        assert by_id(doc)[jid]["attempts"] == 2
        assert [h["outcome"] for h in by_id(doc)[jid]["history"]][-1] == "completed"
    assert by_id(doc)["002"] == old_002

    # --retry ID --job 002 on a completed job: a new file, the old one kept.
    r = run_cli(capsys, "--retry", sid, "--job", "002", *FAST)
    assert r.code == 0, r.out + r.err
    doc = load(ws.root, sid)
    job = by_id(doc)["002"]
    assert job["status"] == "completed" and job["attempts"] == 2
    assert len(job["history"]) == 2 and [h["outcome"] for h in job["history"]] == ["completed"] * 2
    assert job["output"] != old_002["output"]
    assert Path(old_002["output"]).exists() and Path(job["output"]).exists()
    assert [h["output"] for h in job["history"]] == [old_002["output"], job["output"]]
    assert job["cost_usd"] == pytest.approx(2 * old_002["cost_usd"])
    assert calls(emu, doc)["002"] == 2
    assert sum(v for k, v in calls(emu, doc).items() if k != "002") == 5
    assert len(pngs(ws.root)) == 7

    # "--job 2" means 002.
    r = run_cli(capsys, "--retry", sid, "--job", "2", *FAST)
    assert r.code == 0, r.out + r.err
    assert by_id(load(ws.root, sid))["002"]["attempts"] == 3


def test_retry_of_an_unknown_job_exits_2_and_changes_nothing(
    ws: Workspace, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    r = run_cli(capsys, *TINY, *FAST)
    assert r.code == 0, r.out + r.err
    sid = only_session(ws.root)
    before = load(ws.root, sid)
    r = run_cli(capsys, "--retry", sid, "--job", "999", *FAST)
    assert r.code == 2
    assert len(r.err_lines) == 1 and "no job '999'" in r.err, r.err
    assert load(ws.root, sid)["jobs"] == before["jobs"]


def test_retry_without_job_when_nothing_failed_exits_2(
    ws: Workspace, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    r = run_cli(capsys, *TINY, *FAST)
    assert r.code == 0, r.out + r.err
    sid = only_session(ws.root)
    r = run_cli(capsys, "--retry", sid, *FAST)
    assert r.code == 2
    assert len(r.err_lines) == 1 and "no failed jobs" in r.err and "--job" in r.err, r.err


def test_resume_or_retry_of_an_unknown_session_exits_2(
    ws: Workspace, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    for verb in ("--resume", "--retry", "--status", "--upgrade"):
        extra = ["--to-quality", "2K"] if verb == "--upgrade" else []
        r = run_cli(capsys, verb, "2020-01-01-00-00-00", *extra, *FAST)
        assert r.code == 2, verb
        assert len(r.err_lines) == 1 and "no session '2020-01-01-00-00-00'" in r.err, r.err


# -- status ----------------------------------------------------------------------------------


def test_status_lists_shows_and_prints_json_without_a_key(
    ws: Workspace,
    emu: Emulator,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    jobs = tiny_plan()
    sid = _stopped_session(ws, emu, capsys, jobs)
    monkeypatch.delenv("GEMINI_API_KEY")
    monkeypatch.delenv("GOOGLE_GEMINI_BASE_URL")
    monkeypatch.setenv("COLUMNS", "200")  # 80 columns: see the next-but-one test

    r = run_cli(capsys, "--status")
    assert r.code == 0, r.err
    assert sid in r.out
    assert "2/6" in r.out and "stopped" in r.out

    r = run_cli(capsys, "--status", sid)
    assert r.code == 0, r.err
    assert f"[Session: {sid}]" in r.out
    assert "Progress: [" in r.out and "(2/6)" in r.out
    assert "Completed: 2" in r.out and "Failed: 0" in r.out and "Pending: 4" in r.out
    assert "State: stopped" in r.out

    r = run_cli(capsys, "--status", sid, "--json")
    assert r.code == 0, r.err
    data = orjson.loads(r.out)
    assert data["session_id"] == sid and data["state"] == "stopped"
    assert data["summary"]["total"] == 6 and data["summary"]["completed"] == 2
    assert data["summary"]["pending"] == 4 and data["summary"]["failed"] == 0
    assert data["running"] == [] and data["failed"] == []

    r = run_cli(capsys, "--status", "--json")
    assert r.code == 0, r.err
    rows = orjson.loads(r.out)
    assert [row["session_id"] for row in rows] == [sid]
    assert not (ws.root / RESULTS / ".sessions").exists()


def test_status_of_an_empty_folder_says_so(cwd: Path, capsys: pytest.CaptureFixture[str]) -> None:
    r = run_cli(capsys, "--status")
    assert r.code == 0 and "No sessions in sessions" in r.out
    assert not (cwd / SESSIONS).exists()


def test_status_list_shows_whole_session_ids_in_an_80_column_terminal(
    ws: Workspace,
    emu: Emulator,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The id is what every other verb needs: the list must not crop it (it did, with eight
    no_wrap columns, until the compact table of d8b2970)."""
    r = run_cli(capsys, *TINY, *FAST)
    assert r.code == 0, r.out + r.err
    sid = only_session(ws.root)
    monkeypatch.setenv("COLUMNS", "80")
    r = run_cli(capsys, "--status")
    assert sid in r.out, r.out


# -- single and upgrade ----------------------------------------------------------------------


def test_single_makes_a_one_job_session_at_the_asked_quality(
    ws: Workspace, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    r = run_cli(
        capsys,
        "--single",
        "--combo",
        "C-U-000",
        "--prompt",
        "catalog_v1.0/ZH01_unboxing.md",
        "--wardrobe",
        "zip-hoodie",
        "--quality",
        "2K",
        *FAST,
    )
    assert r.code == 0, r.out + r.err
    sid = only_session(ws.root)
    doc = load(ws.root, sid)
    assert len(doc["jobs"]) == 1
    job = doc["jobs"][0]
    assert (job["combo"], job["prompt_id"], job["quality"], job["status"]) == (
        "C-U-000",
        "ZH01_unboxing",
        "2K",
        "completed",
    )
    out = Path(job["output"])
    assert out.parent == Path("Result_images/zip-hoodie/v1.0/ZH01_unboxing/Studio/C-U-000")
    assert re.fullmatch(rf"{TIMESTAMP}-ZH01-2K\.png", out.name)
    assert image_size(out) == (2048, 2048)
    assert pngs(ws.root) == [ws.root / out]

    # A second --single of the same image is a new session, not a twin.
    r = run_cli(
        capsys,
        "--single",
        "--combo",
        "C-U-000",
        "--prompt",
        "catalog_v1.0/ZH01_unboxing.md",
        "--wardrobe",
        "zip-hoodie",
        "--quality",
        "2K",
        *FAST,
    )
    assert r.code == 0, r.out + r.err
    assert len(session_ids(ws.root)) == 2


def test_single_needs_combo_prompt_and_wardrobe(
    ws: Workspace, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    r = run_cli(capsys, "--single", "--combo", "C-U-000", "--wardrobe", "zip-hoodie", *FAST)
    assert r.code == 2 and "--single needs" in r.err
    r = run_cli(
        capsys,
        "--single",
        "--combo",
        "C-U-000",
        "--prompt",
        "ZH01_unboxing.md",
        "--wardrobe",
        "zip-hoodie",
        *FAST,
    )
    assert r.code == 2 and "catalog_vX.Y/NAME.md" in r.err
    assert session_ids(ws.root) == []


def test_upgrade_regenerates_completed_images_from_the_parent_outputs(
    ws: Workspace, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs = tiny_plan()
    emu.enqueue(Outcome.error(400), match=jobs[1].prompt)  # 002 fails: nothing to upgrade
    r = run_cli(capsys, *TINY, *FAST)
    assert r.code == 1, r.out + r.err
    parent_id = only_session(ws.root)
    parent_before = load(ws.root, parent_id)
    completed = [j for j in parent_before["jobs"] if j["status"] == "completed"]
    assert len(completed) == 5

    r = run_cli(capsys, "--upgrade", parent_id, "--to-quality", "2K", *FAST)
    assert r.code == 0, r.out + r.err
    child_id = next(i for i in session_ids(ws.root) if i != parent_id)
    child = load(ws.root, child_id)
    assert child["parent"] == parent_id
    assert child["config"]["quality"] == "2K"
    assert len(child["jobs"]) == 5
    for parent_job, job in zip(completed, child["jobs"], strict=True):
        assert job["status"] == "completed" and job["quality"] == "2K"
        assert (job["combo"], job["prompt_id"]) == (parent_job["combo"], parent_job["prompt_id"])
        assert job["references"][0] == str(Path(parent_job["output"]).resolve())
        assert job["references"][1:] == parent_job["references"]
        assert Path(job["output"]).parent == Path(parent_job["output"]).parent
        assert job["output"].endswith("-2K.png")
        assert image_size(job["output"]) == (2048, 2048)
        assert Path(parent_job["output"]).exists()
        assert emu.generated[prompt_of(child, job)] == 1
        assert prompt_of(child, job).startswith(prompt_of(parent_before, parent_job))

    parent_after = load(ws.root, parent_id)
    assert parent_after["children"] == [child_id]
    assert parent_after["jobs"] == parent_before["jobs"]
    assert parent_after["summary"] == parent_before["summary"]
    assert parent_after["config"] == parent_before["config"]
    assert parent_after["state"] == parent_before["state"]
    assert len(pngs(ws.root)) == 10


def test_upgrade_needs_to_quality(
    ws: Workspace, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    r = run_cli(capsys, *TINY, *FAST)
    assert r.code == 0
    sid = only_session(ws.root)
    r = run_cli(capsys, "--upgrade", sid, *FAST)
    assert r.code == 2 and "--to-quality" in r.err
    assert session_ids(ws.root) == [sid]


# -- two processes, and Ctrl-C (real processes) ----------------------------------------------


def test_a_second_process_on_a_running_session_exits_2(
    ws: Workspace, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    sid = _stopped_session(ws, emu, capsys, tiny_plan(), stop_at="001")  # all 6 pending
    emu.latency = 2.0
    proc = spawn(ws.root, emu, "--resume", sid, *FAST)
    try:
        wait_for(
            lambda: (
                load(ws.root, sid)["state"] == "running"
                and load(ws.root, sid)["summary"]["running"] == 1
            ),
            30,
            "the resumed session to be running",
            proc,
        )
        for verb in (["--resume", sid], ["--retry", sid, "--job", "001"]):
            r = run_cli(capsys, *verb, *FAST)
            assert r.code == 2, r.out + r.err
            assert len(r.err_lines) == 1, r.err
            assert f"session {sid} is being run by another process" in r.err
        r = run_cli(capsys, "--status", sid)
        assert r.code == 0 and "State: running" in r.out
        assert proc.poll() is None, proc.output()
    finally:
        proc.stop()
    assert emu.max_in_flight == 1


def test_ctrl_c_finishes_calls_in_flight_and_says_how_to_resume(
    ws: Workspace, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    emu.latency = 1.0
    proc = spawn(ws.root, emu, *TINY, *FAST, "--concurrency", "2")
    try:
        events_file: list[Path] = []

        def first_job_running() -> bool:
            if not events_file:
                found = sorted((ws.root / SESSIONS).glob("*-events.jsonl"))
                if not found:
                    return False
                events_file.append(found[0])
            return any(
                e.get("set", {}).get("status") == "running" for e in whole_lines(events_file[0])
            )

        wait_for(first_job_running, 30, "the first job to start", proc)
        time.sleep(0.2)  # the second worker's call starts too
        proc.popen.send_signal(signal.SIGINT)
        code = proc.wait(timeout=30)
    finally:
        proc.stop()
    out = proc.output()
    assert code == 3, out
    sid = only_session(ws.root)
    assert f"--resume {sid}" in flat(out)
    assert "Traceback" not in out
    snap = snapshot(ws.root, sid)  # parses
    doc = load(ws.root, sid)
    assert snap["jobs"] == doc["jobs"]
    in_flight = [j for j in doc["jobs"] if j["attempts"] == 1]
    assert 1 <= len(in_flight) <= 2
    assert all(j["status"] == "completed" and Path(j["output"]).exists() for j in in_flight)
    rest = [j for j in doc["jobs"] if j["attempts"] == 0]
    assert rest and all(j["status"] == "pending" for j in rest)
    assert doc["state"] == "stopped" and str(doc["stop_reason"]).startswith("interrupted")
    assert sum(emu.generated.values()) == len(in_flight)

    emu.latency = 0.0
    r = run_cli(capsys, "--resume", sid, *FAST)
    assert r.code == 0, r.out + r.err
    doc = load(ws.root, sid)
    assert calls(emu, doc) == dict.fromkeys(by_id(doc), 1)


def test_a_second_process_never_cuts_the_log_of_a_running_session(
    ws: Workspace,
    emu: Emulator,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The loser of the lock must not write. The race window (between open_session reading
    the log and checking its size) is widened by waiting there for the running process's
    next append, which then happens for real."""
    sid = _stopped_session(ws, emu, capsys, tiny_plan(), stop_at="001")
    log = journal_mod.events_path(ws.root / SESSIONS, sid)
    emu.latency = 0.5
    proc = spawn(ws.root, emu, "--resume", sid, *FAST)
    try:
        wait_for(
            lambda: load(ws.root, sid)["summary"]["running"] == 1,
            30,
            "the resumed session to be running",
            proc,
        )
        from imagegen.journal import writer

        real_read = writer.read

        def read_then_let_the_runner_log(sessions: Path, session_id: str) -> Any:
            result = real_read(sessions, session_id)
            size = log.stat().st_size
            wait_for(lambda: log.stat().st_size > size, 30, "the runner's next change", proc)
            return result

        with monkeypatch.context() as m:
            m.setattr(writer, "read", read_then_let_the_runner_log)
            r = run_cli(capsys, "--resume", sid, *FAST)
        assert r.code == 2 and "being run by another process" in r.err
        emu.latency = 0.0
        assert proc.wait(timeout=30) == 0, proc.output()
    finally:
        proc.stop()
    lines = whole_lines(log)
    assert [e["seq"] for e in lines] == list(range(len(lines)))  # no change lost
    assert snapshot(ws.root, sid)["journal"]["offset"] == log.stat().st_size
    assert load(ws.root, sid)["summary"]["completed"] == 6


def test_upgrade_of_a_session_another_process_runs_exits_2_and_creates_nothing(
    ws: Workspace, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    sid = _stopped_session(ws, emu, capsys, tiny_plan())  # 001 and 002 completed
    emu.latency = 2.0
    proc = spawn(ws.root, emu, "--resume", sid, *FAST)
    try:
        wait_for(
            lambda: load(ws.root, sid)["summary"]["running"] == 1,
            30,
            "the resumed session to be running",
            proc,
        )
        r = run_cli(capsys, "--upgrade", sid, "--to-quality", "2K", *FAST)
        assert r.code == 2 and "being run by another process" in r.err
        assert session_ids(ws.root) == [sid]
    finally:
        proc.stop()


def test_resume_with_dry_run_calls_nothing(
    ws: Workspace, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    sid = _stopped_session(ws, emu, capsys, tiny_plan())
    before = load(ws.root, sid)
    generated = sum(emu.generated.values())
    run_cli(capsys, "--resume", sid, "--dry-run", *FAST)
    assert sum(emu.generated.values()) == generated
    assert load(ws.root, sid)["jobs"] == before["jobs"]


def test_job_with_resume_is_a_usage_error(
    ws: Workspace, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    sid = _stopped_session(ws, emu, capsys, tiny_plan())
    r = run_cli(capsys, "--resume", sid, "--job", "004", *FAST)
    assert r.code == 2 and "--job goes with --retry" in r.err
    assert load(ws.root, sid)["summary"]["pending"] == 4


def test_second_ctrl_c_cancels_calls_in_flight_and_returns_them_to_pending(
    ws: Workspace, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    emu.latency = 5.0
    proc = spawn(ws.root, emu, *TINY, *FAST, "--concurrency", "2")
    try:
        wait_for(
            lambda: (
                bool(session_ids(ws.root))
                and load(ws.root, session_ids(ws.root)[0])["summary"]["running"] == 2
            ),
            30,
            "two calls in flight",
            proc,
        )
        proc.popen.send_signal(signal.SIGINT)
        time.sleep(0.3)
        assert proc.poll() is None  # the first Ctrl-C waits for the calls in flight
        proc.popen.send_signal(signal.SIGINT)
        code = proc.wait(timeout=4)  # well before the 5 s calls would have answered
    finally:
        proc.stop()
    out = proc.output()
    assert code == 3, out
    sid = only_session(ws.root)
    assert f"--resume {sid}" in flat(out) and "Traceback" not in out
    doc = load(ws.root, sid)
    assert snapshot(ws.root, sid)["jobs"] == doc["jobs"]
    assert all(j["status"] == "pending" for j in doc["jobs"])
    cancelled = [j for j in doc["jobs"] if j["attempts"] == 1]
    assert len(cancelled) == 2
    assert all(j["output"] is None and j["error"] == "cancelled by Ctrl-C" for j in cancelled)
    assert pngs(ws.root) == []
    assert sum(emu.generated.values()) == 0


def test_a_closed_stdout_does_not_stop_the_batch(
    ws: Workspace, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """``imagegen ... | head -1``: the reader goes away, the paid batch should not."""
    emu.latency = 0.2
    proc = spawn(ws.root, emu, *TINY, *FAST, pipe_stdout=True)
    try:
        assert proc.popen.stdout is not None
        first = proc.popen.stdout.readline()
        assert first.startswith(b"Session ")
        proc.popen.stdout.close()
        proc.wait(timeout=30)
    finally:
        proc.stop()
    assert "Traceback" not in proc.output(), proc.output()
    doc = load(ws.root, only_session(ws.root))
    assert doc["summary"]["completed"] == 6
    assert doc["state"] == "finished"


# -- offline sessions, the seed's journal folder, damaged journals ---------------------------


def test_offline_session_is_retried_offline_without_a_key_in_the_seed_journal_folder(
    ws: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    """The seed keeps journals in Result_images/.sessions; a session started --offline stays
    offline for --retry and --resume (its config says so), and needs no key."""
    seed = ["--sessions-dir", "Result_images/.sessions"]
    r = run_cli(capsys, *OFFLINE, *TINY, *seed)
    assert r.code == 0, r.out + r.err
    ids = journal_mod.list_sessions(ws.root / "Result_images/.sessions")
    assert len(ids) == 1 and not (ws.root / SESSIONS).exists()
    sid = ids[0]
    assert len(pngs(ws.root)) == 6  # the journal folder is hidden, no image is mistaken

    r = run_cli(capsys, "--retry", sid, "--job", "003", "--offline-latency", "0", *FAST, *seed)
    assert r.code == 0, r.out + r.err
    doc = journal_mod.encode_session(journal_mod.load(ws.root / "Result_images/.sessions", sid))
    assert by_id(doc)["003"]["attempts"] == 2 and len(pngs(ws.root)) == 7

    r = run_cli(capsys, "--status", *seed)
    assert r.code == 0 and sid in r.out


def test_a_damaged_snapshot_is_kept_aside_and_the_session_continues_from_its_log(
    ws: Workspace, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    sid = _stopped_session(ws, emu, capsys, tiny_plan())
    snap = journal_mod.snapshot_path(ws.root / SESSIONS, sid)
    damaged = snap.read_bytes()[:100]
    snap.write_bytes(damaged)

    r = run_cli(capsys, "--status", sid, "--json")  # readers rebuild from the log, write nothing
    assert r.code == 0, r.err
    assert orjson.loads(r.out)["summary"]["completed"] == 2
    assert snap.read_bytes() == damaged

    r = run_cli(capsys, "--resume", sid, *FAST)
    assert r.code == 0, r.out + r.err
    assert "damaged" in r.out
    kept = list((ws.root / SESSIONS).glob(f"{snap.name}.damaged-*"))
    assert [p.read_bytes() for p in kept] == [damaged]
    assert snapshot(ws.root, sid)["summary"]["completed"] == 6
    assert calls(emu, load(ws.root, sid)) == dict.fromkeys(by_id(load(ws.root, sid)), 1)


def test_a_damaged_event_log_is_an_input_error_not_a_traceback(
    ws: Workspace, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    sid = _stopped_session(ws, emu, capsys, tiny_plan())
    sessions = ws.root / SESSIONS
    journal_mod.snapshot_path(sessions, sid).unlink()
    log = journal_mod.events_path(sessions, sid)
    lines = log.read_bytes().split(b"\n")
    lines[2] = b'{"seq": 2, "job": '
    log.write_bytes(b"\n".join(lines))
    before = log.read_bytes()
    for verb in (["--status", sid], ["--resume", sid, *FAST]):
        r = run_cli(capsys, *verb)
        assert r.code == 2, r.out + r.err
        assert len(r.err_lines) == 1 and "line 3 is not valid JSON" in r.err, r.err
    assert log.read_bytes() == before  # left as it is

"""The journal: durable before return, readable by jq at every moment, rebuilt from its log,
validated on load, and able to read journals written before the job model (format 1)."""

from __future__ import annotations

import gc
import shutil
from pathlib import Path

import anyio
import orjson
import pytest

from imagegen import journal as journal_mod
from imagegen.errors import InputError, SessionLocked
from imagegen.journal import Journal
from imagegen.model import JobUpdate

from .conftest import Workspace, new_journal

REPO = Path(__file__).resolve().parents[1]
V1 = Path(__file__).parent / "data" / "v1"
V1_FINISHED = "2026-12-02-06-11-36"  # 6 jobs: 4 completed, an IMAGE_SAFETY block, three 503s
V1_KILLED = "2026-12-02-06-11-42"  # 6 jobs, SIGKILLed with 3 running


def copy_v1(sessions: Path) -> Path:
    """The format-1 sessions written by main before the job model (a clone in /tmp/try1),
    with their reference paths pointed at this repository's sample workspace. The paths are
    only in the log's first line; the snapshots' log offsets move by the length difference."""
    sessions.mkdir(parents=True)
    marker, repo = b"{REPO}", str(REPO).encode()
    for log in V1.glob("*-events.jsonl"):
        data = log.read_bytes()
        first = data.split(b"\n", 1)[0]
        shift = (len(repo) - len(marker)) * first.count(marker)
        (sessions / log.name).write_bytes(data.replace(marker, repo))
        snap = log.with_name(log.name.replace("-events.jsonl", "-session.json"))
        doc = orjson.loads(snap.read_bytes().replace(marker, repo))
        doc["journal"]["offset"] += shift
        (sessions / snap.name).write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    return sessions


@pytest.mark.asyncio
async def test_update_returns_only_once_the_change_is_in_the_log(
    workspace: Workspace, tmp_path: Path
) -> None:
    with new_journal(workspace, tmp_path / "s") as journal:
        async with journal.writing():
            await journal.update("001", JobUpdate(status="running", attempts=1))
            lines = journal.events_path.read_bytes().splitlines()
            assert orjson.loads(lines[-1])["set"] == {"status": "running", "attempts": 1}
            # Another reader sees it now, through the log, whatever the snapshot's age.
            state = journal_mod.load(tmp_path / "s", journal.session_id)
            assert state.jobs["001"].status == "running"


@pytest.mark.asyncio
async def test_a_snapshot_never_claims_an_event_the_log_does_not_have(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kill right after any snapshot write (its file and the log as they are at that moment)
    leaves a log that holds every event the snapshot counts: the snapshot is taken only when
    every applied event is written. Snapshots are made due at every chance here, with many
    tasks writing at once, woken the way a busy run's calls finish."""
    from imagegen.journal import writer

    monkeypatch.setattr(writer, "_SNAPSHOT_MIN_DELAY", 0.0)
    kills: list[tuple[bytes, bytes]] = []
    real = writer.write_atomic

    def write_then_kill(path: Path, data: bytes, *, fsync: bool = True) -> None:
        real(path, data, fsync=fsync)
        if path.name.endswith("-session.json"):
            kills.append(
                (
                    path.read_bytes(),
                    path.with_name(
                        path.name.replace("-session.json", "-events.jsonl")
                    ).read_bytes(),
                )
            )

    monkeypatch.setattr(writer, "write_atomic", write_then_kill)
    with new_journal(workspace, tmp_path / "s") as journal:
        ids = list(journal.state.jobs)

        async def busy(job_id: str) -> None:
            for attempt in range(1, 16):
                # A thread hop, as a call's answer arrives: tasks wake while the writer appends.
                await anyio.to_thread.run_sync(lambda: None)
                await journal.update(job_id, JobUpdate(status="running", attempts=attempt))
                await anyio.to_thread.run_sync(lambda: None)
                await journal.update(job_id, JobUpdate(status="pending"))

        async with journal.writing(), anyio.create_task_group() as tg:
            for job_id in ids:
                tg.start_soon(busy, job_id)
    assert len(kills) > 2  # snapshots during the run, not only the last
    for snapshot, log in kills:
        claimed = orjson.loads(snapshot)["journal"]
        written = [orjson.loads(line)["seq"] for line in log.splitlines()]
        assert written == list(range(len(written)))
        assert claimed["seq"] == written[-1] and claimed["offset"] == len(log)


@pytest.mark.asyncio
async def test_a_fold_naming_an_unknown_job_changes_nothing(
    workspace: Workspace, tmp_path: Path
) -> None:
    """No change of the batch is applied (nor counted in the seq the next snapshot claims)
    when one of them names a job the session does not have."""
    with new_journal(workspace, tmp_path / "s") as journal:
        async with journal.writing():
            seq = journal.state.seq
            with pytest.raises(KeyError, match="999"):
                await journal.update_many(
                    [
                        ("001", JobUpdate(status="running", attempts=1), None),
                        ("999", JobUpdate(status="running", attempts=1), None),
                    ]
                )
            assert journal.state.seq == seq and journal.state.jobs["001"].status == "pending"
    state = journal_mod.load(tmp_path / "s", journal.session_id)
    assert state.seq == seq and state.jobs["001"].status == "pending"


def test_the_lock_is_held_from_create_to_close(workspace: Workspace, tmp_path: Path) -> None:
    journal = new_journal(workspace, tmp_path / "s")
    with pytest.raises(SessionLocked, match="being run by another process"):
        Journal.open(tmp_path / "s", journal.session_id)
    journal.close()
    with Journal.open(tmp_path / "s", journal.session_id) as reopened:
        assert reopened.state.summary().total == 6


def test_reading_a_session_never_takes_its_lock(workspace: Workspace, tmp_path: Path) -> None:
    """--status and the contact sheet read while a run holds the lock; the run is not refused."""
    journal = new_journal(workspace, tmp_path / "s")
    journal.close()
    with Journal.open(tmp_path / "s", journal.session_id):
        assert journal_mod.load(tmp_path / "s", journal.session_id).summary().total == 6


def test_prompt_texts_are_stored_once_per_session(workspace: Workspace, tmp_path: Path) -> None:
    with new_journal(workspace, tmp_path / "s") as journal:
        doc = orjson.loads(journal.snapshot_path.read_bytes())
    texts = doc["texts"]
    # 3 combos x 2 prompts: 2 catalog texts, and the combo blocks (two combos share theirs).
    parts = {part for j in journal.state.jobs.values() for part in j.job.prompt_parts}
    assert len(texts) == len(parts) == 4
    assert all(isinstance(k, str) and k in texts for j in doc["jobs"] for k in j["prompt"])
    state = journal_mod.load(tmp_path / "s", journal.session_id)
    assert state.jobs["001"].job.prompt.startswith("Morning run at dawn.")


def test_a_corrupt_snapshot_is_rebuilt_from_the_log_and_left_alone(
    workspace: Workspace, tmp_path: Path
) -> None:
    with new_journal(workspace, tmp_path / "s") as journal:
        journal.snapshot_path.write_bytes(b'{"session_id": "trunc')
    state = journal_mod.load(tmp_path / "s", journal.session_id)
    assert len(state.jobs) == 6
    assert journal.snapshot_path.read_bytes() == b'{"session_id": "trunc'


def test_a_journal_from_a_newer_version_is_refused(workspace: Workspace, tmp_path: Path) -> None:
    with new_journal(workspace, tmp_path / "s") as journal:
        journal.snapshot_path.write_bytes(
            orjson.dumps({"version": 99, "journal": {"seq": 0, "offset": 0}})
        )
    with pytest.raises(InputError, match="newer imagegen"):
        journal_mod.load(tmp_path / "s", journal.session_id)


def test_a_half_written_last_line_is_ignored_and_trimmed_on_open(
    workspace: Workspace, tmp_path: Path
) -> None:
    with new_journal(workspace, tmp_path / "s") as journal:
        whole = journal.events_path.read_bytes()
        with journal.events_path.open("ab") as fh:
            fh.write(b'{"seq": 1, "at": "x", "job": "001", "se')
    assert journal_mod.load(tmp_path / "s", journal.session_id).jobs["001"].status == "pending"
    Journal.open(tmp_path / "s", journal.session_id).close()
    assert journal.events_path.read_bytes() == whole


def test_resuming_a_damaged_snapshot_keeps_it_and_continues_from_the_log(
    workspace: Workspace, tmp_path: Path
) -> None:
    with new_journal(workspace, tmp_path / "s") as journal:
        journal.snapshot_path.write_bytes(b'{"session_id": "trunc')
    with Journal.open(tmp_path / "s", journal.session_id) as reopened:
        assert reopened.damaged_snapshot is not None
        assert reopened.damaged_snapshot.read_bytes() == b'{"session_id": "trunc'
        assert len(reopened.state.jobs) == 6


def _edit(path: Path, edit: object) -> None:
    doc = orjson.loads(path.read_bytes())
    edit(doc)  # type: ignore[operator]
    path.write_bytes(orjson.dumps(doc))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["jobs"][2].update(status="banana"), r"job 003: status 'banana' is not one"),
        (lambda d: d["jobs"][0].update(status=None), r"job 001: status None is not one"),
        (lambda d: d["jobs"][1].update(attempts="two"), r"job 002: attempts must be a whole"),
        (lambda d: d["jobs"].pop(4), r"summary.total is 6 but 5 jobs are listed"),
        (lambda d: d["jobs"][3].update(id="001"), r"job 001: the id appears twice"),
        (lambda d: d["jobs"][0].pop("target"), r"job 001: field 'target' must be text"),
    ],
)
def test_a_journal_edited_by_hand_is_refused_in_one_line_naming_job_and_field(
    workspace: Workspace, tmp_path: Path, edit: object, message: str
) -> None:
    with new_journal(workspace, tmp_path / "s") as journal:
        _edit(journal.snapshot_path, edit)
    with pytest.raises(InputError, match=message) as info:
        journal_mod.load(tmp_path / "s", journal.session_id)
    assert "\n" not in str(info.value)
    assert journal.session_id + "-session.json" in str(info.value)


def test_jobs_removed_by_hand_with_the_summary_are_caught_against_the_log(
    workspace: Workspace, tmp_path: Path
) -> None:
    """Dropping jobs and fixing summary.total still disagrees with the session's first line."""
    with new_journal(workspace, tmp_path / "s") as journal:
        _edit(
            journal.snapshot_path,
            lambda d: (d["jobs"].pop(5), d["jobs"].pop(4), d["summary"].update(total=4)),
        )
    with pytest.raises(InputError, match=r"job 005 is missing from it .*created with 6 jobs"):
        journal_mod.load(tmp_path / "s", journal.session_id)


def test_jobs_reordered_by_hand_still_load_and_a_refused_load_leaves_gc_on(
    workspace: Workspace, tmp_path: Path
) -> None:
    """The snapshot's job digest no longer matches after the edit, so the reader compares the
    jobs with the first log line: the same jobs in another order are accepted. The reader
    pauses the cycle collector while it decodes; a load it refuses turns it back on."""
    with new_journal(workspace, tmp_path / "s") as journal:
        _edit(journal.snapshot_path, lambda d: d["jobs"].reverse())
    state = journal_mod.load(tmp_path / "s", journal.session_id)
    assert sorted(state.jobs) == ["001", "002", "003", "004", "005", "006"]
    _edit(journal.snapshot_path, lambda d: d["jobs"][0].update(status="paused"))
    with pytest.raises(InputError, match="status 'paused' is not one of"):
        journal_mod.load(tmp_path / "s", journal.session_id)
    assert gc.isenabled()


def test_an_event_for_a_job_the_snapshot_no_longer_has_is_named(
    workspace: Workspace, tmp_path: Path
) -> None:
    with new_journal(workspace, tmp_path / "s") as journal, journal.events_path.open("ab") as fh:
        fh.write(b'{"seq": 1, "at": "2026-01-01T00:00:00", "job": "042", "set": {}}\n')
    with pytest.raises(InputError, match=r"event 1 changes job 042, which is not in"):
        journal_mod.load(tmp_path / "s", journal.session_id)


def test_a_refused_open_leaves_no_lock_file_behind(tmp_path: Path) -> None:
    sessions = tmp_path / "s"
    sessions.mkdir()
    (sessions / "X-session.json").write_text("{}")
    with pytest.raises(InputError):
        Journal.open(sessions, "X")
    assert not (sessions / "X.lock").exists()


def test_format_1_journals_load_with_their_jobs_statuses_and_labels(tmp_path: Path) -> None:
    sessions = copy_v1(tmp_path / "sessions")
    state = journal_mod.load(sessions, V1_FINISHED)
    assert state.version == 1
    assert [js.status for js in state.jobs.values()] == [
        "failed",
        "completed",
        "failed",
        "completed",
        "completed",
        "completed",
    ]
    first = state.jobs["001"]
    assert first.job.source == "combos" and first.job.provider == "gemini"
    assert first.job.title == "GN01_morning_routine + C-U-009"
    assert first.job.group == ("v3.2 · Orange", "GN01_morning_routine", "C-U-009")
    assert first.job.label("wardrobe") == "zip-hoodie"
    assert first.finish_reason == "IMAGE_SAFETY"
    assert first.job.target.endswith("C-U-009/{time}-GN01-{quality}.png")
    assert (
        state.config["source"] == "combos" and state.config["header"][1] == "Catalogs: v3.2, v4.2"
    )
    assert state.summary().cost_usd == pytest.approx(0.57, abs=0.01)
    killed = journal_mod.load(sessions, V1_KILLED)
    assert killed.summary().counts["running"] == 3


def test_a_format_1_journal_is_continued_in_its_own_format(tmp_path: Path) -> None:
    """Opening for writing keeps the old file shape readable by this version, and appends."""
    sessions = copy_v1(tmp_path / "sessions")
    before = (sessions / f"{V1_KILLED}-events.jsonl").read_bytes()
    with Journal.open(sessions, V1_KILLED) as journal:
        assert journal.state.version == 1
    assert (sessions / f"{V1_KILLED}-events.jsonl").read_bytes() == before
    shutil.rmtree(sessions)

"""The journal: durable before return, readable by jq at every moment, rebuilt from its log."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from imagegen import journal as journal_mod
from imagegen.errors import InputError, SessionLocked
from imagegen.planner import PlanRequest, plan

from .conftest import Workspace


def new_journal(ws: Workspace, sessions: Path) -> journal_mod.Journal:
    jobs = plan(
        PlanRequest(
            wardrobes=("zip-hoodie",),
            catalogs=("v1.0",),
            combos_root=ws.combos,
            catalogs_root=ws.catalogs,
            output=ws.root / "out",
        )
    )
    return journal_mod.create(sessions, {"quality": "1K"}, jobs, fsync=False)


@pytest.mark.asyncio
async def test_record_returns_only_once_the_change_is_in_the_log(
    workspace: Workspace, tmp_path: Path
) -> None:
    journal = new_journal(workspace, tmp_path / "s")
    async with journal_mod.running(journal):
        await journal.record("001", status="running", attempts=1)
        lines = journal.events_path.read_bytes().splitlines()
        assert orjson.loads(lines[-1])["set"] == {"status": "running", "attempts": 1}
        # Another reader sees it now, through the log, whatever the snapshot's age.
        assert (
            journal_mod.load(tmp_path / "s", journal.session_id)["jobs"][0]["status"] == "running"
        )


@pytest.mark.asyncio
async def test_a_second_holder_of_the_session_is_refused(
    workspace: Workspace, tmp_path: Path
) -> None:
    journal = new_journal(workspace, tmp_path / "s")
    other = journal_mod.open_session(tmp_path / "s", journal.session_id)
    async with journal_mod.running(journal):
        with pytest.raises(SessionLocked, match="being run by another process"):
            other.acquire()


def test_a_corrupt_snapshot_is_rebuilt_from_the_log_and_left_alone(
    workspace: Workspace, tmp_path: Path
) -> None:
    journal = new_journal(workspace, tmp_path / "s")
    journal.snapshot_path.write_bytes(b'{"session_id": "trunc')
    doc = journal_mod.load(tmp_path / "s", journal.session_id)
    assert len(doc["jobs"]) == 6
    assert journal.snapshot_path.read_bytes() == b'{"session_id": "trunc'


def test_a_journal_from_a_newer_version_is_refused(workspace: Workspace, tmp_path: Path) -> None:
    journal = new_journal(workspace, tmp_path / "s")
    journal.snapshot_path.write_bytes(
        orjson.dumps({"version": 99, "journal": {"seq": 0, "offset": 0}})
    )
    with pytest.raises(InputError, match="newer imagegen"):
        journal_mod.load(tmp_path / "s", journal.session_id)


def test_a_half_written_last_line_is_ignored_and_trimmed_on_open(
    workspace: Workspace, tmp_path: Path
) -> None:
    journal = new_journal(workspace, tmp_path / "s")
    whole = journal.events_path.read_bytes()
    with journal.events_path.open("ab") as fh:
        fh.write(b'{"seq": 1, "at": "x", "job": "001", "se')
    assert journal_mod.load(tmp_path / "s", journal.session_id)["jobs"][0]["status"] == "pending"
    journal_mod.open_session(tmp_path / "s", journal.session_id)
    assert journal.events_path.read_bytes() == whole


def test_resuming_a_damaged_snapshot_keeps_it_and_continues_from_the_log(
    workspace: Workspace,
    tmp_path: Path,
) -> None:
    journal = new_journal(workspace, tmp_path / "s")
    journal.snapshot_path.write_bytes(b'{"session_id": "trunc')
    reopened = journal_mod.open_session(tmp_path / "s", journal.session_id)
    kept = Path(reopened.doc["journal"]["damaged_snapshot"])
    assert kept.read_bytes() == b'{"session_id": "trunc'
    assert len(reopened.doc["jobs"]) == 6

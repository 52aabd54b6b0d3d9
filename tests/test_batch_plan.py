"""The batch executor's pure rules, and the journal's batch and upload records."""

from __future__ import annotations

from itertools import islice
from pathlib import Path

import anyio
import orjson
import pytest

from imagegen import journal as journal_mod
from imagegen.errors import (
    AttemptTimeout,
    BadRequest,
    BatchStop,
    FileGone,
    InputError,
    NoImage,
    RateLimited,
    ServerError,
)
from imagegen.executors.batch_plan import (
    ShardLimits,
    Shards,
    affordable,
    display_name,
    poll_waits,
    verdict,
)
from imagegen.model import (
    Attempt,
    BatchChange,
    JobState,
    JobUpdate,
    SessionUpdate,
    UploadRecord,
)
from imagegen.providers.base import ImageRequest, Reference
from imagegen.providers.gemini.batch_lines import inline_is_smaller, request_line
from imagegen.retry import RetryPolicy

from .conftest import Workspace, new_journal


def test_polls_back_off_by_half_up_to_ten_times_the_interval() -> None:
    assert list(islice(poll_waits(30.0), 8)) == [
        30.0,
        45.0,
        67.5,
        101.25,
        151.875,
        227.8125,
        300.0,
        300.0,
    ]
    assert max(islice(poll_waits(300.0), 20)) == 600.0  # ten minutes at most
    assert list(islice(poll_waits(1200.0), 2)) == [1200.0, 1200.0]  # never below the base


def test_shards_cut_by_count_and_by_bytes() -> None:
    cut = Shards(ShardLimits(max_requests=3, max_bytes=100))
    assert cut.fits(40)
    cut.add(40)
    cut.add(40)
    assert not cut.fits(30)  # 110 bytes
    assert cut.fits(20)
    cut.add(20)
    assert not cut.fits(1)  # a fourth request
    cut.start()
    assert cut.fits(100)
    with pytest.raises(ValueError, match="over the batch input limit"):
        cut.fits(101)


def test_display_names_carry_the_session_and_the_shard() -> None:
    assert display_name("2026-07-01-10-00-00", 7) == "imagegen-2026-07-01-10-00-00-shard-007"


def _sent(holds: list[float], room: float) -> int:
    fits = affordable([(h, None, 0.0) for h in holds], room, {})
    assert not fits.capped
    return len(fits.sent)


def test_affordable_under_the_budget_is_the_prefix_that_fits() -> None:
    assert _sent([0.1, 0.1, 0.1], 0.25) == 2
    assert _sent([0.1, 0.1], 0.2) == 2
    assert _sent([0.3], 0.2) == 0
    assert _sent([], 1.0) == 0
    assert affordable([(0.1, None, 0.0)] * 3, 0.25, {}).budget_cut
    assert not affordable([(0.1, None, 0.0)] * 2, 0.25, {}).budget_cut


def test_a_cost_group_at_its_cap_stops_and_the_other_groups_go_on() -> None:
    """Like the online pool: the group's first job that does not fit stops the group (its
    later jobs stay too, even one that would fit), the others are sent."""
    holds = [(0.1, "a", 0.1), (0.1, "b", 0.1), (0.1, "a", 0.1), (0.1, "a", 0.01), (0.1, None, 0.0)]
    fits = affordable(holds, None, {"a": 0.15, "b": 1.0})
    assert fits.sent == (0, 1, 4)
    assert fits.capped == (2, 3)
    assert fits.groups == {"a"}
    assert not fits.budget_cut


def test_the_budget_ends_the_list_after_the_caps() -> None:
    holds = [(0.1, "a", 0.1), (0.1, "a", 0.1), (0.1, "b", 0.1), (0.1, "b", 0.1)]
    fits = affordable(holds, 0.2, {"a": 0.1})
    assert fits.sent == (0, 2)
    assert fits.capped == (1,)
    assert fits.budget_cut


def _state(ws: Workspace, attempts: int, *outcomes: str) -> JobState:
    journal = new_journal(ws, ws.root / "sessions")
    journal.close()
    state = next(iter(journal.state.jobs.values()))
    history = tuple(Attempt(n, None, "t", o) for n, o in enumerate(outcomes, 1))
    return JobState(state.job, "submitted", attempts, history=history)


def test_failed_results_get_the_online_verdicts(workspace: Workspace) -> None:
    policy = RetryPolicy()
    first = _state(workspace, 1)
    assert verdict(policy, first, ServerError("500")) == "pending"
    assert verdict(policy, first, RateLimited("429")) == "pending"
    assert verdict(policy, first, AttemptTimeout("slow")) == "pending"
    assert verdict(policy, first, BadRequest("400")) == "failed"
    assert verdict(policy, first, NoImage("blocked", reason="SAFETY")) == "failed"
    assert verdict(policy, first, BatchStop("403", reason="permission_denied")) == "stop"
    assert verdict(policy, first, FileGone("gone", name="files/x")) == "pending"
    # Server errors have 3 attempts in all: two before, this is the third.
    third = _state(workspace, 3, "server_error", "server_error")
    assert verdict(policy, third, ServerError("500")) == "failed"
    spent = _state(workspace, policy.max_attempts)
    assert verdict(policy, spent, FileGone("gone", name="files/x")) == "failed"


def test_request_lines_are_rest_keyed_by_job_id_with_references_by_uri() -> None:
    refs = (
        Reference("ui", "image/jpeg", b"", uri="https://x/v1beta/files/abc"),
        Reference("dot", "image/png", b"\x89PNG"),
    )
    line = orjson.loads(
        request_line("007", ImageRequest("gemini-3-pro-image", "A cat", refs, "2K", "4:5", 0.0))
    )
    assert line["key"] == "007"
    parts = line["request"]["contents"][0]["parts"]
    assert parts[0] == {"text": "A cat"}
    assert parts[1] == {
        "fileData": {"mimeType": "image/jpeg", "fileUri": "https://x/v1beta/files/abc"}
    }
    assert parts[2] == {"inlineData": {"mimeType": "image/png", "data": "iVBORw=="}}
    assert line["request"]["generationConfig"] == {
        "responseModalities": ["TEXT", "IMAGE"],
        "imageConfig": {"aspectRatio": "4:5", "imageSize": "2K"},
    }
    flash = orjson.loads(
        request_line("1", ImageRequest("gemini-2.5-flash-image", "x", (), "1K", "1:1", 0.0))
    )
    assert flash["request"]["generationConfig"]["imageConfig"] == {"aspectRatio": "1:1"}


def test_inline_only_where_it_is_smaller() -> None:
    assert inline_is_smaller(200, 70, uses=1)  # the upload's own requests cost more
    assert not inline_is_smaller(200, 70, uses=40)  # sent 40 times: upload it
    assert not inline_is_smaller(3_000_000, 70, uses=1)  # a real photo: always upload


# -- the journal ------------------------------------------------------------------------------


def _record_batch(journal: journal_mod.Journal, ids: tuple[str, ...]) -> None:
    async def go() -> None:
        async with journal.writing():
            await journal.update_many((j, JobUpdate(status="submitted"), None) for j in ids)
            await journal.update_session(
                SessionUpdate(
                    batch=BatchChange(shard=0, display_name="imagegen-x-shard-000", job_ids=ids)
                )
            )
            await journal.update_session(
                SessionUpdate(batch=BatchChange(shard=0, name="batches/b1", state="running"))
            )
            await journal.update_session(
                SessionUpdate(
                    upload=UploadRecord("d" * 64, "files/f1", "https://x/f1", "image/jpeg", 12)
                )
            )

    anyio.run(go)


def test_batches_and_uploads_fold_from_the_log_and_round_trip_the_snapshot(
    workspace: Workspace,
) -> None:
    sessions = workspace.root / "sessions"
    journal = new_journal(workspace, sessions)
    ids = tuple(journal.state.jobs)[:2]
    with journal:
        _record_batch(journal, ids)
    snap = orjson.loads(journal.snapshot_path.read_bytes())
    assert snap["batches"][0]["name"] == "batches/b1" and snap["batches"][0]["job_ids"] == list(ids)
    assert snap["uploads"][0]["name"] == "files/f1"
    assert snap["summary"]["submitted"] == 2
    # From the snapshot, and from the log alone.
    for loaded in (
        journal_mod.load(sessions, journal.session_id),
        _rebuilt(sessions, journal.session_id),
    ):
        (record,) = loaded.batches.values()
        assert (record.state, record.name, record.job_ids) == ("running", "batches/b1", ids)
        assert loaded.uploads["d" * 64].uri == "https://x/f1"
        assert loaded.summary().unfinished == len(loaded.jobs)


def _rebuilt(sessions: Path, session_id: str) -> object:
    journal_mod.snapshot_path(sessions, session_id).unlink()
    return journal_mod.load(sessions, session_id)


def test_an_online_session_snapshot_has_no_batch_fields(workspace: Workspace) -> None:
    journal = new_journal(workspace, workspace.root / "sessions")
    journal.close()
    snap = orjson.loads(journal.snapshot_path.read_bytes())
    assert "batches" not in snap and "uploads" not in snap


def test_a_hand_edited_batch_record_is_refused_naming_the_shard(workspace: Workspace) -> None:
    sessions = workspace.root / "sessions"
    journal = new_journal(workspace, sessions)
    with journal:
        _record_batch(journal, tuple(journal.state.jobs)[:2])
    snap = orjson.loads(journal.snapshot_path.read_bytes())
    snap["batches"][0]["state"] = "exploded"
    journal.snapshot_path.write_bytes(orjson.dumps(snap))
    with pytest.raises(InputError, match="batch shard 0: state 'exploded'"):
        journal_mod.load(sessions, journal.session_id)
    snap["batches"][0]["state"] = "running"
    snap["batches"][0]["job_ids"] = ["999"]
    journal.snapshot_path.write_bytes(orjson.dumps(snap))
    with pytest.raises(InputError, match="job 999: is in batch shard 0"):
        journal_mod.load(sessions, journal.session_id)

"""Batch mode through the command line, in-process against an in-test emulator: the options,
their refusals, the dry run's two prices, a session that resumes in batch mode, and
``--status --json`` of a batch session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from imagegen import journal as journal_mod
from imagegen.emulator import Emulator

from .cli_helpers import FAST, SESSIONS, load, only_session, run_cli, use_emulator
from .conftest import Workspace

TINY = ("--wardrobe", "zip-hoodie", "--catalogs", "v1.0")  # 6 jobs in the `ws` workspace
BATCH = ("--batch", "--batch-poll", "0.01")


@pytest.fixture
def ws(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    monkeypatch.chdir(workspace.root)
    for txt in workspace.combos.rglob("wardrobe.txt"):  # a distinct prompt per job
        txt.write_text(f"Zip hoodie of combo {txt.parent.name}\n", encoding="utf-8")
    return workspace


@pytest.fixture
def emu(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    with Emulator(render="plain") as emulator:
        emulator.batches.pending_seconds = emulator.batches.running_seconds = 0.0
        use_emulator(monkeypatch, emulator)
        yield emulator


def test_batch_is_refused_for_a_provider_without_a_batch_api(
    ws: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    r = run_cli(capsys, *TINY, *FAST, "--provider", "openai", "--batch", "--dry-run")
    assert r.code == 2
    assert len(r.err_lines) == 1 and "--batch" in r.err and "no Batch API" in r.err
    assert not (ws.root / SESSIONS).exists()


@pytest.mark.parametrize(
    "bad", [("--batch-poll", "0"), ("--batch-deadline", "-5"), ("--batch-poll", "soon")]
)
def test_bad_batch_timings_are_usage_errors(
    ws: Workspace, capsys: pytest.CaptureFixture[str], bad: tuple[str, str]
) -> None:
    r = run_cli(capsys, *TINY, *FAST, "--batch", *bad)
    assert r.code == 2 and bad[0] in r.err


def test_dry_run_shows_the_batch_price_beside_the_online_one(
    ws: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    r = run_cli(capsys, *TINY, *FAST, "--dry-run", "--batch")
    assert r.code == 0
    assert "batch USD" in r.out and "Through the Batch API (--batch)" in r.out
    r = run_cli(capsys, *TINY, *FAST, "--dry-run", "--json")
    doc = orjson.loads(r.out)
    online = sum(row["price_usd"] for row in doc["jobs"])
    batch = sum(row["batch_price_usd"] for row in doc["jobs"])
    assert doc["total_usd"] == pytest.approx(online)
    assert doc["batch_total_usd"] == pytest.approx(batch)
    assert 0.45 * online < batch < 0.55 * online  # half price (input images a little more)
    r = run_cli(capsys, *TINY, *FAST, "--dry-run")
    assert "Through the Batch API (add --batch)" in r.out


def test_a_batch_session_records_its_mode_and_resumes_in_it(
    ws: Workspace, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    r = run_cli(capsys, *TINY, *FAST, *BATCH, "--max-cost", "0.2")  # two jobs fit
    assert r.code == 3, r.out + r.err
    sid = only_session(ws.root)
    doc = load(ws.root, sid)
    assert doc["config"]["batch"] is True and doc["config"]["batch_poll"] == 0.01
    assert doc["config"]["fallback"] is True and doc["config"]["references"] == "upload"
    assert [j["status"] for j in doc["jobs"]].count("completed") == 2

    r = run_cli(capsys, "--resume", sid, *FAST)  # no --batch: the session says so
    assert r.code == 0, r.out + r.err
    assert len(emu.batches.created) == 2
    assert emu.last_request_json is None  # nothing went online
    doc = load(ws.root, sid)
    assert all(j["status"] == "completed" for j in doc["jobs"])
    assert [b["state"] for b in doc["batches"]] == ["collected", "collected"]

    r = run_cli(capsys, "--status", sid, "--json")
    status = orjson.loads(r.out)
    assert [b["state"] for b in status["batches"]] == ["collected", "collected"]
    assert status["summary"]["submitted"] == 0
    r = run_cli(capsys, "--status", sid)
    assert "Batches:" in r.out and "shard 001" in r.out


def test_inline_references_and_no_fallback_are_recorded(
    ws: Workspace, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    r = run_cli(capsys, *TINY, *FAST, *BATCH, "--inline-references", "--no-fallback")
    assert r.code == 0, r.out + r.err
    doc = load(ws.root, only_session(ws.root))
    assert doc["config"]["references"] == "inline" and doc["config"]["fallback"] is False
    assert emu.files.uploads == 1  # the batch's input file only
    (batch,) = emu.batches.listing()
    parts = batch.requests[0].request["contents"][0]["parts"]
    assert all("inlineData" in p for p in parts[1:])


def test_the_twin_check_ignores_the_run_mode(
    ws: Workspace, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unfinished batch session is the same selection as an online run of it."""
    r = run_cli(capsys, *TINY, *FAST, *BATCH, "--max-cost", "0.1")
    assert r.code == 3
    r = run_cli(capsys, *TINY, *FAST)
    assert r.code == 2 and "--resume" in r.err
    assert len(journal_mod.list_sessions(Path(SESSIONS))) == 1


def test_retry_refuses_a_job_still_in_a_batch(
    ws: Workspace, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """Sent again while its batch runs, it would be paid for twice."""
    import anyio

    from imagegen.journal import Journal
    from imagegen.model import JobUpdate

    r = run_cli(capsys, *TINY, *FAST, *BATCH, "--max-cost", "0.1")
    sid = only_session(ws.root)
    with Journal.open(Path(SESSIONS), sid) as journal:

        async def mark() -> None:
            async with journal.writing():
                await journal.update("006", JobUpdate(status="submitted"))

        anyio.run(mark)
    r = run_cli(capsys, "--retry", sid, "--job", "006", *FAST)
    assert r.code == 2 and "job 006 is in a batch" in r.err and f"--resume {sid}" in r.err


def test_batch_is_refused_for_vertex_which_has_no_files_api(
    ws: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    """Vertex's batches read Cloud Storage, not uploaded files: refused in one line."""
    r = run_cli(capsys, *TINY, *FAST, "--provider", "vertex", "--batch")
    assert r.code == 2
    assert len(r.err_lines) == 1 and "Vertex AI" in r.err and "no Batch API" in r.err
    assert not (ws.root / SESSIONS).exists()


def test_batch_with_variants_is_refused_in_one_line(
    ws: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    r = run_cli(capsys, *TINY, *FAST, *BATCH, "--variants", "2")
    assert r.code == 2
    assert len(r.err_lines) == 1 and "--variants" in r.err and "--batch" in r.err
    assert not (ws.root / SESSIONS).exists()


def test_resuming_a_session_of_variants_with_batch_is_refused(
    ws: Workspace, capsys: pytest.CaptureFixture[str], emu: Emulator
) -> None:
    """A session made online with --variants cannot be switched to batches on resume either
    (its unfinished jobs want several images each); nothing is called."""
    r = run_cli(capsys, *TINY, *FAST, "--variants", "2", "--max-cost", "0.01")
    assert r.code == 3  # stopped at the budget: every job still to run
    session_id = only_session(ws.root)
    requests = emu.requests
    again = run_cli(capsys, "--resume", session_id, *BATCH, *FAST)
    assert again.code == 2 and "--variants" in again.err
    assert emu.requests == requests

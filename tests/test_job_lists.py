"""Job lists everywhere a job is named (issue 16): ``003,007``, ranges ``001-040``, ``@FILE``
for ``--retry``, ``--upgrade`` and ``--report``; an id not in the session is one line, exit 2,
nothing started."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from imagegen.cli.verbs import parse_job_list
from imagegen.emulator import Emulator
from imagegen.errors import InputError

from .cli_helpers import FAST, load, only_session, run_cli, session_ids, use_emulator
from .conftest import Workspace

TINY = ["--wardrobe", "zip-hoodie", "--catalogs", "v1.0"]  # 6 jobs


@pytest.fixture
def ws(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    monkeypatch.chdir(workspace.root)
    for txt in workspace.combos.rglob("wardrobe.txt"):  # one prompt text per job
        txt.write_text(f"Zip hoodie of combo {txt.parent.name}\n", encoding="utf-8")
    return workspace


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch, ws: Workspace) -> Iterator[Emulator]:
    with Emulator(render="plain") as emulator:
        use_emulator(monkeypatch, emulator)
        yield emulator


def test_lists_ranges_and_files_expand_in_order(tmp_path: Path) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("# picked on the contact sheet\n011\n\n012\n", encoding="utf-8")
    assert parse_job_list(f"003,007,001-003,@{ids}") == [
        "003",
        "007",
        "001",
        "002",
        "003",
        "011",
        "012",
    ]
    with pytest.raises(InputError, match="a range is LOW-HIGH"):
        parse_job_list("009-003")
    with pytest.raises(InputError, match="cannot read"):
        parse_job_list(f"@{tmp_path / 'missing.txt'}")


def test_a_job_file_from_another_editor_reads_the_same_or_is_one_clear_line(
    tmp_path: Path,
) -> None:
    """A byte order mark and CRLF (a Windows editor), lists and ranges on a line; a binary
    file, a file naming another file."""
    ids = tmp_path / "ids.txt"
    ids.write_bytes(b"\xef\xbb\xbf003\r\n007, 009\r\n011-012\r\n")
    assert parse_job_list(f"@{ids}") == ["003", "007", "009", "011", "012"]
    binary = tmp_path / "ids.bin"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xd0\xff")
    with pytest.raises(InputError, match="is not UTF-8 text"):
        parse_job_list(f"@{binary}")
    nested = tmp_path / "nested.txt"
    nested.write_text(f"@{ids}\n", encoding="utf-8")
    with pytest.raises(InputError, match="names another file"):
        parse_job_list(f"@{nested}")


def test_retry_takes_a_range_and_a_file_and_redoes_exactly_those(
    ws: Workspace, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(capsys, *TINY, *FAST).code == 0
    sid = only_session(ws.root)
    (ws.root / "redo.txt").write_text("005\n", encoding="utf-8")
    before = dict(emu.generated)
    r = run_cli(capsys, "--retry", sid, "--job", "001-002,@redo.txt", *FAST)
    assert r.code == 0, r.out + r.err
    doc = load(ws.root, sid)
    attempts = {j["id"]: j["attempts"] for j in doc["jobs"]}
    assert attempts == {"001": 2, "002": 2, "003": 1, "004": 1, "005": 2, "006": 1}
    assert sum(emu.generated.values()) - sum(before.values()) == 3


@pytest.mark.parametrize(
    "verb",
    [
        ["--retry", "{sid}"],
        ["--upgrade", "{sid}", "--to-quality", "2K"],
        ["--report", "{sid}"],
    ],
)
def test_an_id_not_in_the_session_is_one_line_exit_2_and_nothing_starts(
    ws: Workspace, emu: Emulator, capsys: pytest.CaptureFixture[str], verb: list[str]
) -> None:
    assert run_cli(capsys, *TINY, *FAST).code == 0
    sid = only_session(ws.root)
    before = (ws.root / "sessions" / f"{sid}-events.jsonl").read_bytes()
    calls = sum(emu.generated.values())
    argv = [part.format(sid=sid) for part in verb]
    r = run_cli(capsys, *argv, "--job", "002,042", *FAST)
    assert r.code == 2, r.out + r.err
    assert len(r.err_lines) == 1 and "042" in r.err
    assert sum(emu.generated.values()) == calls
    assert (ws.root / "sessions" / f"{sid}-events.jsonl").read_bytes() == before
    assert session_ids(ws.root) == [sid]


def test_upgrade_of_a_list_upgrades_only_those(
    ws: Workspace, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(capsys, *TINY, *FAST).code == 0
    parent = only_session(ws.root)
    r = run_cli(capsys, "--upgrade", parent, "--to-quality", "2K", "--job", "002,004-005", *FAST)
    assert r.code == 0, r.out + r.err
    child = next(i for i in session_ids(ws.root) if i != parent)
    jobs = load(ws.root, child)["jobs"]
    assert [j["upgrade_of"] for j in jobs] == ["002", "004", "005"]
    assert all(j["quality"] == "2K" and j["status"] == "completed" for j in jobs)

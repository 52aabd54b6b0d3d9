"""Variants (issue 16): N candidates per job, each its own call and file, all kept; the
budget and the dry run count N calls; an upgrade sends the picked variant."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from imagegen.emulator import Emulator, Outcome

from .cli_helpers import FAST, image_size, load, only_session, run_cli, session_ids, use_emulator
from .conftest import Workspace

ONE_COMBO = ["--wardrobe", "zip-hoodie", "--catalogs", "v1.0", "--combos", "C-U-009"]  # 2 jobs


@pytest.fixture
def ws(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    monkeypatch.chdir(workspace.root)
    return workspace


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch, ws: Workspace) -> Iterator[Emulator]:
    with Emulator(render="plain") as emulator:
        use_emulator(monkeypatch, emulator)
        yield emulator


def test_each_variant_is_its_own_call_and_file_and_all_are_kept(
    ws: Workspace, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    r = run_cli(capsys, *ONE_COMBO, "--variants", "3", *FAST)
    assert r.code == 0, r.out + r.err
    doc = load(ws.root, only_session(ws.root))
    assert sum(emu.generated.values()) == 6
    for job in doc["jobs"]:
        files = job["variant_outputs"]
        assert job["status"] == "completed" and job["variants"] == 3 and len(files) == 3
        assert job["output"] == files[0] and len(set(files)) == 3
        assert [Path(f).stem.rsplit("-", 1)[-1] for f in files] == ["v1", "v2", "v3"]
        assert all(image_size(f) == (1024, 1024) for f in files)
        assert [h["outcome"] for h in job["history"]] == [
            "completed (variant 1 of 3)",
            "completed (variant 2 of 3)",
            "completed (variant 3 of 3)",
        ]
        assert job["cost_usd"] == pytest.approx(sum(h["cost_usd"] for h in job["history"]))
    page = (ws.root / "sessions" / f"{doc['session_id']}-report" / "index.html").read_text()
    for job in doc["jobs"]:  # side by side in each cell, each a thumbnail linked to its file
        for n, path in enumerate(job["variant_outputs"], 1):
            assert f"variant {n}" in page and Path(path).name in page


def test_a_failed_variant_keeps_the_others_and_retry_makes_only_the_missing_one(
    ws: Workspace, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    emu.enqueue(Outcome.image(), Outcome.finish("IMAGE_SAFETY"), match="Morning run")
    r = run_cli(capsys, *ONE_COMBO, "--variants", "3", "--concurrency", "1", *FAST)
    assert r.code == 1, r.out + r.err
    sid = only_session(ws.root)
    job = next(j for j in load(ws.root, sid)["jobs"] if "GN01" in j["title"])
    assert job["status"] == "failed" and len(job["variant_outputs"]) == 1
    assert Path(job["variant_outputs"][0]).is_file()
    before = sum(emu.generated.values())
    r = run_cli(capsys, "--retry", sid, *FAST)
    assert r.code == 0, r.out + r.err
    job = next(j for j in load(ws.root, sid)["jobs"] if "GN01" in j["title"])
    assert job["status"] == "completed" and len(job["variant_outputs"]) == 3
    assert sum(emu.generated.values()) == before + 2  # the two missing variants, no more


def test_dry_run_and_budget_count_one_call_per_variant(
    ws: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    one = run_cli(capsys, *ONE_COMBO, "--dry-run")
    three = run_cli(capsys, *ONE_COMBO, "--variants", "3", "--dry-run", "--max-cost", "0.5")
    assert one.code == three.code == 0
    assert "for 2 images" in " ".join(one.out.split())
    text = " ".join(three.out.split())
    assert "for 6 images" in text and "2 jobs" in text and "3 variants each" in text
    # Each call reserves its price and $0.01: one job of 3 variants fits in $0.50, not two.
    assert "covers the first 1 of 2 jobs" in text


def test_an_upgrade_sends_the_picked_variant(
    ws: Workspace, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(capsys, *ONE_COMBO, "--variants", "2", *FAST).code == 0
    parent = only_session(ws.root)
    jobs = load(ws.root, parent)["jobs"]
    r = run_cli(capsys, "--upgrade", parent, "--to-quality", "2K", "--job", "001:2", *FAST)
    assert r.code == 0, r.out + r.err
    child = next(i for i in session_ids(ws.root) if i != parent)
    upgraded = load(ws.root, child)["jobs"]
    assert len(upgraded) == 1
    assert upgraded[0]["references"][0] == str(Path(jobs[0]["variant_outputs"][1]).resolve())
    assert image_size(upgraded[0]["output"]) == (2048, 2048)
    r = run_cli(capsys, "--upgrade", parent, "--to-quality", "2K", "--job", "001:5", *FAST)
    assert r.code == 2 and "job 001 has no variant 5" in r.err

"""The shot-folder source (seed 000): prompt.json folders -> image.png beside them, through the
same runner, journal, verbs and contact sheet as the core workflow."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from imagegen.emulator import Emulator, Outcome

from .cli_helpers import (
    FAST,
    SESSIONS,
    image_size,
    load,
    only_session,
    run_cli,
    session_ids,
    use_emulator,
)
from .conftest import write_image

ROOT = Path("video-scripts")


def shot(
    root: Path,
    exercise: str,
    name: str,
    prompt: str | None,
    anchor: str,
    **extra: Any,
) -> Path:
    folder = root / ROOT / exercise / "shots" / name
    folder.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {"anchor_image": anchor, **extra}
    if prompt is not None:
        data["engineered_prompt"] = prompt
    (folder / "prompt.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return folder


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A shot tree nobody planned for: two exercises, a nested and a unicode shot, anchors in
    three formats (relative to the working directory and to the shot folder), one folder
    without prompt.json, one shot whose image.png exists."""
    monkeypatch.chdir(tmp_path)
    for name in ("GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_GEMINI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    write_image(tmp_path / "anchors" / "plank.png", (96, 64), "PNG")
    write_image(tmp_path / "anchors" / "lunge.jpg", (64, 96), "JPEG")
    write_image(tmp_path / "anchors" / "row.webp", (80, 80), "WEBP")
    shot(tmp_path, "plank-hold", "01-intro", "Plank hold, side view.", "anchors/plank.png")
    shot(tmp_path, "plank-hold", "02-détail", "Plank hold, elbow close-up.", "anchors/plank.png")
    shot(
        tmp_path,
        "plank-hold",
        "block-b/03-mistake",
        "Plank with sagging hips.",
        "../../../../../anchors/plank.png",  # relative to the shot folder
        duration_seconds=3,
    )
    shot(tmp_path, "walking-lunge", "01-stride", "A walking lunge stride.", "anchors/lunge.jpg")
    done = shot(tmp_path, "walking-lunge", "02-done", "Already made.", "anchors/row.webp")
    write_image(done / "image.png", (50, 50), "PNG")
    (tmp_path / ROOT / "walking-lunge" / "shots" / "99-notes").mkdir()
    return tmp_path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch, tree: Path) -> Iterator[Emulator]:
    with Emulator(render="plain") as emulator:
        use_emulator(monkeypatch, emulator)
        yield emulator


def images(root: Path) -> list[Path]:
    return sorted((root / ROOT).rglob("image*.png"))


def test_every_pending_shot_gets_its_image_and_existing_ones_are_left_alone(
    tree: Path, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    existing = tree / ROOT / "walking-lunge" / "shots" / "02-done" / "image.png"
    before = digest(existing)
    r = run_cli(capsys, "shots", "--all", "--shots-root", str(ROOT), "--aspect", "16:9", *FAST)
    assert r.code == 0, r.out + r.err
    for folder in (
        "plank-hold/shots/01-intro",
        "plank-hold/shots/02-détail",
        "plank-hold/shots/block-b/03-mistake",
        "walking-lunge/shots/01-stride",
    ):
        assert image_size(tree / ROOT / folder / "image.png") == (1376, 768), folder
    assert digest(existing) == before
    assert not (tree / ROOT / "walking-lunge" / "shots" / "99-notes" / "image.png").exists()
    doc = load(tree, only_session(tree))
    titles = [j["title"] for j in doc["jobs"]]
    assert titles == [  # by exercise, then shot folder; every job listed, the skipped one too
        "plank-hold/01-intro",
        "plank-hold/02-détail",
        "plank-hold/block-b/03-mistake",
        "walking-lunge/01-stride",
        "walking-lunge/02-done",
    ]
    statuses = {j["title"]: j["status"] for j in doc["jobs"]}
    assert statuses.pop("walking-lunge/02-done") == "skipped"
    assert set(statuses.values()) == {"completed"}
    skipped = next(j for j in doc["jobs"] if j["status"] == "skipped")
    assert skipped["cost_usd"] is None and skipped["attempts"] == 0
    mistake = next(j for j in doc["jobs"] if j["shot"] == "block-b/03-mistake")
    assert mistake["shot_prompt"]["duration_seconds"] == 3  # other fields are kept
    assert mistake["references"] == [str((tree / "anchors" / "plank.png").resolve())]
    assert emu.generated["Already made."] == 0
    assert sum(emu.generated.values()) == 4
    assert "4 completed, 1 skipped" in " ".join(r.out.split())
    page = (tree / SESSIONS / f"{only_session(tree)}-report" / "index.html").read_text()
    assert page.count('data-job-id="') == 5
    assert "02-détail" in page


def test_a_second_run_calls_nothing_and_says_so(
    tree: Path, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(capsys, "shots", "--all", "--shots-root", str(ROOT), *FAST).code == 0
    calls = sum(emu.generated.values())
    r = run_cli(capsys, "shots", "--all", "--shots-root", str(ROOT), *FAST)
    assert r.code == 0, r.out + r.err
    assert sum(emu.generated.values()) == calls
    assert "Nothing to make: all 5 jobs were already done" in " ".join(r.out.split())


def test_force_makes_the_shot_again_and_keeps_the_old_image_beside_it(
    tree: Path, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tree / ROOT / "walking-lunge" / "shots" / "02-done"
    old = digest(folder / "image.png")
    r = run_cli(capsys, "shots", "walking-lunge", "--force", "--shots-root", str(ROOT), *FAST)
    assert r.code == 0, r.out + r.err
    assert image_size(folder / "image.png") == (1024, 1024)
    kept = list(folder.glob("image.replaced-*.png"))
    assert len(kept) == 1 and digest(kept[0]) == old
    assert emu.generated["Already made."] == 1


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda f: (f / "prompt.json").write_text("{not json"), "prompt.json: not valid JSON"),
        (
            lambda f: (f / "prompt.json").write_text(
                json.dumps({"anchor_image": "anchors/plank.png"})
            ),
            "'engineered_prompt' is missing or empty",
        ),
        (
            lambda f: (f / "prompt.json").write_text(
                json.dumps({"engineered_prompt": "x", "anchor_image": "anchors/nope.png"})
            ),
            "anchor_image 'anchors/nope.png' not found",
        ),
        (
            lambda f: (f / "prompt.json").write_text(
                json.dumps({"engineered_prompt": "x", "anchor_image": "prompt.json"})
            ),
            "not a whole, readable image",
        ),
        (
            lambda f: (f / "prompt.json").write_text(json.dumps(["a", "list"])),
            "must be a JSON object",
        ),
        (
            lambda f: (f / "prompt.json").write_text(
                json.dumps({"engineered_prompt": 42, "anchor_image": "anchors/plank.png"})
            ),
            "'engineered_prompt' must be text, not int '42'",
        ),
    ],
)
def test_a_malformed_prompt_json_is_one_line_exit_2_and_nothing_is_paid_or_written(
    tree: Path, emu: Emulator, capsys: pytest.CaptureFixture[str], setup: Any, message: str
) -> None:
    bad = tree / ROOT / "walking-lunge" / "shots" / "01-stride"
    setup(bad)
    r = run_cli(capsys, "shots", "--all", "--shots-root", str(ROOT), *FAST)
    assert r.code == 2
    assert len(r.err_lines) == 1 and message in r.err and "01-stride" in r.err
    assert emu.requests == 0 and not session_ids(tree)
    assert not (tree / SESSIONS).exists()


def test_a_prompt_json_saved_with_a_byte_order_mark_is_read(
    tree: Path, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """Windows editors start UTF-8 files with a BOM; the JSON after it is what counts. One
    shot: the closing line speaks of one job."""
    folder = shot(tree, "side-plank", "01-left", "Side plank, left.", "anchors/plank.png")
    data = (folder / "prompt.json").read_bytes()
    (folder / "prompt.json").write_bytes(b"\xef\xbb\xbf" + data)
    r = run_cli(capsys, "shots", "side-plank", "--shots-root", str(ROOT), *FAST)
    assert r.code == 0, r.out + r.err
    assert image_size(folder / "image.png") == (1024, 1024)
    assert emu.generated["Side plank, left."] == 1
    assert "The job completed." in " ".join(r.out.split())


def test_unknown_exercise_and_missing_root_are_named(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    r = run_cli(capsys, "shots", "plank", "--shots-root", str(ROOT), "--offline")
    assert r.code == 2 and "no shots/ folder; exercises under" in r.err
    assert "plank-hold, walking-lunge" in r.err
    r = run_cli(capsys, "shots", "--all", "--offline")  # the seed's default root is absent
    assert r.code == 2 and "shots root output/video-scripts does not exist" in r.err
    r = run_cli(capsys, "shots", "--shots-root", str(ROOT), "--offline")
    assert r.code == 2 and "name the exercise(s) to generate, or pass --all" in r.err


def test_a_failed_shot_lets_the_others_finish_exit_1_then_retry_and_status_work(
    tree: Path, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """Seed 000's "continue on error": one blocked shot, the rest saved; the same --retry,
    --status and --resume as the core workflow."""
    emu.enqueue(Outcome.finish("IMAGE_SAFETY"), match="sagging hips")
    r = run_cli(capsys, "shots", "plank-hold", "--shots-root", str(ROOT), *FAST)
    assert r.code == 1, r.out + r.err
    sid = only_session(tree)
    assert "1 job(s) failed (2 completed)" in " ".join(r.out.split())
    failed = [j for j in load(tree, sid)["jobs"] if j["status"] == "failed"]
    assert [j["shot"] for j in failed] == ["block-b/03-mistake"]
    assert failed[0]["finish_reason"] == "IMAGE_SAFETY"
    assert not (
        tree / ROOT / "plank-hold" / "shots" / "block-b" / "03-mistake" / "image.png"
    ).exists()

    r = run_cli(capsys, "--status", sid)
    assert r.code == 0 and "plank-hold/block-b/03-mistake" in r.out and "Failed: 1" in r.out

    r = run_cli(capsys, "--retry", sid, *FAST)
    assert r.code == 0, r.out + r.err
    fixed = tree / ROOT / "plank-hold" / "shots" / "block-b" / "03-mistake" / "image.png"
    assert image_size(fixed) == (1024, 1024)
    assert {j["status"] for j in load(tree, sid)["jobs"]} == {"completed"}


def test_shots_help_lists_every_run_option(capsys: pytest.CaptureFixture[str]) -> None:
    r = run_cli(capsys, "shots", "--help")
    assert r.code == 0
    for option in (
        "--all",
        "--shots-root",
        "--force",
        "--sessions-dir",
        "--model",
        "--quality",
        "--aspect",
        "--concurrency",
        "--min-interval",
        "--rpm",
        "--timeout",
        "--max-cost",
        "--retry-policy",
        "--dry-run",
        "--offline",
        "--plain",
        "--provider",
    ):
        assert option in r.out, option


def test_dry_run_lists_shots_and_cost_and_writes_nothing(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    r = run_cli(capsys, "shots", "--all", "--shots-root", str(ROOT), "--dry-run")
    assert r.code == 0, r.err
    text = " ".join(r.out.split())
    assert "5 shots in 2 exercise(s), 1 with an image already (skipped)" in text
    assert "Estimated cost: $" in text and "for 4 images" in text
    assert not (tree / SESSIONS).exists()
    assert len(images(tree)) == 1


def test_the_bundled_sample_is_in_the_seed_layout() -> None:
    repo = Path(__file__).resolve().parents[1]
    sample = repo / "output" / "video-scripts"
    prompts = sorted(sample.rglob("prompt.json"))
    assert len(prompts) == 6
    for path in prompts:
        data = json.loads(path.read_text(encoding="utf-8"))
        anchor = Path(data["anchor_image"])
        base = repo if not data["anchor_image"].startswith("..") else path.parent
        with Image.open(base / anchor) as img:
            assert img.size == (768, 768)

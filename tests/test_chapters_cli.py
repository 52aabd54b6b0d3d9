"""``imagegen chapters EPISODE_DIR ...`` end to end: the real CLI, runner, journal and google-genai
SDK against the loopback emulator; files, manifest, provenance, journal statuses, exit codes and
the emulator's call counts are what is checked."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from imagegen.emulator import Emulator, Outcome
from imagegen.providers.gemini import tier_size

from .chapters_helpers import chapter, mixed_chapters, write_episode
from .cli_helpers import (
    SESSIONS,
    CliResult,
    image_size,
    load,
    prompt_of,
    run_cli,
    session_ids,
    use_emulator,
)

FAST = ["--min-interval", "0", "--plain"]
GENERATED = tier_size("2K", "16:9")  # 2752x1536: the stage's default tier and aspect
WALLET = "A generic wallet app screen"
CLOSING = "Özet ve Kapanış"  # noqa: RUF001 (Turkish dotless i, on purpose)
HEADING = "Başlık"  # noqa: RUF001 (Turkish dotless i, on purpose)


def episode_chapters() -> list[dict[str, Any]]:
    """Every visual type, a null image_prompt (ch03), unicode titles, a chapter without a
    visual (ch06)."""
    chapters = mixed_chapters()
    chapters[1]["title"] = "Bloklar ve Zincir — 区块链"
    chapters.append(
        {"chapter_id": "ch06", "title": "Notlar", "visuals": [], "narration": {"text": "."}}
    )
    return chapters


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("IMAGE_GEN_STYLE_PREFIX", "IMAGE_GEN_SIZE", "MAX_EPISODE_COST_USD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("IMAGE_GEN_PROMPT_TEMPLATE", raising=False)
    return tmp_path


@pytest.fixture
def emu(root: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    with Emulator(render="plain") as emulator:
        use_emulator(monkeypatch, emulator)
        yield emulator


@pytest.fixture
def ep(root: Path) -> Path:
    write_episode(root / "ep1", episode_chapters(), episode_id="ep1")
    return Path("ep1")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> CliResult:
    return run_cli(capsys, "chapters", *argv, *FAST)


def manifest(folder: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / "images" / "manifest.json").read_text("utf-8"))
    return data


def provenance(folder: Path) -> dict[str, Any]:
    path = folder / "provenance" / "imagegen_provenance.json"
    data: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return data


def entries(folder: Path) -> dict[str, dict[str, Any]]:
    return {e["chapter_id"]: e for e in manifest(folder)["images"]}


def flat(text: str) -> str:
    return " ".join(text.split())


def assert_files_match(folder: Path) -> None:
    """The manifest claims exactly the chapter images on disk, each with its size, and the
    provenance lists exactly those (the issue's check after any crash)."""
    doc = manifest(folder)
    claimed = {e["file_path"] for e in doc["images"] if e["status"] == "ok"}
    for e in doc["images"]:
        if e["status"] == "ok":
            assert (folder / e["file_path"]).stat().st_size == e["size_bytes"], e["chapter_id"]
        else:
            assert e["file_path"] is None
    on_disk = {
        f"images/{p.name}"
        for p in (folder / "images").glob("*.png")
        if ".replaced-" not in p.name and not p.name.startswith(".")
    }
    assert claimed == on_disk
    prov = provenance(folder)
    assert prov["output_files"][0] == "images/manifest.json"
    assert set(prov["output_files"][1:]) == claimed
    assert prov["image_count"] == len(claimed)


def statuses(root: Path, sid: str) -> dict[str, str]:
    return {j["chapter_id"]: j["status"] for j in load(root, sid)["jobs"]}


def test_every_visual_type_gets_its_image_manifest_and_provenance(
    root: Path, ep: Path, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    r = run(capsys, str(ep))
    assert r.code == 0, r.out + r.err
    assert "Episode ep1 (ep1): complete: 3 generated, 2 drawn, 1 left alone; $0.41" in flat(r.out)
    images = root / ep / "images"
    for cid in ("ch01", "ch05"):  # title_card, talking_head: drawn at the episode's frame
        assert image_size(images / f"{cid}.png") == (1920, 1080)
    for cid in ("ch02", "ch03", "ch04"):  # generated: 16:9 at 2K
        assert image_size(images / f"{cid}.png") == GENERATED
    assert not (images / "ch06.png").exists()  # no visual, no image

    doc = manifest(root / ep)
    assert (doc["episode_id"], doc["schema_version"], doc["status"]) == ("ep1", "1.0", "complete")
    assert {"generated_at", "images"} <= doc.keys()
    text = (images / "manifest.json").read_text("utf-8")
    assert "Giriş: Bitcoin Nedir?" in text and "区块链" in text  # ensure_ascii=False
    by_id = entries(root / ep)
    assert list(by_id) == ["ch01", "ch02", "ch03", "ch04", "ch05"]
    for cid, entry in by_id.items():
        assert {
            "chapter_id",
            "chapter_title",
            "visual_type",
            "file_path",
            "prompt",
            "generation_method",
            "model",
            "size",
            "mime_type",
            "size_bytes",
            "metadata",
        } <= entry.keys()
        assert entry["file_path"] == f"images/{cid}.png" and entry["mime_type"] == "image/png"
        assert {"cost_usd", "generated_at"} <= entry["metadata"].keys()
    for cid in ("ch01", "ch05"):
        placeholder = by_id[cid]
        assert (placeholder["generation_method"], placeholder["model"]) == ("template", None)
        assert placeholder["prompt"] is None and placeholder["metadata"]["cost_usd"] == 0.0
        assert placeholder["size"] == "1920x1080"
    assert by_id["ch01"]["metadata"]["text_overlay"] == "Giriş: Bitcoin Nedir?"
    for cid in ("ch02", "ch03", "ch04"):
        made = by_id[cid]
        assert (made["generation_method"], made["model"]) == ("gemini", "gemini-3-pro-image")
        assert made["size"] == "2752x1536" and made["metadata"]["cost_usd"] > 0.134
        assert made["metadata"]["finish_reason"] == "STOP"
        assert made["metadata"]["usage"]["image_tokens"] == 1120
    assert by_id["ch02"]["prompt"] == "A clean diagram of blocks linked in a chain"
    assert by_id["ch03"]["prompt"].startswith("Emulated image prompt ")  # written by the text model
    assert by_id["ch03"]["metadata"]["prompt_source"] == "written by gemini-2.5-flash"

    # Each generated chapter called once, the text model once (for ch03's null prompt).
    assert sum(emu.generated.values()) == 3 and set(emu.generated.values()) == {1}
    assert sum(emu.written.values()) == 1
    assert "Chapter title: Chapter ch03" in next(iter(emu.written))

    prov = provenance(root / ep)
    seed_keys = [  # seed 002 section 8.1, in its order
        "stage",
        "episode_id",
        "timestamp",
        "prompt_name",
        "prompt_version",
        "prompt_hash",
        "model",
        "image_gen_model",
        "input_files",
        "input_content_hash",
        "output_files",
        "input_tokens",
        "output_tokens",
        "image_count",
        "generated_count",
        "template_count",
        "cost_usd",
        "duration_seconds",
    ]
    assert list(prov)[: len(seed_keys)] == seed_keys
    assert (prov["stage"], prov["model"], prov["image_gen_model"]) == (
        "imagegen",
        "gemini-2.5-flash",
        "gemini-3-pro-image",
    )
    assert (prov["generated_count"], prov["template_count"], prov["skipped_count"]) == (3, 2, 1)
    assert prov["input_tokens"] > 0 and prov["output_tokens"] > 0
    images_cost = sum(e["metadata"]["cost_usd"] for e in by_id.values())
    assert images_cost < prov["cost_usd"] < images_cost + 0.01  # plus the text model's
    assert_files_match(root / ep)

    sid = session_ids(root)[0]
    doc_session = load(root, sid)
    assert statuses(root, sid) == {
        "ch01": "completed",
        "ch02": "completed",
        "ch03": "completed",
        "ch04": "completed",
        "ch05": "completed",
        "ch06": "skipped",
    }
    assert doc_session["summary"]["cost_usd"] == pytest.approx(prov["cost_usd"], abs=1e-6)
    assert {j["delivery"] for j in doc_session["jobs"] if j["status"] == "completed"} == {"done"}
    # The contact sheet: one section for the episode, a column per chapter, placeholders marked.
    page = (root / SESSIONS / f"{sid}-report" / "index.html").read_text("utf-8")
    assert page.count('data-job-id="') == 6
    assert "template" in page and "title_card" in page and "Bloklar ve Zincir" in page


def test_an_unchanged_second_run_calls_nothing_and_says_so(
    root: Path, ep: Path, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, str(ep)).code == 0
    files = [p for p in (root / ep).rglob("*") if p.is_file()]
    before = {p: p.stat().st_mtime_ns for p in files}
    requests = emu.requests
    r = run(capsys, str(ep))
    assert r.code == 0, r.out + r.err
    assert emu.requests == requests  # no image call, no text call
    assert "nothing changed: no call will be made" in flat(r.out)
    assert "Nothing to make" in flat(r.out)
    assert {p: p.stat().st_mtime_ns for p in files} == before  # placeholders left alone too
    sid = session_ids(root)[-1]
    assert set(statuses(root, sid).values()) == {"skipped"}
    doc = load(root, sid)
    ch03 = next(j for j in doc["jobs"] if j["chapter_id"] == "ch03")
    assert prompt_of(doc, ch03) == entries(root / ep)["ch03"]["prompt"]  # shown from the cache


def test_an_edited_chapter_alone_is_made_again_and_the_old_image_kept_aside(
    root: Path, ep: Path, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, str(ep)).code == 0
    old = (root / ep / "images" / "ch04.png").read_bytes()
    placeholder = (root / ep / "images" / "ch01.png").stat().st_mtime_ns
    chapters = episode_chapters()
    chapters[3]["visuals"][0]["image_prompt"] = "A hardware wallet screen"
    write_episode(root / ep, chapters, episode_id="ep1")
    generated = emu.generated
    r = run(capsys, str(ep))
    assert r.code == 0, r.out + r.err
    assert emu.generated - generated == {"A hardware wallet screen": 1}
    sid = session_ids(root)[-1]
    assert statuses(root, sid)["ch04"] == "completed"
    assert [s for c, s in statuses(root, sid).items() if c != "ch04"] == ["skipped"] * 5
    kept = list((root / ep / "images").glob("ch04.replaced-*.png"))
    assert len(kept) == 1 and kept[0].read_bytes() == old  # never overwritten
    assert (root / ep / "images" / "ch01.png").stat().st_mtime_ns == placeholder
    by_id = entries(root / ep)
    assert by_id["ch04"]["prompt"] == "A hardware wallet screen"
    assert len(by_id) == 5 and manifest(root / ep)["status"] == "complete"
    prov = provenance(root / ep)
    assert (prov["generated_count"], prov["skipped_count"], prov["image_count"]) == (1, 5, 5)
    assert_files_match(root / ep)


def test_a_changed_title_redraws_only_that_placeholder(
    root: Path, ep: Path, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, str(ep)).code == 0
    chapters = episode_chapters()
    chapters[4]["title"] = CLOSING
    write_episode(root / ep, chapters, episode_id="ep1")
    requests = emu.requests
    assert run(capsys, str(ep)).code == 0
    assert emu.requests == requests  # drawn locally: no call
    assert entries(root / ep)["ch05"]["metadata"]["text_overlay"] == CLOSING
    assert statuses(root, session_ids(root)[-1])["ch05"] == "completed"


def test_force_remakes_every_chapter_and_chapter_merges_one(
    root: Path, ep: Path, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, str(ep)).code == 0
    written = emu.written
    r = run(capsys, str(ep), "--force")
    assert r.code == 0, r.out + r.err
    assert set(emu.generated.values()) == {2}  # every generated chapter once more
    assert emu.written == written  # ch03's prompt came from the cache
    prov = provenance(root / ep)
    assert (prov["generated_count"], prov["template_count"], prov["force"]) == (3, 2, True)
    assert prov["input_tokens"] == 0
    r = run(capsys, str(ep), "--chapter", "ch02")
    assert r.code == 0, r.out + r.err
    assert emu.generated["A clean diagram of blocks linked in a chain"] == 3
    assert sum(emu.generated.values()) == 7
    sid = session_ids(root)[-1]
    assert statuses(root, sid)["ch02"] == "completed"
    assert list(statuses(root, sid).values()).count("skipped") == 5
    prov = provenance(root / ep)
    assert (prov["chapter_id"], prov["generated_count"], prov["image_count"]) == ("ch02", 1, 5)
    assert len(entries(root / ep)) == 5
    assert_files_match(root / ep)
    r = run(capsys, str(ep), "--chapter", "ch99")
    assert r.code == 2 and "--chapter 'ch99' is not in" in r.err


@pytest.mark.parametrize(
    ("outcome", "reason"),
    [(Outcome.finish("IMAGE_SAFETY"), "IMAGE_SAFETY"), (Outcome.prompt_blocked(), None)],
)
def test_a_rejected_prompt_is_an_entry_and_the_rest_continue(
    root: Path,
    ep: Path,
    emu: Emulator,
    capsys: pytest.CaptureFixture[str],
    outcome: Outcome,
    reason: str | None,
) -> None:
    emu.enqueue(outcome, match=WALLET)
    r = run(capsys, str(ep))
    assert r.code == 1, r.out + r.err
    ch04 = entries(root / ep)["ch04"]
    assert ch04["status"] == "rejected" and ch04["file_path"] is None
    assert ch04["reason"] == (reason or "PROMPT_BLOCKED:SAFETY")
    assert ch04["prompt"] == WALLET  # kept for a person to review
    assert not (root / ep / "images" / "ch04.png").exists()
    assert manifest(root / ep)["status"] == "partial"
    assert emu.generated[WALLET] == 0 and sum(emu.generated.values()) == 2
    sid = session_ids(root)[-1]
    assert statuses(root, sid)["ch04"] == "failed"
    assert [s for c, s in statuses(root, sid).items() if c not in ("ch04", "ch06")] == [
        "completed"
    ] * 4
    prov = provenance(root / ep)
    assert (prov["rejected_count"], prov["generated_count"], prov["status"]) == (1, 2, "partial")
    assert_files_match(root / ep)
    # Unchanged, the refused chapter is not sent again (it would be refused again).
    requests = emu.requests
    again = run(capsys, str(ep))
    assert again.code == 0 and emu.requests == requests


def test_a_refused_remake_of_a_changed_chapter_keeps_the_old_image_aside(
    root: Path, ep: Path, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, str(ep)).code == 0
    old = (root / ep / "images" / "ch04.png").read_bytes()
    chapters = episode_chapters()
    chapters[3]["visuals"][0]["image_prompt"] = "A forbidden screen"
    write_episode(root / ep, chapters, episode_id="ep1")
    emu.enqueue(Outcome.finish("IMAGE_SAFETY"), match="forbidden")
    assert run(capsys, str(ep)).code == 1
    assert entries(root / ep)["ch04"]["status"] == "rejected"
    kept = list((root / ep / "images").glob("ch04.replaced-*.png"))
    assert len(kept) == 1 and kept[0].read_bytes() == old
    assert_files_match(root / ep)


def test_the_episode_cap_stops_one_episode_while_another_completes(
    root: Path, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    big = [chapter(f"ch0{i}", "diagram", image_prompt=f"Diagram number {i}") for i in range(1, 6)]
    small = [
        chapter("ch01", "title_card", title=HEADING, image_prompt=None),
        chapter("ch02", "b_roll", image_prompt="A quiet harbour"),
        chapter("ch03", "screen_share", image_prompt="A settings screen"),
    ]
    write_episode(root / "big", big, episode_id="big")
    write_episode(root / "small", small, episode_id="small")
    # Each image costs about $0.138; the next one holds its price plus $0.01 for thinking.
    r = run(capsys, "big", "small", "--max-episode-cost", "0.3", "--concurrency", "1")
    assert r.code == 1, r.out + r.err
    assert "not started: their cost group reached its cap" in flat(r.out)
    assert "Episode big (big): COST_LIMIT: 2 generated, 3 not made; $0.2" in flat(r.out)
    assert "Episode small (small): complete: 2 generated, 1 drawn" in flat(r.out)
    big_doc = manifest(root / "big")
    assert big_doc["status"] == "COST_LIMIT"
    assert [e["chapter_id"] for e in big_doc["images"]] == ["ch01", "ch02"]
    assert sum(e["metadata"]["cost_usd"] for e in big_doc["images"]) <= 0.3
    prov = provenance(root / "big")
    assert (prov["status"], prov["generated_count"], prov["stopped_count"]) == ("COST_LIMIT", 2, 3)
    assert manifest(root / "small")["status"] == "complete"
    assert len(manifest(root / "small")["images"]) == 3
    sid = session_ids(root)[-1]
    doc = load(root, sid)
    held = [j for j in doc["jobs"] if j["status"] == "pending"]
    assert [j["chapter_id"] for j in held] == ["ch03", "ch04", "ch05"]
    assert {j["episode_id"] for j in held} == {"big"}
    assert {j["error_kind"] for j in held} == {"cost_cap"}
    assert sum(emu.generated.values()) == 4  # 2 of big, 2 of small; nothing past the cap
    for folder in ("big", "small"):
        assert_files_match(root / folder)


def test_a_malformed_chapters_json_is_one_line_exit_2_and_nothing_is_written(
    root: Path, ep: Path, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    chapters = episode_chapters()
    chapters[2]["visuals"][0]["type"] = "hologram"
    write_episode(root / "bad", chapters, episode_id="bad")
    r = run(capsys, str(ep), "bad")
    assert r.code == 2
    assert len(r.err_lines) == 1
    line = r.err_lines[0]
    assert "bad/chapters.json" in line and "chapters[2].visuals[0].type" in line
    assert emu.requests == 0
    assert not (root / SESSIONS).exists()
    assert not (root / ep / "images").exists() and not (root / "bad" / "images").exists()


def test_variants_are_refused_one_image_per_chapter(
    root: Path, ep: Path, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    r = run(capsys, str(ep), "--variants", "2")
    assert r.code == 2
    assert "--variants is not supported" in r.err and "--chapter ID" in r.err
    assert emu.requests == 0
    assert not (root / SESSIONS).exists() and not (root / ep / "images").exists()


def test_a_dry_run_shows_each_chapters_fate_and_writes_nothing(
    root: Path, ep: Path, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    r = run(capsys, str(ep), "--dry-run")
    assert r.code == 0, r.out + r.err
    out = flat(r.out)
    assert "ch03 b_roll generate new" in out and "ch06 - skip no visual" in out
    assert "Image prompts: 1 to be written by gemini-2.5-flash" in out
    assert "2 drawn locally, free" in out
    assert emu.requests == 0
    assert not (root / SESSIONS).exists() and not (root / ep / "images").exists()


def test_a_null_prompt_is_written_once_and_cached_until_its_inputs_change(
    root: Path, ep: Path, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, str(ep)).code == 0
    assert sum(emu.written.values()) == 1
    written_prompt = entries(root / ep)["ch03"]["prompt"]
    (root / ep / "images" / "ch03.png").unlink()  # lost: made again from the cached prompt
    r = run(capsys, str(ep))
    assert r.code == 0, r.out + r.err
    assert sum(emu.written.values()) == 1
    assert emu.generated[written_prompt] == 2
    assert provenance(root / ep)["input_tokens"] == 0
    assert entries(root / ep)["ch03"]["metadata"]["prompt_source"].startswith("cache")
    template = root / "mine.md"
    template.write_text("Describe {{ visual_description }} plainly.", encoding="utf-8")
    r = run(capsys, str(ep), "--prompt-template", str(template))
    assert r.code == 0, r.out + r.err
    assert emu.written["Describe miners at work plainly.\n"] == 1  # a new template: written
    sid = session_ids(root)[-1]
    assert statuses(root, sid)["ch03"] == "completed"  # its content hash changed with it
    assert load(root, sid)["config"]["planning_cost_usd"] > 0


def test_a_refusal_by_the_text_model_names_the_chapter_and_pays_nothing_more(
    root: Path, ep: Path, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    emu.enqueue(Outcome.prompt_blocked(), match="Chapter title: Chapter ch03")
    r = run(capsys, str(ep))
    assert r.code == 2
    assert len(r.err_lines) == 1 and "chapter ch03" in r.err and "image_prompt" in r.err
    assert sum(emu.generated.values()) == 0 and not (root / SESSIONS).exists()


def test_the_style_prefix_goes_before_every_image_prompt(
    root: Path, ep: Path, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    os.environ["IMAGE_GEN_STYLE_PREFIX"] = "Flat orange house style."
    try:
        assert run(capsys, str(ep)).code == 0
    finally:
        del os.environ["IMAGE_GEN_STYLE_PREFIX"]
    assert set(emu.generated) >= {
        "Flat orange house style. A clean diagram of blocks linked in a chain",
        f"Flat orange house style. {WALLET}",
    }
    assert "House style: Flat orange house style." in next(iter(emu.written))
    # The prefix is part of every content hash: a different one remakes the generated images.
    r = run(capsys, str(ep), "--style-prefix", "Pencil sketch.")
    assert r.code == 0
    assert sum(1 for s in statuses(root, session_ids(root)[-1]).values() if s == "completed") == 3


def test_a_budget_stop_says_cost_limit_and_resume_finishes(
    root: Path, ep: Path, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    r = run(capsys, str(ep), "--max-cost", "0.2", "--concurrency", "1")
    assert r.code == 3 and "budget" in flat(r.out)
    assert manifest(root / ep)["status"] == "COST_LIMIT"
    assert_files_match(root / ep)
    sid = session_ids(root)[-1]
    generated = sum(emu.generated.values())
    r = run_cli(capsys, "--resume", sid, *FAST)
    assert r.code == 0, r.out + r.err
    assert manifest(root / ep)["status"] == "complete"
    assert sum(emu.generated.values()) == 3 and generated < 3
    assert_files_match(root / ep)


def test_a_damaged_manifest_is_kept_and_rebuilt_from_the_images(
    root: Path, ep: Path, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, str(ep)).code == 0
    (root / ep / "images" / "manifest.json").write_text("{oops", encoding="utf-8")
    requests = emu.requests
    r = run(capsys, str(ep))
    assert r.code == 0, r.out + r.err
    assert emu.requests == requests  # every image carries its entry: nothing paid again
    kept = list((root / ep / "images").glob("manifest.json.damaged-*"))
    assert len(kept) == 1 and kept[0].read_text("utf-8") == "{oops"
    assert len(entries(root / ep)) == 5 and manifest(root / ep)["status"] == "complete"


def test_the_text_model_is_retried_by_the_run_policy_and_a_dead_service_stops_the_run(
    root: Path, ep: Path, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = root / "policy.toml"
    policy.write_text("[retry]\nserver_error_wait = 0\njitter = 0\n", encoding="utf-8")
    target = "Chapter title: Chapter ch03"
    emu.enqueue(Outcome.error(503), match=target)
    r = run(capsys, str(ep), "--retry-policy", str(policy))
    assert r.code == 0, r.out + r.err
    assert sum(emu.written.values()) == 1  # the second attempt wrote it
    (root / ep / "images" / ".prompt_cache.json").unlink()
    chapters = episode_chapters()
    chapters[2]["narration"]["text"] = "Miners compete."  # ch03 changed: a prompt to write
    write_episode(root / ep, chapters, episode_id="ep1")
    emu.enqueue(*[Outcome.error(503)] * 3, match=target)
    r = run(capsys, str(ep), "--retry-policy", str(policy))
    assert r.code == 3
    assert len(r.err_lines) == 1 and "prompts written so far are cached" in r.err
    assert sum(emu.generated.values()) == 3  # nothing more was paid

"""``image-gen.sh specs ROOT``, end to end through the command line against the emulator (Gemini
and OpenAI routes): what is generated, what the specs say afterwards, and what happens when a
spec is edited, broken or half-recorded around a run."""

from __future__ import annotations

import hashlib
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from imagegen.emulator import Emulator
from imagegen.emulator.openai_routes import openai_state
from imagegen.providers.gemini import tier_size
from imagegen.secrets import redact

from .cli_helpers import (
    FAST,
    OFFLINE,
    by_id,
    image_size,
    load,
    only_session,
    prompt_of,
    run_cli,
    session_ids,
    use_emulator,
)
from .specs_tree import (
    CHAPTER_1_FILE,
    CHAPTER_2_FILE,
    FILES,
    LOCATION_FILE,
    PENDING,
    assert_only_output_fields,
    calls,
    make_tree,
    recorded,
    texts,
)

OPENAI_KEY = "sk-test-" + "0123456789abcdefspecs"
PROJECT = Path(__file__).resolve().parent.parent
ROOT = "specs"  # the tree, relative to the test's working directory

OUTPUTS = {
    "dawn-quay": "generated/chapters/dawn/dawn-quay.png",
    "dawn-road": "generated/chapters/dawn/dawn-road.png",
    "dawn-osk": "generated/chapters/dawn/dawn-osk.png",
    "workshop-furnace": "generated/chapters/workshop/workshop-furnace.png",
    "harbour/overview": "generated/locations/harbour/overview.png",
    "harbour/bell-mast": "generated/locations/harbour/bell-mast.png",
    "harbour/crates": "generated/locations/harbour/crates.png",
}


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    """One emulator for both families: Gemini's routes and OpenAI's, with test keys."""
    with Emulator(render="plain") as emulator:
        use_emulator(monkeypatch, emulator)
        monkeypatch.setenv("OPENAI_BASE_URL", emulator.base_url + "/v1")
        monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
        yield emulator


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return make_tree(tmp_path / ROOT)


# -- the whole run --------------------------------------------------------------------------


def test_every_pending_item_is_generated_once_and_recorded_and_a_second_run_calls_nothing(
    tree: Path, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    before = texts(tree)
    r = run_cli(capsys, "specs", ROOT, *FAST)
    assert r.code == 0, r.out + r.err
    sid = only_session(Path.cwd())
    doc = load(Path.cwd(), sid)
    jobs = doc["jobs"]
    assert [j["title"] for j in jobs] == list(PENDING)  # chapters, then locations, in order
    assert {j["title"]: j["provider"] for j in jobs} == PENDING
    made = calls(emu)
    assert sum(made.values()) == len(PENDING)
    for job in jobs:
        assert made[prompt_of(doc, job)] == 1, job["title"]
        assert (job["status"], job["delivery"]) == ("completed", "done"), job["title"]
        assert job["output"] == f"{ROOT}/{OUTPUTS[job['title']]}"
    # Every spec records exactly its images, and a diff shows only the output fields.
    after = texts(tree)
    for name in FILES:
        assert_only_output_fields(before[name], after[name])
    assert recorded(tree) == {
        **{task: [path] for task, path in OUTPUTS.items()},
        "workshop-done": ["generated/chapters/workshop/workshop-done.png"],
        "harbour/stalls": ["generated/locations/harbour/stalls.png"],
    }
    # What a record says: the provider, model, ids, hashes and cost of the image on disk.
    quay = by_id(doc)["001"]
    image = tree / OUTPUTS["dawn-quay"]
    assert image_size(image) == tier_size("1K", "3:2")
    assert f"request_id: {quay['request_id']}" in after[CHAPTER_1_FILE]
    assert (
        f"image_sha256: {hashlib.sha256(image.read_bytes()).hexdigest()}" in after[CHAPTER_1_FILE]
    )
    prompt_hash = hashlib.sha256(prompt_of(doc, quay).encode()).hexdigest()
    assert f"prompt_sha256: {prompt_hash}" in after[CHAPTER_1_FILE]
    assert f"cost_usd: {round(quay['cost_usd'], 6)}" in after[CHAPTER_1_FILE]
    assert after[CHAPTER_2_FILE].count("model: gpt-image-2\n") == 2  # furnace, like the done one
    assert "model: gemini-3-pro-image-preview" in after[LOCATION_FILE]
    # A second run finds nothing pending: no session, no call.
    requests = emu.requests
    r = run_cli(capsys, "specs", ROOT, *FAST)
    assert r.code == 0, r.out + r.err
    assert "Nothing to generate: 0 tasks (9 items, 9 already generated)" in r.out
    assert emu.requests == requests
    assert session_ids(Path.cwd()) == [sid]


def test_prompts_carry_the_file_block_states_references_and_the_negative_as_text(
    tree: Path, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    r = run_cli(capsys, "specs", ROOT, "chapters", "--only", "dawn", *FAST)
    assert r.code == 0, r.out + r.err
    doc = load(Path.cwd(), only_session(Path.cwd()))
    quay, road, osk = doc["jobs"]
    text = prompt_of(doc, quay)
    assert text.startswith(
        "Chapter visual thesis: Licht über dem Wasser. Lange Schatten überall.\n"
        "Palette: bernstein, schiefer, moos.\n\nMara am Kai, „die Laterne“ erhoben,"
    )
    assert "- Mara Vell: durchnässt, entschlossen" in text
    assert text.endswith("Avoid: text, watermark")
    # The approved portrait is sent before the candidate sketch, though listed after it.
    assert [Path(p).name for p in quay["references"]] == ["mara-portrait.png", "mara-sketch.png"]
    assert road["references"] == [] and "Avoid" not in prompt_of(doc, road)
    # Osk has no reference images: his appearance travels as text.
    assert "- Osk: hair: copper, tied back; build: broad" in prompt_of(doc, osk)
    assert len(osk["references"]) == 2


def test_dry_run_shows_provider_model_and_price_per_task_and_the_notes(
    tree: Path, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    before = texts(tree)
    r = run_cli(capsys, "specs", ROOT, "--dry-run", "--json")
    assert r.code == 0, r.err
    shown = orjson.loads(r.out)
    rows = {row["title"]: row for row in shown["jobs"]}
    assert {t: row["provider"] for t, row in rows.items()} == PENDING
    assert rows["workshop-furnace"]["model"] == "gpt-image-2"
    assert rows["harbour/overview"]["model"] == "gemini-3-pro-image-preview"
    assert rows["dawn-quay"]["model"] == "gemini-3-pro-image"
    assert (rows["harbour/overview"]["quality"], rows["harbour/overview"]["aspect"]) == (
        "2K",
        "16:9",
    )
    assert rows["dawn-quay"]["price_usd"] == pytest.approx(0.134 + 2 * 0.0011)
    assert rows["workshop-furnace"]["price_usd"] > 0.3  # OpenAI's 2K estimate, not Gemini's
    assert shown["total_usd"] == pytest.approx(sum(row["price_usd"] for row in rows.values()))
    (note,) = shown["notes"]
    assert "02-workshop.yaml: defaults.model 'dall-e-3'" in note and "gpt-image-2" in note
    table = run_cli(capsys, "specs", ROOT, "--dry-run")
    assert table.code == 0
    out = " ".join(table.out.split())
    assert "Note: specs/chapters/02-workshop.yaml: defaults.model 'dall-e-3'" in out
    assert (
        "(gemini gemini-3-pro-image, openai gpt-image-2, gemini gemini-3-pro-image-preview," in out
    )
    assert "Estimated cost: $" in out and "published prices of 2026-03, 2026-12" in out
    # Nothing was written or paid.
    assert texts(tree) == before
    assert emu.requests == 0
    assert not (Path.cwd() / "sessions").exists()


def test_provider_flag_overrides_every_file_and_an_unknown_default_falls_back(
    tree: Path, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    r = run_cli(capsys, "specs", ROOT, "--dry-run", "--json", "--provider", "openai")
    rows = orjson.loads(r.out)["jobs"]
    assert {row["provider"] for row in rows} == {"openai"}
    assert {row["model"] for row in rows} == {"gpt-image-2"}
    # A provider this installation does not know: the run's provider, said in a note.
    location = tree / LOCATION_FILE
    location.write_text(location.read_text().replace("provider: google", "provider: midjourney"))
    r = run_cli(capsys, "specs", ROOT, "locations", "--dry-run", "--json")
    shown = orjson.loads(r.out)
    assert {row["provider"] for row in shown["jobs"]} == {"gemini"}
    assert any("'midjourney' is not a provider this tool knows" in n for n in shown["notes"])
    # The override is a real run too: every call goes to OpenAI.
    r = run_cli(capsys, "specs", ROOT, "chapters", "--provider", "openai", *FAST)
    assert r.code == 0, r.out + r.err
    assert sum(openai_state(emu).generated.values()) == 4
    assert sum(emu.generated.values()) == 0
    assert "provider: openai" in (tree / CHAPTER_1_FILE).read_text()


# -- edits around the run --------------------------------------------------------------------


def test_an_item_edited_or_removed_during_the_run_is_reported_and_other_edits_survive(
    tree: Path, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    chapter, location = tree / CHAPTER_1_FILE, tree / LOCATION_FILE
    edited: dict[str, str] = {}

    def edit_during_the_call(prompt: str) -> None:
        if "Mara am Kai" not in prompt or edited:
            return
        text = chapter.read_text()
        text = text.replace("Mara am Kai,", "Mara allein am Kai,")  # dawn-quay's prompt
        text = text.replace("title: 'Dämmerung am Kai'", "title: 'Dämmerung (neu)'")
        text = text.replace("# end of chapter 1", "# end of chapter 1\n# added during the run")
        chapter.write_text(text)
        crates = "  - slug: crates   # no generated_images key at all\n\n"
        crates += "    prompt_used: 'Fish crates under the awnings, ice and scales.'\n\n"
        text = location.read_text()
        assert crates in text
        location.write_text(text.replace(crates, ""))
        edited.update({CHAPTER_1_FILE: chapter.read_text(), LOCATION_FILE: location.read_text()})

    emu.on_request = edit_during_the_call
    r = run_cli(capsys, "specs", ROOT, *FAST, "--concurrency", "1")
    emu.on_request = None
    assert edited
    assert r.code == 1, r.out + r.err
    assert "2 image(s) saved but not recorded" in r.out
    sid = only_session(Path.cwd())
    jobs = {j["title"]: j for j in load(Path.cwd(), sid)["jobs"]}
    assert jobs["dawn-quay"]["delivery"].startswith("not written: stale: prompt changed")
    assert jobs["harbour/crates"]["delivery"].startswith("not written: stale: item removed")
    assert (tree / OUTPUTS["dawn-quay"]).is_file()  # the images are kept
    assert (tree / OUTPUTS["harbour/crates"]).is_file()
    # The user's edits are all there; only the output fields of the other items changed.
    for name, text in edited.items():
        assert_only_output_fields(text, (tree / name).read_text())
    now = recorded(tree)
    assert now["dawn-quay"] == [] and "harbour/crates" not in now
    assert now["dawn-road"] == [OUTPUTS["dawn-road"]]
    # --status and the contact sheet say what was not recorded.
    status = run_cli(capsys, "--status", sid)
    assert "Saved, but not recorded by the job source" in status.out
    assert "[001] dawn-quay: not written: stale: prompt changed" in status.out
    sheet = (Path.cwd() / "sessions" / f"{sid}-report" / "index.html").read_text()
    assert "after save: not written: stale: item removed" in sheet
    # The next run makes the edited item from its new prompt; the stale image is kept aside.
    first = calls(emu)
    r = run_cli(capsys, "specs", ROOT, *FAST)
    assert r.code == 0, r.out + r.err
    made = calls(emu) - first
    assert len(made) == 1 and "Mara allein am Kai" in next(iter(made))
    assert recorded(tree)["dawn-quay"] == [OUTPUTS["dawn-quay"]]
    assert len(list((tree / "generated/chapters/dawn").glob("dawn-quay.replaced-*.png"))) == 1


def test_several_images_of_one_file_finishing_together_keep_every_update(
    tree: Path, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    together = threading.Barrier(3, timeout=30)
    emu.on_request = lambda _prompt: together.wait()  # the three calls answer at once
    before = (tree / CHAPTER_1_FILE).read_text()
    r = run_cli(capsys, "specs", ROOT, "--only", "dawn", *FAST, "--concurrency", "3")
    emu.on_request = None
    assert r.code == 0, r.out + r.err
    assert emu.max_in_flight == 3
    assert_only_output_fields(before, (tree / CHAPTER_1_FILE).read_text())
    now = recorded(tree)
    assert [now[t] for t in ("dawn-quay", "dawn-road", "dawn-osk")] == [
        [OUTPUTS["dawn-quay"]],
        [OUTPUTS["dawn-road"]],
        [OUTPUTS["dawn-osk"]],
    ]


@pytest.mark.parametrize(
    ("old", "new", "says"),
    [
        (
            "size: '3:2'",
            "size: 1000x700",
            "chapters/01-dämmerung.yaml:24: images[0] 'dawn-quay', field size:",
        ),
        ("[mara-sketch, mara-portrait]", "[mara-sketch, mara-lost]", "unknown image id"),
        ('custom_id: "dawn-quay"', 'custom_id: "dawn-quay', "01-dämmerung.yaml"),
    ],
    ids=["size", "reference", "syntax"],
)
def test_a_malformed_spec_is_one_line_exit_2_and_nothing_is_paid(
    tree: Path,
    emu: Emulator,
    capsys: pytest.CaptureFixture[str],
    old: str,
    new: str,
    says: str,
) -> None:
    chapter = tree / CHAPTER_1_FILE
    chapter.write_text(chapter.read_text().replace(old, new))
    r = run_cli(capsys, "specs", ROOT, *FAST)
    assert r.code == 2
    (line,) = r.err_lines
    assert line.startswith("imagegen: error: ") and says in line, line
    assert emu.requests == 0
    assert not (Path.cwd() / "sessions").exists()


def test_a_missing_reference_file_is_a_planning_error(
    tree: Path, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    (tree / "characters/images/mara-sketch.png").unlink()
    r = run_cli(capsys, "specs", ROOT, "locations", *FAST)  # even when no chapter is chosen
    assert r.code == 2
    (line,) = r.err_lines
    assert "image_inventory 'mara-sketch', field path:" in line and "does not exist" in line
    assert emu.requests == 0


def test_an_image_an_earlier_session_never_recorded_is_recorded_without_a_call(
    tree: Path, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    chapter = tree / CHAPTER_1_FILE
    original = chapter.read_text()

    def break_the_spec(prompt: str) -> None:
        if "Die Straße in den Nebel" in prompt:
            chapter.write_text("chapter: dawn\nimages: [\n")  # a half-saved edit

    emu.on_request = break_the_spec
    select = ("chapters", "--match", "dawn-road", *FAST)
    r = run_cli(capsys, "specs", ROOT, *select)
    emu.on_request = None
    assert r.code == 1
    first = only_session(Path.cwd())
    (job,) = load(Path.cwd(), first)["jobs"]
    assert job["delivery"].startswith("not written: SpecError")
    chapter.write_text(original)  # the user finishes the edit
    made = calls(emu)
    r = run_cli(capsys, "specs", ROOT, *select)
    assert r.code == 0, r.out + r.err
    assert f"made by session {first} (job 001) and never recorded" in " ".join(r.out.split())
    assert calls(emu) == made  # no call
    assert recorded(tree)["dawn-road"] == [OUTPUTS["dawn-road"]]
    assert f"request_id: {job['request_id']}" in chapter.read_text()
    assert_only_output_fields(original, chapter.read_text())


def test_a_file_no_session_knows_is_kept_aside_and_the_item_generated_again(
    tree: Path, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    stray = tree / OUTPUTS["harbour/overview"]
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes((tree / "characters/images/mara-portrait.png").read_bytes())
    old = stray.read_bytes()
    select = ("locations", "--match", "harbour/overview")
    r = run_cli(capsys, "specs", ROOT, *select, "--dry-run")
    assert "no session vouches for" in " ".join(r.out.split())
    r = run_cli(capsys, "specs", ROOT, *select, *FAST)
    assert r.code == 0, r.out + r.err
    assert sum(calls(emu).values()) == 1
    (aside,) = stray.parent.glob("overview.replaced-*.png")
    assert aside.read_bytes() == old
    assert image_size(stray) == tier_size("2K", "16:9")
    assert recorded(tree)["harbour/overview"] == [OUTPUTS["harbour/overview"]]


def test_the_sample_runs_offline_from_a_fresh_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    shutil.copytree(PROJECT / "samples" / "specs", tmp_path / "specs")
    r = run_cli(capsys, "specs", "specs", *OFFLINE)
    assert r.code == 0, r.out + r.err
    assert "All 6 jobs completed" in r.out
    r = run_cli(capsys, "specs", "specs", *OFFLINE)
    assert (r.code, "Nothing to generate" in r.out) == (0, True)


def test_an_openai_shaped_key_is_not_looked_for_inside_a_word() -> None:
    assert redact("[003] ch01-osk-meets-mara → saved") == "[003] ch01-osk-meets-mara → saved"
    assert redact("key sk-proj-abcdef123456 leaked") == "key *** leaked"


def test_a_batch_whose_files_all_go_to_openai_needs_no_gemini_key(
    tree: Path, emu: Emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GEMINI_API_KEY")
    r = run_cli(capsys, "specs", ROOT, "chapters", "--only", "workshop", *FAST)
    assert r.code == 0, r.out + r.err
    doc = load(Path.cwd(), only_session(Path.cwd()))
    assert doc["config"]["provider"] == "openai" and doc["config"]["model"] == "gpt-image-2"
    assert doc["config"]["concurrency"] == 2  # OpenAI's pool defaults, not Gemini's
    assert sum(openai_state(emu).generated.values()) == 1


def test_retry_of_a_recorded_job_makes_a_new_image_and_records_it_in_place_of_its_own(
    tree: Path, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    select = ("chapters", "--match", "dawn-road", *FAST)
    assert run_cli(capsys, "specs", ROOT, *select).code == 0
    sid = only_session(Path.cwd())
    first = (tree / OUTPUTS["dawn-road"]).read_bytes()
    r = run_cli(capsys, "--retry", sid, "--job", "001", *FAST)
    assert r.code == 0, r.out + r.err
    assert sum(calls(emu).values()) == 2
    new = "generated/chapters/dawn/dawn-road-2.png"  # the first image keeps its name
    assert recorded(tree)["dawn-road"] == [new]
    assert (tree / OUTPUTS["dawn-road"]).read_bytes() == first
    digest = hashlib.sha256((tree / new).read_bytes()).hexdigest()
    assert f"image_sha256: {digest}" in (tree / CHAPTER_1_FILE).read_text()

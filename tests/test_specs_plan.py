"""Planning pending spec items into tasks: order, filters, prompts, references, sizes."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest

from imagegen.sources.specs.errors import SpecError
from imagegen.sources.specs.load import load_root
from imagegen.sources.specs.plan import Plan, Task, plan_tasks
from imagegen.sources.specs.schema import Specs
from imagegen.sources.specs.sizes import ImageSize, SizeError, image_size

from .specs_helpers import CHAPTER, CHAPTER_FILE, LOCATION, LOCATION_FILE, make_root


@pytest.fixture
def specs(tmp_path: Path) -> Specs:
    return load_root(make_root(tmp_path))


def ids(plan: Plan) -> list[str]:
    return [t.id for t in plan.tasks]


def task(plan: Plan, task_id: str) -> Task:
    return next(t for t in plan.tasks if t.id == task_id)


def test_pending_items_are_planned_chapters_first_in_file_order(specs: Specs) -> None:
    plan = plan_tasks(specs)
    assert ids(plan) == ["one", "two", "quay/overview", "quay/bell", "quay/crates"]
    assert (plan.items, plan.done) == (5, 0)
    assert plan.describe() == "5 tasks (5 items, 0 already generated)"


def test_files_are_planned_in_name_order(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    early = CHAPTER.replace("chapter: dawn", "chapter: prologue").replace(
        "custom_id: ", "custom_id: p-"
    )
    (root / "chapters" / "00-prologue.yaml").write_text(early)
    (root / "locations" / "a-dock.yaml").write_text(
        LOCATION.replace("location: quay", "location: dock")
    )
    plan = plan_tasks(load_root(root))
    assert ids(plan)[:4] == ["p-one", "p-two", "one", "two"]
    assert ids(plan)[4:6] == ["dock/overview", "dock/bell"]


def test_a_chapter_image_is_pending_until_its_file_exists(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    text = CHAPTER.replace("    file_path:\n", "    file_path: generated/chapters/dawn/one.png\n")
    text = text.replace("file_path: null   #", "file_path: elsewhere/two.png   #")
    (root / CHAPTER_FILE).write_text(text)
    specs = load_root(root)
    assert ids(plan_tasks(specs, kind="chapters")) == ["one", "two"]  # neither file exists
    (root / "generated/chapters/dawn").mkdir(parents=True)
    (root / "generated/chapters/dawn/one.png").write_bytes(b"png")
    plan = plan_tasks(specs, kind="chapters")
    assert ids(plan) == ["two"]
    assert (plan.items, plan.done) == (2, 1)


def test_a_location_item_is_pending_while_generated_images_is_empty(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    entry = "\n      - {file_path: generated/locations/quay/bell.png}"
    text = LOCATION.replace(
        '    size: "9:16"\n    generated_images: []',
        f'    size: "9:16"\n    generated_images:{entry}',
    )
    (root / LOCATION_FILE).write_text(text)
    # The recorded file does not exist: the rule is "generated_images empty", not the file.
    assert ids(plan_tasks(load_root(root), kind="locations")) == ["quay/overview", "quay/crates"]


def test_planning_looks_at_the_disk_only_through_exists(specs: Specs) -> None:
    seen: list[Path] = []

    def exists(path: Path) -> bool:
        seen.append(path)
        return path.name != "one.png"

    for image in (specs.root / "characters" / "images").iterdir():
        image.unlink()
    plan = plan_tasks(specs, exists=exists)
    assert ids(plan)[0] == "one"
    assert task(plan, "one").references  # resolved although the files are gone: exists said so
    assert all(p.is_relative_to(specs.root) for p in seen)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"kind": "chapters"}, ["one", "two"]),
        ({"kind": "locations"}, ["quay/overview", "quay/bell", "quay/crates"]),
        ({"only": ["quay"]}, ["quay/overview", "quay/bell", "quay/crates"]),
        ({"only": "quay"}, ["quay/overview", "quay/bell", "quay/crates"]),
        ({"only": ["dawn", "quay"], "kind": "chapters"}, ["one", "two"]),
        ({"match": "quay/*"}, ["quay/overview", "quay/bell", "quay/crates"]),
        ({"match": "*o*"}, ["one", "two", "quay/overview"]),
        ({"match": "[ot]*"}, ["one", "two"]),
        ({"max_tasks": 2}, ["one", "two"]),
        ({"match": "quay/*", "max_tasks": 1}, ["quay/overview"]),
    ],
)
def test_filters_select_tasks(
    specs: Specs, options: dict[str, object], expected: list[str]
) -> None:
    assert ids(plan_tasks(specs, **options)) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"kind": "chapter"}, "kind 'chapter' is not one of chapters, locations, all"),
        (
            {"only": ["nope"]},
            "--only 'nope': no chapter or location has this slug; known: dawn, quay",
        ),
        ({"max_tasks": 0}, "--max-tasks 0: give at least 1"),
    ],
)
def test_bad_filters_are_refused(specs: Specs, options: dict[str, object], message: str) -> None:
    with pytest.raises(SpecError) as info:
        plan_tasks(specs, **options)  # type: ignore[arg-type]
    assert str(info.value) == message


def test_tasks_carry_ids_paths_sizes_defaults_and_fingerprints(specs: Specs) -> None:
    plan = plan_tasks(specs)
    one = task(plan, "one")
    chapter = specs.chapters[0]
    assert (one.kind, one.owner, one.item_id, one.item) == ("chapter", "dawn", "one", ("images", 0))
    assert one.file == specs.root / CHAPTER_FILE
    assert one.output == "generated/chapters/dawn/one.png"
    assert one.output_path == specs.root / "generated/chapters/dawn/one.png"
    assert not one.output_exists
    # 1536x1024 is 3:2; Gemini's 1K 3:2 is 1264x848, so 2K is the tier that covers it.
    assert (one.size, one.aspect, one.quality) == ("1536x1024", "3:2", "2K")
    assert one.defaults == chapter.defaults
    assert one.fingerprint == chapter.images[0].fingerprint
    assert one.prompt_sha256 == hashlib.sha256(one.prompt.encode()).hexdigest()
    assert one.negative_prompt == "text, watermark"
    bell = task(plan, "quay/bell")
    assert (bell.kind, bell.owner, bell.item_id, bell.item) == (
        "location",
        "quay",
        "bell",
        ("parts", 0),
    )
    assert bell.output == "generated/locations/quay/bell.png"
    assert (bell.size, bell.aspect, bell.quality) == ("9:16", "9:16", "1K")
    overview = task(plan, "quay/overview")
    assert (overview.item, overview.size, overview.aspect) == (("overview",), "16:9", "16:9")
    two = task(plan, "two")
    assert (two.size, two.aspect, two.quality) == (None, "1:1", "1K")


def test_an_output_already_on_disk_is_flagged(specs: Specs) -> None:
    plan = plan_tasks(specs, exists=lambda p: p.name == "two.png" or "images" in p.parts)
    assert task(plan, "two").output_exists
    assert not task(plan, "one").output_exists


def test_the_chapter_prompt_is_thesis_palette_prompt_states_references_then_avoid(
    specs: Specs,
) -> None:
    one = task(plan_tasks(specs), "one")
    assert one.prompt == (
        "Chapter visual thesis: First light on the water. Long shadows everywhere.\n"
        "Palette: amber, slate, moss.\n\n"
        "Mara at the quay, lantern raised.\n\n"
        "Character states:\n- Mara Vell: soaked\n\n"
        "Reference images, in order (keep each character's likeness):\n"
        "1. Mara Vell (mara-b)\n2. Mara Vell (mara-a)\n\n"
        "Avoid: text, watermark"
    )


def test_a_character_without_reference_images_is_described_in_words(specs: Specs) -> None:
    two = task(plan_tasks(specs), "two")
    assert two.prompt == (
        "Chapter visual thesis: First light on the water. Long shadows everywhere.\n"
        "Palette: amber, slate, moss.\n\n"
        "Osk and Mara on the road.\n\n"
        "Character states:\n- osk: expression: grin; clothing: apron\n\n"
        "Character appearance (keep it consistent):\n- osk: hair: copper; build: broad\n\n"
        "Reference images, in order (keep each character's likeness):\n"
        "1. Mara Vell (mara-b)\n2. Mara Vell (mara-a)"
    )


def test_without_reference_support_every_character_is_described_in_words(specs: Specs) -> None:
    two = task(plan_tasks(specs, supports_references=False), "two")
    assert two.references == ()
    assert two.prompt.endswith(
        "Character appearance (keep it consistent):\n"
        "- Mara Vell: Dark hair cut at the jaw, grey wool coat.\n"
        "- osk: hair: copper; build: broad"
    )
    assert "Reference images" not in two.prompt


def test_the_location_prompt_is_two_signature_elements_light_prompt_then_avoid(
    specs: Specs,
) -> None:
    plan = plan_tasks(specs)
    assert task(plan, "quay/bell").prompt == (
        "Signature elements of The Quay: bell mast; striped awnings.\n"
        "Characteristic light: Winter haze.\n\n"
        "The bell mast.\n\n"
        "Avoid: gulls"
    )
    assert task(plan, "quay/overview").prompt.endswith("The quay from the sea wall.")


def test_the_negative_prompt_can_be_left_to_a_provider_field(specs: Specs) -> None:
    one = task(plan_tasks(specs, negative_as_text=False), "one")
    assert "Avoid" not in one.prompt
    assert one.negative_prompt == "text, watermark"


@pytest.mark.parametrize(
    ("listed", "expected"),
    [
        ("[mara-c, mara-b, mara-a]", ["mara-b", "mara-a"]),  # approved first, at most 2
        ("[mara-c, mara-a]", ["mara-a", "mara-c"]),  # then the others, in listed order
        ("[mara-c]", ["mara-c"]),
        ("[]", []),
    ],
)
def test_references_are_approved_first_and_two_per_character(
    tmp_path: Path, listed: str, expected: list[str]
) -> None:
    root = make_root(tmp_path)
    (root / CHAPTER_FILE).write_text(CHAPTER.replace("[mara-c, mara-b, mara-a]", listed))
    one = task(plan_tasks(load_root(root)), "one")
    assert [r.inventory_id for r in one.references] == expected
    assert one.reference_paths == tuple(str(root / f"characters/images/{i}.png") for i in expected)
    assert ("Mara Vell: Dark hair" in one.prompt) == (not expected)


def test_a_reference_that_no_longer_resolves_fails_the_plan(specs: Specs) -> None:
    chapter = specs.chapters[0]
    mara = dataclasses.replace(chapter.characters[0], reference_images=("mara-a", "mara-q"))
    broken = dataclasses.replace(chapter, characters=(mara, *chapter.characters[1:]))
    with pytest.raises(SpecError, match="field reference_images: unknown image id 'mara-q'"):
        plan_tasks(dataclasses.replace(specs, chapters=(broken,)))


def test_a_missing_reference_file_fails_the_plan_never_a_silent_skip(specs: Specs) -> None:
    with pytest.raises(SpecError) as info:
        plan_tasks(specs, exists=lambda p: not p.name.startswith("mara-a"))
    assert "image_inventory 'mara-a', field path:" in str(info.value)
    assert "does not exist" in str(info.value)


def test_more_references_than_the_provider_takes_fail_the_plan(specs: Specs) -> None:
    with pytest.raises(SpecError) as info:
        plan_tasks(specs, max_references=1)
    assert str(info.value) == (
        f"{specs.root / CHAPTER_FILE}:15: images[0] 'one', field depicts_characters: 2 reference "
        "images, more than the provider's 1; list fewer reference_images or depict fewer characters"
    )


@pytest.mark.parametrize(
    ("size", "quality", "expected"),
    [
        (None, None, ("1:1", "1K")),
        ("auto", "auto", ("1:1", "1K")),
        ("16:9", None, ("16:9", "1K")),
        ("21:9", "4k", ("21:9", "4K")),
        ("1024x1024", None, ("1:1", "1K")),
        ("1024x1024", "hd", ("1:1", "2K")),
        ("1024x1024", "standard", ("1:1", "1K")),
        ("1792x1024", None, ("16:9", "2K")),  # 1.75 is 1.6 % from 16:9
        ("1024x1792", "high", ("9:16", "2K")),
        ("1536x1024", None, ("3:2", "2K")),
        ("1024 \u00d7 1536", None, ("2:3", "2K")),
        ("1264x848", None, ("3:2", "1K")),  # exactly Gemini's 1K 3:2
        ("4096x4096", None, ("1:1", "4K")),
        ("2048x2048", "4K", ("1:1", "4K")),
        ("800x600", "2K", ("4:3", "2K")),
    ],
)
def test_sizes_map_to_a_gemini_aspect_and_tier(
    size: str | None, quality: str | None, expected: tuple[str, str]
) -> None:
    assert image_size(size, quality) == ImageSize(*expected)


@pytest.mark.parametrize(
    ("size", "quality", "message"),
    [
        ("1000x700", None, "not within 2 % of a Gemini ratio; the nearest is 3:2"),
        ("5:3", None, "neither a ratio"),
        ("landscape", None, "neither a ratio (1:1 2:3 3:2 3:4 4:3 4:5 5:4 9:16 16:9 21:9)"),
        ("0x100", None, "has a zero side"),
        ("8192x8192", None, "larger than Gemini's largest 1:1 image (4096x4096)"),
        ("1:1", "ultra", "quality 'ultra' is not one of 1K, 2K, 4K, standard"),
    ],
)
def test_sizes_that_cannot_be_mapped_are_refused(
    size: str, quality: str | None, message: str
) -> None:
    with pytest.raises(SizeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        image_size(size, quality)

"""Loading a specs ROOT: the typed records, and one-line errors for every problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagegen.errors import InputError
from imagegen.sources.specs.errors import SpecError
from imagegen.sources.specs.load import load_root
from imagegen.sources.specs.schema import Generated

from .specs_helpers import (
    CHAPTER,
    CHAPTER_FILE,
    INVENTORY_FILE,
    LOCATION,
    LOCATION_FILE,
    make_root,
)


def test_a_valid_root_loads_into_typed_records(tmp_path: Path) -> None:
    specs = load_root(make_root(tmp_path))
    (chapter,) = specs.chapters
    assert chapter.file == tmp_path / CHAPTER_FILE
    assert chapter.slug == "dawn"
    assert chapter.palette == ("amber", "slate", "moss")
    assert chapter.defaults.provider == "gemini"
    assert chapter.defaults.quality == "1K"
    assert [c.id for c in chapter.characters] == ["mara", "osk"]
    assert chapter.characters[0].reference_images == ("mara-c", "mara-b", "mara-a")
    one, two = chapter.images
    assert (one.custom_id, one.index, one.key) == ("one", 0, ("images", 0))
    assert one.prompt_used == "Mara at the quay, lantern raised.\n"
    assert one.negative_prompt == "text, watermark"
    assert one.character_states == (("mara", "soaked"),)
    assert one.output == Generated()
    assert two.character_states == (("osk", "expression: grin; clothing: apron"),)
    (location,) = specs.locations
    assert location.slug == "quay"
    assert [i.slug for i in location.items] == ["overview", "bell", "crates"]
    assert [i.key for i in location.items] == [("overview",), ("parts", 0), ("parts", 1)]
    assert location.defaults.size == "16:9"
    mara = specs.inventory.get("mara")
    assert mara is not None and mara.display_name == "Mara Vell"
    osk = specs.inventory.get("osk")
    assert osk is not None and osk.appearance == "hair: copper; build: broad"


def test_the_fingerprint_ignores_comments_quoting_and_output_fields(tmp_path: Path) -> None:
    before = load_root(make_root(tmp_path)).chapters[0].images[1].fingerprint
    edited = CHAPTER.replace('"Osk and Mara on the road."', "'Osk and Mara on the road.'  # hi")
    edited = edited.replace("file_path: null   # written by the tool", "file_path: x.png")
    (tmp_path / CHAPTER_FILE).write_text(edited)
    assert load_root(tmp_path).chapters[0].images[1].fingerprint == before
    edited = edited.replace("    depicts_characters: [mara, osk]\n", "")
    edited = edited.replace(
        "prompt_used: 'Osk", "depicts_characters: [mara, osk]\n    prompt_used: 'Osk"
    )
    edited = edited.replace(
        "generated_at: null\n    file_name: null",
        "size:\n    generated_at: null\n    file_name: null",
    )
    (tmp_path / CHAPTER_FILE).write_text(edited)
    assert load_root(tmp_path).chapters[0].images[1].fingerprint == before
    (tmp_path / CHAPTER_FILE).write_text(edited.replace("on the road", "in the rain"))
    assert load_root(tmp_path).chapters[0].images[1].fingerprint != before


def test_the_fingerprint_ignores_a_final_newline_and_empty_versus_absent(tmp_path: Path) -> None:
    before = [i.fingerprint for i in load_root(make_root(tmp_path)).chapters[0].images]
    path = tmp_path / CHAPTER_FILE
    text = CHAPTER.replace("prompt_used: >\n", "prompt_used: >-\n", 1)
    text = text.replace('on the road."\n', "on the road.\"\n    negative_prompt: ''\n")
    text = text.replace("[mara, osk]\n", "[mara, osk]\n    size: ~\n")
    assert text.count("negative_prompt: ''") == 1 and text.count("size: ~") == 1
    path.write_text(text)
    assert [i.fingerprint for i in load_root(tmp_path).chapters[0].images] == before


# (file, text replaced, replacement, fragments the one-line message must hold)
BROKEN = {
    "prompt missing": (
        CHAPTER_FILE,
        '    prompt_used: "Osk and Mara on the road."\n',
        "",
        [
            "01-dawn.yaml:32:",
            "images[1] 'two'",
            "field prompt_used: is missing",
            "add prompt_used:",
        ],
    ),
    "prompt empty": (
        CHAPTER_FILE,
        '"Osk and Mara on the road."',
        '""',
        ["01-dawn.yaml:33:", "images[1] 'two'", "field prompt_used: is empty", "add prompt_used:"],
    ),
    "prompt not text": (
        CHAPTER_FILE,
        '"Osk and Mara on the road."',
        "[a, b]",
        ["images[1] 'two'", "field prompt_used: expected text, got a list", "quote the value"],
    ),
    "unknown depicted character": (
        CHAPTER_FILE,
        "[mara, osk]",
        "[mara, oks]",
        [":34:", "field depicts_characters: unknown character 'oks'", "list it under characters:"],
    ),
    "duplicate custom_id": (
        CHAPTER_FILE,
        "custom_id: two",
        "custom_id: one",
        ["images[1] 'one'", "field custom_id: duplicate of images[0] (line 15)", "its own"],
    ),
    "custom_id not a file name": (
        CHAPTER_FILE,
        "custom_id: two",
        "custom_id: two/three",
        ["images[1]", "field custom_id: 'two/three' cannot be a file name", "letters, digits"],
    ),
    "custom_id too long for a file name": (
        CHAPTER_FILE,
        "custom_id: two",
        "custom_id: " + "t" * 101,
        ["images[1]", "field custom_id: 'ttttt", "cannot be a file name", "up to 100 letters"],
    ),
    "state of a character not depicted": (
        CHAPTER_FILE,
        "{osk: {expression: grin, clothing: apron}}",
        "{mara: wet, tamsin: tired}",
        ["images[1] 'two', character_states, field tamsin: not in depicts_characters", "add"],
    ),
    "size with no Gemini ratio": (
        CHAPTER_FILE,
        "size: 1536x1024",
        "size: 1000x700",
        [":20:", "images[0] 'one', field size:", "not within 2 %", "the nearest is"],
    ),
    "size larger than 4K": (
        CHAPTER_FILE,
        "size: 1536x1024",
        "size: 9000x6000",
        ["field size:", "larger than Gemini's largest 3:2 image (5056x3392)"],
    ),
    "unknown quality": (
        CHAPTER_FILE,
        "quality: 1K",
        "quality: ultra",
        [":7:", "defaults, field quality: quality 'ultra' is not one of 1K, 2K, 4K"],
    ),
    "chapter slug missing": (
        CHAPTER_FILE,
        "chapter: dawn   # slug",
        "title: Dawn",
        ["01-dawn.yaml:2: field chapter: is missing", "add chapter: with the chapter slug"],
    ),
    "output field of the wrong type": (
        CHAPTER_FILE,
        "    file_path:\n",
        "    file_path: [a]\n",
        ["images[0] 'one', field file_path: expected text or null, got a list", "null"],
    ),
    "images missing": (
        CHAPTER_FILE,
        "\nimages:",
        "\npictures:",
        ["01-dawn.yaml:2: field images: is missing", "add images:"],
    ),
    "images not a list": (
        CHAPTER_FILE,
        "\nimages:\n",
        "\nimages: {}\nold_images:\n",
        ["field images: expected a list of image, got a mapping"],
    ),
    "duplicate key": (
        CHAPTER_FILE,
        "# end",
        "chapter: dusk",
        ["01-dawn.yaml:42:", 'duplicate key "chapter"', "keep one of the two keys"],
    ),
    "unknown reference id": (
        CHAPTER_FILE,
        "[mara-c, mara-b, mara-a]",
        "[mara-c, mara-z]",
        [":9: characters 'mara', field reference_images: unknown image id 'mara-z'", "known: "],
    ),
    "rejected reference": (
        CHAPTER_FILE,
        "[mara-c, mara-b, mara-a]",
        "[mara-x]",
        ["characters 'mara', field reference_images: 'mara-x' has status rejected", "remove it"],
    ),
    "character unknown to the inventory": (
        INVENTORY_FILE,
        "  - id: osk",
        "  - id: oskar",
        ["01-dawn.yaml:11: characters 'osk', field id: unknown character 'osk'", "known: mara"],
    ),
    "character listed twice in a chapter": (
        CHAPTER_FILE,
        "  - id: osk",
        "  - id: mara",
        ["characters[1] 'mara', field id: listed twice (also line 9)", "list it once"],
    ),
    "duplicate part slug": (
        LOCATION_FILE,
        "slug: crates",
        "slug: bell",
        ["quay.yaml:18:", "parts[1], field slug: 'bell' is also the slug of line 12"],
    ),
    "part without slug": (
        LOCATION_FILE,
        "  - slug: crates\n    prompt_used: 'Fish crates.'",
        "  - prompt_used: 'Fish crates.'",
        ["quay.yaml:18: parts[1], field slug: is missing", "add slug:"],
    ),
    "generated_images not a list": (
        LOCATION_FILE,
        "generated_images: []   # the tool appends here",
        "generated_images: done",
        ["overview 'overview', field generated_images: expected a list", "got text"],
    ),
    "neither overview nor parts": (
        LOCATION_FILE,
        LOCATION[LOCATION.index("overview:") :],
        "",
        ["quay.yaml:1: neither overview: nor parts: is given", "add at least one"],
    ),
    "inventory image without status": (
        INVENTORY_FILE,
        ", status: candidate}",
        "}",
        ["characters[0] 'mara', image_inventory 'mara-c', field status: is missing", "approved"],
    ),
    "inventory character twice": (
        INVENTORY_FILE,
        "  - id: osk",
        "  - id: mara",
        ["characters[1] 'mara', field id: duplicate of line 2"],
    ),
}


@pytest.mark.parametrize(("file", "old", "new", "fragments"), BROKEN.values(), ids=BROKEN.keys())
def test_each_problem_is_one_line_naming_file_item_field_and_fix(
    tmp_path: Path, file: str, old: str, new: str, fragments: list[str]
) -> None:
    root = make_root(tmp_path)
    path = root / file
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(SpecError) as info:
        load_root(root)
    message = str(info.value)
    assert "\n" not in message
    assert str(root) in message
    for fragment in fragments:
        assert fragment in message, message
    assert isinstance(info.value, InputError)


def test_a_missing_inventory_image_names_the_inventory_entry(tmp_path: Path) -> None:
    root = make_root(tmp_path, images=("mara-a", "mara-b"))
    with pytest.raises(SpecError) as info:
        load_root(root)
    message = str(info.value)
    assert message == (
        f"{root / INVENTORY_FILE}:8: characters 'mara', image_inventory 'mara-c', field path: "
        f"{root / 'characters/images/mara-c.png'} does not exist; fix the path or add the file "
        f"(referenced by {root / CHAPTER_FILE})"
    )


def test_an_unreferenced_inventory_image_may_be_missing(tmp_path: Path) -> None:
    # mara-x's file does not exist, and no chapter refers to it: not an error.
    assert load_root(make_root(tmp_path)).inventory.get("mara") is not None


def test_custom_ids_are_unique_across_chapter_files(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    other = CHAPTER.replace("chapter: dawn", "chapter: dusk").replace(
        "custom_id: two", "custom_id: two-b"
    )
    (root / "chapters" / "02-dusk.yaml").write_text(other)
    with pytest.raises(SpecError) as info:
        load_root(root)
    assert str(info.value) == (
        f"{root / 'chapters/02-dusk.yaml'}:15: images[0] 'one', field custom_id: also used in "
        f"{root / CHAPTER_FILE}:15; custom_id must be unique under ROOT (it is the task id)"
    )


def test_chapter_and_location_slugs_are_unique(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    (root / "chapters" / "02-copy.yaml").write_text(CHAPTER.replace("custom_id: ", "custom_id: b-"))
    with pytest.raises(SpecError, match="'dawn' is also the slug of"):
        load_root(root)
    (root / "chapters" / "02-copy.yaml").unlink()
    (root / "locations" / "quay-2.yaml").write_text(LOCATION)
    with pytest.raises(SpecError, match="'quay' is also the slug of"):
        load_root(root)


def test_characters_without_an_inventory_file_are_an_error(tmp_path: Path) -> None:
    root = make_root(tmp_path, inventory=None)
    with pytest.raises(SpecError) as info:
        load_root(root)
    assert str(info.value).startswith(
        f"{root / INVENTORY_FILE}: not found, but {root / CHAPTER_FILE}"
    )


def test_a_root_of_locations_only_needs_no_inventory(tmp_path: Path) -> None:
    specs = load_root(make_root(tmp_path, chapter=None, inventory=None, images=()))
    assert specs.chapters == ()
    assert specs.inventory.characters == ()


def test_an_empty_root_says_where_specs_go(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"no specs found; put chapter specs in chapters/\*\.yaml"):
        load_root(tmp_path)
    with pytest.raises(SpecError, match="no such folder"):
        load_root(tmp_path / "nope")


def test_dot_files_and_other_suffixes_are_ignored(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    (root / "chapters" / ".01-dawn.yaml.lock").write_text("")
    (root / "chapters" / ".01-dawn.yaml.x1.tmp").write_text("broken: [")
    (root / "chapters" / "notes.txt").write_text("broken: [")
    assert len(load_root(root).chapters) == 1


def test_unknown_keys_are_allowed(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    path = root / CHAPTER_FILE
    path.write_text(path.read_text().replace("# end", "composition_notes: {light: low}\n# end"))
    assert load_root(root).chapters[0].slug == "dawn"

"""chapters.json: what loads, and one-line errors that name the file, the field and the fix."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from imagegen.errors import EXIT_USAGE, InputError
from imagegen.sources.chapters import EpisodeError, ImageSettings, load_episode, settings_from_env
from tests.chapters_helpers import chapter, mixed_chapters, write_episode


def test_loads_fields_the_image_stage_reads(tmp_path: Path) -> None:
    write_episode(tmp_path, mixed_chapters())
    episode = load_episode(tmp_path)
    assert episode.episode_id == "ep001"
    assert episode.schema_version == "1.0"
    assert episode.chapter_ids == ("ch01", "ch02", "ch03", "ch04", "ch05")
    first = episode.chapters[0]
    assert first.title == "Giriş: Bitcoin Nedir?"
    assert first.visual is not None and first.visual.type == "title_card"
    assert first.visual.image_prompt is None
    assert episode.chapters[1].visual is not None
    assert episode.chapters[1].visual.image_prompt == "A clean diagram of blocks linked in a chain"
    assert episode.chapters[1].narration == "In this chapter we look at blocks."
    assert episode.source == tmp_path / "chapters.json"


def test_fields_the_stage_does_not_read_are_ignored(tmp_path: Path) -> None:
    """The chapterizer's own fields (order, durations, overlays...) are not ours to refuse."""
    ch = chapter("ch01", order=1, duration_estimate_seconds=42, overlays=[{"type": "lower"}])
    ch["visuals"].append({"type": "unknown_future_type", "description": "second visual"})
    path = write_episode(tmp_path, [ch])
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc["title"] = "Bitcoin Nedir?"
    path.write_text(json.dumps(doc), encoding="utf-8")
    assert load_episode(path).chapter_ids == ("ch01",)


def test_empty_image_prompt_is_written_like_null(tmp_path: Path) -> None:
    write_episode(tmp_path, [chapter("ch01", image_prompt="   ")])
    visual = load_episode(tmp_path).chapters[0].visual
    assert visual is not None and visual.image_prompt is None


def test_missing_image_prompt_key_means_null(tmp_path: Path) -> None:
    ch = chapter("ch01")
    del ch["visuals"][0]["image_prompt"]
    write_episode(tmp_path, [ch])
    visual = load_episode(tmp_path).chapters[0].visual
    assert visual is not None and visual.image_prompt is None


def test_chapter_without_visuals_has_no_visual(tmp_path: Path) -> None:
    """Seed 002 section 5.2 skips such a chapter rather than failing the episode."""
    ch = chapter("ch01")
    ch["visuals"] = []
    write_episode(tmp_path, [ch])
    assert load_episode(tmp_path).chapters[0].visual is None


def test_numeric_schema_version_is_read_as_text(tmp_path: Path) -> None:
    write_episode(tmp_path, [chapter("ch01")], schema_version=1.0)
    assert load_episode(tmp_path).schema_version == "1.0"


def _set(doc: dict[str, Any], path: str, value: Any) -> None:
    """Set (or, with ``...``, delete) ``a.b[0].c`` in ``doc``."""
    keys: list[str | int] = []
    for part in path.replace("]", "").split("."):
        name, *idx = part.split("[")
        keys.append(name)
        keys += [int(i) for i in idx]
    target: Any = doc
    for key in keys[:-1]:
        target = target[key]
    if value is ...:
        del target[keys[-1]]
    else:
        target[keys[-1]] = value


BAD_FIELDS = [
    ("schema_version", "2.0", "schema_version", "not supported"),
    ("schema_version", ..., "schema_version", "missing"),
    ("episode_id", "", "episode_id", "empty"),
    ("episode_id", 7, "episode_id", "not a string"),
    ("chapters", {}, "chapters", "not a list"),
    ("chapters", [], "chapters", "empty"),
    ("chapters[1]", "ch02", "chapters[1]", "not an object"),
    ("chapters[1].chapter_id", ..., "chapters[1].chapter_id", "missing"),
    ("chapters[1].chapter_id", "../evil", "chapters[1].chapter_id", "cannot be a file name"),
    ("chapters[1].chapter_id", ".hidden", "chapters[1].chapter_id", "cannot be a file name"),
    ("chapters[1].chapter_id", "a/b", "chapters[1].chapter_id", "cannot be a file name"),
    ("chapters[1].chapter_id", "ch 2", "chapters[1].chapter_id", "cannot be a file name"),
    ("chapters[1].chapter_id", "c" * 65, "chapters[1].chapter_id", "cannot be a file name"),
    ("chapters[1].chapter_id", "ch01", "chapters[1].chapter_id", "repeats chapters[0]"),
    ("chapters[1].chapter_id", "CH01", "chapters[1].chapter_id", "repeats chapters[0]"),
    ("chapters[1].title", ..., "chapters[1].title", "missing"),
    ("chapters[1].title", " ", "chapters[1].title", "empty"),
    ("chapters[1].visuals", None, "chapters[1].visuals", "not a list"),
    ("chapters[1].visuals[0]", [], "chapters[1].visuals[0]", "not an object"),
    ("chapters[1].visuals[0].type", "infographic", "chapters[1].visuals[0].type", "b_roll"),
    ("chapters[1].visuals[0].type", ..., "chapters[1].visuals[0].type", "missing"),
    ("chapters[1].visuals[0].description", 3, "chapters[1].visuals[0].description", "string"),
    ("chapters[1].visuals[0].image_prompt", ["a"], "chapters[1].visuals[0].image_prompt", "null"),
    ("chapters[1].narration", ..., "chapters[1].narration", "not an object"),
    ("chapters[1].narration.text", ..., "chapters[1].narration.text", "missing"),
]


@pytest.mark.parametrize(("path", "value", "field", "words"), BAD_FIELDS)
def test_malformed_field_is_named_in_one_line(
    tmp_path: Path, path: str, value: Any, field: str, words: str
) -> None:
    doc = {
        "schema_version": "1.0",
        "episode_id": "ep001",
        "chapters": [chapter("ch01"), chapter("ch02")],
    }
    _set(doc, path, value)
    file = tmp_path / "chapters.json"
    file.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(EpisodeError) as info:
        load_episode(file)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{file}: {field}: ")
    assert words in message
    assert "; " in message  # the fix follows the problem
    assert info.value.field == field
    assert isinstance(info.value, InputError) and info.value.exit_code == EXIT_USAGE


def test_missing_file_says_how_to_get_one(tmp_path: Path) -> None:
    with pytest.raises(EpisodeError, match=r"chapters\.json: not found; run the chapterize"):
        load_episode(tmp_path)


def test_a_byte_order_mark_before_the_json_is_ignored(tmp_path: Path) -> None:
    write_episode(tmp_path, mixed_chapters())
    path = tmp_path / "chapters.json"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert load_episode(tmp_path).episode_id == "ep001"


def test_invalid_json_names_line_and_column(tmp_path: Path) -> None:
    file = tmp_path / "chapters.json"
    file.write_text('{"schema_version": "1.0",\n  "episode_id": }', encoding="utf-8")
    with pytest.raises(EpisodeError) as info:
        load_episode(file)
    assert str(info.value).startswith(f"{file}: not valid JSON at line 2 column")
    assert "\n" not in str(info.value)


def test_not_utf8_is_named(tmp_path: Path) -> None:
    file = tmp_path / "chapters.json"
    file.write_bytes('{"title": "Giriş"}'.encode("cp1254"))
    with pytest.raises(EpisodeError, match="not UTF-8"):
        load_episode(file)


def test_top_level_list_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "chapters.json"
    file.write_text("[]", encoding="utf-8")
    with pytest.raises(EpisodeError, match=r"\(top level\): is a list, not an object"):
        load_episode(file)


def test_settings_from_env_reads_the_seed_variables(tmp_path: Path) -> None:
    env = {
        "IMAGE_GEN_STYLE_PREFIX": "Flat vector style.",
        "IMAGE_GEN_SIZE": "1280x720",
        "MAX_EPISODE_COST_USD": "2.5",
        "IMAGE_GEN_PROMPT_TEMPLATE": str(tmp_path / "t.md"),
    }
    settings = settings_from_env(env)
    assert settings.style_prefix == "Flat vector style."
    assert (settings.width, settings.height, settings.size) == (1280, 720, "1280x720")
    assert settings.max_episode_cost_usd == 2.5
    assert settings.prompt_template == tmp_path / "t.md"


def test_settings_defaults_follow_the_seeds() -> None:
    settings = settings_from_env({})
    assert settings == ImageSettings()
    assert settings.size == "1920x1080"  # seed 002 section 1
    assert settings.style_prefix == ""  # seed 001 step 3
    assert settings.max_episode_cost_usd == 10.0  # seed 002 section 9.3


@pytest.mark.parametrize(
    ("name", "value"),
    [("IMAGE_GEN_SIZE", "big"), ("IMAGE_GEN_SIZE", "0x10"), ("MAX_EPISODE_COST_USD", "ten")],
)
def test_bad_env_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(InputError, match=name):
        settings_from_env({name: value})


def test_negative_cap_is_refused() -> None:
    with pytest.raises(InputError, match="USD >= 0"):
        settings_from_env({"MAX_EPISODE_COST_USD": "-1"})


def test_the_committed_sample_is_what_the_tool_writes_and_it_loads() -> None:
    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("sample", root / "tools/make_sample_episode.py")
    assert spec is not None and spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    path = root / "samples" / "episodes" / tool.EPISODE_ID / "chapters.json"
    assert path.read_bytes() == tool.render()
    episode = load_episode(path)
    kinds = [c.visual.type for c in episode.chapters if c.visual]
    assert set(kinds) == {"title_card", "diagram", "b_roll", "screen_share", "talking_head"}
    written = [c for c in episode.chapters if c.visual and c.visual.type == "b_roll"]
    assert written and written[0].visual and written[0].visual.image_prompt is None
    assert any(not c.title.isascii() for c in episode.chapters)

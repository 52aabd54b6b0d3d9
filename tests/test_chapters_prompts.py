"""Prompt template, the text-model seam, and the prompt cache (hits, misses, its file)."""

from __future__ import annotations

import json
from collections import deque
from pathlib import Path

import pytest

from imagegen.errors import InputError, ServerError
from imagegen.sources.chapters import (
    EmptyPrompt,
    PromptCache,
    compose_prompt,
    load_episode,
    load_template,
    read_prompt_cache,
    write_image_prompt,
    write_prompt_cache,
)
from imagegen.sources.chapters.prompt_cache import CACHE_FILE, CachedPrompt, cache_key
from imagegen.sources.chapters.prompts import (
    NARRATION_CONTEXT_CHARS,
    clean_prompt,
    narration_context,
    parse_template,
    render_instructions,
)
from tests.chapters_helpers import NOW, FakeWriter, chapter, write_episode

TEMPLATE = """---
name: imagegen
model: gemini-2.5-flash
temperature: 0.3
max_tokens: 2048
---
Title: {{ chapter_title }}
Type: {{visual_type}}
Description: {{ visual_description }}
Narration: {{ narration_context }}
Style: {{ style_prefix }}
"""


def test_bundled_template_loads_with_its_front_matter() -> None:
    template = load_template()
    assert template.name == "imagegen"
    assert template.model == "gemini-2.5-flash"
    assert template.temperature == 0.3  # seed 002 section 4.2
    assert template.max_tokens == 2048
    assert "{{ visual_description }}" in template.body
    assert template.text_hash.startswith("sha256:")


def test_user_template_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "mine.md"
    path.write_text(TEMPLATE.replace("0.3", "1"), encoding="utf-8")
    template = load_template(path)
    assert template.source == str(path)
    assert template.temperature == 1.0


def test_template_without_front_matter_takes_defaults() -> None:
    template = parse_template("Describe {{ visual_description }}.", "t.md")
    assert (template.name, template.model, template.max_tokens) == (
        "imagegen",
        "gemini-2.5-flash",
        2048,
    )


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("Hello {{ chapter.title }}", "unknown placeholder {{ chapter.title }}"),
        ("---\nmodel: [unclosed\n---\nx", "not YAML"),
        ("---\nmodel: x\nno end", "no closing '---'"),
        ("---\n- a list\n---\nx", "not a mapping"),
        ("---\ntemperature: hot\n---\nx", "temperature: 'hot' is not a float"),
        ("---\nmax_tokens: 1.5\n---\nx", "max_tokens: 1.5 is not a int"),
        ("---\nmodel: x\n---\n   \n", "no text"),
    ],
)
def test_bad_template_is_named(text: str, words: str) -> None:
    with pytest.raises(InputError) as info:
        parse_template(text, "my_template.md")
    assert str(info.value).startswith("my_template.md: ")
    assert words in str(info.value)


def test_unreadable_template_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="IMAGE_GEN_PROMPT_TEMPLATE"):
        load_template(tmp_path / "missing.md")


def test_instructions_are_filled_from_the_chapter(tmp_path: Path) -> None:
    write_episode(
        tmp_path,
        [chapter("ch01", "b_roll", title="Madencilik", description="rigs", image_prompt=None)],
    )
    ch = load_episode(tmp_path).chapters[0]
    text = render_instructions(parse_template(TEMPLATE, "t"), ch, " Flat style. ")
    assert text == (
        "Title: Madencilik\nType: b_roll\nDescription: rigs\n"
        "Narration: In this chapter we look at blocks.\nStyle: Flat style.\n"
    )


def test_empty_style_prefix_is_shown_as_none(tmp_path: Path) -> None:
    write_episode(tmp_path, [chapter("ch01", image_prompt=None)])
    ch = load_episode(tmp_path).chapters[0]
    assert "Style: (none)" in render_instructions(parse_template(TEMPLATE, "t"), ch, "")


def test_placeholder_like_text_in_a_title_is_not_expanded(tmp_path: Path) -> None:
    write_episode(tmp_path, [chapter("ch01", title="{{ style_prefix }}", image_prompt=None)])
    ch = load_episode(tmp_path).chapters[0]
    text = render_instructions(parse_template(TEMPLATE, "t"), ch, "Flat")
    assert "Title: {{ style_prefix }}" in text


def test_narration_context_is_the_start_cut_after_a_word() -> None:
    short = "Bitcoin   is\nmoney."
    assert narration_context(short) == "Bitcoin is money."
    long = "word " * 200
    context = narration_context(long)
    assert context.endswith("word…")
    assert len(context) <= NARRATION_CONTEXT_CHARS + 1


@pytest.mark.parametrize(
    ("answer", "prompt"),
    [
        ("  A diagram.  \n", "A diagram."),
        ('"A diagram."', "A diagram."),
        ("“A diagram.”", "A diagram."),
        ("```\nA diagram.\n```", "A diagram."),
        ("```text\nA diagram.\n```", "A diagram."),
        ("```A diagram of two things```", "A diagram of two things"),
        ('A "quoted" word', 'A "quoted" word'),
    ],
)
def test_answers_are_unwrapped(answer: str, prompt: str) -> None:
    assert clean_prompt(answer) == prompt


@pytest.mark.parametrize("answer", ["", "   ", '""', "```\n```"])
def test_empty_answer_raises_a_retryable_provider_error(answer: str) -> None:
    with pytest.raises(EmptyPrompt) as info:
        clean_prompt(answer)
    assert info.value.retryable


def test_style_prefix_goes_before_the_prompt_with_one_space() -> None:
    assert compose_prompt("Flat style.", "A chain.") == "Flat style. A chain."
    assert compose_prompt("Flat style. ", " A chain.") == "Flat style. A chain."
    assert compose_prompt("", "A chain.") == "A chain."


@pytest.mark.asyncio
async def test_a_written_prompt_is_cached_and_not_paid_twice() -> None:
    template = parse_template(TEMPLATE, "t")
    writer = FakeWriter(deque(["  A chain of blocks.  "]))
    cache = PromptCache()
    first = await write_image_prompt("instructions", template, cache, writer, NOW)
    assert (first.prompt, first.cached) == ("A chain of blocks.", False)
    assert first.usage is not None and first.usage.cost_usd == writer.cost_usd
    assert first.entry.created_at == "2026-03-01T10:00:00Z"
    cache = cache.record(first.key, first.entry)
    second = await write_image_prompt("instructions", template, cache, writer, NOW)
    assert (second.prompt, second.cached, second.usage) == ("A chain of blocks.", True, None)
    assert writer.calls == ["instructions"]


@pytest.mark.asyncio
async def test_a_changed_template_misses_the_cache() -> None:
    """Body or front matter: a new model or temperature is a new prompt."""
    writer = FakeWriter()
    old = parse_template(TEMPLATE, "t")
    written = await write_image_prompt("same", old, PromptCache(), writer, NOW)
    cache = PromptCache().record(written.key, written.entry)
    for changed in (TEMPLATE.replace("Style:", "House style:"), TEMPLATE.replace("0.3", "0.9")):
        again = await write_image_prompt("same", parse_template(changed, "t"), cache, writer, NOW)
        assert not again.cached
    assert len(writer.calls) == 3


@pytest.mark.asyncio
async def test_changed_instructions_miss_the_cache() -> None:
    template = parse_template(TEMPLATE, "t")
    writer = FakeWriter()
    written = await write_image_prompt("one", template, PromptCache(), writer, NOW)
    cache = PromptCache().record(written.key, written.entry)
    assert not (await write_image_prompt("two", template, cache, writer, NOW)).cached


@pytest.mark.asyncio
async def test_writer_errors_pass_through() -> None:
    writer = FakeWriter(deque([ServerError("overloaded")]))
    with pytest.raises(ServerError):
        await write_image_prompt("x", parse_template(TEMPLATE, "t"), PromptCache(), writer, NOW)


def test_cache_file_round_trips_with_readable_unicode(tmp_path: Path) -> None:
    entry = CachedPrompt("Madencilik çiftliği, İstanbul", "m", 1, 2, 0.5, "2026-03-01T10:00:00Z")
    cache = PromptCache().record("sha256:k", entry)
    write_prompt_cache(tmp_path, cache)
    text = (tmp_path / CACHE_FILE).read_text(encoding="utf-8")
    assert "Madencilik çiftliği, İstanbul" in text
    assert json.loads(text)["format"] == 1
    assert read_prompt_cache(tmp_path) == cache


@pytest.mark.parametrize("content", [b"{not json", b'{"format": 99, "entries": {}}', b"[]"])
def test_damaged_or_foreign_cache_reads_as_empty(tmp_path: Path, content: bytes) -> None:
    (tmp_path / CACHE_FILE).parent.mkdir(parents=True)
    (tmp_path / CACHE_FILE).write_bytes(content)
    assert read_prompt_cache(tmp_path) == PromptCache()


def test_missing_cache_reads_as_empty(tmp_path: Path) -> None:
    assert read_prompt_cache(tmp_path) == PromptCache()


def test_keep_drops_entries_no_chapter_uses() -> None:
    entry = CachedPrompt("p", "m", 0, 0, 0.0, "t")
    cache = PromptCache().record("a", entry).record("b", entry)
    assert set(cache.keep(["b", "c"]).entries) == {"b"}


def test_cache_key_depends_on_template_and_instructions() -> None:
    assert cache_key("t1", "i") == cache_key("t1", "i")
    assert len({cache_key("t1", "i"), cache_key("t2", "i"), cache_key("t1", "j")}) == 3

"""Placeholders: the episode's frame size, the same bytes for the same inputs, titles that
render in Turkish, and long titles that wrap."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image, ImageFont

from imagegen.errors import InputError
from imagegen.images import sniff
from imagegen.providers.placeholder.draw import (
    FONT_CANDIDATES,
    choose_font,
    missing_glyphs,
    wrap,
)
from imagegen.sources.chapters import draw_placeholder

TURKISH = "Giriş: İlk Blok ve Çağdaş Öğrenme"
HAS_SYSTEM_FONT = any(p.is_file() for p in FONT_CANDIDATES)


def test_drawn_at_the_episode_frame_size() -> None:
    drawn = draw_placeholder("Intro", "title_card", (1920, 1080))
    info = sniff(drawn.png)
    assert (info.format, info.width, info.height) == ("PNG", 1920, 1080)
    assert (drawn.width, drawn.height) == (1920, 1080)


def test_same_inputs_give_the_same_bytes() -> None:
    one = draw_placeholder(TURKISH, "title_card", (640, 360))
    two = draw_placeholder(TURKISH, "title_card", (640, 360))
    assert one.png == two.png
    assert one != draw_placeholder(TURKISH + "!", "title_card", (640, 360))


def test_background_is_the_types_colour() -> None:
    for kind, rgb in (("title_card", (0xF7, 0x93, 0x1A)), ("talking_head", (0x2B, 0x2F, 0x36))):
        with Image.open(io.BytesIO(draw_placeholder("X", kind, (320, 180)).png)) as img:
            assert img.convert("RGB").getpixel((2, 2)) == rgb


def test_metadata_follows_seed_002() -> None:
    details = draw_placeholder("  Bitcoin   Nedir? ", "title_card", (320, 180)).details()
    assert details["template_name"] == "title_card_default"
    assert details["background_color"] == "#F7931A"
    assert details["text_overlay"] == "Bitcoin Nedir?"
    assert "missing_glyphs" not in details or not HAS_SYSTEM_FONT


def test_pillows_own_font_cannot_draw_turkish() -> None:
    """Why the placeholder searches for a font: Aileron draws 'ş' as its .notdef box."""
    aileron = ImageFont.load_default(size=40)
    assert isinstance(aileron, ImageFont.FreeTypeFont)
    assert missing_glyphs(aileron, "Giriş") == "ş"
    assert missing_glyphs(aileron, "Giris") == ""


@pytest.mark.skipif(not HAS_SYSTEM_FONT, reason="no DejaVu, Liberation, Arial or Segoe font here")
def test_turkish_title_renders_without_boxes() -> None:
    drawn = draw_placeholder(TURKISH, "title_card", (960, 540))
    assert drawn.missing_glyphs == ""
    assert drawn.font != "Aileron Regular"


def test_unrenderable_characters_are_reported_not_hidden() -> None:
    drawn = draw_placeholder("Ⓧ \U0001d400 test", "talking_head", (320, 180))
    assert drawn.missing_glyphs  # no candidate font has these: the entry says so
    assert drawn.details()["missing_glyphs"] == drawn.missing_glyphs


def test_a_font_that_covers_the_title_is_preferred() -> None:
    path, missing = choose_font("plain ascii")
    assert missing == ""
    if HAS_SYSTEM_FONT:
        assert path is not None  # one face for ASCII and Turkish titles alike


def test_long_titles_wrap_within_the_frame() -> None:
    title = " ".join(["Uzun"] * 40)
    drawn = draw_placeholder(title, "title_card", (640, 360))
    with Image.open(io.BytesIO(drawn.png)) as img:
        rgb = img.convert("RGB")
        # The text (dark on orange) stays off the left and right 5% margins.
        margin = [(x, y) for x in (*range(0, 32), *range(608, 640)) for y in range(0, 300, 3)]
        assert all(rgb.getpixel(p) == (0xF7, 0x93, 0x1A) for p in margin)


def test_wrap_breaks_at_words_and_cuts_a_word_too_long() -> None:
    font = ImageFont.load_default(size=20)
    assert isinstance(font, ImageFont.FreeTypeFont)
    lines = wrap("aaa bbb ccc", font, int(font.getlength("aaa bbb")))
    assert lines == ["aaa bbb", "ccc"]
    long = wrap("x" * 50, font, int(font.getlength("x" * 10)))
    assert all(font.getlength(line) <= font.getlength("x" * 10) for line in long)
    assert "".join(long) == "x" * 50


def test_a_forced_font_that_does_not_load_is_an_input_error(tmp_path: Path) -> None:
    bad = tmp_path / "font.ttf"
    bad.write_bytes(b"not a font")
    with pytest.raises(InputError, match="cannot load the placeholder font"):
        draw_placeholder("X", "title_card", (320, 180), bad)

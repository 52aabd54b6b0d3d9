"""Drawing a placeholder: a solid colour and a line of text (a chapter's title), as a PNG.

Seed 002 section 4.3: "solid color with text overlay" for ``title_card`` and ``talking_head``
chapters, to be replaced by branded assets later; the title card's orange is seed 002's
example (section 6.1, ``#F7931A``). Colours are chosen by template (the provider's model).

The font matters more than it looks: Pillow's own scalable font (Aileron) has glyphs for ASCII
only, so "Giriş" or "Bitcoin'in Tarihi" with a dotted İ would come out with boxes. The title
is drawn with the first font found that has a glyph for each of its characters, searched in
the usual places on Linux, macOS and Windows (:data:`FONT_CANDIDATES`); Pillow's font is the
last resort. ``font`` and ``missing_glyphs`` in the entry say what happened. The same title,
type, size and font always give the same bytes.
"""

from __future__ import annotations

import io
import unicodedata
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from ...errors import InputError
from ...model import JSON

#: Part of a placeholder's content hash: bump it when the drawing changes, to redraw them all.
PLACEHOLDER_VERSION = 1

#: Background and text colours by visual type.
COLOURS = {
    "title_card": ("#F7931A", "#1A1A1A"),
    "talking_head": ("#2B2F36", "#F5F5F5"),
}
_DEFAULT_COLOURS = ("#3A3F47", "#F5F5F5")

#: Bold sans fonts with wide coverage (Latin, Turkish, Greek, Cyrillic), then CJK, by platform.
FONT_CANDIDATES = (
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"),  # Debian, Ubuntu
    Path("/usr/share/fonts/dejavu-sans-fonts/DejaVuSans-Bold.ttf"),  # Fedora
    Path("/usr/share/fonts/TTF/DejaVuSans-Bold.ttf"),  # Arch
    Path("/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf"),
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc"),
    Path("/System/Library/Fonts/Supplemental/Arial Bold.ttf"),  # macOS
    Path("/System/Library/Fonts/Supplemental/Arial Unicode.ttf"),
    Path("/Library/Fonts/Arial Unicode.ttf"),
    Path("C:/Windows/Fonts/arialbd.ttf"),
    Path("C:/Windows/Fonts/segoeuib.ttf"),
)
_NOT_A_CHARACTER = "\U0010fffd"  # private use, plane 16: no font draws it, so it gets .notdef
_MAX_LINES = 4


@dataclass(frozen=True, slots=True)
class Placeholder:
    """A drawn placeholder: PNG bytes and the facts the manifest keeps about it."""

    png: bytes = field(repr=False)
    width: int
    height: int
    template_name: str
    background_color: str
    text_overlay: str
    font: str
    missing_glyphs: str

    def details(self) -> dict[str, JSON]:
        """The entry's ``metadata`` besides cost and time (seed 002 section 6.1's keys)."""
        out: dict[str, JSON] = {
            "template_name": self.template_name,
            "background_color": self.background_color,
            "text_overlay": self.text_overlay,
            "font": self.font,
        }
        if self.missing_glyphs:
            out["missing_glyphs"] = self.missing_glyphs
        return out


def draw_placeholder(
    title: str, visual_type: str, size: tuple[int, int], font_path: Path | None = None
) -> Placeholder:
    """A ``size`` (width, height in pixels) PNG of ``title`` on the type's colour.

    Long titles wrap, and the type shrinks until at most four lines fit. ``font_path`` forces
    a font file (InputError if it cannot be loaded); otherwise one is chosen as above.
    """
    width, height = size
    text = unicodedata.normalize("NFC", " ".join(title.split()))
    background, ink = COLOURS.get(visual_type, _DEFAULT_COLOURS)
    path, missing = (font_path, None) if font_path else choose_font(text)
    img = Image.new("RGB", size, background)
    draw = ImageDraw.Draw(img)
    font_px = height // 9
    while True:
        font = _font(path, font_px)
        lines = wrap(text, font, int(width * 0.84))
        line_px = int(font_px * 1.25)
        if (len(lines) <= _MAX_LINES and line_px * len(lines) <= height * 0.7) or font_px <= 12:
            break
        font_px = int(font_px * 0.9)
    top = (height - line_px * len(lines)) / 2 + line_px / 2
    for i, line in enumerate(lines):
        draw.text((width / 2, top + i * line_px), line, font=font, fill=ink, anchor="mm")
    if visual_type in COLOURS:  # a named template says what it stands in for
        label_font = _font(path, max(height // 36, 10))
        label = visual_type.replace("_", " ").upper()
        draw.text((width / 2, height * 0.92), label, font=label_font, fill=ink, anchor="mm")
    out = io.BytesIO()
    img.save(out, format="PNG")
    if missing is None:
        missing = missing_glyphs(font, text)
    return Placeholder(
        png=out.getvalue(),
        width=width,
        height=height,
        template_name=f"{visual_type}_default",
        background_color=background,
        text_overlay=text,
        font=" ".join(part for part in font.getname() if part),
        missing_glyphs=missing,
    )


def describe(title: str, visual_type: str) -> dict[str, JSON]:
    """The facts :meth:`Placeholder.details` gives for this title and template, without
    drawing (the same font choice, so the same answer as a drawing on this machine)."""
    text = unicodedata.normalize("NFC", " ".join(title.split()))
    background, _ink = COLOURS.get(visual_type, _DEFAULT_COLOURS)
    path, missing = choose_font(text)
    font = _font(path, 48)
    return Placeholder(
        png=b"",
        width=0,
        height=0,
        template_name=f"{visual_type}_default",
        background_color=background,
        text_overlay=text,
        font=" ".join(part for part in font.getname() if part),
        missing_glyphs=missing,
    ).details()


def wrap(text: str, font: ImageFont.FreeTypeFont, max_width: int) -> list[str]:
    """Greedy word wrap to ``max_width`` pixels; a word too long alone is cut by characters."""
    lines: list[str] = []
    line = ""
    for word in text.split(" "):
        candidate = f"{line} {word}" if line else word
        if font.getlength(candidate) <= max_width:
            line = candidate
            continue
        if line:
            lines.append(line)
        line = ""
        for ch in word:
            if line and font.getlength(line + ch) > max_width:
                lines.append(line)
                line = ""
            line += ch
    if line or not lines:
        lines.append(line)
    return lines


def choose_font(text: str) -> tuple[Path | None, str]:
    """The first installed candidate drawing every character of ``text`` (else the one that
    misses fewest), and the characters it misses. None means Pillow's own font, tried last so
    that ASCII and Turkish titles of one episode share a face."""
    best: tuple[Path | None, str] | None = None
    for path in (*(p for p in FONT_CANDIDATES if p.is_file()), None):
        missing = missing_glyphs(_font(path, 48), text)
        if best is None or len(missing) < len(best[1]):
            best = (path, missing)
        if not missing:
            break
    assert best is not None  # the loop always tries Pillow's font
    return best


def missing_glyphs(font: ImageFont.FreeTypeFont, text: str) -> str:
    """The characters of ``text`` that ``font`` draws as its .notdef box, sorted, unique."""
    notdef = _glyph(font, _NOT_A_CHARACTER)
    return "".join(sorted({ch for ch in text if not ch.isspace() and _glyph(font, ch) == notdef}))


def _glyph(font: ImageFont.FreeTypeFont, ch: str) -> bytes:
    left, top, right, bottom = (int(v) for v in font.getbbox(ch))
    img = Image.new("L", (max(right - left, 1), max(bottom - top, 1)))
    ImageDraw.Draw(img).text((-left, -top), ch, font=font, fill=255)
    return b"%dx%d:" % img.size + img.tobytes()


@cache
def _font(path: Path | None, size: int) -> ImageFont.FreeTypeFont:
    if path is None:
        return ImageFont.load_default(size=size)  # type: ignore[return-value]
    try:
        return ImageFont.truetype(str(path), size)
    except OSError as exc:
        raise InputError(
            f"{path}: cannot load the placeholder font ({exc}); give a .ttf/.otf file"
        ) from exc

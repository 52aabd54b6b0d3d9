"""The contact sheet as one self-contained HTML page: inline CSS and script, no fonts or scripts
from elsewhere, every link relative, so it opens from disk with no server and no network.

Pure: a :class:`~imagegen.report.sheet.ContactSheet` and the hrefs of its images in, a string
out. The markup lives in Jinja2 templates (``templates/`` beside this module) rendered with
automatic escaping, so every piece of text from the journal is escaped wherever it lands; this
module only prepares the values the templates lay out (:class:`CardView`). The prompt,
references and error of a job sit in a ``<details>`` element: one click, no JavaScript.

The one inline script (``templates/review.js``) counts the images that failed to load, for a
headless browser to read (tests/test_report.py), and runs the review: keep / redo marks on the
cards, kept in the browser's local storage, and the ``--upgrade`` / ``--retry`` commands for
them (see the panel's help line, and :data:`PROGRAM`).
"""

from __future__ import annotations

import functools
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup, escape

from .sheet import Card, ContactSheet, Section, file_name

_DASH = "\u2013"  # typography, spelled as an escape for ruff's RUF001
#: The command the page's review commands start with (seed 003, "CLI Commands").
PROGRAM = "image-gen.sh"


@dataclass(frozen=True, slots=True)
class Media:
    """How the page shows one image: ``href`` of the full image and ``thumb`` of its thumbnail
    (URLs relative to the page), the thumbnail's size in pixels, or the ``problem`` instead."""

    href: str | None
    thumb: str | None
    width: int = 0
    height: int = 0
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class Gallery:
    """Media by the path the journal recorded: job images, and reference images (smaller)."""

    shots: Mapping[str, Media]
    references: Mapping[str, Media]
    sessions: Mapping[str, str | None]  # related session id -> href of its report, if written


@dataclass(frozen=True, slots=True)
class Placeholder:
    """What a cell shows where a job has no image: a big label, a small line, a tooltip."""

    status: str
    label: str
    small: str
    title: str


@dataclass(frozen=True, slots=True)
class Slot:
    """One image place in a card: its ``media`` (or a ``placeholder``), the ``tier`` label over
    it ("2K", "1K before", "variant 2"), its role and, for a variant, its number."""

    media: Media | None
    alt: str
    tier: str
    role: str
    variant: int | None = None
    placeholder: Placeholder | None = None


@dataclass(frozen=True, slots=True)
class CardView:
    """A card as the template lays it out. ``keepable``: the job has an image an upgrade can
    start from; ``rev`` changes when the job does (a new attempt or status), which lets the
    page drop a mark made on what the card showed before."""

    card: Card
    slots: tuple[Slot, ...]
    references: tuple[tuple[Media | None, str], ...]  # (media, alt)
    meta: str
    keepable: bool
    variants: tuple[int, ...]
    rev: str


def format_duration(seconds: float | None) -> str:
    """ "42 s", "3 min 05 s", "2 h 07 min"; a dash when unknown."""
    if seconds is None:
        return _DASH
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def _when(iso: str | None) -> str:
    return iso.replace("T", " ") if iso else _DASH


def _breakable(text: str) -> Markup:
    """Escaped, with line-break chances after underscores (prompt ids are long snake case)."""
    return Markup(str(escape(text)).replace("_", "_<wbr>"))  # escaped just above


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _placeholder(card: Card) -> Placeholder:
    label = card.reason if card.status == "failed" else card.status
    if card.status == "failed":
        small = card.detail
    elif card.status == "submitted":  # its image comes with its batch's results
        small = "in a batch the service is running"
    else:
        small = f"last try: {card.reason}" if card.reason else "no image yet"
    return Placeholder(card.status, label or card.status, small or "", card.detail or "")


def card_view(card: Card, gallery: Gallery) -> CardView:
    """What the template needs of one card, its images looked up in ``gallery``."""
    slots = [
        Slot(
            gallery.shots.get(s.path),
            f"{card.title} ({s.quality})" + (f" variant {s.index}" if s.role == "variant" else ""),
            s.quality
            + (" before" if s.role == "previous" else "")
            + (f" · variant {s.index}" if s.role == "variant" else ""),
            s.role,
            s.index if s.role == "variant" else None,
        )
        for s in card.shots
    ]
    variants = tuple(s.variant for s in slots if s.variant is not None)
    has_image = any(s.role in ("output", "variant") for s in card.shots)
    if not has_image:
        slots.append(Slot(None, card.title, card.quality, "none", None, _placeholder(card)))
    attempts = f"{card.attempts} attempt{'s' if card.attempts != 1 else ''}"
    return CardView(
        card=card,
        slots=tuple(slots),
        references=tuple(
            (gallery.references.get(r), f"reference {n}: {file_name(r)}")
            for n, r in enumerate(card.references, 1)
        ),
        meta=" · ".join(filter(None, (f"#{card.job_id}", attempts, card.quality, card.pixels))),
        keepable=card.status == "completed" and has_image,
        variants=variants,
        rev=f"{card.attempts}/{card.status}",
    )


@dataclass(frozen=True, slots=True)
class _SectionView:
    anchor: str
    section: Section
    rows: tuple[tuple[str, str, tuple[tuple[CardView, ...], ...]], ...]  # title, sub, cells


def _section_view(number: int, section: Section, gallery: Gallery) -> _SectionView:
    return _SectionView(
        f"s-{number + 1}",
        section,
        tuple(
            (
                row.title,
                row.subtitle,
                tuple(tuple(card_view(c, gallery) for c in cell) for cell in row.cells),
            )
            for row in section.rows
        ),
    )


@functools.cache
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("imagegen.report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(breakable=_breakable, duration=format_duration, when=_when)
    env.filters["shorten"] = _shorten
    env.globals["inline"] = functools.partial(_inline, env)
    return env


def _inline(env: Environment, name: str) -> Markup:
    """A template file's text as it is (the page's CSS and script): not a template itself, so
    braces in it mean nothing to Jinja."""
    assert env.loader is not None
    source, _, _ = env.loader.get_source(env, name)
    return Markup(source)  # our own file, shipped with the package


def render_page(
    sheet: ContactSheet, gallery: Gallery, *, command_options: Sequence[str] = ()
) -> str:
    """The whole page as an HTML string (UTF-8 when written).

    ``command_options`` are appended to the review commands the page builds, e.g.
    ``("--sessions-dir", "my sessions")`` when the session is not in the default folder.
    """
    template = _environment().get_template("page.html.j2")
    return template.render(
        header=sheet.header,
        sections=[_section_view(n, s, gallery) for n, s in enumerate(sheet.sections)],
        attention=sheet.attention,
        sessions=gallery.sessions,
        program=PROGRAM,
        command_options=shlex.join(command_options),
    )

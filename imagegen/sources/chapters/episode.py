"""An episode's ``chapters.json``: load it, check it, and hand back frozen data.

The image stage reads only these fields (seed 002, section 5.2 and the template in section 4.2):
``schema_version``, ``episode_id``, and per chapter ``chapter_id``, ``title``,
``visuals[0].type``, ``visuals[0].description``, ``visuals[0].image_prompt`` and
``narration.text``. Every other field the chapterizer writes is left alone (seed 001, "Do NOT
modify the chapter JSON schema"), so unknown keys are ignored rather than refused.

A malformed file raises :class:`EpisodeError` whose message is one line: the file, the JSON path
of the field (``chapters[3].visuals[0].type``), what is wrong, and the fix.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ...errors import InputError

CHAPTERS_FILE = "chapters.json"

#: Visual types of the chapter schema (seed 002, section 4.3).
VISUAL_TYPES = ("b_roll", "diagram", "screen_share", "talking_head", "title_card")

#: A chapter id becomes a file name (``images/{chapter_id}.png``, seed 001 step 6): letters,
#: digits, ``_``, ``-`` and inner dots, at most 64, so it cannot climb out of ``images/``, hide
#: itself (leading dot) or mean something else to a shell.
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")

#: Major versions of the chapter schema this reader understands (seed 002 shows "1.0").
SUPPORTED_SCHEMA_MAJOR = "1"


class EpisodeError(InputError):
    """``chapters.json`` is missing or malformed. ``path`` is the file, ``field`` the JSON path."""

    def __init__(self, path: Path, field: str, problem: str, fix: str) -> None:
        where = f"{path}: {field}: " if field else f"{path}: "
        super().__init__(f"{where}{problem}; {fix}")
        self.path = path
        self.field = field


@dataclass(frozen=True, slots=True)
class Visual:
    """The chapter's first visual. ``image_prompt`` is None when a text model must write it."""

    type: str
    description: str
    image_prompt: str | None


@dataclass(frozen=True, slots=True)
class Chapter:
    """One chapter as the image stage sees it. ``visual`` is None when ``visuals`` is empty."""

    chapter_id: str
    title: str
    visual: Visual | None
    narration: str


@dataclass(frozen=True, slots=True)
class Episode:
    """A checked ``chapters.json``: chapters in file order, ids unique and safe as file names."""

    episode_id: str
    schema_version: str
    chapters: tuple[Chapter, ...]
    source: Path

    @property
    def chapter_ids(self) -> tuple[str, ...]:
        return tuple(c.chapter_id for c in self.chapters)

    def chapter(self, chapter_id: str) -> Chapter | None:
        return next((c for c in self.chapters if c.chapter_id == chapter_id), None)


def load_episode(path: Path) -> Episode:
    """Read and check ``path`` (an episode's ``chapters.json``, or the folder holding it).

    Raises EpisodeError (an InputError) naming the file and the field when it is missing, not
    UTF-8 JSON, or does not have the shape above.
    """
    if path.is_dir():
        path = path / CHAPTERS_FILE
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte order mark is not JSON
    except FileNotFoundError as exc:
        raise EpisodeError(
            path, "", "not found", "run the chapterize stage first, or pass the episode folder"
        ) from exc
    except UnicodeDecodeError as exc:
        raise EpisodeError(path, "", "not UTF-8 text", "save the file as UTF-8") from exc
    except OSError as exc:
        raise EpisodeError(path, "", f"cannot be read ({exc.strerror})", "check it") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise EpisodeError(
            path,
            "",
            f"not valid JSON at line {exc.lineno} column {exc.colno} ({exc.msg})",
            "fix the syntax there",
        ) from exc
    return parse_episode(data, path)


def parse_episode(data: object, source: Path) -> Episode:
    """Check decoded JSON against the chapter schema; ``source`` is named in errors. Pure."""
    return _Reader(source).episode(data)


class _Reader:
    """Walks the document once; every complaint names ``source`` and a JSON path."""

    def __init__(self, source: Path) -> None:
        self.source = source

    def fail(self, field: str, problem: str, fix: str) -> EpisodeError:
        return EpisodeError(self.source, field, problem, fix)

    def obj(
        self, value: object, field: str, fix: str = "write a JSON object"
    ) -> Mapping[str, object]:
        if not isinstance(value, dict):
            raise self.fail(field, f"is {_kind(value)}, not an object", fix)
        return value

    def text(self, parent: Mapping[str, object], key: str, field: str, *, empty: bool) -> str:
        if key not in parent:
            raise self.fail(field, "is missing", f'add "{key}": "..."')
        value = parent[key]
        if not isinstance(value, str):
            raise self.fail(field, f"is {_kind(value)}, not a string", "write it as a string")
        if not empty and not value.strip():
            raise self.fail(field, "is empty", "write some text")
        return value

    def episode(self, data: object) -> Episode:
        doc = self.obj(data, "(top level)")
        version = doc.get("schema_version")
        if isinstance(version, int | float) and not isinstance(version, bool):
            version = str(version)  # a bare 1.0 is what the writer meant by "1.0"
        if not isinstance(version, str) or not version.strip():
            raise self.fail("schema_version", "is missing or not a string", 'add "1.0"')
        if version.split(".")[0].strip() != SUPPORTED_SCHEMA_MAJOR:
            raise self.fail(
                "schema_version",
                f"{version!r} is not supported (this reader knows {SUPPORTED_SCHEMA_MAJOR}.x)",
                "re-run the chapterize stage or upgrade imagegen",
            )
        episode_id = self.text(doc, "episode_id", "episode_id", empty=False)
        raw = doc.get("chapters")
        if not isinstance(raw, list):
            raise self.fail("chapters", f"is {_kind(raw)}, not a list", "write a list of chapters")
        if not raw:
            raise self.fail("chapters", "is empty", "add at least one chapter")
        chapters = tuple(self.chapter(item, f"chapters[{i}]") for i, item in enumerate(raw))
        self.check_unique(chapters)
        return Episode(episode_id, version, chapters, self.source)

    def chapter(self, data: object, at: str) -> Chapter:
        doc = self.obj(data, at)
        chapter_id = self.text(doc, "chapter_id", f"{at}.chapter_id", empty=False)
        if not _SAFE_ID.fullmatch(chapter_id) or ".." in chapter_id:
            raise self.fail(
                f"{at}.chapter_id",
                f"{chapter_id!r} cannot be a file name",
                "use up to 64 letters, digits, '_', '-' or inner dots, such as ch01",
            )
        title = self.text(doc, "title", f"{at}.title", empty=False)
        visuals = doc.get("visuals")
        if not isinstance(visuals, list):
            raise self.fail(
                f"{at}.visuals", f"is {_kind(visuals)}, not a list", "write a list of visuals"
            )
        # Seed 002 section 5.2 skips a chapter without visuals rather than failing the episode.
        visual = self.visual(visuals[0], f"{at}.visuals[0]") if visuals else None
        fix = 'write "narration": {"text": "..."}'
        narration = self.obj(doc.get("narration"), f"{at}.narration", fix)
        text = self.text(narration, "text", f"{at}.narration.text", empty=True)
        return Chapter(chapter_id, title, visual, text)

    def visual(self, data: object, at: str) -> Visual:
        doc = self.obj(data, at)
        kind = self.text(doc, "type", f"{at}.type", empty=False)
        if kind not in VISUAL_TYPES:
            raise self.fail(
                f"{at}.type",
                f"{kind!r} is not a visual type",
                f"use one of {', '.join(VISUAL_TYPES)}",
            )
        description = self.text(doc, "description", f"{at}.description", empty=True)
        prompt = doc.get("image_prompt")
        if prompt is not None and not isinstance(prompt, str):
            raise self.fail(
                f"{at}.image_prompt",
                f"is {_kind(prompt)}, not a string or null",
                "write the prompt as a string, or null to have one written",
            )
        # Seed 002 section 5.2 tests ``if visual.image_prompt``: an empty one is written too.
        return Visual(kind, description, prompt if prompt and prompt.strip() else None)

    def check_unique(self, chapters: Sequence[Chapter]) -> None:
        # Case-insensitive: ch01.png and CH01.png are one file on macOS and Windows.
        seen: dict[str, int] = {}
        for i, chapter in enumerate(chapters):
            key = chapter.chapter_id.casefold()
            if key in seen:
                raise self.fail(
                    f"chapters[{i}].chapter_id",
                    f"{chapter.chapter_id!r} repeats chapters[{seen[key]}].chapter_id"
                    " (ids name image files, letter case aside)",
                    "give every chapter its own id",
                )
            seen[key] = i


def _kind(value: object) -> str:
    """The JSON name of ``value``'s type, for messages ("a list", "null")."""
    if value is None:
        return "null or missing"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"

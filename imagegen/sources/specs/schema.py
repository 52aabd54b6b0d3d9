"""What a YAML imagery spec is: the layout under ROOT, the typed records a file loads into, the
prompt fingerprint, and how a depicted character's reference images are found.

Layout (every field is documented in ``samples/specs/README.md``)::

    ROOT/
      chapters/*.yaml                      one chapter imagery spec per file
      locations/*.yaml                     one location imagery spec per file
      characters/character_imagery.yaml    the character inventory
      generated/chapters/{chapter}/{custom_id}.png     images the tool writes
      generated/locations/{location}/{slug}.png

Paths inside the files (an inventory image's ``path``, the ``file_path`` the tool writes) are
relative to ROOT and use ``/``; an inventory ``path`` may also be absolute. Files whose name
starts with a dot are ignored (lock and temporary files live there).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from .errors import SpecError
from .yamlfile import plain

CHAPTERS = "chapters"
LOCATIONS = "locations"
INVENTORY = Path("characters") / "character_imagery.yaml"
GENERATED = "generated"
SUFFIXES = (".yaml", ".yml")

Kind = Literal["chapter", "location"]

#: The fields whose edit makes a generated image stale (the fingerprint covers them).
CHAPTER_PROMPT_FIELDS = (
    "prompt_used",
    "negative_prompt",
    "size",
    "depicts_characters",
    "character_states",
)
LOCATION_PROMPT_FIELDS = ("prompt_used", "negative_prompt", "size")
#: The fields the tool writes into a chapter image, and into each ``generated_images`` entry.
OUTPUT_FIELDS = ("generated_at", "file_name", "file_path", "provider", "model", "provider_metadata")
#: An inventory image with this status is sent first; "rejected" ones are never sent.
APPROVED = "approved"
REJECTED = "rejected"
#: Reference images sent per depicted character (seed 004, "Keep it boring": 1-2).
REFERENCES_PER_CHARACTER = 2


@dataclass(frozen=True, slots=True)
class Defaults:
    """A file's ``defaults``: provider and model names as written (None: the runner's own),
    ``quality`` and ``size`` in the forms :mod:`.sizes` maps."""

    provider: str | None = None
    model: str | None = None
    quality: str | None = None
    size: str | None = None


@dataclass(frozen=True, slots=True)
class Generated:
    """The output fields of a chapter image or of one ``generated_images`` entry (all None
    until the tool writes them). ``generated_at`` is ISO 8601 text."""

    generated_at: str | None = None
    file_name: str | None = None
    file_path: str | None = None
    provider: str | None = None
    model: str | None = None
    provider_metadata: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class ChapterCharacter:
    """An entry of a chapter's ``characters``: an inventory id and the ids of its images to
    send as references, best first."""

    id: str
    reference_images: tuple[str, ...]
    line: int


@dataclass(frozen=True, slots=True)
class ChapterImage:
    """An entry of a chapter's ``images``. ``character_states`` keeps the file's order;
    ``index`` is the position in ``images``; ``line`` is 1-based. ``fingerprint`` covers the
    prompt fields, ``output_fingerprint`` the output fields (a result recorded since planning
    changes it)."""

    custom_id: str
    index: int
    line: int
    prompt_used: str
    negative_prompt: str | None
    size: str | None
    depicts_characters: tuple[str, ...]
    character_states: tuple[tuple[str, str], ...]
    output: Generated
    fingerprint: str
    output_fingerprint: str = ""

    @property
    def key(self) -> tuple[str | int, ...]:
        return ("images", self.index)


@dataclass(frozen=True, slots=True)
class Chapter:
    file: Path
    slug: str
    title: str | None
    visual_thesis: str | None
    palette: tuple[str, ...]
    defaults: Defaults
    characters: tuple[ChapterCharacter, ...]
    images: tuple[ChapterImage, ...]

    def character(self, character_id: str) -> ChapterCharacter | None:
        return next((c for c in self.characters if c.id == character_id), None)


@dataclass(frozen=True, slots=True)
class LocationItem:
    """The ``overview`` or an entry of ``parts``; ``key`` is its place in the file.
    ``fingerprint`` as for :class:`ChapterImage`; no output fingerprint: its results are a
    list that only grows (``generated_images``), and appending loses none recorded since
    planning."""

    slug: str
    key: tuple[str | int, ...]
    line: int
    prompt_used: str
    negative_prompt: str | None
    size: str | None
    generated_images: tuple[Generated, ...]
    fingerprint: str


@dataclass(frozen=True, slots=True)
class Location:
    file: Path
    slug: str
    name: str | None
    signature_elements: tuple[str, ...]
    characteristic_light: str | None
    defaults: Defaults
    overview: LocationItem | None
    parts: tuple[LocationItem, ...]

    @property
    def items(self) -> tuple[LocationItem, ...]:
        """The overview first, then the parts in file order."""
        return ((self.overview,) if self.overview else ()) + self.parts


@dataclass(frozen=True, slots=True)
class InventoryImage:
    """An ``image_inventory`` entry: ``path`` as written (relative to ROOT, or absolute)."""

    id: str
    path: str
    status: str
    line: int


@dataclass(frozen=True, slots=True)
class Character:
    id: str
    name: str | None
    appearance: str | None
    image_inventory: tuple[InventoryImage, ...]
    line: int

    @property
    def display_name(self) -> str:
        return self.name or self.id

    def image(self, image_id: str) -> InventoryImage | None:
        return next((i for i in self.image_inventory if i.id == image_id), None)


@dataclass(frozen=True, slots=True)
class Inventory:
    """``characters/character_imagery.yaml`` (empty, with ``file`` still set, when absent)."""

    file: Path
    characters: tuple[Character, ...] = ()

    def get(self, character_id: str) -> Character | None:
        return next((c for c in self.characters if c.id == character_id), None)


@dataclass(frozen=True, slots=True)
class Specs:
    """Everything under ROOT, validated: chapters and locations sorted by file name."""

    root: Path
    chapters: tuple[Chapter, ...]
    locations: tuple[Location, ...]
    inventory: Inventory


@dataclass(frozen=True, slots=True)
class ReferenceImage:
    """A reference image to send: whose (character id and display name), which inventory
    entry, and the file (ROOT joined with the inventory ``path``)."""

    character: str
    name: str
    inventory_id: str
    path: Path
    status: str


def fingerprint(item: Mapping[str, Any], fields: tuple[str, ...]) -> str:
    """16 hex digits of SHA-256 over ``fields`` of ``item``: equal before and after an edit
    that changes none of their values. Comments, quoting, key order, a block scalar's final
    newline (``>`` or ``>-``) and absent versus null versus empty (``[]``, ``{}``) do not count.
    """
    values = {name: _settled(plain(item.get(name))) for name in fields}
    data = orjson.dumps(values, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=str)
    return hashlib.sha256(data).hexdigest()[:16]


def _settled(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
    elif isinstance(value, dict):
        value = {k: _settled(v) for k, v in value.items()}
    elif isinstance(value, list):
        value = [_settled(v) for v in value]
    return value if value not in ("", [], {}) else None


def prompt_fields(kind: Kind) -> tuple[str, ...]:
    return CHAPTER_PROMPT_FIELDS if kind == "chapter" else LOCATION_PROMPT_FIELDS


def locate(data: CommentedMap, kind: Kind, item_id: str, file: Path) -> CommentedMap | None:
    """The item called ``item_id`` in a parsed file (a chapter image by ``custom_id``, a
    location overview or part by ``slug``), or None when it is gone.

    Raises SpecError when two items now carry that id (the update cannot choose).
    """
    if kind == "chapter":
        candidates = _entries(data.get("images"))
        field = "custom_id"
    else:
        overview = data.get("overview")
        candidates = [overview] if isinstance(overview, CommentedMap) else []
        candidates += _entries(data.get("parts"))
        field = "slug"
    found = [c for c in candidates if plain(c.get(field)) == item_id]
    if len(found) > 1:
        raise SpecError(
            f"{file}: {field} {item_id!r} now appears {len(found)} times; give each item its "
            "own id, then run again (the image is kept)"
        )
    return found[0] if found else None


def _entries(value: Any) -> list[CommentedMap]:
    if not isinstance(value, CommentedSeq):
        return []
    return [v for v in value if isinstance(v, CommentedMap)]


def reference_image(
    chapter: Chapter,
    entry: ChapterCharacter,
    image_id: str,
    inventory: Inventory,
    root: Path,
    exists: Callable[[Path], bool] = Path.is_file,
) -> ReferenceImage:
    """Resolve one ``reference_images`` id of a chapter character entry through the inventory.

    Raises SpecError for an unknown character or image id, a rejected image, or a file that
    does not exist: never a silent skip.
    """
    where = f"{chapter.file}:{entry.line}: characters '{entry.id}'"
    character = inventory.get(entry.id)
    if character is None:
        known = ", ".join(c.id for c in inventory.characters) or "none"
        raise SpecError(
            f"{where}, field id: unknown character {entry.id!r}; use an id of "
            f"{inventory.file} (known: {known})"
        )
    image = character.image(image_id)
    if image is None:
        known = ", ".join(i.id for i in character.image_inventory) or "none"
        raise SpecError(
            f"{where}, field reference_images: unknown image id {image_id!r}; use an id from "
            f"the image_inventory of {entry.id!r} in {inventory.file} (known: {known})"
        )
    if image.status == REJECTED:
        raise SpecError(
            f"{where}, field reference_images: {image_id!r} has status rejected; remove it "
            f"from reference_images or change its status in {inventory.file}"
        )
    path = root / image.path
    if not exists(path):
        raise SpecError(
            f"{inventory.file}:{image.line}: characters '{character.id}', image_inventory "
            f"'{image.id}', field path: {path} does not exist; fix the path or add the file "
            f"(referenced by {chapter.file})"
        )
    return ReferenceImage(character.id, character.display_name, image.id, path, image.status)


def references_for(
    chapter: Chapter,
    character_id: str,
    inventory: Inventory,
    root: Path,
    exists: Callable[[Path], bool] = Path.is_file,
    limit: int = REFERENCES_PER_CHARACTER,
) -> tuple[ReferenceImage, ...]:
    """A depicted character's reference images: its chapter entry's ids resolved, approved
    ones first (file order otherwise), at most ``limit``. Every listed id is resolved, so a
    broken third id fails as loudly as the first."""
    entry = chapter.character(character_id)
    if entry is None:
        raise SpecError(
            f"{chapter.file}: character {character_id!r} is depicted but not listed under "
            "characters:; add it there with its reference_images"
        )
    refs = [
        reference_image(chapter, entry, image_id, inventory, root, exists)
        for image_id in entry.reference_images
    ]
    refs.sort(key=lambda ref: ref.status != APPROVED)
    return tuple(refs[:limit])


def chapter_output(chapter: str, custom_id: str) -> str:
    """``generated/chapters/{chapter}/{custom_id}.png`` (seed 004, "File naming")."""
    return f"{GENERATED}/{CHAPTERS}/{chapter}/{custom_id}.png"


def location_output(location: str, slug: str) -> str:
    """``generated/locations/{location}/{slug}.png`` (seed 004, "File naming")."""
    return f"{GENERATED}/{LOCATIONS}/{location}/{slug}.png"

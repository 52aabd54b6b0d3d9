"""Planning: validated specs -> the pending images as tasks, each with its prompt, reference
images, size, output path and fingerprint. Pure: the only look at the disk is ``exists``.

Rules (seed 004, "Functional requirements" and "File naming"):

- pending: a chapter image whose ``file_path`` is null or names a missing file; a location
  overview or part whose ``generated_images`` is empty;
- task ids: the chapter image's ``custom_id``; ``{location}/{slug}`` for a location item;
- order: chapters then locations, files by name, items in file order (overview first);
- filters, in this order: ``kind``, ``only`` (chapter or location slugs), ``match`` (a glob on
  the task id), then ``max_tasks`` (the first N);
- outputs: ``generated/chapters/{chapter}/{custom_id}.png`` and
  ``generated/locations/{location}/{slug}.png``, relative to ROOT.

The prompt (:func:`chapter_prompt`, :func:`location_prompt`) is, in order: a short block from
the chapter's ``visual_thesis`` (first two sentences) and ``palette`` (first six entries), or the
location's first two ``signature_elements`` and its ``characteristic_light``; ``prompt_used``;
the depicted characters' ``character_states``; the ``appearance`` of each depicted character
sent without reference images; the list of reference images in the order sent; and the
``negative_prompt`` as ``Avoid: ...``, because Gemini's API has no negative-prompt field
(``negative_as_text=False`` leaves it out for a provider that has one:
:attr:`Task.negative_prompt` carries it).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from .errors import SpecError
from .schema import (
    Chapter,
    ChapterImage,
    Defaults,
    Inventory,
    Kind,
    Location,
    LocationItem,
    ReferenceImage,
    Specs,
    chapter_output,
    location_output,
    references_for,
)
from .sizes import ImageSize, SizeError, image_size

KINDS = ("chapters", "locations", "all")
THESIS_SENTENCES = 2
PALETTE_ENTRIES = 6
SIGNATURE_ELEMENTS = 2
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True, slots=True)
class Task:
    """One image to generate from a spec item.

    ``id`` is the task id; ``owner`` the chapter or location slug; ``item_id`` the item's
    ``custom_id`` or ``slug`` (what :func:`~.update.record_result` looks up); ``item`` its key
    path in the file, e.g. ``("images", 3)``. ``output`` is relative to ``root`` with ``/``.
    ``fingerprint`` covers the item's prompt fields as planned; ``prompt_sha256`` the composed
    prompt. ``output_exists`` says the output file is already on disk although the spec does
    not record it (an image saved just before a crash). ``output_fingerprint`` covers a
    chapter image's output fields as planned (:func:`~.update.record_result` refuses to write
    over a result recorded since); it is empty for a location item, whose list of results
    only grows.
    """

    id: str
    kind: Kind
    owner: str
    item_id: str
    file: Path
    item: tuple[str | int, ...]
    root: Path
    output: str
    prompt: str
    negative_prompt: str | None
    references: tuple[ReferenceImage, ...]
    size: str | None
    aspect: str
    quality: str
    defaults: Defaults
    fingerprint: str
    prompt_sha256: str
    output_exists: bool
    output_fingerprint: str = ""

    @property
    def output_path(self) -> Path:
        return self.root / self.output

    @property
    def reference_paths(self) -> tuple[str, ...]:
        """The reference image files, in the order they are sent."""
        return tuple(str(ref.path) for ref in self.references)


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What the provider of a file's tasks can take: reference images at all, how many at
    most (None: no limit checked), and whether the negative prompt goes into the text."""

    supports_references: bool = True
    max_references: int | None = None
    negative_as_text: bool = True


@dataclass(frozen=True, slots=True)
class Plan:
    """The tasks, and what the selected files hold: ``items`` in all, ``done`` already
    generated (before ``match`` and ``max_tasks``)."""

    tasks: tuple[Task, ...]
    items: int
    done: int

    def describe(self) -> str:
        """One line: ``3 tasks (12 items, 9 already generated)``."""
        noun = "task" if len(self.tasks) == 1 else "tasks"
        return f"{len(self.tasks)} {noun} ({self.items} items, {self.done} already generated)"


def plan_tasks(
    specs: Specs,
    *,
    kind: str = "all",
    only: Sequence[str] = (),
    match: str | None = None,
    max_tasks: int | None = None,
    supports_references: bool = True,
    max_references: int | None = None,
    negative_as_text: bool = True,
    exists: Callable[[Path], bool] = Path.is_file,
    capabilities: Callable[[Path], Capabilities] | None = None,
) -> Plan:
    """The pending items of ``specs`` as tasks (module docstring for the rules).

    ``supports_references`` False sends no reference images and puts each depicted
    character's ``appearance`` in the prompt instead; ``max_references`` refuses a task that
    would send more (the provider's limit). ``capabilities``, when given, says those three
    per spec file instead (each file's tasks may go to a provider of their own).
    Raises SpecError for a bad filter, a reference that does not resolve, or too many
    references.
    """
    if isinstance(only, str):
        only = (only,)
    if kind not in KINDS:
        raise SpecError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    if max_tasks is not None and max_tasks < 1:
        raise SpecError(f"--max-tasks {max_tasks}: give at least 1")
    known = {c.slug for c in specs.chapters} | {loc.slug for loc in specs.locations}
    unknown = [slug for slug in only if slug not in known]
    if unknown:
        raise SpecError(
            f"--only {unknown[0]!r}: no chapter or location has this slug; "
            f"known: {', '.join(sorted(known))}"
        )
    chapters = [c for c in specs.chapters if kind != "locations" and (not only or c.slug in only)]
    locations = [
        loc for loc in specs.locations if kind != "chapters" and (not only or loc.slug in only)
    ]
    items = sum(len(c.images) for c in chapters) + sum(len(loc.items) for loc in locations)
    tasks: list[Task] = []
    given = Capabilities(supports_references, max_references, negative_as_text)

    def caps(file: Path) -> Capabilities:
        return given if capabilities is None else capabilities(file)

    for chapter in chapters:
        c = caps(chapter.file)
        options = (c.supports_references, c.max_references, c.negative_as_text, exists)
        for image in chapter.images:
            if _chapter_pending(specs.root, image, exists):
                tasks.append(chapter_task(specs, chapter, image, *options))
    for location in locations:
        c = caps(location.file)
        for item in location.items:
            if not item.generated_images:
                tasks.append(location_task(specs.root, location, item, c.negative_as_text, exists))
    done = items - len(tasks)
    if match is not None:
        tasks = [t for t in tasks if fnmatchcase(t.id, match)]
    if max_tasks is not None:
        tasks = tasks[:max_tasks]
    return Plan(tuple(tasks), items, done)


def _chapter_pending(root: Path, image: ChapterImage, exists: Callable[[Path], bool]) -> bool:
    path = image.output.file_path
    return path is None or not exists(root / path)


def chapter_task(
    specs: Specs,
    chapter: Chapter,
    image: ChapterImage,
    supports_references: bool = True,
    max_references: int | None = None,
    negative_as_text: bool = True,
    exists: Callable[[Path], bool] = Path.is_file,
) -> Task:
    """The task for one chapter image (pending or not)."""
    references: dict[str, tuple[ReferenceImage, ...]] = {}
    if supports_references:
        for character_id in image.depicts_characters:
            references[character_id] = references_for(
                chapter, character_id, specs.inventory, specs.root, exists
            )
    sent = tuple(ref for refs in references.values() for ref in refs)
    where = f"{chapter.file}:{image.line}: images[{image.index}] '{image.custom_id}'"
    if max_references is not None and len(sent) > max_references:
        raise SpecError(
            f"{where}, field depicts_characters: {len(sent)} reference images, more than the "
            f"provider's {max_references}; list fewer reference_images or depict fewer characters"
        )
    prompt = chapter_prompt(chapter, image, specs.inventory, references, negative_as_text)
    size = image.size or chapter.defaults.size
    mapped = _size(where, size, chapter.defaults)
    output = chapter_output(chapter.slug, image.custom_id)
    return Task(
        id=image.custom_id,
        kind="chapter",
        owner=chapter.slug,
        item_id=image.custom_id,
        file=chapter.file,
        item=image.key,
        root=specs.root,
        output=output,
        prompt=prompt,
        negative_prompt=image.negative_prompt,
        references=sent,
        size=size,
        aspect=mapped.aspect,
        quality=mapped.quality,
        defaults=chapter.defaults,
        fingerprint=image.fingerprint,
        prompt_sha256=_sha256(prompt),
        output_exists=exists(specs.root / output),
        output_fingerprint=image.output_fingerprint,
    )


def location_task(
    root: Path,
    location: Location,
    item: LocationItem,
    negative_as_text: bool = True,
    exists: Callable[[Path], bool] = Path.is_file,
) -> Task:
    """The task for one location overview or part (pending or not)."""
    prompt = location_prompt(location, item, negative_as_text)
    size = item.size or location.defaults.size
    output = location_output(location.slug, item.slug)
    where = f"{location.file}:{item.line}: {item.key[0]} '{item.slug}'"
    mapped = _size(where, size, location.defaults)
    return Task(
        id=f"{location.slug}/{item.slug}",
        kind="location",
        owner=location.slug,
        item_id=item.slug,
        file=location.file,
        item=item.key,
        root=root,
        output=output,
        prompt=prompt,
        negative_prompt=item.negative_prompt,
        references=(),
        size=size,
        aspect=mapped.aspect,
        quality=mapped.quality,
        defaults=location.defaults,
        fingerprint=item.fingerprint,
        prompt_sha256=_sha256(prompt),
        output_exists=exists(root / output),
    )


def chapter_prompt(
    chapter: Chapter,
    image: ChapterImage,
    inventory: Inventory,
    references: dict[str, tuple[ReferenceImage, ...]],
    negative_as_text: bool = True,
) -> str:
    """The text sent for a chapter image; ``references`` maps each depicted character to the
    images sent for it (none, or absent, when the provider takes no references)."""
    head = []
    if chapter.visual_thesis:
        head.append(f"Chapter visual thesis: {_first_sentences(chapter.visual_thesis)}")
    if chapter.palette:
        head.append(f"Palette: {', '.join(chapter.palette[:PALETTE_ENTRIES])}.")
    blocks = ["\n".join(head), image.prompt_used.strip()]
    states = dict(image.character_states)
    names = {c.id: c.display_name for c in inventory.characters}
    lines = [f"- {names.get(c, c)}: {states[c]}" for c in image.depicts_characters if c in states]
    if lines:
        blocks.append("Character states:\n" + "\n".join(lines))
    described = []
    for character_id in image.depicts_characters:
        character = inventory.get(character_id)
        if not references.get(character_id) and character and character.appearance:
            described.append(f"- {character.display_name}: {character.appearance}")
    if described:
        blocks.append("Character appearance (keep it consistent):\n" + "\n".join(described))
    sent = [ref for refs in references.values() for ref in refs]
    if sent:
        listed = "\n".join(f"{n}. {ref.name} ({ref.inventory_id})" for n, ref in enumerate(sent, 1))
        blocks.append(f"Reference images, in order (keep each character's likeness):\n{listed}")
    return _join(blocks, image.negative_prompt if negative_as_text else None)


def location_prompt(location: Location, item: LocationItem, negative_as_text: bool = True) -> str:
    """The text sent for a location overview or part."""
    head = []
    if location.signature_elements:
        elements = "; ".join(location.signature_elements[:SIGNATURE_ELEMENTS])
        head.append(f"Signature elements of {location.name or location.slug}: {elements}.")
    if location.characteristic_light:
        head.append(f"Characteristic light: {_one_line(location.characteristic_light)}")
    blocks = ["\n".join(head), item.prompt_used.strip()]
    return _join(blocks, item.negative_prompt if negative_as_text else None)


def _join(blocks: Iterable[str], negative: str | None) -> str:
    parts = [b for b in blocks if b]
    if negative:
        parts.append(f"Avoid: {_one_line(negative)}")
    return "\n\n".join(parts)


def _first_sentences(text: str) -> str:
    return " ".join(_SENTENCE_END.split(_one_line(text))[:THESIS_SENTENCES])


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _size(where: str, size: str | None, defaults: Defaults) -> ImageSize:
    try:
        return image_size(size, defaults.quality)
    except SizeError as exc:
        raise SpecError(f"{where}, field size: {exc}; see samples/specs/README.md") from exc


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()

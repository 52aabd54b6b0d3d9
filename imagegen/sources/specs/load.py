"""Loading ROOT: every spec file is read and validated before anything is planned or paid for.

Each problem is one :class:`~.errors.SpecError` line naming the file, the line, the item and
the field, and saying how to fix it. Unknown keys are allowed (and kept on write): the specs
carry much more than the tool reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from .errors import SpecError
from .fields import Fields, kind_of
from .schema import (
    CHAPTER_PROMPT_FIELDS,
    CHAPTERS,
    INVENTORY,
    LOCATION_PROMPT_FIELDS,
    LOCATIONS,
    OUTPUT_FIELDS,
    SUFFIXES,
    Chapter,
    ChapterCharacter,
    ChapterImage,
    Character,
    Defaults,
    Generated,
    Inventory,
    InventoryImage,
    Location,
    LocationItem,
    Specs,
    fingerprint,
    reference_image,
)
from .sizes import SizeError, image_size
from .yamlfile import is_null, plain, read_mapping


def load_root(root: Path) -> Specs:
    """Read and validate every spec under ``root`` (layout: :mod:`.schema`).

    Checks each file on its own, then across files: chapter slugs, ``custom_id`` values and
    location slugs unique under ROOT; every chapter character known to the inventory; every
    ``reference_images`` id known, not rejected, and its file present. Raises SpecError.
    """
    if not root.is_dir():
        raise SpecError(
            f"{root}: no such folder; give the ROOT that holds chapters/ and locations/"
        )
    chapter_files = spec_files(root / CHAPTERS)
    location_files = spec_files(root / LOCATIONS)
    if not chapter_files and not location_files:
        raise SpecError(
            f"{root}: no specs found; put chapter specs in {CHAPTERS}/*.yaml and location specs "
            f"in {LOCATIONS}/*.yaml (see samples/specs/README.md)"
        )
    inventory_file = root / INVENTORY
    inventory = load_inventory(inventory_file) if inventory_file.is_file() else None
    chapters = tuple(load_chapter(f) for f in chapter_files)
    locations = tuple(load_location(f) for f in location_files)
    _check_unique(chapters, locations)
    if inventory is None:
        listing = next((c for c in chapters if c.characters), None)
        if listing is not None:
            raise SpecError(
                f"{inventory_file}: not found, but {listing.file} lists characters; add the "
                "character inventory (see samples/specs/README.md)"
            )
        inventory = Inventory(inventory_file)
    for chapter in chapters:
        for entry in chapter.characters:
            _check_known(chapter, entry, inventory)
            for image_id in entry.reference_images:
                reference_image(chapter, entry, image_id, inventory, root)
    return Specs(root, chapters, locations, inventory)


def spec_files(folder: Path) -> list[Path]:
    """The ``*.yaml`` / ``*.yml`` files of ``folder`` sorted by name, dot files skipped."""
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.iterdir()
        if p.suffix in SUFFIXES and not p.name.startswith(".") and p.is_file()
    )


def load_chapter(file: Path) -> Chapter:
    """Read and validate one chapter imagery spec (on its own; see :func:`load_root`)."""
    return chapter_from(read_mapping(file), file)


def load_location(file: Path) -> Location:
    """Read and validate one location imagery spec."""
    return location_from(read_mapping(file), file)


def load_inventory(file: Path) -> Inventory:
    """Read and validate ``characters/character_imagery.yaml``."""
    return inventory_from(read_mapping(file), file)


def chapter_from(data: CommentedMap, file: Path) -> Chapter:
    top = Fields(file, data)
    slug = top.name("chapter", what="chapter slug (it names the output folder)")
    defaults = _defaults(top)
    characters: list[ChapterCharacter] = []
    for i, node in top.items("characters", what="character"):
        f = Fields(file, node, f"characters[{i}]")
        character_id = f.name("id", what="character id from the inventory")
        f.where = f"characters[{i}] '{character_id}'"
        earlier = next((c for c in characters if c.id == character_id), None)
        if earlier is not None:
            raise f.error("id", f"listed twice (also line {earlier.line})", "list it once")
        characters.append(ChapterCharacter(character_id, f.texts("reference_images"), f.line()))
    if "images" not in data:
        raise top.error("images", "is missing", "add images: with one item per image to generate")
    images: list[ChapterImage] = []
    for i, node in top.items("images", what="image"):
        images.append(_chapter_image(file, i, node, defaults, characters, images))
    return Chapter(
        file=file,
        slug=slug,
        title=top.text("title"),
        visual_thesis=top.text("visual_thesis"),
        palette=_palette(top),
        defaults=defaults,
        characters=tuple(characters),
        images=tuple(images),
    )


def _chapter_image(
    file: Path,
    index: int,
    node: CommentedMap,
    defaults: Defaults,
    characters: list[ChapterCharacter],
    earlier: list[ChapterImage],
) -> ChapterImage:
    f = Fields(file, node, f"images[{index}]")
    custom_id = f.name("custom_id", what="image id (it names the output file)")
    f.where = f"images[{index}] '{custom_id}'"
    twin = next((i for i in earlier if i.custom_id == custom_id), None)
    if twin is not None:
        raise f.error(
            "custom_id",
            f"duplicate of images[{twin.index}] (line {twin.line})",
            "give each image its own custom_id",
        )
    prompt = f.text("prompt_used", required=True, hint="add prompt_used: with the text to send")
    assert prompt is not None
    size = f.text("size")
    _check_size(f, size, defaults)
    known = [c.id for c in characters]
    depicts = f.texts("depicts_characters")
    for character_id in depicts:
        if character_id not in known:
            raise f.error(
                "depicts_characters",
                f"unknown character {character_id!r}",
                f"list it under characters: first (listed: {', '.join(known) or 'none'})",
            )
        if depicts.count(character_id) > 1:
            raise f.error("depicts_characters", f"{character_id!r} twice", "list it once")
    return ChapterImage(
        custom_id=custom_id,
        index=index,
        line=f.line(),
        prompt_used=prompt,
        negative_prompt=f.text("negative_prompt"),
        size=size,
        depicts_characters=depicts,
        character_states=_states(f, depicts),
        output=_generated(f),
        fingerprint=fingerprint(node, CHAPTER_PROMPT_FIELDS),
        output_fingerprint=fingerprint(node, OUTPUT_FIELDS),
    )


def _states(f: Fields, depicts: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    node = f.mapping("character_states")
    if node is None:
        return ()
    states = []
    inner = Fields(f.file, node, f"{f.where}, character_states")
    for key in node:
        if plain(key) not in depicts:
            raise inner.error(
                str(key),
                "not in depicts_characters",
                "add the character to depicts_characters or remove its state",
            )
        text = inner.described(str(key))
        if text is not None:
            states.append((str(key), text))
    return tuple(states)


def location_from(data: CommentedMap, file: Path) -> Location:
    top = Fields(file, data)
    slug = top.name("location", what="location slug (it names the output folder)")
    defaults = _defaults(top)
    items: list[LocationItem] = []
    overview = top.mapping("overview")
    if overview is not None:
        items.append(_location_item(Fields(file, overview, "overview"), ("overview",), defaults))
    for i, node in top.items("parts", what="part"):
        item = _location_item(Fields(file, node, f"parts[{i}]"), ("parts", i), defaults)
        twin = next((t for t in items if t.slug == item.slug), None)
        if twin is not None:
            raise Fields(file, node, f"parts[{i}]").error(
                "slug",
                f"{item.slug!r} is also the slug of line {twin.line}",
                "give the overview and each part its own slug",
            )
        items.append(item)
    if not items:
        raise top.error(None, "neither overview: nor parts: is given", "add at least one")
    return Location(
        file=file,
        slug=slug,
        name=top.text("name"),
        signature_elements=top.texts("signature_elements"),
        characteristic_light=top.text("characteristic_light"),
        defaults=defaults,
        overview=items[0] if overview is not None else None,
        parts=tuple(items[1:] if overview is not None else items),
    )


def _location_item(f: Fields, key: tuple[str | int, ...], defaults: Defaults) -> LocationItem:
    slug = f.name("slug", what="slug (it names the output file)")
    f.where = f"{f.where} '{slug}'"
    prompt = f.text("prompt_used", required=True, hint="add prompt_used: with the text to send")
    assert prompt is not None
    size = f.text("size")
    _check_size(f, size, defaults)
    generated = []
    for i, node in f.items("generated_images", what="generated image"):
        generated.append(_generated(Fields(f.file, node, f"{f.where}, generated_images[{i}]")))
    return LocationItem(
        slug=slug,
        key=key,
        line=f.line(),
        prompt_used=prompt,
        negative_prompt=f.text("negative_prompt"),
        size=size,
        generated_images=tuple(generated),
        fingerprint=fingerprint(f.node, LOCATION_PROMPT_FIELDS),
    )


def inventory_from(data: CommentedMap, file: Path) -> Inventory:
    top = Fields(file, data)
    if "characters" not in data:
        raise top.error("characters", "is missing", "add characters: with one item per character")
    characters: list[Character] = []
    for i, node in top.items("characters", what="character"):
        f = Fields(file, node, f"characters[{i}]")
        character_id = f.name("id", what="character id")
        f.where = f"characters[{i}] '{character_id}'"
        twin = next((c for c in characters if c.id == character_id), None)
        if twin is not None:
            raise f.error("id", f"duplicate of line {twin.line}", "give each character its own id")
        images: list[InventoryImage] = []
        for j, image_node in f.items("image_inventory", what="image"):
            g = Fields(file, image_node, f"{f.where}, image_inventory[{j}]")
            image_id = g.name("id", what="image id")
            g.where = f"{f.where}, image_inventory '{image_id}'"
            if any(image.id == image_id for image in images):
                raise g.error("id", "duplicate image id", "give each image its own id")
            path = g.text("path", required=True, hint="add path: relative to ROOT")
            status = g.text("status", required=True, hint="add status: approved (or candidate)")
            assert path is not None and status is not None
            images.append(InventoryImage(image_id, path, status, g.line()))
        characters.append(
            Character(
                id=character_id,
                name=f.text("name"),
                appearance=f.described("appearance"),
                image_inventory=tuple(images),
                line=f.line(),
            )
        )
    return Inventory(file, tuple(characters))


def _defaults(top: Fields) -> Defaults:
    node = top.mapping("defaults")
    if node is None:
        return Defaults()
    f = Fields(top.file, node, "defaults")
    defaults = Defaults(f.text("provider"), f.text("model"), f.text("quality"), f.text("size"))
    for field, size, quality in (
        ("quality", None, defaults.quality),
        ("size", defaults.size, None),
    ):
        try:
            image_size(size, quality)
        except SizeError as exc:
            raise f.error(field, str(exc), "see the size table in samples/specs/README.md") from exc
    return defaults


def _check_size(f: Fields, size: str | None, defaults: Defaults) -> None:
    try:
        image_size(size or defaults.size, defaults.quality)
    except SizeError as exc:
        raise f.error("size", str(exc), "see the size table in samples/specs/README.md") from exc


def _palette(top: Fields) -> tuple[str, ...]:
    value = top.raw("palette")
    if isinstance(value, CommentedMap):
        return tuple(f"{k}: {_flat(v)}" for k, v in value.items() if not is_null(v))
    if isinstance(value, CommentedSeq):
        out = []
        for i, entry in enumerate(value):
            if isinstance(entry, CommentedMap):
                out.append("; ".join(f"{k}: {_flat(v)}" for k, v in entry.items()))
            elif isinstance(entry, str) and entry.strip():
                out.append(" ".join(entry.split()))
            else:
                raise top.error("palette", f"entry {i} is {kind_of(entry)}", "use text entries")
        return tuple(out)
    if is_null(value):
        return ()
    return top.texts("palette")  # raises with the type it found


def _flat(value: Any) -> str:
    if isinstance(value, CommentedSeq):
        return ", ".join(" ".join(str(v).split()) for v in value)
    return " ".join(str(plain(value)).split())


def _generated(f: Fields) -> Generated:
    metadata = f.mapping("provider_metadata")
    return Generated(
        generated_at=f.output_text("generated_at"),
        file_name=f.output_text("file_name"),
        file_path=f.output_text("file_path"),
        provider=f.output_text("provider"),
        model=f.output_text("model"),
        provider_metadata=plain(metadata) if metadata is not None else None,
    )


def _check_unique(chapters: tuple[Chapter, ...], locations: tuple[Location, ...]) -> None:
    slugs: dict[str, Chapter] = {}
    ids: dict[str, tuple[Chapter, ChapterImage]] = {}
    for chapter in chapters:
        if chapter.slug in slugs:
            raise SpecError(
                f"{chapter.file}: field chapter: {chapter.slug!r} is also the slug of "
                f"{slugs[chapter.slug].file}; give each chapter its own slug"
            )
        slugs[chapter.slug] = chapter
        for image in chapter.images:
            if image.custom_id in ids:
                other, twin = ids[image.custom_id]
                raise SpecError(
                    f"{chapter.file}:{image.line}: images[{image.index}] '{image.custom_id}', "
                    f"field custom_id: also used in {other.file}:{twin.line}; custom_id must be "
                    "unique under ROOT (it is the task id)"
                )
            ids[image.custom_id] = (chapter, image)
    places: dict[str, Location] = {}
    for location in locations:
        if location.slug in places:
            raise SpecError(
                f"{location.file}: field location: {location.slug!r} is also the slug of "
                f"{places[location.slug].file}; give each location its own slug"
            )
        places[location.slug] = location


def _check_known(chapter: Chapter, entry: ChapterCharacter, inventory: Inventory) -> None:
    if inventory.get(entry.id) is None:
        known = ", ".join(c.id for c in inventory.characters) or "none"
        raise SpecError(
            f"{chapter.file}:{entry.line}: characters '{entry.id}', field id: unknown character "
            f"{entry.id!r}; use an id from {inventory.file} (known: {known})"
        )

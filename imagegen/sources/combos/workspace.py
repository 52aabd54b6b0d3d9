"""The user's workspace: combo folders of reference images and catalogs of prompt files.

Layout (seed 003, "Input Sources"; formats in ``combos/README.md`` and ``catalogs/README.md``)::

    {combos_root}/wardrobes.toml                                  CLI name -> combo folder
    {combos_root}/{Wardrobe}_combo/{Style}_UI_Combos/{combo_id}/  {role}.png|jpg|webp, wardrobe.txt
    {catalogs_root}/catalog_v{X.Y}/{prompt_id}.md                 optional front matter + prompt

Every function here reads files and returns frozen values; bad input raises
:class:`imagegen.errors.InputError` naming the file or value and the fix.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ...errors import InputError

ALIAS_FILE = "wardrobes.toml"
DESCRIPTION_FILE = "wardrobe.txt"
STYLE_SUFFIX = "_UI_Combos"
CATALOG_PREFIX = "catalog_"
# Seed 003, "Combo-Driven Pose Rule": the combo folder is the source of truth; roles are sent in
# this order, unknown roles after them alphabetically. (The provider's reference limit is
# checked when the jobs are planned.)
ROLE_ORDER = ("wardrobe", "bottom", "product", "pose", "ui")
# generateContent takes at most 20 MB inline (ai.google.dev, "Image understanding"); base64
# makes bytes 4/3 larger, and the prompt needs room too. Larger combos are refused, not
# silently downscaled: the user decides how their references are resized.
MAX_INLINE_BYTES = 14_000_000


@dataclass(frozen=True, slots=True)
class ReferenceFile:
    """A reference image of a combo: its role (the file stem) and path."""

    role: str
    path: Path


@dataclass(frozen=True, slots=True)
class Combo:
    """One combo folder. ``wardrobe`` is the name the user selected it by (e.g. "zip-hoodie")."""

    wardrobe: str
    ui_style: str
    combo_id: str
    path: Path
    references: tuple[ReferenceFile, ...]
    description: str


@dataclass(frozen=True, slots=True)
class Prompt:
    """One catalog prompt file. ``catalog`` is the short version ("v3.2").

    ``wardrobes`` empty means the prompt applies to every wardrobe; ``aspect`` overrides --aspect.
    """

    catalog: str
    prompt_id: str
    path: Path
    text: str
    wardrobes: tuple[str, ...]
    aspect: str | None
    notes: str | None

    @property
    def short_id(self) -> str:
        """The part of the prompt id before the first ``_`` ("ZH01")."""
        return self.prompt_id.split("_", 1)[0]

    @property
    def file(self) -> str:
        """Path relative to the catalogs root, as the user names it ("catalog_v3.2/ZH01_x.md")."""
        return f"{CATALOG_PREFIX}{self.catalog}/{self.path.name}"


def _unknown(what: str, value: str, known: Iterable[str], fix: str) -> InputError:
    known = sorted(known)
    close = difflib.get_close_matches(value, known, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    listing = ", ".join(known) if known else "none"
    return InputError(f"unknown {what} {value!r}: {hint}{fix} (available: {listing})")


def _check_name(what: str, value: str) -> str:
    if (
        not value
        or value in {".", ".."}
        or any(c in value for c in "/\\")
        or any(ord(c) < 32 or ord(c) == 127 for c in value)
    ):
        raise InputError(
            f"{what} {value!r} is not a plain name: no path separators, '..' or control characters"
        )
    return value


def wardrobe_aliases(combos_root: Path) -> dict[str, str]:
    """The alias file's ``[wardrobes]`` table: CLI name -> combo folder name ({} if absent)."""
    path = combos_root / ALIAS_FILE
    if not path.is_file():
        return {}
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8")).get("wardrobes", {})
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid TOML ({exc}); fix the file") from exc
    if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
        raise InputError(f'{path}: [wardrobes] must map names to folder names (name = "folder")')
    return dict(table)


def resolve_wardrobe(combos_root: Path, name: str) -> Path:
    """The combo folder of wardrobe ``name``, through the alias file or by folder name."""
    _check_name("wardrobe", name)
    if not combos_root.is_dir():
        raise InputError(f"combos root {combos_root} does not exist; pass --combos-root")
    aliases = wardrobe_aliases(combos_root)
    folder = combos_root / aliases.get(name, name)
    if not folder.is_dir():
        folders = [p.name for p in combos_root.iterdir() if p.is_dir()]
        raise _unknown(
            "wardrobe", name, [*aliases, *folders], f"add it to {combos_root / ALIAS_FILE}"
        )
    return folder


def ui_styles(wardrobe_dir: Path) -> list[str]:
    """UI styles of a wardrobe folder: the ``{Style}`` of each ``{Style}_UI_Combos`` subfolder."""
    return sorted(
        p.name.removesuffix(STYLE_SUFFIX)
        for p in wardrobe_dir.iterdir()
        if p.is_dir() and p.name.endswith(STYLE_SUFFIX)
    )


def _role_key(ref: ReferenceFile) -> tuple[int, str]:
    order = ROLE_ORDER.index(ref.role) if ref.role in ROLE_ORDER else len(ROLE_ORDER)
    return order, ref.role


def _aspect(path: Path, value: str) -> str:
    width, _, height = value.partition(":")
    if not (width.isdigit() and height.isdigit() and int(width) and int(height)):
        raise InputError(f"{path}: front matter aspect {value!r} is not a ratio like 4:5")
    return value


def load_combo(wardrobe: str, ui_style: str, path: Path) -> Combo:
    """Read one combo folder: its reference images in role order and its wardrobe description."""
    # Here, not at the top: every command builds the combos options, few plan (Pillow, PyYAML).
    from ...references import IMAGE_EXTENSIONS, check_reference

    # A dangling link with an image name is an error, not a silently missing garment.
    refs = [
        ReferenceFile(p.stem.lower(), p)
        for p in sorted(path.iterdir())
        if (p.is_file() or p.is_symlink())
        and p.suffix.lower() in IMAGE_EXTENSIONS
        and not p.name.startswith(".")
    ]
    if not refs:
        raise InputError(
            f"{path}: combo has no reference images; add {', '.join(IMAGE_EXTENSIONS)} files"
        )
    total = 0
    for ref in refs:
        check_reference(ref.path)
        total += ref.path.stat().st_size
    if total > MAX_INLINE_BYTES:
        raise InputError(
            f"{path}: reference images total {total / 1e6:.1f} MB, over the "
            f"{MAX_INLINE_BYTES / 1e6:.0f} MB that fit in one request; downscale them "
            "(2048 px on the long side is plenty)"
        )
    description_file = path / DESCRIPTION_FILE
    description = _read_text(description_file).strip() if description_file.is_file() else wardrobe
    return Combo(
        wardrobe, ui_style, path.name, path, tuple(sorted(refs, key=_role_key)), description
    )


def load_combos(
    combos_root: Path,
    wardrobe: str,
    styles: Sequence[str] | None = None,
    combo_ids: Sequence[str] | None = None,
) -> list[Combo]:
    """The selected combos of one wardrobe, ordered by UI style then combo id.

    ``styles`` None means every style; ``combo_ids`` None means every combo of those styles.
    """
    wardrobe_dir = resolve_wardrobe(combos_root, wardrobe)
    available = ui_styles(wardrobe_dir)
    chosen = list(styles) if styles else available
    for style in chosen:
        _check_name("UI style", style)
        if style not in available:
            raise _unknown("UI style", style, available, f"check --ui-style for {wardrobe}")
    folders = {
        p.name: (style, p)
        for style in chosen
        for p in sorted((wardrobe_dir / f"{style}{STYLE_SUFFIX}").iterdir())
        if p.is_dir() and not p.name.startswith(".")
    }
    wanted = list(combo_ids) if combo_ids else sorted(folders, key=lambda c: (folders[c][0], c))
    for combo_id in wanted:
        _check_name("combo", combo_id)
        if combo_id not in folders:
            raise _unknown("combo", combo_id, folders, f"check --combos for {wardrobe}")
    return [load_combo(wardrobe, folders[c][0], folders[c][1]) for c in wanted]


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    if b"\x00" in data:
        raise InputError(f"{path}: binary file, expected UTF-8 text; replace it with a text file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 ({exc.reason}); re-save it as UTF-8") from exc


def _split_front_matter(path: Path, text: str) -> tuple[dict[str, object], str]:
    if not text.startswith("---"):
        return {}, text
    parts = text.split("\n---", 1)
    if len(parts) != 2:
        raise InputError(
            f"{path}: front matter opened with '---' is never closed; add a '---' line"
        )
    head, body = parts[0][3:], parts[1].split("\n", 1)[1] if "\n" in parts[1] else ""
    import yaml  # see load_combo

    try:
        # BaseLoader keeps every scalar a string: YAML 1.1 would read "aspect: 4:5" as 245.
        meta = yaml.load(head, Loader=yaml.BaseLoader) or {}
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: front matter is not valid YAML; fix it ({exc})") from exc
    if not isinstance(meta, dict):
        raise InputError(f"{path}: front matter must be 'key: value' lines")
    return meta, body


def load_prompt(catalog: str, path: Path) -> Prompt:
    """Parse one prompt file; raises InputError if empty, binary, not UTF-8 or malformed."""
    _check_name("prompt", path.stem)
    meta, body = _split_front_matter(path, _read_text(path))
    body = body.strip()
    if not body:
        raise InputError(f"{path}: prompt is empty; write the prompt below the front matter")
    wardrobes = meta.get("wardrobe", ())
    if isinstance(wardrobes, str):
        wardrobes = (wardrobes,)
    if not isinstance(wardrobes, list | tuple) or not all(isinstance(w, str) for w in wardrobes):
        raise InputError(f"{path}: 'wardrobe' must be a name or a list of names")
    aspect = meta.get("aspect")
    if aspect is not None:
        aspect = _aspect(path, str(aspect))
    notes = meta.get("notes")
    return Prompt(
        catalog,
        path.stem,
        path,
        body,
        tuple(wardrobes),
        aspect,
        None if notes is None else str(notes),
    )


def catalog_dir(catalogs_root: Path, name: str) -> tuple[str, Path]:
    """Resolve "v3.2", "3.2" or "catalog_v3.2" to ("v3.2", folder)."""
    _check_name("catalog", name)
    short = name.removeprefix(CATALOG_PREFIX)
    if not short.startswith("v"):
        short = "v" + short
    folder = catalogs_root / f"{CATALOG_PREFIX}{short}"
    if not folder.is_dir():
        if not catalogs_root.is_dir():
            raise InputError(f"catalogs root {catalogs_root} does not exist; pass --catalogs-root")
        known = [
            p.name.removeprefix(CATALOG_PREFIX)
            for p in catalogs_root.iterdir()
            if p.is_dir() and p.name.startswith(CATALOG_PREFIX)
        ]
        raise _unknown("catalog", name, known, "check --catalogs")
    return short, folder


def load_catalog(catalogs_root: Path, name: str) -> list[Prompt]:
    """Every prompt of a catalog, sorted by prompt id; raises InputError if it has none."""
    short, folder = catalog_dir(catalogs_root, name)
    prompts = [load_prompt(short, p) for p in sorted(folder.glob("*.md")) if p.is_file()]
    if not prompts:
        raise InputError(f"{folder}: catalog has no prompt files; add one .md file per prompt")
    return prompts


def select_prompts(prompts: Sequence[Prompt], wanted: Sequence[str] | None) -> list[Prompt]:
    """Keep the prompts named in ``wanted`` (prompt id, short id, or catalog/file), in order."""
    if not wanted:
        return list(prompts)
    chosen: list[Prompt] = []
    for name in wanted:
        key = name.removesuffix(".md").rsplit("/", 1)[-1]
        hits = [p for p in prompts if key in (p.prompt_id, p.short_id)]
        if "/" in name:
            hits = [p for p in hits if p.file == (name if name.endswith(".md") else name + ".md")]
        if not hits:
            raise _unknown("prompt", name, [p.prompt_id for p in prompts], "check --prompts")
        chosen.extend(h for h in hits if h not in chosen)
    return chosen

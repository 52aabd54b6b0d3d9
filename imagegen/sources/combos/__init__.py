"""The core workflow's source (seed 003): combo folders x catalog prompts -> jobs.

Rules from seed 003: "Build Job Queue" (the cross product, ids 001, 002, ...), "Prompt
construction", and "Output Organization" (``{output}/{wardrobe}/{catalog}/{prompt_id}/
{ui_style}/{combo_id}/{timestamp}-{prompt short id}-{quality}.png``). One job per distinct
image: a catalog, combo or wardrobe named twice (``v3.2,3.2``, an alias and its folder) is
planned once. The workspace layout is in :mod:`.workspace`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ...errors import InputError
from ...model import JSON, QUALITY_FIELD, TIME_FIELD, Job, JobState
from .. import Plan, RunDefaults
from .workspace import (
    Combo,
    Prompt,
    catalog_dir,
    load_catalog,
    load_combos,
    resolve_wardrobe,
    select_prompts,
)

# What each role's reference image shows, for the prompt's reference list.
ROLE_NOTES = {
    "wardrobe": "the garment the model must wear",
    "bottom": "the bottoms to pair with it",
    "product": "the product to show",
    "pose": "the model's pose and framing",
    "ui": "UI layout, composition, background, lighting",
}


def _csv(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


@dataclass(frozen=True, slots=True)
class Selection:
    """What the user asked for (locations are paths as given)."""

    wardrobes: tuple[str, ...]
    catalogs: tuple[str, ...]
    ui_styles: tuple[str, ...] = ()
    combos: tuple[str, ...] = ()
    prompts: tuple[str, ...] = ()
    combos_root: Path = Path("combos")
    catalogs_root: Path = Path("catalogs")
    output: Path = Path("Result_images")


def prompt_suffix(combo: Combo) -> str:
    """What follows the catalog prompt (seed 003, "Prompt construction"): the reference list,
    what to keep, and the wardrobe to put on the model."""
    refs = "\n".join(
        f"{i}. {ref.role}: {ROLE_NOTES.get(ref.role, ref.role)}"
        for i, ref in enumerate(combo.references, 1)
    )
    return (
        f"\n\nReference images, in order:\n{refs}\n"
        "Reference image shows: UI layout, composition, background, lighting.\n"
        "Keep exact: layout structure, text positions, color scheme, typography style.\n"
        f"Replace model wardrobe with: {combo.description}"
    )


def build_prompt(prompt: Prompt, combo: Combo) -> str:
    """The whole text sent with the reference images."""
    return prompt.text + prompt_suffix(combo)


def output_dir(output: Path, combo: Combo, prompt: Prompt) -> Path:
    """``{output}/{wardrobe}/{catalog}/{prompt_id}/{ui_style}/{combo_id}`` (seed 003)."""
    return (
        output
        / combo.wardrobe
        / prompt.catalog
        / prompt.prompt_id
        / combo.ui_style
        / combo.combo_id
    )


def applies(prompt: Prompt, wardrobe: str) -> bool:
    """A prompt whose front matter names wardrobes applies only to those."""
    return not prompt.wardrobes or wardrobe in prompt.wardrobes


def _distinct_catalogs(root: Path, names: Sequence[str]) -> list[str]:
    seen: dict[str, str] = {}
    for name in names:
        short, _folder = catalog_dir(root, name)
        seen.setdefault(short, name)
    return list(seen)


def _distinct_wardrobes(root: Path, names: Sequence[str]) -> list[str]:
    seen: dict[Path, str] = {}
    for name in names:
        seen.setdefault(resolve_wardrobe(root, name).resolve(), name)
    return list(seen.values())


def plan_jobs(selection: Selection, defaults: RunDefaults) -> list[Job]:
    """The job queue: for each wardrobe, combo (style, id order), catalog and prompt, one job.

    Raises InputError for any unknown name, bad file or an empty result.
    """
    if not selection.wardrobes:
        raise InputError("--wardrobe is required (e.g. --wardrobe zip-hoodie)")
    if not selection.catalogs:
        raise InputError('--catalogs is required (e.g. --catalogs "v3.2,v4.2")')
    prompts: list[Prompt] = []
    for catalog in _distinct_catalogs(selection.catalogs_root, selection.catalogs):
        prompts.extend(load_catalog(selection.catalogs_root, catalog))
    prompts = select_prompts(prompts, selection.prompts or None)
    wardrobes = _distinct_wardrobes(selection.combos_root, selection.wardrobes)
    combo_ids = tuple(dict.fromkeys(selection.combos))
    pairs: list[tuple[Combo, Prompt]] = []
    for wardrobe in wardrobes:
        for combo in load_combos(
            selection.combos_root, wardrobe, selection.ui_styles or None, combo_ids or None
        ):
            pairs.extend((combo, p) for p in prompts if applies(p, wardrobe))
    if not pairs:
        raise InputError(
            "no jobs: none of the selected prompts applies to wardrobe "
            f"{', '.join(selection.wardrobes)} (see their 'wardrobe:' front matter)"
        )
    several = len(wardrobes) > 1
    return [
        _job(n, combo, prompt, selection.output, defaults, several)
        for n, (combo, prompt) in enumerate(pairs, 1)
    ]


def _job(
    number: int, combo: Combo, prompt: Prompt, output: Path, d: RunDefaults, several: bool
) -> Job:
    column = f"{combo.combo_id} · {combo.wardrobe}" if several else combo.combo_id
    folder = output_dir(output, combo, prompt)
    return Job(
        id=f"{number:03d}",
        source="combos",
        title=f"{prompt.prompt_id} + {combo.combo_id}",
        group=(f"{prompt.catalog} · {combo.ui_style}", prompt.prompt_id, column),
        prompt_file=prompt.file,
        prompt_parts=(prompt.text, prompt_suffix(combo)),
        references=tuple(str(r.path.resolve()) for r in combo.references),
        target=f"{folder}/{TIME_FIELD}-{prompt.short_id}-{QUALITY_FIELD}.png",
        quality=d.quality,
        aspect=prompt.aspect or d.aspect,
        model=d.model,
        provider=d.provider.name,
        labels=(
            ("combo", combo.combo_id),
            ("wardrobe", combo.wardrobe),
            ("ui_style", combo.ui_style),
            ("catalog", prompt.catalog),
            ("prompt_id", prompt.prompt_id),
            ("short_id", prompt.short_id),
        ),
    )


def describe(jobs: Sequence[Job]) -> str:
    """One line summary: "36 jobs: 6 combos x 6 prompts"."""
    combos = {(j.label("wardrobe"), j.label("ui_style"), j.label("combo")) for j in jobs}
    prompts = {j.prompt_file for j in jobs}
    return f"{len(jobs)} jobs: {len(combos)} combos x {len(prompts)} prompts"


class CombosSource:
    """``image-gen.sh --wardrobe W --catalogs V`` (also ``image-gen.sh combos ...``)."""

    name = "combos"
    help = "combo folders x catalog prompts (seed 003; the default form)"
    after_save = None
    after_run = None

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        sel = parser.add_argument_group("what to generate (combos x catalogs)")
        sel.add_argument(
            "--wardrobe", type=_csv, default=(), help="wardrobe name(s), comma separated"
        )
        sel.add_argument(
            "--ui-style", type=_csv, default=(), help="UI style(s), e.g. Orange; default all"
        )
        sel.add_argument("--catalogs", type=_csv, default=(), help='catalogs, e.g. "v3.2,v4.2"')
        sel.add_argument("--combos", type=_csv, default=(), help="only these combo ids")
        sel.add_argument(
            "--prompts", type=_csv, default=(), help="only these prompt ids or short ids"
        )
        sel.add_argument(
            "--single",
            action="store_true",
            help="one image: --combo ID --prompt catalog_vX.Y/FILE.md --wardrobe W",
        )
        sel.add_argument("--combo", help="with --single: the combo id")
        sel.add_argument("--prompt", help="with --single: the prompt file, catalog_vX.Y/NAME.md")
        loc = parser.add_argument_group("workspace (relative to the working directory)")
        loc.add_argument("--combos-root", type=Path, default=Path("combos"))
        loc.add_argument("--catalogs-root", type=Path, default=Path("catalogs"))
        loc.add_argument("--output", type=Path, default=Path("Result_images"), help="image root")

    def selection(self, args: argparse.Namespace) -> Selection:
        if args.single:
            if not (args.combo and args.prompt and args.wardrobe):
                raise InputError(
                    "--single needs --combo ID --prompt catalog_vX.Y/NAME.md --wardrobe W"
                )
            if "/" not in args.prompt:
                raise InputError(f"--prompt {args.prompt!r}: give it as catalog_vX.Y/NAME.md")
            catalog = args.prompt.split("/", 1)[0]
            return Selection(
                args.wardrobe[:1],
                (catalog,),
                args.ui_style,
                (args.combo,),
                (args.prompt,),
                args.combos_root,
                args.catalogs_root,
                args.output,
            )
        return Selection(
            args.wardrobe,
            args.catalogs,
            args.ui_style,
            args.combos,
            args.prompts,
            args.combos_root,
            args.catalogs_root,
            args.output,
        )

    def plan(self, args: argparse.Namespace, defaults: RunDefaults) -> Plan:
        selection = self.selection(args)
        jobs = plan_jobs(selection, defaults)
        config: dict[str, JSON] = {
            "wardrobe": ",".join(selection.wardrobes),
            "catalogs": list(selection.catalogs),
            "ui_style": ",".join(selection.ui_styles) or None,
            "combos": list(selection.combos),
            "prompts": list(selection.prompts),
            "combos_root": str(selection.combos_root),
            "catalogs_root": str(selection.catalogs_root),
            "output": str(selection.output),
        }
        catalogs = ", ".join(dict.fromkeys(j.label("catalog") for j in jobs))
        return Plan(
            jobs=tuple(JobState(job) for job in jobs),
            config=config,
            header=(
                f"Wardrobe: {config['wardrobe']} | UI: {config['ui_style'] or 'all'} | "
                f"Quality: {defaults.quality}",
                f"Catalogs: {catalogs}",
            ),
            facts=(
                ("wardrobe", str(config["wardrobe"])),
                ("UI style", str(config["ui_style"] or "all")),
                ("catalogs", catalogs),
            ),
            describe=describe(jobs),
        )


SOURCE = CombosSource()

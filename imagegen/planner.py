"""Planning: combos x prompts -> an ordered job queue, each job's prompt text and output folder.

Pure apart from reading the workspace through :mod:`imagegen.workspace`. Rules from seed 003:
"Build Job Queue" (cross product, ids 001, 002, ...), "Prompt construction", and "Output
Organization" (``{output}/{wardrobe}/{catalog}/{prompt_id}/{ui_style}/{combo_id}/``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .errors import InputError
from .sizes import validate_aspect, validate_quality
from .workspace import (
    MAX_REFERENCES,
    Combo,
    Prompt,
    load_catalog,
    load_combos,
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


@dataclass(frozen=True, slots=True)
class PlanRequest:
    """What the user asked for on the command line (locations are paths as given)."""

    wardrobes: tuple[str, ...]
    catalogs: tuple[str, ...]
    ui_styles: tuple[str, ...] = ()
    combos: tuple[str, ...] = ()
    prompts: tuple[str, ...] = ()
    quality: str = "1K"
    aspect: str = "1:1"
    model: str = "gemini-3-pro-image"
    combos_root: Path = Path("combos")
    catalogs_root: Path = Path("catalogs")
    output: Path = Path("Result_images")


@dataclass(frozen=True, slots=True)
class Job:
    """One image to generate. ``references`` are absolute paths in the order they are sent;
    ``output_dir`` is the folder the image lands in (the file name is fixed at save time)."""

    id: str
    wardrobe: str
    ui_style: str
    combo: str
    catalog: str
    prompt_id: str
    short_id: str
    prompt_file: str
    prompt: str
    references: tuple[str, ...]
    quality: str
    aspect: str
    model: str
    output_dir: str


def build_prompt(prompt: Prompt, combo: Combo) -> str:
    """The text sent with the reference images (seed 003, "Prompt construction")."""
    refs = "\n".join(
        f"{i}. {ref.role}: {ROLE_NOTES.get(ref.role, ref.role)}"
        for i, ref in enumerate(combo.references, 1)
    )
    return (
        f"{prompt.text}\n\n"
        f"Reference images, in order:\n{refs}\n"
        "Reference image shows: UI layout, composition, background, lighting.\n"
        "Keep exact: layout structure, text positions, color scheme, typography style.\n"
        f"Replace model wardrobe with: {combo.description}"
    )


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


def output_name(job: Job, when: datetime, extension: str) -> str:
    """``{timestamp}-{short_prompt_id}-{quality}{ext}``: ``2025-01-15-14-30-22-ZH01-1K.png``."""
    return f"{when:%Y-%m-%d-%H-%M-%S}-{job.short_id}-{job.quality}{extension}"


def applies(prompt: Prompt, wardrobe: str) -> bool:
    """A prompt whose front matter names wardrobes applies only to those."""
    return not prompt.wardrobes or wardrobe in prompt.wardrobes


def plan(request: PlanRequest) -> list[Job]:
    """The job queue: for each wardrobe, combo (style, id order), catalog and prompt, one job.

    Raises InputError for any unknown name, bad file or an empty result.
    """
    validate_quality(request.quality)
    validate_aspect(request.aspect)
    prompts: list[Prompt] = []
    for catalog in request.catalogs:
        prompts.extend(load_catalog(request.catalogs_root, catalog))
    prompts = select_prompts(prompts, request.prompts or None)
    jobs: list[Job] = []
    for wardrobe in request.wardrobes:
        combos = load_combos(
            request.combos_root, wardrobe, request.ui_styles or None, request.combos or None
        )
        for combo in combos:
            for prompt in prompts:
                if applies(prompt, wardrobe):
                    jobs.append(_job(len(jobs) + 1, request, combo, prompt))
    if not jobs:
        raise InputError(
            "no jobs: none of the selected prompts applies to wardrobe "
            f"{', '.join(request.wardrobes)} (see their 'wardrobe:' front matter)"
        )
    return jobs


def _job(number: int, request: PlanRequest, combo: Combo, prompt: Prompt) -> Job:
    return Job(
        id=f"{number:03d}",
        wardrobe=combo.wardrobe,
        ui_style=combo.ui_style,
        combo=combo.combo_id,
        catalog=prompt.catalog,
        prompt_id=prompt.prompt_id,
        short_id=prompt.short_id,
        prompt_file=prompt.file,
        prompt=build_prompt(prompt, combo),
        references=tuple(str(r.path.resolve()) for r in combo.references),
        quality=request.quality,
        aspect=prompt.aspect or request.aspect,
        model=request.model,
        output_dir=str(output_dir(request.output, combo, prompt)),
    )


def describe(jobs: Sequence[Job]) -> str:
    """One line summary: "36 jobs: 6 combos x 6 prompts"."""
    combos = {(j.wardrobe, j.ui_style, j.combo) for j in jobs}
    prompts = {j.prompt_file for j in jobs}
    return f"{len(jobs)} jobs: {len(combos)} combos x {len(prompts)} prompts"


UPGRADE_INSTRUCTION = (
    "The first reference image is the accepted result of this brief at {old}. Reproduce that "
    "image at {new} resolution: keep its composition, framing, pose, colours, text and every "
    "detail exactly; add resolution and fine detail only, do not redesign it."
)


def upgrade_jobs(parent_jobs: Sequence[dict[str, Any]], to_quality: str) -> list[Job]:
    """One job per completed parent job at ``to_quality`` (issue 3, "--upgrade").

    Regeneration is not deterministic, so each job sends the accepted image first, then the
    combo's references (at most 14 in all), with an instruction to reproduce it. Outputs land
    in the parent's folders, named with the new quality. Raises InputError if none completed.
    """
    validate_quality(to_quality)
    done = [j for j in parent_jobs if j["status"] == "completed" and j["output"]]
    if not done:
        raise InputError("the session has no completed jobs to upgrade")
    return [
        Job(
            id=f"{n:03d}",
            wardrobe=j["wardrobe"],
            ui_style=j["ui_style"],
            combo=j["combo"],
            catalog=j["catalog"],
            prompt_id=j["prompt_id"],
            short_id=j["short_id"],
            prompt_file=j["prompt_file"],
            prompt=j["prompt"]
            + "\n\n"
            + UPGRADE_INSTRUCTION.format(old=j["quality"], new=to_quality),
            references=(str(Path(j["output"]).resolve()), *j["references"])[:MAX_REFERENCES],
            quality=to_quality,
            aspect=j["aspect"],
            model=j["model"],
            output_dir=j["output_dir"],
        )
        for n, j in enumerate(done, 1)
    ]

"""The shot-folder source (seed 000): every ``shots/*/prompt.json`` becomes ``image.png`` beside it.

Layout (seed 000, "Output Structure Reference")::

    {shots_root}/{exercise}/shots/{shot}/prompt.json   engineered_prompt, anchor_image, ...
    {shots_root}/{exercise}/shots/{shot}/image.png      the image this source writes

A shot folder may sit deeper (``shots/part-1/01-intro/``); folders without ``prompt.json`` are
ignored. Jobs are ordered by exercise, then by shot folder path. The prompt is the file's
``engineered_prompt``; its ``anchor_image`` (a path relative to the working directory, as in the
seed, or to the shot folder when that is where it resolves, or absolute) is the one reference
image. The other fields of ``prompt.json`` are kept in the journal. ``aspect_ratio`` (or
``aspect``) in the file overrides ``--aspect``.

A shot whose ``image.png`` exists is skipped (no call, no cost), as the seed asks; ``--force``
makes it again and keeps the old file beside the new one (``image.replaced-TIME.png``). Every
``prompt.json`` is read and checked before anything is paid: a malformed one is one line naming
the file (exit 2).
"""

from __future__ import annotations

import argparse
import codecs
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from ..errors import InputError
from ..model import JSON, Job, JobState
from ..references import check_reference
from . import Plan, RunDefaults

PROMPT_FILE = "prompt.json"
IMAGE_FILE = "image.png"
DEFAULT_ROOT = Path("output/video-scripts")


def _exercises(root: Path, names: Sequence[str], every: bool) -> list[Path]:
    if not root.is_dir():
        raise InputError(f"shots root {root} does not exist; pass --shots-root DIR")
    if every:
        found = sorted(p for p in root.iterdir() if (p / "shots").is_dir())
        if not found:
            raise InputError(f"{root}: no exercise folder with a shots/ folder in it")
        return found
    if not names:
        raise InputError("name the exercise(s) to generate, or pass --all")
    out = []
    for name in dict.fromkeys(names):
        if not name or "/" in name or "\\" in name or name in (".", ".."):
            raise InputError(f"exercise {name!r} is not a folder name under {root}")
        folder = root / name
        if not (folder / "shots").is_dir():
            known = sorted(p.name for p in root.iterdir() if (p / "shots").is_dir())
            raise InputError(
                f"{folder}: no shots/ folder; exercises under {root}: {', '.join(known) or 'none'}"
            )
        out.append(folder)
    return out


def _anchor(value: Any, prompt_file: Path) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{prompt_file}: 'anchor_image' must be a path to an image; add it")
    given = Path(value.strip()).expanduser()
    candidates = (
        [given] if given.is_absolute() else [Path.cwd() / given, prompt_file.parent / given]
    )
    for path in candidates:
        if path.exists() or path.is_symlink():
            try:
                check_reference(path)
            except InputError as exc:
                raise InputError(f"{prompt_file}: anchor_image {value!r}: {exc}") from exc
            return path.resolve()
    raise InputError(
        f"{prompt_file}: anchor_image {value!r} not found (looked in the working directory "
        f"and beside {PROMPT_FILE}); fix the path"
    )


def read_prompt_file(path: Path) -> dict[str, Any]:
    """A shot's ``prompt.json`` as an object; InputError naming the file if it is not JSON,
    not an object, or has no text ``engineered_prompt``."""
    try:
        # A byte order mark (Windows editors write one) is not part of the JSON.
        data = orjson.loads(path.read_bytes().removeprefix(codecs.BOM_UTF8))
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror})") from exc
    except orjson.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc}); fix the file") from exc
    if not isinstance(data, dict):
        raise InputError(f"{path}: must be a JSON object with engineered_prompt and anchor_image")
    prompt = data.get("engineered_prompt")
    if prompt is not None and not isinstance(prompt, str):
        raise InputError(
            f"{path}: 'engineered_prompt' must be text, not {type(prompt).__name__} "
            f"{str(prompt)[:40]!r}; put the prompt in quotes"
        )
    if not prompt or not prompt.strip():
        raise InputError(f"{path}: 'engineered_prompt' is missing or empty; add the prompt text")
    return data


def _aspect(data: dict[str, Any], path: Path, default: str) -> str:
    value = data.get("aspect_ratio", data.get("aspect"))
    if value is None:
        return default
    text = str(value)
    width, _, height = text.partition(":")
    if not (width.isdigit() and height.isdigit()):
        raise InputError(f"{path}: aspect_ratio {text!r} is not a ratio like 16:9")
    return text


def plan_shots(
    root: Path, names: Sequence[str], every: bool, force: bool, defaults: RunDefaults
) -> list[JobState]:
    """One job per shot folder with a ``prompt.json``; shots with an ``image.png`` start as
    ``skipped`` unless ``force``. Raises InputError for any malformed file."""
    states: list[JobState] = []
    for exercise in _exercises(root, names, every):
        shots = exercise / "shots"
        prompt_files = sorted(
            shots.rglob(PROMPT_FILE), key=lambda p: p.parent.relative_to(shots).parts
        )
        for prompt_file in prompt_files:
            if not prompt_file.is_file() or prompt_file.parent == shots:
                continue
            data = read_prompt_file(prompt_file)
            anchor = _anchor(data.get("anchor_image"), prompt_file)
            folder = prompt_file.parent
            shot = folder.relative_to(shots).as_posix()
            image = folder / IMAGE_FILE
            exists = image.exists() or image.is_symlink()
            if exists and image.is_dir():
                raise InputError(f"{image}: a folder is where the image should go; move it")
            kept = {k: v for k, v in data.items() if k != "engineered_prompt"}
            job = Job(
                id=f"{len(states) + 1:03d}",
                source="shots",
                title=f"{exercise.name}/{shot}",
                group=(exercise.name, "shots", shot),
                prompt_file=str(prompt_file),
                prompt_parts=(data["engineered_prompt"],),
                references=(str(anchor),),
                target=str(image),
                quality=defaults.quality,
                aspect=_aspect(data, prompt_file, defaults.aspect),
                model=defaults.model,
                provider=defaults.provider.name,
                replace=True,
                labels=(("exercise", exercise.name), ("shot", shot), ("shot_prompt", kept)),
            )
            if exists and not force:
                states.append(JobState(job, status="skipped", output=str(image)))
            else:
                states.append(JobState(job))
    if not states:
        where = ", ".join(str(e) for e in _exercises(root, names, every))
        raise InputError(f"no {PROMPT_FILE} under {where}; nothing to generate")
    return states


class ShotsSource:
    """``image-gen.sh shots EXERCISE [EXERCISE ...] | --all``."""

    name = "shots"
    help = (
        "every shots/*/prompt.json of an exercise becomes image.png in its folder (seed 000): "
        "imagegen shots EXERCISE [EXERCISE ...] | --all"
    )
    after_save = None
    after_run = None

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        sel = parser.add_argument_group("what to generate (shot folders)")
        sel.add_argument("exercises", nargs="*", metavar="EXERCISE", help="exercise folder names")
        sel.add_argument("--all", action="store_true", help="every exercise under the root")
        sel.add_argument(
            "--shots-root",
            type=Path,
            default=DEFAULT_ROOT,
            help=f"folder of exercises ({DEFAULT_ROOT}, the seed's layout)",
        )
        sel.add_argument(
            "--force",
            action="store_true",
            help="make shots that have an image.png again (the old one is kept beside it)",
        )

    def plan(self, args: argparse.Namespace, defaults: RunDefaults) -> Plan:
        if args.all and args.exercises:
            raise InputError("name exercises or pass --all, not both")
        states = plan_shots(args.shots_root, args.exercises, args.all, args.force, defaults)
        exercises = list(dict.fromkeys(str(js.job.label("exercise")) for js in states))
        skipped = sum(js.status == "skipped" for js in states)
        config: dict[str, JSON] = {
            "shots_root": str(args.shots_root),
            "exercises": exercises if not args.all else [],
            "all": bool(args.all),
            "force": bool(args.force),
        }
        return Plan(
            jobs=tuple(states),
            config=config,
            header=(
                f"Shots: {', '.join(exercises)} | Quality: {defaults.quality}",
                f"Root: {args.shots_root}",
            ),
            facts=(("shots root", str(args.shots_root)), ("exercises", ", ".join(exercises))),
            describe=(
                f"{len(states)} shots in {len(exercises)} exercise(s)"
                + (f", {skipped} with an image already (skipped)" if skipped else "")
            ),
        )


SOURCE = ShotsSource()

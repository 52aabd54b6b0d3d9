"""The YAML imagery specs as a job source (issue 13): ``image-gen.sh specs ROOT [KIND] ...``.

``ROOT`` holds ``chapters/*.yaml``, ``locations/*.yaml`` and the character inventory
(``samples/specs/README.md``); ``KIND`` is ``chapters``, ``locations`` or ``all`` (the default:
chapters, then locations, files by name, items in file order). ``--only SLUG`` (repeatable or
a comma list) keeps some chapters or locations, ``--match GLOB`` filters task ids
(``harbour-market/*``), ``--max-tasks N`` takes the first N. Every file is validated before
anything is paid (:mod:`.load`: one line naming the file, the item and the field; exit 2).

One job per pending item (:mod:`.plan`), titled by its task id, grouped on the contact sheet by
spec file; its provider and model come from the file's defaults or the command line
(:mod:`.routing`); its output is ``ROOT/generated/...`` (an existing file there is kept aside
as ``NAME.replaced-TIME.png``, or adopted when an earlier session vouches for it:
:mod:`.earlier`). The job's labels (``spec_*``) carry what recording the result needs.

After the runner has saved an image and journaled it, :func:`record_image` writes the result
into the spec in place (:func:`~.update.record_result`: re-read under a lock, atomic, never a
stale result). Its outcome is the job's ``delivery``: "done", or "not written: stale: ..." (the
image is kept and ``--status`` lists it). A crash between the two is finished by ``--resume``
from the journal, without a call.
"""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from ...cli.options import positive_int
from ...model import JSON, Job, JobState
from .. import AfterRun, Plan, RunDefaults, SessionView
from .earlier import SOURCE_NAME, Earlier, find_earlier
from .load import load_root
from .plan import KINDS, Task, plan_tasks
from .routing import Route, route
from .schema import Kind, Specs
from .update import ImageResult, ItemRef, record_result

#: Highest ``--max-tasks``: far above any spec tree's pending images (it only caps a count).
MAX_TASKS = 1_000_000


def _slugs(values: Sequence[str] | None) -> list[str]:
    return list(dict.fromkeys(s.strip() for v in values or () for s in v.split(",") if s.strip()))


class SpecsSource:
    """``image-gen.sh specs ROOT [chapters|locations|all] [--only SLUG] [--match GLOB]
    [--max-tasks N]``."""

    name = SOURCE_NAME
    help = (
        "pending images of YAML imagery specs (chapters, locations, character references), "
        "recorded back into the specs: imagegen specs ROOT [chapters|locations|all]"
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        sel = parser.add_argument_group("what to generate (YAML imagery specs)")
        sel.add_argument(
            "root", type=Path, metavar="ROOT", help="folder with chapters/ and locations/"
        )
        sel.add_argument(
            "kind",
            nargs="?",
            choices=KINDS,
            default="all",
            help="chapters, locations, or all (chapters then locations; the default)",
        )
        sel.add_argument(
            "--only",
            action="append",
            metavar="SLUG",
            help="only these chapters or locations (repeat, or a comma list)",
        )
        sel.add_argument("--match", metavar="GLOB", help="only task ids matching, e.g. 'quay/*'")
        sel.add_argument(
            "--max-tasks",
            type=positive_int("--max-tasks", 1, MAX_TASKS),
            metavar="N",
            help="the first N pending tasks only",
        )

    def plan(self, args: argparse.Namespace, defaults: RunDefaults) -> Plan:
        root: Path = args.root
        only = _slugs(args.only)
        specs = load_root(root)
        routes = _routes(specs, defaults)
        planned = plan_tasks(
            specs,
            kind=args.kind,
            only=only,
            match=args.match,
            max_tasks=args.max_tasks,
            capabilities=lambda file: routes[file].capabilities,
        )
        earlier = find_earlier(args.sessions_dir, planned.tasks)
        states = [
            _job_state(n, task, routes[task.file], defaults, earlier.get(task.id))
            for n, task in enumerate(planned.tasks, 1)
        ]
        used = {task.file for task in planned.tasks}
        notes = [note for file, r in routes.items() if file in used for note in r.notes]
        notes += _disk_notes(planned.tasks, earlier)
        config: dict[str, JSON] = {
            "specs_root": str(root),
            "kind": args.kind,
            "only": only,
            "match": args.match,
            "max_tasks": args.max_tasks,
        }
        selection = args.kind + (f", only {', '.join(only)}" if only else "")
        selection += f", match {args.match}" if args.match else ""
        return Plan(
            jobs=tuple(states),
            config=config,
            header=(f"Specs: {root} | {selection}", planned.describe()),
            facts=(("specs root", str(root)), ("selection", selection)),
            describe=f"{planned.describe()} under {root}"
            + (f", {len(earlier)} made earlier and recorded now without a call" if earlier else ""),
            notes=tuple(notes),
        )

    after_run: AfterRun | None = None  # each image is recorded as it is saved; nothing after

    @staticmethod
    def after_save(state: JobState, view: SessionView) -> str | None:
        return record_image(state)


def _routes(specs: Specs, defaults: RunDefaults) -> dict[Path, Route]:
    """Each spec file's route (its tasks' provider and model)."""
    out: dict[Path, Route] = {}
    for chapter in specs.chapters:
        out[chapter.file] = route(chapter.defaults, defaults, str(chapter.file))
    for location in specs.locations:
        out[location.file] = route(location.defaults, defaults, str(location.file))
    return out


def _job_state(
    n: int, task: Task, r: Route, defaults: RunDefaults, earlier: Earlier | None
) -> JobState:
    quality = defaults.quality if "quality" in defaults.chosen else task.quality
    aspect = defaults.aspect if "aspect" in defaults.chosen else task.aspect
    labels: list[tuple[str, JSON]] = [
        ("spec_root", str(task.root)),
        ("spec_file", str(task.file)),
        ("spec_kind", task.kind),
        ("spec_task", task.id),
        ("spec_item", task.item_id),
        ("spec_key", list(task.item)),
        ("spec_fingerprint", task.fingerprint),
    ]
    if task.kind == "chapter":  # a location item's results only grow: nothing to guard
        labels.append(("spec_recorded", task.output_fingerprint))
    if earlier is not None:
        made = earlier.state
        labels.append(
            (
                "spec_made_by",
                {
                    "session": earlier.session_id,
                    "job": made.id,
                    "provider": made.job.provider,
                    "model": made.job.model,
                    "cost_usd": made.cost_usd,
                    "completed": made.completed,
                },
            )
        )
    job = Job(
        id=f"{n:03d}",
        source=SOURCE_NAME,
        title=task.id,
        group=(f"{task.kind} {task.owner}", task.file.name, task.item_id),
        prompt_file=str(task.file),
        prompt_parts=(task.prompt,),
        references=task.reference_paths,
        target=str(task.output_path),
        quality=quality,
        aspect=aspect,
        model=r.model,
        provider=r.provider.name,
        # A file already at the output path (not adopted) is kept aside, never overwritten;
        # without one, a file appearing meanwhile makes the new image take a -2 name.
        replace=task.output_exists,
        labels=tuple(labels),
    )
    if earlier is None:
        return JobState(job)
    made = earlier.state
    return JobState(
        job,
        status="skipped",
        output=made.output,
        completed=made.completed,
        image=made.image,
        request_id=made.request_id,
        model_version=made.model_version,
        delivery="pending",
    )


def _disk_notes(tasks: Sequence[Task], earlier: Mapping[str, Earlier]) -> list[str]:
    notes = [
        f"{task.id}: {task.output_path} was made by session {e.session_id} (job {e.state.id}) "
        "and never recorded; it is recorded now, without a call"
        for task in tasks
        if (e := earlier.get(task.id)) is not None
    ]
    aside = [t for t in tasks if t.output_exists and t.id not in earlier]
    if aside:
        named = ", ".join(str(t.output_path) for t in aside[:3])
        more = f" and {len(aside) - 3} more" if len(aside) > 3 else ""
        notes.append(
            f"{len(aside)} pending item(s) already have a file at their output path that no "
            f"session vouches for ({named}{more}): they are generated again, the old file "
            "kept beside the new one as NAME.replaced-TIME.png"
        )
    return notes


def record_image(state: JobState) -> str | None:
    """Write a saved image's result into its spec (blocking: the runner calls it in a worker
    thread). Returns None when the spec records it (now or already), else why not: "stale:
    prompt changed: ...", "stale: item removed: ...", "stale: recorded meanwhile: ...". Raises
    SpecError or OSError when the spec cannot be read or written (the runner reports it)."""
    job = state.job
    made = job.label("spec_made_by") or {}
    ref = ItemRef(
        id=str(job.label("spec_task")),
        kind=cast(Kind, job.label("spec_kind")),
        file=Path(str(job.label("spec_file"))),
        item_id=str(job.label("spec_item")),
        fingerprint=str(job.label("spec_fingerprint")),
        output_fingerprint=str(job.label("spec_recorded") or ""),
    )
    output = Path(state.output or job.target)
    data = output.read_bytes()
    result = ImageResult(
        file_path=_relative(output, Path(str(job.label("spec_root")))),
        generated_at=_when(made.get("completed") or state.completed),
        provider=str(made.get("provider") or job.provider),
        model=str(made.get("model") or job.model),
        image_sha256=hashlib.sha256(data).hexdigest(),
        prompt_sha256=hashlib.sha256(job.prompt.encode("utf-8")).hexdigest(),
        request_id=state.request_id,
        model_version=state.model_version,
        cost_usd=made.get("cost_usd", state.cost_usd),
    )
    # A retry of this job may replace the record an earlier attempt of it wrote.
    root = Path(str(job.label("spec_root")))
    earlier = {_relative(Path(a.output), root) for a in state.history[:-1] if a.output}
    update = record_result(ref, result, replaces=earlier)
    return None if update.recorded else f"{update.outcome.value}: {update.detail}"


def _relative(output: Path, root: Path) -> str:
    """``output`` relative to ROOT with ``/`` (as specs write paths); absolute if outside."""
    try:
        return output.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return output.resolve().as_posix()


def _when(completed: object) -> datetime:
    """A journal time (local ISO seconds) as an aware datetime; now when there is none."""
    if isinstance(completed, str):
        try:
            return datetime.fromisoformat(completed).astimezone(UTC)
        except ValueError:
            pass
    return datetime.now(UTC)


SOURCE = SpecsSource()

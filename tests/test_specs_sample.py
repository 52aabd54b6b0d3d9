"""The committed sample ROOT: valid, plannable, reproducible, and updated line for line."""

from __future__ import annotations

import difflib
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image

from imagegen.sources.specs import ImageResult, Outcome, load_root, plan_tasks, record_result

PROJECT = Path(__file__).resolve().parent.parent
SAMPLE = PROJECT / "samples" / "specs"
HAND_WRITTEN = {"README.md", ".gitignore"}


def test_the_sample_is_valid_and_has_six_pending_images() -> None:
    specs = load_root(SAMPLE)
    assert [c.slug for c in specs.chapters] == ["the-lantern-road", "the-glass-workshop"]
    assert [loc.slug for loc in specs.locations] == ["harbour-market"]
    assert [c.id for c in specs.inventory.characters] == ["mara", "osk", "tamsin"]
    plan = plan_tasks(specs)
    assert [t.id for t in plan.tasks] == [
        "ch01-ferry-arrival",
        "ch01-road-into-fog",
        "ch01-osk-meets-mara",
        "ch02-tamsin-portrait",
        "harbour-market/overview",
        "harbour-market/bell-mast",
    ]
    assert (plan.items, plan.done) == (8, 2)
    ferry = plan.tasks[0]
    # The candidate sketch is listed first in the chapter; the approved portrait goes first.
    assert [r.inventory_id for r in ferry.references] == ["mara-portrait", "mara-sketch"]
    assert (ferry.aspect, ferry.quality) == ("3:2", "2K")


def test_the_generator_reproduces_the_committed_sample(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "tools/make_sample_specs.py", "--root", str(tmp_path)],
        cwd=PROJECT,
        capture_output=True,
        check=True,
        timeout=60,
    )
    assert b"wrote 10 files" in done.stdout
    committed = sorted(
        p.relative_to(SAMPLE)
        for p in SAMPLE.rglob("*")
        if p.is_file() and p.name not in HAND_WRITTEN
    )
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert written == committed
    for name in committed:
        if name.suffix == ".png":  # compare pixels: zlib versions may pack bytes differently
            with Image.open(SAMPLE / name) as a, Image.open(tmp_path / name) as b:
                assert a.tobytes() == b.tobytes(), name
        else:
            assert (SAMPLE / name).read_bytes() == (tmp_path / name).read_bytes(), name


def test_the_sample_stays_small() -> None:
    assert sum(p.stat().st_size for p in SAMPLE.rglob("*") if p.is_file()) < 200_000


def test_recording_every_task_of_the_sample_changes_only_output_lines(tmp_path: Path) -> None:
    root = tmp_path / "specs"
    shutil.copytree(SAMPLE, root)
    before = {p: p.read_text() for p in root.rglob("*.yaml")}
    for task in plan_tasks(load_root(root)).tasks:
        image = f"image of {task.id}".encode()
        task.output_path.parent.mkdir(parents=True, exist_ok=True)
        task.output_path.write_bytes(image)
        made = ImageResult.of(
            task,
            image,
            provider="gemini",
            model="gemini-3-pro-image",
            generated_at=datetime.now(UTC),
        )
        update = record_result(task, made)
        assert (update.outcome, update.reformatted) == (Outcome.WRITTEN, False)
    assert plan_tasks(load_root(root)).tasks == ()
    output_keys = (
        "generated_at:",
        "file_name:",
        "file_path:",
        "provider:",
        "model:",
        "provider_metadata:",
    )
    for path, text in before.items():
        removed = [
            line[1:].strip()
            for line in difflib.unified_diff(text.splitlines(), path.read_text().splitlines(), n=0)
            if line.startswith("-") and not line.startswith("---")
        ]
        for line in removed:  # every line that went away was an output field (or its [] value)
            assert line.startswith(output_keys) or line.startswith("generated_images:"), (
                path,
                line,
            )

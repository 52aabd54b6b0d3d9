"""Recording saved images into their spec files: only the output fields change, atomically,
under a lock, never stale, never twice."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
import textwrap
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import filelock
import pytest

from imagegen.sources.specs.errors import SpecError
from imagegen.sources.specs.load import load_root
from imagegen.sources.specs.plan import Task, plan_tasks
from imagegen.sources.specs.update import (
    ImageResult,
    Outcome,
    lock_path,
    record_result,
)

from .specs_helpers import CHAPTER_FILE, LOCATION, LOCATION_FILE, make_root
from .specs_tree import changed_lines

WHEN = datetime(2026, 3, 1, 12, 30, 5, 999, tzinfo=UTC)
PROJECT = Path(__file__).resolve().parent.parent


def tasks(root: Path) -> dict[str, Task]:
    return {t.id: t for t in plan_tasks(load_root(root)).tasks}


def result(task: Task, image: bytes = b"png-bytes", **changes: object) -> ImageResult:
    fields: dict[str, object] = {
        "provider": "gemini",
        "model": "gemini-3-pro-image",
        "generated_at": WHEN,
        "request_id": "req-1",
        "model_version": "gemini-3-pro-image-001",
        "cost_usd": 0.134,
    }
    fields.update(changes)
    return ImageResult.of(task, image, **fields)  # type: ignore[arg-type]


def metadata_lines(indent: str, task: Task, image: bytes = b"png-bytes") -> list[str]:
    return [
        f"{indent}request_id: req-1",
        f"{indent}model_version: gemini-3-pro-image-001",
        f"{indent}prompt_sha256: {task.prompt_sha256}",
        f"{indent}image_sha256: {hashlib.sha256(image).hexdigest()}",
        f"{indent}cost_usd: 0.134",
    ]


def test_a_chapter_image_gets_exactly_its_output_fields(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    path = root / CHAPTER_FILE
    before = path.read_text()
    one = tasks(root)["one"]
    update = record_result(one, result(one))
    assert update.outcome is Outcome.WRITTEN
    assert update.recorded and not update.reformatted
    removed, added = changed_lines(before, path.read_text())
    assert removed == [
        "    generated_at: null",
        "    file_name: ~",
        "    file_path:",
        "    provider: null",
        "    model: null",
        "    provider_metadata: null",
    ]
    assert added == [
        "    generated_at: '2026-03-01T12:30:05Z'",
        "    file_name: one.png",
        "    file_path: generated/chapters/dawn/one.png",
        "    provider: gemini",
        "    model: gemini-3-pro-image",
        "    provider_metadata:",
        *metadata_lines("      ", one),
    ]
    recorded = load_root(root).chapters[0].images[0].output
    assert recorded.file_path == "generated/chapters/dawn/one.png"
    assert recorded.provider_metadata is not None
    assert recorded.provider_metadata["cost_usd"] == 0.134


def test_a_location_item_gets_one_generated_images_entry(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    path = root / LOCATION_FILE
    before = path.read_text()
    bell = tasks(root)["quay/bell"]
    assert record_result(bell, result(bell)).outcome is Outcome.WRITTEN
    removed, added = changed_lines(before, path.read_text())
    assert removed == ["    generated_images: []"]
    assert added == [
        "    generated_images:",
        "      - generated_at: '2026-03-01T12:30:05Z'",
        "        file_name: bell.png",
        "        file_path: generated/locations/quay/bell.png",
        "        provider: gemini",
        "        model: gemini-3-pro-image",
        "        provider_metadata:",
        *metadata_lines("          ", bell),
    ]
    (item,) = [i for i in load_root(root).locations[0].items if i.slug == "bell"]
    assert [g.file_name for g in item.generated_images] == ["bell.png"]


# A hand-kept chapter file with everything that tends to break round trips.
TRICKY = textwrap.dedent(
    """\
    # Chapter — “Dawn” ☀
    chapter: dawn   # the slug
    title: 'Dawn: the first light'
    visual_thesis: >
      Light on water.
      Nothing fully lit.
    palette: [ "amber" , 'slate', moss ]     # spaces inside brackets: ruamel drops them
    defaults: {quality: 1K, provider: "gemini"}
    characters:
      - id: mara   # lead
        reference_images: [mara-a]
    images:
      # first: every null spelling
      - custom_id: "one"
        prompt_used: |
          Mara at the quay.
            An indented line — with “quotes” and émigré accents.
        negative_prompt: ~
        size: '3:2'
        depicts_characters: [mara]
        character_states: {mara: "wet, tired"}
        generated_at:     null      # aligned by hand
        file_name:        ~
        file_path:
        provider:         Null
        model:            NULL
        provider_metadata: {}

      # second: already done, must not move
      - custom_id: two
        prompt_used: 'It''s the road.'
        depicts_characters: []
        generated_at: '2026-01-01T00:00:00Z'
        file_name: two.png
        file_path: generated/chapters/dawn/two.png
        provider: gemini
        model: gemini-3-pro-image
        provider_metadata:
          request_id: r0
    # trailing comment
    """
)


FOUR_SPACES = textwrap.dedent(
    """\
    chapter: dawn
    characters:
    -   id: mara   # lead
        reference_images: [mara-a]
    images:
    -   custom_id: one
        prompt_used: "Mara at the quay."
        generated_at:     null      # aligned by hand
        file_name:        ~
        file_path:
        provider:         Null
        model:            NULL
        provider_metadata: {}
    # trailing comment
    """
)
VARIANTS = {
    "as is": TRICKY.encode(),
    "crlf": TRICKY.replace("\n", "\r\n").encode(),
    "bom": b"\xef\xbb\xbf" + TRICKY.encode(),
    "four spaces, dash at key": FOUR_SPACES.encode(),
}


@pytest.mark.parametrize("raw", VARIANTS.values(), ids=VARIANTS.keys())
def test_a_tricky_file_changes_only_in_the_output_fields(tmp_path: Path, raw: bytes) -> None:
    root = make_root(tmp_path, images=("mara-a",))
    path = root / CHAPTER_FILE
    path.write_bytes(raw)
    one = tasks(root)["one"]
    update = record_result(one, result(one))
    assert update.outcome is Outcome.WRITTEN
    assert not update.reformatted
    after = path.read_bytes()
    assert after.startswith(b"\xef\xbb\xbf") == raw.startswith(b"\xef\xbb\xbf")
    assert (b"\r\n" in after) == (b"\r\n" in raw)
    removed, added = changed_lines(
        raw.decode("utf-8-sig").replace("\r\n", "\n"),
        after.decode("utf-8-sig").replace("\r\n", "\n"),
    )
    assert removed == [
        "    generated_at:     null      # aligned by hand",
        "    file_name:        ~",
        "    file_path:",
        "    provider:         Null",
        "    model:            NULL",
        "    provider_metadata: {}",
    ]
    nested = "        " if raw == VARIANTS["four spaces, dash at key"] else "      "
    assert added == [
        "    generated_at: '2026-03-01T12:30:05Z' # aligned by hand",
        "    file_name: one.png",
        "    file_path: generated/chapters/dawn/one.png",
        "    provider: gemini",
        "    model: gemini-3-pro-image",
        "    provider_metadata:",
        *metadata_lines(nested, one),
    ]


def test_recording_twice_is_recognised_and_changes_nothing(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    found = tasks(root)
    for task_id, path in (("one", CHAPTER_FILE), ("quay/bell", LOCATION_FILE)):
        task = found[task_id]
        assert record_result(task, result(task)).outcome is Outcome.WRITTEN
        after_first = (root / path).read_bytes()
        # A resume after a crash between the image and its update applies it again.
        again = record_result(task, result(task, generated_at=WHEN + timedelta(hours=1)))
        assert again.outcome is Outcome.ALREADY
        assert again.recorded
        assert (root / path).read_bytes() == after_first
    (bell,) = [i for i in load_root(root).locations[0].items if i.slug == "bell"]
    assert len(bell.generated_images) == 1


def test_a_different_image_for_a_location_item_is_appended(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    bell = tasks(root)["quay/bell"]
    record_result(bell, result(bell, b"first"))
    assert record_result(bell, result(bell, b"second")).outcome is Outcome.WRITTEN
    (item,) = [i for i in load_root(root).locations[0].items if i.slug == "bell"]
    assert len(item.generated_images) == 2


def test_a_removed_item_is_stale_and_the_file_is_not_touched(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    found = tasks(root)
    path = root / LOCATION_FILE
    path.write_text(LOCATION.replace("slug: crates", "slug: barrels"))
    before = path.read_bytes()
    update = record_result(found["quay/crates"], result(found["quay/crates"]))
    assert update.outcome is Outcome.STALE_REMOVED
    assert update.outcome == "stale: item removed"
    assert not update.recorded
    assert update.detail == f"'crates' is no longer in {path}"
    assert path.read_bytes() == before
    path.unlink()
    gone = record_result(found["quay/bell"], result(found["quay/bell"]))
    assert gone.outcome is Outcome.STALE_REMOVED
    assert not path.exists()


def test_a_changed_prompt_is_stale_and_the_file_is_not_touched(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    one = tasks(root)["one"]
    path = root / CHAPTER_FILE
    for old, new in [
        ("lantern raised.", "lantern lowered."),
        ("negative_prompt: 'text, watermark'", "negative_prompt: 'text'"),
        ("size: 1536x1024", "size: '16:9'"),
        ("depicts_characters: [mara]", "depicts_characters: [mara, osk]"),
        ("mara: soaked", "mara: dry"),
    ]:
        make_root(tmp_path)
        path.write_text(path.read_text().replace(old, new))
        before = path.read_bytes()
        update = record_result(one, result(one))
        assert update.outcome is Outcome.STALE_CHANGED, old
        assert update.outcome == "stale: prompt changed"
        assert "changed after planning" in update.detail
        assert path.read_bytes() == before


def test_edits_elsewhere_during_the_run_are_kept(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    one = tasks(root)["one"]
    path = root / CHAPTER_FILE
    # While the image was being made, someone reworded a comment, edited another image's
    # prompt, added a key, and moved the item below the other one: the update applies to
    # the file as it is now, finding the item by its custom_id.
    head, rest = path.read_text().split("images:\n")
    first, second = rest.split("\n  # the second image\n")
    second = second.replace("# end\n", "").replace("on the road", "in the rain")
    moved = (
        f"{head}notes: added during the run\nimages:\n  # the second image (reworded)\n"
        f"{second}{first}# end\n"
    )
    path.write_text(moved)
    before = path.read_text()
    update = record_result(one, result(one))
    assert update.outcome is Outcome.WRITTEN
    after = path.read_text()
    assert "# the second image (reworded)" in after
    assert "Osk and Mara in the rain." in after
    assert "notes: added during the run" in after
    removed, _ = changed_lines(before, after)
    assert len(removed) == 6
    assert load_root(root).chapters[0].images[1].output.file_name == "one.png"


def test_concurrent_updates_of_one_file_lose_nothing(tmp_path: Path) -> None:
    parts = "".join(
        f"  - slug: part-{n:02d}\n    prompt_used: Part {n}.\n    generated_images: []\n"
        for n in range(16)
    )
    root = make_root(tmp_path, chapter=None, inventory=None, images=())
    (root / LOCATION_FILE).write_text(f"location: hall\n# parts follow\nparts:\n{parts}# end\n")
    work = list(tasks(root).values())
    barrier = threading.Barrier(len(work))
    outcomes: list[Outcome] = []
    errors: list[BaseException] = []

    def record(task: Task) -> None:
        try:
            barrier.wait()
            outcomes.append(record_result(task, result(task, task.id.encode())).outcome)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=record, args=(t,)) for t in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert outcomes == [Outcome.WRITTEN] * 16
    items = load_root(root).locations[0].items
    assert [len(i.generated_images) for i in items] == [1] * 16
    text = (root / LOCATION_FILE).read_text()
    assert text.startswith("location: hall\n# parts follow\nparts:\n")
    assert text.endswith("# end\n")
    assert plan_tasks(load_root(root)).tasks == ()


def test_concurrent_updates_of_chapter_images_lose_nothing(tmp_path: Path) -> None:
    images = "".join(
        f"  - custom_id: img-{n:02d}\n    prompt_used: Image {n}.\n    file_path: null\n"
        for n in range(12)
    )
    root = make_root(tmp_path, location=None, inventory=None, images=())
    (root / CHAPTER_FILE).write_text(f"chapter: many\nimages:\n{images}")
    work = list(tasks(root).values())
    barrier = threading.Barrier(len(work))

    def record(task: Task) -> None:
        barrier.wait()
        record_result(task, result(task, task.id.encode()))

    threads = [threading.Thread(target=record, args=(t,)) for t in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    recorded = [i.output.file_name for i in load_root(root).chapters[0].images]
    assert recorded == [f"img-{n:02d}.png" for n in range(12)]


def test_a_failure_while_writing_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_root(tmp_path)
    one = tasks(root)["one"]
    path = root / CHAPTER_FILE
    before = path.read_bytes()

    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        record_result(one, result(one))
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == [".01-dawn.yaml.lock", "01-dawn.yaml"]
    monkeypatch.undo()
    assert record_result(one, result(one)).outcome is Outcome.WRITTEN


def test_a_killed_writer_leaves_the_old_file_and_frees_the_lock(tmp_path: Path) -> None:
    """kill -9 between the fsynced temporary file and the rename."""
    root = make_root(tmp_path)
    path = root / CHAPTER_FILE
    before = path.read_bytes()
    child = textwrap.dedent(
        """\
        import os, signal, sys
        from datetime import UTC, datetime
        from pathlib import Path
        from imagegen.sources.specs.load import load_root
        from imagegen.sources.specs.plan import plan_tasks
        from imagegen.sources.specs.update import ImageResult, record_result

        task = plan_tasks(load_root(Path(sys.argv[1]))).tasks[0]
        Path.replace = lambda self, target: os.kill(os.getpid(), signal.SIGKILL)
        now = datetime.now(UTC)
        record_result(task, ImageResult.of(task, b"x", provider="p", model="m", generated_at=now))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", child, str(root)], cwd=PROJECT, capture_output=True, timeout=60
    )
    assert done.returncode == -9, done.stderr.decode()
    assert path.read_bytes() == before
    leftovers = [p.name for p in path.parent.glob(".01-dawn.yaml.*.tmp")]
    assert len(leftovers) == 1  # the complete new text, never mistaken for a spec
    assert len(load_root(root).chapters) == 1
    one = tasks(root)["one"]
    assert record_result(one, result(one), timeout=5).outcome is Outcome.WRITTEN


def test_the_lock_sits_beside_the_file_and_a_held_lock_times_out(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    one = tasks(root)["one"]
    assert lock_path(one.file) == root / "chapters" / ".01-dawn.yaml.lock"
    before = one.file.read_bytes()
    with filelock.FileLock(str(lock_path(one.file))), pytest.raises(SpecError) as info:
        record_result(one, result(one), timeout=0.05)
    assert str(info.value) == (
        f"{one.file}: another writer held .01-dawn.yaml.lock for 0.05 s; is another run "
        "updating this spec? The image is kept; run again to record it"
    )
    assert one.file.read_bytes() == before


def test_a_file_that_no_longer_parses_raises_and_is_left_alone(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    one = tasks(root)["one"]
    one.file.write_text(one.file.read_text() + "  broken: [\n")
    before = one.file.read_bytes()
    with pytest.raises(SpecError, match=r"01-dawn\.yaml:\d+:\d+: .*fix the YAML syntax"):
        record_result(one, result(one))
    assert one.file.read_bytes() == before


def test_an_id_now_used_twice_raises(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    one = tasks(root)["one"]
    one.file.write_text(one.file.read_text().replace("custom_id: two", "custom_id: one"))
    with pytest.raises(SpecError, match="custom_id 'one' now appears 2 times"):
        record_result(one, result(one))


def test_permissions_are_kept_and_symlinks_followed(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    one = tasks(root)["one"]
    real = tmp_path / "elsewhere" / "dawn.yaml"
    real.parent.mkdir()
    one.file.replace(real)
    one.file.symlink_to(real)
    real.chmod(0o640)
    assert record_result(one, result(one)).outcome is Outcome.WRITTEN
    assert one.file.is_symlink()
    assert stat.S_IMODE(real.stat().st_mode) == 0o640
    assert "file_name: one.png" in real.read_text()


def test_results_are_written_in_utc_and_need_a_time_zone(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    one = tasks(root)["one"]
    local = datetime(2026, 3, 1, 14, 30, 5, tzinfo=timezone(timedelta(hours=2)))
    assert result(one, generated_at=local).fields()["generated_at"] == "2026-03-01T12:30:05Z"
    with pytest.raises(ValueError, match="time zone"):
        record_result(one, result(one, generated_at=datetime(2026, 3, 1)))


def test_image_result_of_fills_hashes_and_the_planned_path(tmp_path: Path) -> None:
    one = tasks(make_root(tmp_path))["one"]
    made = ImageResult.of(one, b"abc", provider="gemini", model="m", generated_at=WHEN)
    assert made.file_path == "generated/chapters/dawn/one.png"
    assert made.image_sha256 == hashlib.sha256(b"abc").hexdigest()
    assert made.prompt_sha256 == one.prompt_sha256
    assert (made.request_id, made.model_version, made.cost_usd) == (None, None, None)
    moved = ImageResult.of(
        one, b"abc", provider="g", model="m", generated_at=WHEN, file_path="x.jpg"
    )
    assert moved.fields()["file_name"] == "x.jpg"


def test_generated_images_that_is_no_longer_a_list_is_not_overwritten(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    bell = tasks(root)["quay/bell"]
    path = root / LOCATION_FILE
    path.write_text(
        path.read_text().replace(
            '"9:16"\n    generated_images: []', '"9:16"\n    generated_images: see notes'
        )
    )
    before = path.read_bytes()
    with pytest.raises(SpecError, match="'bell', field generated_images: is no longer a list"):
        record_result(bell, result(bell))
    assert path.read_bytes() == before

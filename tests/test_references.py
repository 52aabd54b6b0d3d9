"""The reference cache: each file read once per run, bounded in bytes, errors name the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagegen.references import ReferenceCache

from .conftest import write_image


def test_a_reference_is_read_once_and_served_from_memory(tmp_path: Path) -> None:
    ui = str(write_image(tmp_path / "UI.png"))
    pose = str(write_image(tmp_path / "pose.jpg", fmt="JPEG"))
    cache = ReferenceCache()
    assert cache.cached([ui, pose]) is None

    first = cache.load([ui, pose])
    assert [(r.role, r.mime_type) for r in first] == [("ui", "image/png"), ("pose", "image/jpeg")]
    assert first[0].data == Path(ui).read_bytes()

    Path(ui).unlink()  # gone from disk, still sent: a run sends what it read first
    assert cache.cached([ui, pose]) == first
    assert cache.load([pose, ui]) == (first[1], first[0])


def test_the_least_recently_used_file_is_dropped_past_the_byte_limit(tmp_path: Path) -> None:
    paths = [str(write_image(tmp_path / f"{n}.png", size=(300, 300))) for n in "abc"]
    size = Path(paths[0]).stat().st_size
    cache = ReferenceCache(max_bytes=2 * size)
    cache.load([paths[0]])
    cache.load([paths[1]])
    assert cache.cached([paths[0]]) is not None  # a is now more recent than b
    cache.load([paths[2]])
    assert cache.cached([paths[1]]) is None
    assert cache.cached([paths[0]]) is not None
    assert cache.cached([paths[2]]) is not None


def test_a_file_larger_than_the_limit_is_still_sent(tmp_path: Path) -> None:
    big = str(write_image(tmp_path / "big.png", size=(300, 300)))
    cache = ReferenceCache(max_bytes=10)
    (ref,) = cache.load([big])
    assert ref.data == Path(big).read_bytes()


def test_a_missing_file_raises_oserror_naming_it(tmp_path: Path) -> None:
    with pytest.raises(OSError, match=r"gone\.png"):
        ReferenceCache().load([str(tmp_path / "gone.png")])


def test_a_file_that_is_not_an_image_raises_valueerror_naming_it(tmp_path: Path) -> None:
    fake = tmp_path / "wardrobe.jpg"
    fake.write_text("not a picture")
    with pytest.raises(ValueError, match=r"wardrobe\.jpg"):
        ReferenceCache().load([str(fake)])

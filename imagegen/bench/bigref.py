"""The ``bigref`` scenario (issue 11, item 10): a combo whose reference images are 12000 x 12000
(a JPEG and a PNG, the size a camera or a scanner gives), run through the command line as a user
runs it, in its own process: its peak memory against the same run with small references.

A decoded 12000 x 12000 RGB image is 432 MB; the run must stay well under one of those
(:data:`ALLOWED_EXTRA_MB`): the planner checks a JPEG at 1/8 scale and a PNG chunk by chunk, an
uploaded reference is streamed from its file, an inline one is sent as its file's bytes, and the
contact sheet's thumbnail decodes a JPEG at 1/8 scale and skips a PNG that large.
Both ways of sending references are measured (uploaded once, the default, and
``--inline-references``). Peak memory is the child's ``ru_maxrss`` from ``os.wait4``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from .harness import MB, Row, Sizes, emulator_process, measure

#: The most a run with huge references may use over the same run with small ones, MB: a quarter
#: of one decoded 12,000 x 12,000 RGB reference (432 MB). The same bound at ``--quick`` sizes,
#: where a 3,000 x 3,000 PNG is small enough to be decoded for its contact-sheet thumbnail.
ALLOWED_EXTRA_MB = 0.25 * 12_000 * 12_000 * 3 / MB
_COMBO = Path("combos") / "Hoodie_combo" / "Orange_UI_Combos" / "C-U-009"
_ARGV = (
    "--wardrobe",
    "zip-hoodie",
    "--ui-style",
    "Orange",
    "--catalogs",
    "v3.2",
    "--combos",
    "C-U-009",
    "--min-interval",
    "0",
    "--plain",
)
_DRAW = """
import sys
from PIL import Image
side, jpeg, png = int(sys.argv[1]), sys.argv[2], sys.argv[3]
Image.MAX_IMAGE_PIXELS = None
# A gradient with a coarse pattern: photo-sized and compressible, so inline requests fit.
small = Image.radial_gradient("L").resize((side // 8, side // 8)).convert("RGB")
image = small.resize((side, side), Image.Resampling.NEAREST)
image.save(jpeg, format="JPEG", quality=85)
image.save(png, format="PNG", compress_level=6)
"""


def _workspace(root: Path, side: int | None) -> Path:
    """A copy of the sample workspace; with ``side``, combo C-U-009's wardrobe (JPEG) and UI
    (PNG) references replaced by ``side`` x ``side`` images drawn in a child process."""
    repo = Path(__file__).resolve().parents[2]
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    shutil.copytree(repo / "combos", root / "combos")
    shutil.copytree(repo / "catalogs", root / "catalogs")
    if side is not None:
        combo = root / _COMBO
        for old in [*combo.glob("wardrobe.*"), *combo.glob("ui.*")]:
            old.unlink()
        jpeg, png = combo / "wardrobe.jpg", combo / "ui.png"
        subprocess.run([sys.executable, "-c", _DRAW, str(side), str(jpeg), str(png)], check=True)
    return root


def _peak_of_run(root: Path, url: str, *extra: str) -> tuple[float, int]:
    """(peak memory in MB, exit code) of ``imagegen`` run in ``root`` against ``url``."""
    env = dict(os.environ, GOOGLE_GEMINI_BASE_URL=url, GEMINI_API_KEY="bench-key")
    env.pop("GOOGLE_API_KEY", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "imagegen", *_ARGV, *extra],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_maxrss * 1024 / MB, proc.returncode


def scenario_bigref(work: Path, s: Sizes) -> list[Row]:
    side = s.bigref_side
    decoded = side * side * 3 / MB
    small = _workspace(work / "small", None)
    big = _workspace(work / "big", side)
    label = f"3 jobs, a {side:,} x {side:,} JPEG and PNG among the references"
    rows = [
        measure("bigref", f"one {side:,} x {side:,} reference decoded (RGB)", decoded, "MB"),
        measure(
            "bigref", "its JPEG file", (big / _COMBO / "wardrobe.jpg").stat().st_size / MB, "MB"
        ),
        measure("bigref", "its PNG file", (big / _COMBO / "ui.png").stat().st_size / MB, "MB"),
    ]
    with emulator_process(0.0) as url:
        for how, extra in (("uploaded once", ()), ("inline", ("--inline-references",))):
            base, base_code = _peak_of_run(small, url, "--new", *extra)
            peak, code = _peak_of_run(big, url, "--new", *extra)
            rows += [
                measure("bigref", f"same run, small references, {how}: peak memory", base, "MB"),
                measure("bigref", f"{label}, {how}: peak memory", peak, "MB"),
                measure(
                    "bigref",
                    f"{label}, {how}: peak - small references' peak (≤ 1/4 of a decoded 12,000²)",
                    peak - base,
                    "MB",
                    at_most=ALLOWED_EXTRA_MB,
                ),
                measure("bigref", f"{label}, {how}: exit code (0: all completed)", code, equals=0),
                measure(
                    "bigref", f"same run, small references, {how}: exit code", base_code, equals=0
                ),
            ]
    return rows

"""The benchmark script: its pure helpers, and a quick in-process run (no timing asserted)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from PIL import Image

from imagegen import bench
from imagegen.executors.limiter import Limits


def test_ideal_wall_is_jobs_times_latency_over_concurrency_without_spacing() -> None:
    assert bench.ideal_wall(300, 0.5, Limits(3, 0.0, 10**9)) == pytest.approx(50.0)


def test_ideal_wall_under_spacing_is_one_start_a_second() -> None:
    assert bench.ideal_wall(120, 0.5, Limits(3, 1.0, 60)) == pytest.approx(119.5)


def test_ideal_wall_waits_for_the_per_minute_window() -> None:
    # 3 starts a minute, 4 jobs: the 4th starts when the first leaves the window.
    assert bench.ideal_wall(4, 1.0, Limits(3, 0.0, 3, window=60.0)) == pytest.approx(61.0)


def test_idle_stretches_are_the_parts_no_interval_covers() -> None:
    busy = [(1.0, 2.0), (1.5, 3.0), (4.0, 5.0)]
    assert bench.idle_stretches(0.0, 6.0, busy) == [1.0, 1.0, 1.0]
    assert bench.peak_overlap(busy) == 2


def test_the_counting_wrapper_is_a_file_store_and_a_batch_service_by_its_own_methods() -> None:
    """Around an inner object with no methods at all, the photos and batch scenarios' wrapper
    still matches both Protocols: each of their methods is written on it, not forwarded by
    ``__getattr__`` (which ``isinstance`` ignores from Python 3.12), so the session does take
    the upload and Batch API paths the scenarios measure."""
    from imagegen.bench.batch_scenarios import CountingProvider, Traffic
    from imagegen.providers.batch import BatchService, FileStore

    wrapper = CountingProvider(object(), Traffic())  # type: ignore[arg-type]
    assert isinstance(wrapper, FileStore)
    assert isinstance(wrapper, BatchService)


def test_quick_run_prints_every_row(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--quick --scenario slots --scenario storm --json`` in this process: the table's rows."""
    argv = [
        "--quick",
        "--json",
        "--workdir",
        str(tmp_path),
        "--scenario",
        "slots",
        "--scenario",
        "storm",
    ]
    code = bench.main(argv)
    out = orjson.loads(capsys.readouterr().out.strip().splitlines()[-1])
    rows = out["rows"]
    assert code in (0, 1)  # 1 only says a target was missed; quick sizes prove no timing
    assert {"cores", "python", "platform"} <= set(out["machine"])
    measures = [r["measure"] for r in rows]
    for wanted in (
        "wall / ideal",
        "calls in flight at most",
        "calls / minimum",
        "longest idle stretch",
        "jobs completed",
    ):
        assert any(wanted in m for m in measures), wanted
    assert {r["scenario"] for r in rows} == {"slots", "storm"}
    completed = [r for r in rows if r["measure"].endswith("jobs completed")]
    assert completed and all(r["ok"] for r in completed)
    calls = next(r for r in rows if "calls / minimum" in r["measure"])
    assert calls["ok"]


def test_table_has_the_columns(capsys: pytest.CaptureFixture[str]) -> None:
    rows = [
        bench.measure("slots", "wall / ideal", 1.02, "x", at_most=1.05),
        bench.measure("scale", "peak memory", 250.0, "MB", below=200),
    ]
    bench.print_table(
        rows,
        {"cores": 2, "usable_cores": 2, "python": "3.11", "platform": "x", "fsync_ms": 1.0},
        quick=True,
    )
    out = capsys.readouterr().out
    for column in ("measure", "value", "target", "ok"):
        assert column in out
    assert "1.020 x" in out and "≤ 1.050 x" in out and "NO" in out


def test_quick_report_scenario_times_the_sheet_three_ways(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--quick --scenario report``: a small session's contact sheet with the thumbnails made
    during the run, rebuilt, and made at the end (no timing asserted)."""
    code = bench.main(["--quick", "--json", "--workdir", str(tmp_path), "--scenario", "report"])
    rows = orjson.loads(capsys.readouterr().out.strip().splitlines()[-1])["rows"]
    assert code in (0, 1)
    measures = " | ".join(r["measure"] for r in rows)
    for wanted in ("made as each image was saved", "rebuilt", "made at the end", "completed"):
        assert wanted in measures, wanted
    assert all(r["ok"] for r in rows if r["measure"].endswith("jobs completed"))
    thumbs = list(tmp_path.glob("report/sessions/*-report/thumbs/*.jpg"))
    assert len(thumbs) == 30 + 3  # every job's image and the three shared references


def test_quick_bigref_scenario_runs_the_command_line_with_huge_references(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--quick --scenario bigref``: both runs, small and huge references, complete through the
    command line, uploaded and inline (their peak memory is reported, not asserted here)."""
    code = bench.main(["--quick", "--json", "--workdir", str(tmp_path), "--scenario", "bigref"])
    rows = orjson.loads(capsys.readouterr().out.strip().splitlines()[-1])["rows"]
    assert code in (0, 1)
    exits = [r for r in rows if "exit code" in r["measure"]]
    assert len(exits) == 4 and all(r["value"] == 0 for r in exits)
    peaks = [r for r in rows if r["measure"].endswith(": peak memory")]
    assert len(peaks) == 4 and all(r["value"] > 0 for r in peaks)
    with Image.open(
        tmp_path / "big" / "combos" / "Hoodie_combo" / "Orange_UI_Combos" / "C-U-009" / "ui.png"
    ) as img:
        assert img.size == (3000, 3000)

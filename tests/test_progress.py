"""The live display's numbers (issue 16, "the live display a long batch needs") and a dry run
that reads at any size."""

from __future__ import annotations

import orjson
import pytest

from imagegen.progress import Pace, ProgressView, format_seconds, pace, render

from .cli_helpers import run_cli
from .conftest import Workspace, write_image, write_prompt

LIMITS = {"concurrency": 3, "min_interval": 0.0, "rpm": 60}


def test_the_per_minute_cap_bounds_a_long_batch_after_its_first_minute() -> None:
    p = pace(elapsed=10.0, finished_at=[], now=10.0, remaining=100, durations=[1.0] * 5, **LIMITS)
    # 3 calls of 1 s at once: 33 s; but only 60 starts a minute: the 40 after the first 60
    # take 40 s more.
    assert p.eta == pytest.approx(40.0) and p.bound == "60/min cap"


def test_a_small_batch_is_bound_by_calls_in_flight_not_by_the_cap() -> None:
    p = pace(elapsed=0.0, finished_at=[], now=0.0, remaining=30, durations=[2.0], **LIMITS)
    assert p.eta == pytest.approx(20.0) and p.bound == "3 in flight"


def test_spacing_and_a_pause_add_up() -> None:
    limits = {**LIMITS, "min_interval": 1.0}
    p = pace(
        elapsed=0.0,
        finished_at=[],
        now=0.0,
        remaining=10,
        durations=[0.5],
        paused_for=25.0,
        **limits,
    )
    assert p.eta == pytest.approx(35.0) and p.bound == "spacing"


def test_images_per_minute_are_measured_over_recent_completions() -> None:
    finished = [100.0 + 2 * n for n in range(31)]  # one every 2 s for a minute
    p = pace(elapsed=160.0, finished_at=finished, now=160.0, remaining=0, durations=[1.0], **LIMITS)
    assert p.per_minute == pytest.approx(31.0) and p.eta == 0.0
    old = pace(elapsed=900.0, finished_at=finished, now=900.0, remaining=5, durations=[], **LIMITS)
    assert old.per_minute is None and old.eta is None  # nothing measured recently


def test_render_shows_elapsed_pace_eta_and_the_pause_countdown() -> None:
    view = ProgressView(
        "S",
        ("Header",),
        10,
        {"completed": 4, "pending": 6},
        0.5,
        0.8,
        (),
        (),
        f"Paused, {format_seconds(27)} left: rate limited (429)",
        Pace(125.0, 12.5, 95.0, "60/min cap"),
    )
    text = render(view)
    assert "Time:     2 min 05 s elapsed | 12.5 images/min | about 1 min 35 s to go" in text
    assert "(bound by 60/min cap)" in text
    assert "Paused, 27 s left: rate limited (429)" in text


def test_a_dry_run_of_hundreds_of_jobs_is_a_summary_not_a_wall(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(workspace.root)
    for n in range(30):
        write_image(
            workspace.combos / "Hoodie_combo" / "Studio_UI_Combos" / f"X-{n:03d}" / "ui.png"
        )
    for n in range(20):
        write_prompt(workspace.catalogs / "catalog_v7.0" / f"P{n:02d}_scene.md", f"Scene {n}.\n")
    argv = ["--wardrobe", "zip-hoodie", "--ui-style", "Studio", "--catalogs", "v7.0", "--dry-run"]
    r = run_cli(capsys, *argv)
    assert r.code == 0, r.err
    text = " ".join(r.out.split())
    assert "640 jobs" in text and "v7.0 · Studio" in text  # (2 + 30) combos x 20 prompts
    assert "--dry-run --json lists every one" in text
    assert len(r.out.splitlines()) < 80
    r = run_cli(capsys, *argv, "--json")
    rows = orjson.loads(r.out)["jobs"]
    assert len(rows) == 640 and rows[0]["price_usd"] > 0 and rows[0]["provider"] == "gemini"


def test_to_go_and_the_time_to_finish_count_every_variant_still_to_make(
    workspace: Workspace,
) -> None:
    """A job of 3 variants with one made costs two more calls and takes two more turns; a
    batch session prices a one-image job at its Batch API price, a variants job online."""
    from dataclasses import replace

    from imagegen import providers
    from imagegen.model import JobState, SessionState
    from imagegen.progress import remaining_cost, view_of

    from .conftest import plan_combos

    one, many, done = plan_combos(workspace, combos=("C-U-000",))[:3]
    many = replace(many, variants=3)
    info = providers.get("gemini")
    call = info.estimate(one.model, one.quality, one.aspect, len(one.references))
    assert info.batch_estimate is not None
    batch_call = info.batch_estimate(one.model, one.quality, one.aspect, len(one.references))
    jobs = {
        one.id: JobState(one),
        many.id: JobState(many, variant_outputs=("made-v1.png",)),
        done.id: JobState(  # its call took 1 s
            done,
            status="completed",
            attempts=1,
            started="2026-12-02T10:00:00",
            completed="2026-12-02T10:00:01",
        ),
    }
    config = {"concurrency": 1, "min_interval": 10.0, "rpm": 60}
    online = SessionState(2, "s", "t", "t", config=config, jobs=jobs)
    assert remaining_cost(online) == pytest.approx(3 * call)
    batched = SessionState(2, "s", "t", "t", config=config | {"batch": True}, jobs=jobs)
    assert remaining_cost(batched) == pytest.approx(batch_call + 2 * call)
    # Three calls still to make, one at a time, 10 s apart: 30 s, bound by the spacing.
    left = view_of(online).pace
    assert (left.eta, left.bound) == (30.0, "spacing")

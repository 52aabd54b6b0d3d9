"""The review loop on the contact sheet (issue 16, part 1), in a real headless Chromium over
the DevTools protocol (tests/chromium.py): keep / redo marks made with keys and clicks survive a
reload, the commands the page shows name exactly the marked jobs (a picked variant as
``003:2``), running them pays for exactly those jobs, arrow keys move across the grid, space
shows the full image, and the page works from ``file://`` with no broken image."""

from __future__ import annotations

import html
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from imagegen import journal as journal_mod
from imagegen.cli import main
from imagegen.emulator import Emulator, Outcome
from imagegen.errors import EXIT_FAILED, EXIT_OK
from imagegen.model import Job, JobState, SessionState
from imagegen.report import build_sheet, report_dir, write_report
from imagegen.report.page import CardView, Gallery, Media, card_view, render_page
from imagegen.report.sheet import Card, ContactSheet, Header, Row, Section, Shot

from .chromium import CHROMIUM, SKIP_REASON, Chromium, needs_chromium
from .cli_helpers import FAST, SAMPLE_CATALOGS, SAMPLE_COMBOS, use_emulator

UPGRADE = "document.getElementById('cmd-upgrade').textContent"
RETRY = "document.getElementById('cmd-retry').textContent"
ACTIVE = "document.activeElement.dataset.jobId || null"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Chromium]:
    if CHROMIUM is None:
        pytest.skip(SKIP_REASON)
    with Chromium(tmp_path / "profile") as chromium:
        yield chromium


def marks(browser: Chromium) -> dict[str, str]:
    """Job id -> the mark its card shows ("keep", "redo")."""
    found: dict[str, str] = browser.js(
        "Object.fromEntries(Array.from(document.querySelectorAll('.job[data-mark=keep],"
        ".job[data-mark=redo]')).map(c => [c.dataset.jobId, c.dataset.mark]))"
    )
    return found


def assert_no_broken_image(browser: Chromium) -> None:
    assert browser.js("document.body.dataset.imagesLoaded") == "true"
    assert browser.js("document.body.dataset.brokenImages") == "0"
    assert browser.js("location.protocol") == "file:"


# -- a real session --------------------------------------------------------------------------


@dataclass(frozen=True)
class Made:
    root: Path
    session_id: str
    emulator: Emulator

    @property
    def page(self) -> Path:
        return report_dir(self.root / "sessions", self.session_id) / "index.html"

    def state(self, session_id: str | None = None) -> SessionState:
        return journal_mod.load(self.root / "sessions", session_id or self.session_id)


@pytest.fixture
def made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Made]:
    """A real 6-job session from the CLI against the emulator (two failed: a safety block, a
    blocked prompt), its report written; the emulator stays up for the commands the page
    builds."""
    root = tmp_path / "work"
    root.mkdir()
    monkeypatch.chdir(root)
    with Emulator(render="plain") as emu:
        use_emulator(monkeypatch, emu)
        emu.enqueue(Outcome.finish("IMAGE_SAFETY"), match="6:30 a.m.")
        emu.enqueue(Outcome.prompt_blocked("SAFETY"), match="kraft beli mailer")
        argv = [
            *FAST,
            *("--concurrency", "1"),
            *("--combos-root", str(SAMPLE_COMBOS), "--catalogs-root", str(SAMPLE_CATALOGS)),
            *("--wardrobe", "zip-hoodie", "--ui-style", "Orange", "--catalogs", "v3.2"),
            *("--combos", "C-U-009,C-U-010"),
        ]
        assert main(argv) == EXIT_FAILED
        session_id = journal_mod.list_sessions(root / "sessions")[0]
        yield Made(root, session_id, emu)


def _ids(state: SessionState, status: str) -> list[str]:
    return [job_id for job_id, js in state.jobs.items() if js.status == status]


@needs_chromium
def test_marks_survive_a_reload_and_the_commands_name_exactly_them(
    made: Made, browser: Chromium
) -> None:
    """Keep two images with the k key, redo a failed job with a click, reload: the page shows
    the same marks and the two commands, ready to copy."""
    state = made.state()
    done, failed = _ids(state, "completed"), _ids(state, "failed")
    assert len(done) == 4 and len(failed) == 2
    browser.call("Network.enable")
    browser.open(made.page)
    assert_no_broken_image(browser)
    assert browser.js(UPGRADE) == browser.js(RETRY) == ""

    for job_id in (done[2], done[0]):
        browser.click(f"#job-{job_id} .meta")  # a click on a card focuses it
        assert browser.js(ACTIVE) == job_id
        browser.press("k")
    browser.click(f"#job-{failed[1]} button[data-act=redo]")
    assert browser.js(ACTIVE) == failed[1]  # the keys go on from the clicked card

    browser.reload()
    sid = made.session_id
    assert (
        browser.js(UPGRADE)
        == f"image-gen.sh --upgrade {sid} --job {done[0]},{done[2]} --to-quality 4K"
    )
    assert browser.js(RETRY) == f"image-gen.sh --retry {sid} --job {failed[1]}"
    assert marks(browser) == {done[0]: "keep", done[2]: "keep", failed[1]: "redo"}
    assert browser.js("document.getElementById('n-keep').textContent") == "2"
    assert (
        browser.js(f"document.querySelector('#job-{done[0]} [data-act=keep]').ariaPressed")
        == "true"
    )
    # A failed job has no image to keep: no button, and the key only says so.
    assert browser.js(f"document.querySelector('#job-{failed[0]} [data-act=keep]')") is None
    browser.click(f"#job-{failed[0]} .meta")
    browser.press("k")
    assert failed[0] not in marks(browser)
    assert "no image to keep" in browser.js("document.getElementById('review-status').textContent")
    # k again on a kept card unmarks it; r on a kept card turns it into a redo.
    browser.click(f"#job-{done[2]} .meta")
    browser.press("k")
    browser.click(f"#job-{done[0]} .meta")
    browser.press("r")
    assert browser.js(UPGRADE) == ""
    redo = ",".join(sorted((done[0], failed[1])))
    assert browser.js(RETRY) == f"image-gen.sh --retry {sid} --job {redo}"
    browser.select_option("#to-quality", "2K")
    browser.press("r", "k")
    assert browser.js(UPGRADE) == f"image-gen.sh --upgrade {sid} --job {done[0]} --to-quality 2K"
    browser.reload()
    assert browser.js("document.getElementById('to-quality').value") == "2K"

    requested = [e["params"]["request"]["url"] for e in browser.log("Network.requestWillBeSent")]
    assert requested and all(url.startswith("file:") for url in requested)


@needs_chromium
def test_running_the_commands_pays_for_exactly_the_marked_jobs(
    made: Made, browser: Chromium
) -> None:
    """The issue's check: mark, copy the commands, run them; exactly the kept jobs are
    upgraded and the redone ones made again, nothing else is called or paid for."""
    before = made.state()
    done, failed = _ids(before, "completed"), _ids(before, "failed")
    browser.open(made.page)
    for job_id in (done[1], done[3]):
        browser.click(f"#job-{job_id} .meta")
        browser.press("k")
    for job_id in (failed[0], done[2]):
        browser.click(f"#job-{job_id} .meta")
        browser.press("r")
    upgrade, retry = browser.js(UPGRADE), browser.js(RETRY)

    # Images made, not HTTP requests: the runs upload their reference images once each
    # (Files API requests, not paid calls).
    calls = sum(made.emulator.generated.values())
    assert main(shlex.split(upgrade)[1:]) == EXIT_OK
    assert sum(made.emulator.generated.values()) == calls + 2
    child = made.state().children[0]
    upgraded = made.state(child)
    assert sorted(js.job.label("upgrade_of") for js in upgraded.jobs.values()) == [done[1], done[3]]
    assert {js.job.quality for js in upgraded.jobs.values()} == {"4K"}

    assert main(shlex.split(retry)[1:]) == EXIT_FAILED  # the job left unmarked still failed
    assert sum(made.emulator.generated.values()) == calls + 4
    after = made.state()
    again = {j for j in after.jobs if after.jobs[j].attempts != before.jobs[j].attempts}
    assert again == {failed[0], done[2]}
    assert after.jobs[failed[0]].status == "completed"
    paid = {j for j in after.jobs if after.jobs[j].cost_usd != before.jobs[j].cost_usd}
    assert paid == again

    # The report the retry rewrote: the redo marks were made on what the jobs showed before,
    # so they are dropped; the keep marks still hold.
    browser.reload()
    assert browser.js(RETRY) == ""
    assert marks(browser) == {done[1]: "keep", done[3]: "keep"}
    assert_no_broken_image(browser)


# -- made-up sheets: a known grid, variants ---------------------------------------------------


def _card(job_id: str, status: str = "completed", shots: tuple[Shot, ...] | None = None) -> Card:
    if shots is None:
        shots = (Shot(f"img/{job_id}.png", "1K", "output"),) if status == "completed" else ()
    return Card(
        job_id=job_id,
        status=status,
        attempts=1,
        quality="1K",
        title=f"job {job_id}",
        prompt="a prompt",
        shots=shots,
        output=shots[0].path if shots else None,
        references=(),
        reason="safety block" if status == "failed" else None,
        detail=None,
        note=None,
        pixels=None,
        facts=(),
    )


def _sheet(*sections: Section) -> ContactSheet:
    header = Header(
        session_id="2026-01-01-00-00-00",
        state="finished",
        stop_reason=None,
        parent=None,
        children=(),
        started=None,
        updated=None,
        config=(),
        counts=(("total", 0),),
        cost_usd=0.0,
        duration_s=None,
        upgrade_qualities=("2K", "4K"),
    )
    return ContactSheet(header, sections, ())


def _write_page(folder: Path, sheet: ContactSheet) -> Path:
    """The page in ``folder``, each image a real small PNG beside it (thumbnail = full)."""
    shots: dict[str, Media] = {}
    for n, card in enumerate(sheet.cards):
        for k, shot in enumerate(card.shots):
            path = folder / shot.path
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (96, 96), (40 * n % 255, 90 + 40 * k, 120)).save(path)
            shots[shot.path] = Media(shot.path, shot.path, 96, 96)
    index = folder / "index.html"
    index.write_text(render_page(sheet, Gallery(shots, {}, {})), encoding="utf-8")
    return index


GRID = (
    Section(
        "A",
        ("c1", "c2", "c3"),
        (
            Row("r1", "", ((_card("001"),), (_card("002"),), (_card("003"),))),
            Row("r2", "", ((_card("004"),), (), (_card("005"), _card("006", "failed")))),
        ),
    ),
    Section("B", ("x1",), (Row("r3", "", ((_card("007"),),)),)),
)


@needs_chromium
def test_arrow_keys_move_focus_across_rows_columns_and_sections(
    tmp_path: Path, browser: Chromium
) -> None:
    browser.open(_write_page(tmp_path, _sheet(*GRID)))
    assert_no_broken_image(browser)
    visited = []
    for key in (
        "ArrowRight",  # nothing focused yet: the first card
        "ArrowLeft",  # at the row's start: stays
        "ArrowRight",
        "ArrowRight",
        "ArrowRight",  # at the row's end: stays
        "ArrowDown",  # the same column, next row: the top of a cell of two cards
        "ArrowDown",  # the second card of that cell
        "ArrowDown",  # the next section's row: its nearest column
        "ArrowUp",  # back: the nearest column of the row above
        "ArrowRight",  # over an empty cell
        "ArrowUp",
    ):
        browser.press(key)
        visited.append(browser.js(ACTIVE))
    assert visited == ["001", "001", "002", "003", "003", "005", "006", "007", "004", "005", "003"]
    # One card at a time is in the tab order: the focused one.
    assert browser.js("Array.from(document.querySelectorAll('.job[tabindex=\"0\"]')).length") == 1


@needs_chromium
def test_space_shows_the_full_image_and_closes_it(tmp_path: Path, browser: Chromium) -> None:
    browser.open(_write_page(tmp_path, _sheet(*GRID)))
    browser.press("ArrowRight", "ArrowRight", " ")
    assert browser.js("!document.getElementById('viewer').hidden")
    assert browser.js("document.querySelector('#viewer img').getAttribute('src')") == "img/002.png"
    assert browser.js(_LOADED_WIDTH) == 96
    browser.press("ArrowRight")  # the viewer follows the focus
    assert browser.js("document.querySelector('#viewer img').getAttribute('src')") == "img/003.png"
    browser.press(" ")
    assert browser.js("document.getElementById('viewer').hidden")
    browser.press("ArrowDown", "ArrowDown", " ")  # a failed job: nothing to show
    assert browser.js("document.getElementById('viewer').hidden")
    browser.press("ArrowUp", " ", "Escape")
    assert browser.js("document.getElementById('viewer').hidden")
    assert browser.js(ACTIVE) == "005"


_LOADED_WIDTH = """new Promise(done => {
    const img = document.querySelector('#viewer img');
    if (img.complete) done(img.naturalWidth);
    else { img.onload = () => done(img.naturalWidth); img.onerror = () => done(0); }
})"""


@needs_chromium
def test_consecutive_ids_become_ranges(tmp_path: Path, browser: Chromium) -> None:
    row = tuple((_card(f"{n:03d}"),) for n in range(1, 9))
    sheet = _sheet(Section("A", tuple(f"c{n}" for n in range(1, 9)), (Row("r", "", row),)))
    browser.open(_write_page(tmp_path, sheet))
    browser.press("ArrowRight")
    for key in "kRkRkRRkRkRRk":  # k keeps, R moves right: keep 001-003, 005, 006, 008
        browser.press("k" if key == "k" else "ArrowRight")
    assert browser.js(UPGRADE).endswith("--job 001-003,005,006,008 --to-quality 4K")


VARIANTS = (
    Section(
        "V",
        ("c1", "c2", "c3"),
        (
            Row(
                "r1",
                "",
                (
                    (
                        _card(
                            "003",
                            shots=tuple(
                                Shot(f"img/003-v{n}.png", "1K", "variant", n) for n in (1, 2, 3)
                            ),
                        ),
                    ),
                    (_card("004", "failed"),),
                    (_card("007"),),
                ),
            ),
        ),
    ),
)


@needs_chromium
def test_a_kept_variant_is_named_in_the_upgrade_and_survives_a_reload(
    tmp_path: Path, browser: Chromium
) -> None:
    browser.open(_write_page(tmp_path, _sheet(*VARIANTS)))
    assert_no_broken_image(browser)
    assert browser.js("document.querySelectorAll('#job-003 .shot').length") == 3
    browser.press("ArrowRight", "2")  # the first card; key 2 keeps its variant 2
    assert browser.js(UPGRADE).endswith("--job 003:2 --to-quality 4K")
    browser.click("#job-003 .shot[data-variant='3'] button.pick")
    assert browser.js(UPGRADE).endswith("--job 003:3 --to-quality 4K")
    browser.press("ArrowRight", "k", "r", "ArrowRight", "k")  # 004 has no image: redo only
    assert browser.js(UPGRADE).endswith("--job 003:3,007 --to-quality 4K")
    assert browser.js(RETRY).endswith("--retry 2026-01-01-00-00-00 --job 004")

    browser.reload()
    assert browser.js(UPGRADE).endswith("--job 003:3,007 --to-quality 4K")
    picked = "Array.from(document.querySelectorAll('.shot.picked')).map(s => s.dataset.variant)"
    assert browser.js(picked) == ["3"]
    browser.click("#job-003 .meta")
    browser.press(" ")  # the viewer shows the kept variant; v shows the next one
    assert (
        browser.js("document.querySelector('#viewer img').getAttribute('src')") == "img/003-v3.png"
    )
    browser.press("v")
    assert (
        browser.js("document.querySelector('#viewer img').getAttribute('src')") == "img/003-v1.png"
    )
    browser.press("k")  # k in the viewer: unkeep (the card was kept)
    browser.press("k")  # and again: keep the variant on show
    assert browser.js(UPGRADE).endswith("--job 003:1,007 --to-quality 4K")
    browser.press("Escape", "1")  # 1 again on the kept variant 1: unkeep
    assert browser.js(UPGRADE).endswith("--job 007 --to-quality 4K")


@needs_chromium
def test_copy_uses_the_clipboard_or_else_selects_the_command(
    tmp_path: Path, browser: Chromium
) -> None:
    browser.open(_write_page(tmp_path, _sheet(*GRID)))
    browser.press("ArrowRight", "k")
    command = browser.js(UPGRADE)
    browser.js(
        "window.copied = null; Object.defineProperty(navigator, 'clipboard', {configurable: true,"
        " value: {writeText: t => { window.copied = t; return Promise.resolve(); }}})"
    )
    browser.click("button[data-target=cmd-upgrade]")
    assert browser.js("window.copied") == command
    # file:// may offer no clipboard API: the text is selected for Ctrl+C instead.
    browser.js(
        "Object.defineProperty(navigator, 'clipboard', {configurable: true, value: undefined})"
    )
    browser.js("getSelection().removeAllRanges()")
    browser.click("button[data-target=cmd-upgrade]")
    assert browser.js("getSelection().toString()") == command
    assert browser.js("document.querySelector('button[data-target=cmd-retry]').disabled")


@needs_chromium
def test_clearing_the_selection_takes_two_clicks(tmp_path: Path, browser: Chromium) -> None:
    browser.open(_write_page(tmp_path, _sheet(*GRID)))
    browser.press("ArrowRight", "k", "ArrowRight", "r")
    browser.click("button[data-act=clear]")
    assert marks(browser) == {"001": "keep", "002": "redo"}
    browser.click("button[data-act=clear]")
    assert marks(browser) == {}
    browser.reload()
    assert marks(browser) == {} and browser.js(UPGRADE) == browser.js(RETRY) == ""


# -- the page's markup (no browser) -----------------------------------------------------------


def test_only_a_completed_image_can_be_kept_and_every_job_redone() -> None:
    cards = {c.card.job_id: c for cell in VARIANTS[0].rows[0].cells for c in map(_view, cell)}
    assert cards["003"].keepable and cards["003"].variants == (1, 2, 3)
    assert not cards["004"].keepable and cards["004"].slots[0].placeholder is not None
    assert cards["007"].keepable and cards["007"].variants == ()
    markup = render_page(_sheet(*VARIANTS), Gallery({}, {}, {}))
    assert markup.count('data-act="redo"') == 3
    assert markup.count('class="pick" data-act="keep"') == 3  # one per variant of 003
    assert (
        'id="job-004" tabindex="-1"' in markup
        and "data-keepable" not in markup.split('id="job-004"')[1].split(">")[0]
    )


def _view(card: Card) -> CardView:
    return card_view(card, Gallery({}, {}, {}))


def test_commands_name_the_sessions_folder_when_it_is_not_the_default(
    made: Made, tmp_path: Path
) -> None:
    elsewhere = Path("elsewhere dir")
    (made.root / elsewhere).mkdir()
    for name in (f"{made.session_id}-session.json", f"{made.session_id}-events.jsonl"):
        (made.root / elsewhere / name).write_bytes((made.root / "sessions" / name).read_bytes())
    page = write_report(elsewhere, made.session_id).read_text(encoding="utf-8")
    assert "data-options=\"--sessions-dir 'elsewhere dir'\"" in html.unescape(page)
    assert 'data-options=""' in made.page.read_text(encoding="utf-8")


def test_upgrades_are_offered_to_the_larger_sizes_only() -> None:
    job = Job("001", "combos", "t", ("s", "r", "c"), "f.md", ("p",), (), "o.png", "1K", "1:1", "m")
    for quality, larger in (("1K", ("2K", "4K")), ("2K", ("4K",)), ("4K", ())):
        state = SessionState(
            2, "S", "", "", {"quality": quality, "provider": "gemini"}, {"001": JobState(job)}
        )
        assert build_sheet(state).header.upgrade_qualities == larger

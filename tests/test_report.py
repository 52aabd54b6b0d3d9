"""The contact sheet: every job on the page, failures labelled, links that work from disk,
thumbnails made once; and, in a real headless Chromium, no broken image."""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import orjson
import pytest
from PIL import Image

from imagegen import journal as journal_mod
from imagegen.cli import main
from imagegen.emulator import Emulator, Outcome
from imagegen.errors import EXIT_FAILED, EXIT_OK, InputError
from imagegen.model import Job, JobState, SessionState
from imagegen.report import (
    build_sheet,
    failure_label,
    prepare_thumbnails,
    report_dir,
    write_report,
)
from imagegen.report.page import Gallery, format_duration, render_page

from .chromium import CHROMIUM, HEADLESS_FLAGS, needs_chromium
from .cli_helpers import FAST, OFFLINE, SAMPLE_CATALOGS, SAMPLE_COMBOS, use_emulator


@dataclass(frozen=True)
class Sample:
    root: Path  # the working directory the sessions ran in
    sessions: Path
    first: str  # 6 jobs at 1K, two of them failed (safety block, prompt blocked)
    upgrade: str  # the 4 completed jobs of `first` again at 2K

    def doc(self, session_id: str) -> dict[str, Any]:
        state = journal_mod.load(self.root / self.sessions, session_id)
        return orjson.loads(orjson.dumps(journal_mod.encode_session(state)))


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sample]:
    """Two real sessions from the CLI against the emulator, with their reports written."""
    root = tmp_path_factory.mktemp("workdir")
    with pytest.MonkeyPatch.context() as mp, Emulator(render="plain") as emu:
        mp.chdir(root)
        use_emulator(mp, emu)
        # One worker, so the jobs run in plan order and the first GN01 and ZH01 ones fail.
        emu.enqueue(Outcome.finish("IMAGE_SAFETY"), match="6:30 a.m.")
        emu.enqueue(Outcome.prompt_blocked("SAFETY"), match="kraft beli mailer")
        run = [*FAST, "--concurrency", "1"]
        assert (
            main(
                [
                    *run,
                    "--combos-root",
                    str(SAMPLE_COMBOS),
                    "--catalogs-root",
                    str(SAMPLE_CATALOGS),
                    "--wardrobe",
                    "zip-hoodie",
                    "--ui-style",
                    "Orange",
                    "--catalogs",
                    "v3.2",
                    "--combos",
                    "C-U-009,C-U-010",
                ]
            )
            == EXIT_FAILED
        )
        first = journal_mod.list_sessions(root / "sessions")[0]
        assert main([*run, "--upgrade", first, "--to-quality", "2K"]) == EXIT_OK
        upgrade = journal_mod.list_sessions(root / "sessions")[1]
        sample = Sample(root, Path("sessions"), first, upgrade)
        write_report(sample.sessions, first)
        write_report(sample.sessions, upgrade)  # also rebuilds the first's, to link to it
        yield sample


class Page(HTMLParser):
    """What a reader sees of a report: each job's visible text, every link and image."""

    def __init__(self, markup: str) -> None:
        super().__init__()
        self.jobs: dict[str, dict[str, str]] = {}
        self.visible: dict[str, str] = {}
        self.urls: list[str] = []
        self.imgs: list[dict[str, str]] = []
        self.body: dict[str, str] = {}
        self._job: str | None = None
        self._in_details = 0
        self.markup = markup
        self.feed(markup)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "body":
            self.body = a
        if "data-job-id" in a:
            self._job = a["data-job-id"]
            self.jobs[self._job] = a
            self.visible[self._job] = ""
        if tag == "details":
            self._in_details += 1
        if tag == "img":
            self.imgs.append(a)
        self.urls += [a[k] for k in ("href", "src") if k in a]

    def handle_endtag(self, tag: str) -> None:
        if tag == "details":
            self._in_details -= 1
        if tag == "figure":
            self._job = None

    def handle_data(self, data: str) -> None:
        if self._job and not self._in_details:
            self.visible[self._job] += data + " "


def page_of(index: Path) -> Page:
    return Page(index.read_text(encoding="utf-8"))


def thumbs_of(index: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in (index.parent / "thumbs").iterdir()}


# -- the page -------------------------------------------------------------------------------


def test_every_job_has_a_cell_with_its_status(sample: Sample) -> None:
    for session_id in (sample.first, sample.upgrade):
        page = page_of(report_dir(sample.sessions, session_id) / "index.html")
        jobs = {j["id"]: j["status"] for j in sample.doc(session_id)["jobs"]}
        assert {k: v["data-status"] for k, v in page.jobs.items()} == jobs


def test_failed_cells_show_their_reason(sample: Sample) -> None:
    page = page_of(report_dir(sample.sessions, sample.first) / "index.html")
    failed = {
        j["id"]: j["finish_reason"]
        for j in sample.doc(sample.first)["jobs"]
        if j["status"] == "failed"
    }
    assert sorted(failed.values()) == ["IMAGE_SAFETY", "PROMPT_BLOCKED:SAFETY"]
    for job_id, reason in failed.items():
        label = "safety block" if reason == "IMAGE_SAFETY" else "prompt blocked"
        assert page.jobs[job_id]["data-reason"] == label
        assert label in page.visible[job_id]
    assert "2 failed" in page.markup


def test_links_are_relative_and_lead_to_files(sample: Sample) -> None:
    folder = report_dir(sample.sessions, sample.upgrade)
    page = page_of(folder / "index.html")
    files = [u for u in page.urls if not u.startswith("#")]
    assert len(files) > 20
    for url in files:
        assert not urlparse(url).scheme and not url.startswith("/"), url
        assert (folder / unquote(url)).is_file(), url
    assert f"../{sample.first}-report/index.html" in files  # the parent's report


def test_upgrade_cells_show_both_resolutions_and_parent_links_child(sample: Sample) -> None:
    page = page_of(report_dir(sample.sessions, sample.upgrade) / "index.html")
    for job_id, text in page.visible.items():
        assert "1K before" in text and "2K" in text, job_id
    shots = [i for i in page.imgs if i["src"].startswith("thumbs/") and "reference" not in i["alt"]]
    assert len(shots) == 2 * len(page.jobs)
    parent = page_of(report_dir(sample.sessions, sample.first) / "index.html")
    assert f"../{sample.upgrade}-report/index.html" in parent.urls


def test_rebuild_reuses_every_thumbnail(sample: Sample) -> None:
    index = report_dir(sample.sessions, sample.first) / "index.html"
    before = thumbs_of(index)
    assert write_report(sample.sessions, sample.first) == index.resolve()
    assert thumbs_of(index) == before


def test_changed_image_gets_a_new_thumbnail_and_the_old_one_goes(
    sample: Sample, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = _copy_first_session(sample, tmp_path, monkeypatch)
    index = write_report(copy, sample.first)
    before = thumbs_of(index)
    output = next(j["output"] for j in sample.doc(sample.first)["jobs"] if j["output"])
    Image.new("RGB", (1024, 1024), (0, 0, 0)).save(output)
    write_report(copy, sample.first)
    after = thumbs_of(index)
    assert len(after) == len(before)
    assert len(set(after) - set(before)) == 1  # one new, one pruned, the rest untouched
    assert all(after[name] == before[name] for name in set(after) & set(before))


def test_missing_and_unreadable_images_are_labelled_not_broken(
    sample: Sample, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = _copy_first_session(sample, tmp_path, monkeypatch)
    done = [j for j in sample.doc(sample.first)["jobs"] if j["output"]]
    Path(done[0]["output"]).unlink()
    Path(done[1]["output"]).write_bytes(b"\x89PNG\r\n\x1a\n cut short")
    page = page_of(write_report(copy, sample.first))
    assert "file missing" in page.visible[done[0]["id"]]
    assert "unreadable image" in page.visible[done[1]["id"]]
    assert all((tmp_path / copy / f"{sample.first}-report" / i["src"]).is_file() for i in page.imgs)


def test_a_run_makes_each_thumbnail_as_it_saves_the_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the report at the end of the run left out, the thumbnails are there all the same;
    the report then decodes no image."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("imagegen.session.write_report", lambda *_args: Path("not written"))
    argv = [*OFFLINE, "--combos-root", str(SAMPLE_COMBOS), "--catalogs-root", str(SAMPLE_CATALOGS)]
    argv += ["--wardrobe", "zip-hoodie", "--ui-style", "Orange", "--catalogs", "v3.2"]
    assert main([*argv, "--combos", "C-U-009"]) == EXIT_OK
    sessions = Path("sessions")
    session_id = journal_mod.list_sessions(sessions)[0]
    state = journal_mod.load(sessions, session_id)
    references = {r for js in state.jobs.values() for r in js.job.references}
    made = thumbs_of(report_dir(sessions, session_id) / "index.html")
    assert len(made) == len(state.jobs) + len(references)

    def decode(*_args: object) -> tuple[int, int]:
        raise AssertionError("the report decoded an image")

    monkeypatch.setattr("imagegen.report.thumbs.render_thumbnail", decode)
    index = write_report(sessions, session_id)
    assert thumbs_of(index) == made
    shown = {i["src"] for i in Page(index.read_text(encoding="utf-8")).imgs}
    assert shown == {f"thumbs/{name}" for name in made}


def test_preparing_a_thumbnail_never_raises(tmp_path: Path) -> None:
    """A thumbnail is a cache: a missing image, a broken one or an unwritable report folder
    cost the run nothing (the report says what is wrong later)."""
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n cut short")
    prepare_thumbnails(tmp_path, "S", tmp_path / "missing.png", (str(broken),))
    assert not list((tmp_path / "S-report" / "thumbs").iterdir())
    (tmp_path / "blocked-report").write_text("a file where the folder goes")
    prepare_thumbnails(tmp_path, "blocked", broken)


def test_thumbnail_threads_decode_within_the_pixel_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Large PNG references (no reduced decode) are decoded in turn, not all at once: with a
    budget of one and a half images, never two images' pixels at the same time, and every
    thumbnail is still made."""
    from imagegen.report import thumbs

    sources = []
    for n in range(24):
        path = tmp_path / f"ref-{n}.png"
        Image.new("RGB", (1000, 1000), (n * 10, 80, 160)).save(path, compress_level=0)
        sources.append((path, thumbs.REFERENCE_BOX))
    monkeypatch.setattr(thumbs, "_DECODING", thumbs._PixelBudget(1_500_000))
    decoding: list[int] = []
    most = [0]
    lock = threading.Lock()
    real = Image.Image.thumbnail

    def counted(self: Image.Image, *args: Any, **kwargs: Any) -> None:
        pixels = self.width * self.height  # before: thumbnail() shrinks the image in place
        with lock:
            decoding.append(pixels)
            most[0] = max(most[0], sum(decoding))
        try:
            real(self, *args, **kwargs)
        finally:
            with lock:
                decoding.remove(pixels)

    monkeypatch.setattr(Image.Image, "thumbnail", counted)
    made = thumbs.make_thumbnails(sources, tmp_path / "thumbs", workers=8)
    assert all(t.name and t.width == 120 for t in made.values())
    assert most[0] == 1_000_000


def test_unknown_session_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no session"):
        write_report(tmp_path, "2020-01-01-00-00-00")


EVIL = """<script>alert("x")</script> it's {{ 6007 * 7 }} {% if 1 %}<i>é 東京 🎨</i>{% endif %}"""


def test_journal_text_is_escaped() -> None:
    """Markup, quotes, template syntax and unicode from the journal arrive as text, everywhere:
    element content, attributes, the header, the review panel's data."""
    job = Job(
        id="001",
        source="combos",
        title="P<1> + C&1 \"q\" 'a'",
        group=("v1 · <i>UI</i>", "P<1>_long_id", "C&1"),
        prompt_file="f.md",
        prompt_parts=(EVIL,),
        references=(),
        target="out/{time}.png",
        quality="1K",
        aspect="1:1",
        model="gemini-3-pro-image",
        labels=(("wardrobe", EVIL),),
    )
    failed = JobState(job, status="failed", attempts=1, error=EVIL, error_kind="bad_request")
    state = SessionState(
        version=2,
        session_id='S"<b>',
        started="2026-01-01T00:00:00",
        updated="2026-01-01T00:00:00",
        config={"facts": [["wardrobe", EVIL]]},
        jobs={"001": failed},
        state="finished",
    )
    markup = render_page(
        build_sheet(state), Gallery({}, {}, {}), command_options=("--sessions-dir", 'a b"<c>')
    )
    assert "<script>alert" not in markup and "<i>" not in markup and "P<1>" not in markup
    assert "42049" not in markup and "{{ 6007 * 7 }}" in markup  # journal text is never a template
    assert markup.count("<script>") == 1  # the page's own script
    tags = Tags(markup)
    assert {"i", "b"}.isdisjoint(tags.names)
    assert tags.attrs("body")["data-session"] == 'S"<b>'
    assert tags.attrs("aside")["data-options"] == "--sessions-dir 'a b\"<c>'"
    assert tags.attrs("figure")["data-reason"] == "bad request"
    assert tags.text("pre") == EVIL
    assert tags.text("h2") == "v1 · <i>UI</i>"
    assert tags.texts("dd").count(EVIL) == 3  # the header's fact, the card's label and error


class Tags(HTMLParser):
    """Every element of a page: its name, attributes and text, in document order."""

    VOID = frozenset({"meta", "img", "br", "wbr", "input", "link", "hr"})

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str], list[str]]] = []
        self._open: list[int] = []
        self.feed(markup)

    @property
    def names(self) -> list[str]:
        return [name for name, _, _ in self.elements]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}, []))
        if tag not in self.VOID:
            self._open.append(len(self.elements) - 1)

    def handle_endtag(self, tag: str) -> None:
        for n in reversed(range(len(self._open))):
            if self.elements[self._open[n]][0] == tag:
                del self._open[n:]
                break

    def handle_data(self, data: str) -> None:
        for n in self._open:
            self.elements[n][2].append(data)

    def attrs(self, tag: str) -> dict[str, str]:
        return next(a for name, a, _ in self.elements if name == tag)

    def texts(self, tag: str) -> list[str]:
        return ["".join(text) for name, _, text in self.elements if name == tag]

    def text(self, tag: str) -> str:
        return self.texts(tag)[0]


def _failed(finish_reason: str | None, error: str | None, kind: str | None) -> JobState:
    job = Job("001", "combos", "t", ("s", "r", "c"), "f.md", ("p",), (), "o.png", "1K", "1:1", "m")
    return JobState(job, status="failed", finish_reason=finish_reason, error=error, error_kind=kind)


@pytest.mark.parametrize(
    ("finish_reason", "error", "kind", "label"),
    [
        ("IMAGE_SAFETY", "no image (finish reason IMAGE_SAFETY)", "no_image", "safety block"),
        ("PROMPT_BLOCKED:OTHER", "the prompt was blocked (OTHER)", "no_image", "prompt blocked"),
        ("TEXT_ONLY", "no image, the model answered: no", "no_image", "text, no image"),
        ("NO_IMAGE", "no image (finish reason NO_IMAGE)", "no_image", "no image"),
        ("RECITATION", "no image (finish reason RECITATION)", "no_image", "recitation block"),
        (
            None,
            "HTTP 429 RESOURCE_EXHAUSTED: You exceeded your current quota",
            "rate_limited",
            "quota",
        ),
        (None, "HTTP 429 ... (per-day quota GenerateRequestsPerDay)", "batch_stop", "quota"),
        (None, "HTTP 403 PERMISSION_DENIED", "batch_stop", "stopped"),
        (None, "no answer within 90 s", "timeout", "timeout"),
        (None, "HTTP 503 UNAVAILABLE", "server_error", "server error"),
        (None, "HTTP 400 INVALID_ARGUMENT", "bad_request", "bad request"),
        (
            None,
            "reference image unreadable: combos/x/ui.png",
            "reference_unreadable",
            "reference unreadable",
        ),
        (None, "cannot write out/x.png: no space left", "write_failed", "write failed"),
        (None, "something new", "something_new", "failed"),
        (None, None, None, None),
        # Format-1 journals kept the kind as the message's prefix.
        (None, "server_error: HTTP 503 UNAVAILABLE", None, "server error"),
        (None, "reference image unreadable: combos/x/ui.png", None, "reference unreadable"),
    ],
)
def test_failure_labels(
    finish_reason: str | None, error: str | None, kind: str | None, label: str | None
) -> None:
    assert failure_label(_failed(finish_reason, error, kind)) == label


def test_durations_read_like_a_person_would_write_them() -> None:
    assert [format_duration(s) for s in (None, 4.4, 65, 7260)] == [
        "\u2013",
        "4 s",
        "1 min 05 s",
        "2 h 01 min",
    ]


def _copy_first_session(sample: Sample, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The first session's journal and images in a fresh working directory (made current)."""
    for name in ("Result_images", "sessions"):
        shutil.copytree(
            sample.root / name, tmp_path / name, ignore=shutil.ignore_patterns("*-report", "*.lock")
        )
    monkeypatch.chdir(tmp_path)
    return Path("sessions")


# -- in a real browser ----------------------------------------------------------------------


@dataclass
class Browser:
    profile: Path
    flags: list[str] = field(
        default_factory=lambda: [*HEADLESS_FLAGS, "--virtual-time-budget=5000"]
    )

    def run(self, *args: str) -> str:
        assert CHROMIUM is not None
        done = subprocess.run(
            [CHROMIUM, *self.flags, f"--user-data-dir={self.profile}", *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return done.stdout

    def dom(self, index: Path) -> Page:
        """The page after load, as the browser holds it (our script has counted the images)."""
        return Page(self.run("--dump-dom", index.resolve().as_uri()))


@needs_chromium
def test_in_a_browser_every_job_shows_and_no_image_is_broken(
    sample: Sample, tmp_path: Path
) -> None:
    browser = Browser(tmp_path / "profile")
    for session_id in (sample.first, sample.upgrade):
        index = report_dir(sample.sessions, session_id) / "index.html"
        page = browser.dom(index)
        jobs = sample.doc(session_id)["jobs"]
        assert page.body.get("data-images-loaded") == "true"
        assert page.body["data-broken-images"] == "0"
        assert int(page.body["data-images"]) == len(page.imgs) > len(jobs)
        assert sorted(page.jobs) == sorted(j["id"] for j in jobs)
        for job in jobs:
            if job["status"] == "failed":
                label = failure_label(journal_mod.load(sample.sessions, session_id).jobs[job["id"]])
                assert label and label in page.visible[job["id"]]

    shot = tmp_path / "report.png"
    browser.run(
        "--screenshot=" + str(shot),
        "--window-size=1400,1000",
        (report_dir(sample.sessions, sample.upgrade) / "index.html").resolve().as_uri(),
    )
    with Image.open(shot) as img:
        assert img.size == (1400, 1000)
        assert len(img.convert("RGB").getcolors(1_000_000) or ()) > 1000  # thumbnails, not blank


@needs_chromium
def test_in_a_browser_a_broken_image_is_counted(sample: Sample, tmp_path: Path) -> None:
    """The check above can fail: remove one thumbnail and the page reports it."""
    folder = tmp_path / "report"
    shutil.copytree(report_dir(sample.sessions, sample.first), folder)
    next((folder / "thumbs").iterdir()).unlink()
    page = Browser(tmp_path / "profile").dom(folder / "index.html")
    assert int(page.body["data-broken-images"]) >= 1

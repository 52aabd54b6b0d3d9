"""The contact sheet as one self-contained HTML page: inline CSS, no fonts or scripts from
elsewhere, every link relative, so it opens from disk with no server and no network.

Pure: a :class:`~imagegen.report.sheet.ContactSheet` and the hrefs of its images in, a string
out. Every piece of text from the journal is escaped. The prompt, references and error of a job
sit in a ``<details>`` element: one click, no JavaScript. The one inline script only counts the
images that failed to load, for a headless browser to read (tests/test_report.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from html import escape

from .sheet import Card, ContactSheet, Header, Section, file_name

_TIMES, _DASH = "\u00d7", "\u2013"  # typography, spelled as escapes for ruff's RUF001


@dataclass(frozen=True, slots=True)
class Media:
    """How the page shows one image: ``href`` of the full image and ``thumb`` of its thumbnail
    (URLs relative to the page), the thumbnail's size in pixels, or the ``problem`` instead."""

    href: str | None
    thumb: str | None
    width: int = 0
    height: int = 0
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class Gallery:
    """Media by the path the journal recorded: job images, and reference images (smaller)."""

    shots: Mapping[str, Media]
    references: Mapping[str, Media]
    sessions: Mapping[str, str | None]  # related session id -> href of its report, if written


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def format_duration(seconds: float | None) -> str:
    """ "42 s", "3 min 05 s", "2 h 07 min"; a dash when unknown."""
    if seconds is None:
        return _DASH
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def _when(iso: str | None) -> str:
    return iso.replace("T", " ") if iso else _DASH


def _breakable(text: str) -> str:
    """Escaped, with line-break chances after underscores (prompt ids are long snake case)."""
    return _e(text).replace("_", "_<wbr>")


def _session_link(session_id: str, gallery: Gallery) -> str:
    href = gallery.sessions.get(session_id)
    if href:
        return f'<a href="{_e(href)}">{_e(session_id)}</a>'
    hint = f"no report yet: imagegen --report {session_id}"
    return f'<span title="{_e(hint)}">{_e(session_id)}</span>'


def _header(sheet: ContactSheet, gallery: Gallery) -> str:
    h: Header = sheet.header
    state = _e(h.state) + (f" ({_e(h.stop_reason)})" if h.stop_reason else "")
    lineage = []
    if h.parent:
        lineage.append(f"Upgrade of session {_session_link(h.parent, gallery)}")
    if h.children:
        links = ", ".join(_session_link(c, gallery) for c in h.children)
        lineage.append(f"Upgraded in {links}")
    config = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in h.config)
    counts = "".join(
        f'<span class="count {_e(status)}">{n} {_e(status if status != "total" else "jobs")}</span>'
        for status, n in h.counts
        if n or status in ("total", "completed", "failed")
    )
    numbers = (
        f"<dt>cost</dt><dd>${h.cost_usd:.2f}</dd>"
        f"<dt>duration</dt><dd>{format_duration(h.duration_s)}</dd>"
        f"<dt>started</dt><dd>{_e(_when(h.started))}</dd>"
        f"<dt>updated</dt><dd>{_e(_when(h.updated))}</dd>"
    )
    nav = "".join(
        f'<a href="#{_e(_section_id(n))}">{_e(s.title)}</a>' for n, s in enumerate(sheet.sections)
    )
    attention = ""
    if sheet.attention:
        items = "".join(
            f'<li><a href="#job-{_e(c.job_id)}">#{_e(c.job_id)} {_e(c.title)}</a>: '
            f"{_e(c.reason or c.status)}</li>"
            for c in sheet.attention
        )
        attention = (
            f'<details class="attention"><summary>{len(sheet.attention)} job(s) need '
            f"attention</summary><ul>{items}</ul></details>"
        )
    return (
        f'<header><h1>Session {_e(h.session_id)} <span class="state">{state}</span></h1>'
        + (f'<p class="lineage">{" · ".join(lineage)}</p>' if lineage else "")
        + f'<div class="counts">{counts}</div>'
        f'<div class="facts"><dl>{config}</dl><dl>{numbers}</dl></div>'
        f"<nav>{nav}</nav>{attention}</header>"
    )


def _section_id(number: int) -> str:
    return f"s-{number + 1}"


def _image(media: Media | None, alt: str, css: str) -> str:
    if media is None or media.thumb is None:
        problem = media.problem if media else "not recorded"
        return f'<div class="ph missing {css}"><strong>{_e(problem)}</strong></div>'
    img = (
        f'<img src="{_e(media.thumb)}" width="{media.width}" height="{media.height}" '
        f'alt="{_e(alt)}" title="{_e(alt)}" decoding="async">'
    )
    if media.href:
        return f'<a href="{_e(media.href)}" target="_blank" rel="noopener">{img}</a>'
    return img


def _placeholder(card: Card) -> str:
    label = card.reason if card.status == "failed" else card.status
    small = (
        card.detail
        if card.status == "failed"
        else (f"last try: {card.reason}" if card.reason else "no image yet")
    )
    return (
        f'<div class="ph {_e(card.status)}" title="{_e(card.detail or "")}">'
        f"<strong>{_e(label)}</strong><small>{_e(_shorten(small or '', 120))}</small></div>"
    )


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _card(card: Card, gallery: Gallery) -> str:
    alt = card.title
    slots = [
        (
            _image(gallery.shots.get(s.path), f"{alt} ({s.quality})", ""),
            f"{s.quality}{' before' if s.role == 'previous' else ''}",
        )
        for s in card.shots
    ]
    if not any(s.role == "output" for s in card.shots):
        slots.append((_placeholder(card), card.quality))
    pair = " pair" if len(slots) > 1 else ""
    shots = "".join(
        f'<div class="shot">{body}'
        + (f'<span class="tier">{_e(tier)}</span>' if pair else "")
        + "</div>"
        for body, tier in slots
    )
    attempts = f"{card.attempts} attempt{'s' if card.attempts != 1 else ''}"
    meta = " · ".join(filter(None, (f"#{card.job_id}", attempts, card.quality, card.pixels)))
    note = f'<p class="note">{_e(card.note)}</p>' if card.note else ""
    refs = "".join(
        _image(gallery.references.get(r), f"reference {n}: {file_name(r)}", "ref")
        for n, r in enumerate(card.references, 1)
    )
    dl = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in card.facts)
    return (
        f'<figure class="job{pair}" id="job-{_e(card.job_id)}" data-job-id="{_e(card.job_id)}" '
        f'data-status="{_e(card.status)}" data-reason="{_e(card.reason or "")}">'
        f'<div class="shots">{shots}</div><figcaption>'
        f'<span class="badge {_e(card.status)}">{_e(card.status)}</span> '
        f'<span class="meta">{_e(meta)}</span>{note}'
        f"<details><summary>prompt &amp; {len(card.references)} references</summary>"
        f'<div class="more"><pre>{_e(card.prompt)}</pre><div class="refs">{refs}</div>'
        f"<dl>{dl}</dl></div></details></figcaption></figure>"
    )


def _section(number: int, section: Section, gallery: Gallery) -> str:
    head = "".join(f'<th scope="col">{_e(c)}</th>' for c in section.columns)
    rows = []
    for row in section.rows:
        cells = "".join(
            f"<td>{''.join(_card(c, gallery) for c in cell)}</td>"
            if cell
            else '<td class="empty">no job</td>'
            for cell in row.cells
        )
        rows.append(
            f'<tr><th scope="row"><span>{_breakable(row.title)}</span>'
            f"<small>{_breakable(row.subtitle)}</small></th>{cells}</tr>"
        )
    return (
        f'<section id="{_e(_section_id(number))}"><h2>{_e(section.title)}</h2>'
        '<div class="scroll"><table><thead><tr>'
        f'<th class="corner"></th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div></section>"
    )


_CSS = """
:root{--w:180px;--bg:#f3f3f1;--card:#fff;--ink:#1c1c1e;--muted:#6b6b70;--line:#deded9;
--completed:#1f7a3a;--failed:#b3261e;--pending:#7a6a00;--running:#1d5fbf;--retry:#a35200}
*{box-sizing:border-box}
body{margin:0;font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
background:var(--bg);color:var(--ink)}
header{padding:16px 24px;background:var(--card);border-bottom:1px solid var(--line)}
h1{font-size:20px;margin:0 0 6px}h1 .state{font-weight:400;color:var(--muted);font-size:16px}
.lineage{margin:0 0 8px}
.counts{display:flex;flex-wrap:wrap;gap:6px;margin:8px 0}
.count{padding:2px 10px;border-radius:12px;background:#e7e7e3;font-weight:600}
.count.completed{background:#dcefe1;color:var(--completed)}
.count.failed{background:#f8dedc;color:var(--failed)}
.count.pending,.count.retry{background:#f5efcf;color:var(--pending)}
.count.running,.count.submitted{background:#dce7f8;color:var(--running)}
.facts{display:flex;flex-wrap:wrap;align-items:flex-start;gap:4px 48px}
.facts dl{display:grid;grid-template-columns:max-content auto;gap:2px 12px;margin:4px 0}
dt{color:var(--muted)}dd{margin:0}
nav{display:flex;flex-wrap:wrap;gap:12px;margin-top:8px}
a{color:var(--running)}
.attention{margin-top:8px}.attention ul{margin:4px 0;padding-left:20px}
main{padding:8px 16px 48px}
h2{font-size:16px;margin:20px 8px 4px}
.scroll{width:max-content}
table{border-collapse:separate;border-spacing:8px}
th{font-weight:600;text-align:left;vertical-align:top}
thead th{position:sticky;top:0;background:var(--bg);padding:4px 2px;z-index:2}
th[scope=row]{position:sticky;left:0;background:var(--bg);width:150px;min-width:150px;z-index:1;
padding-top:6px}
th[scope=row] span{display:block;word-break:break-word}
th[scope=row] small{display:block;color:var(--muted);font-weight:400;word-break:break-all}
td{vertical-align:top}
td.empty{color:var(--muted);text-align:center}
.job{position:relative;margin:0;background:var(--card);border:1px solid var(--line);
border-radius:8px;padding:6px;width:calc(var(--w) + 14px)}
.job.pair{width:calc(2 * var(--w) + 20px)}
.job[data-status=failed]{border-color:#e6a19b;background:#fff7f6}
.shots{display:flex;gap:6px}
.shot{position:relative;width:var(--w)}
.shot img,.ph{display:block;width:var(--w);height:var(--w);object-fit:contain;border-radius:4px;
background:#ecece8}
.tier{position:absolute;top:4px;left:4px;background:rgba(0,0,0,.6);color:#fff;font-size:11px;
padding:0 5px;border-radius:3px}
.ph{display:flex;flex-direction:column;align-items:center;justify-content:center;text-align:center;
padding:12px;gap:6px;background:repeating-linear-gradient(45deg,#eeeeea 0 10px,#e6e6e1 10px 20px)}
.ph strong{font-size:16px}.ph small{color:var(--muted);font-size:11px;word-break:break-word}
.ph.failed{background:#f8dedc;color:var(--failed)}
.ph.submitted{background:#dce7f8;color:var(--running)}
.ph.missing{color:var(--failed)}
.ph.ref{width:56px;height:56px;padding:2px}.ph.ref strong{font-size:9px}
figcaption{margin-top:6px;font-size:12px}
.badge{display:inline-block;padding:0 7px;border-radius:9px;color:#fff;font-weight:600;
background:var(--muted)}
.badge.completed{background:var(--completed)}.badge.failed{background:var(--failed)}
.badge.pending{background:var(--pending)}.badge.running{background:var(--running)}
.badge.submitted{background:var(--running)}
.badge.retry{background:var(--retry)}.badge.skipped{background:#5b6b7a}
.meta{color:var(--muted)}
.note{margin:4px 0 0;color:var(--retry)}
details summary{cursor:pointer;color:var(--running);margin-top:4px}
.job details[open] .more{position:absolute;z-index:5;left:-1px;top:100%;width:min(560px,90vw);
background:var(--card);border:1px solid var(--line);border-radius:8px;padding:8px;
box-shadow:0 6px 24px rgba(0,0,0,.18)}
pre{white-space:pre-wrap;font:12px/1.45 ui-monospace,Menlo,Consolas,monospace;margin:0 0 8px;
max-height:260px;overflow:auto;background:#f6f6f3;padding:6px;border-radius:4px}
.refs{display:flex;flex-wrap:wrap;gap:4px;margin-bottom:6px}
.refs img{width:56px;height:56px;object-fit:cover;border-radius:3px;display:block}
.more dl{display:grid;grid-template-columns:max-content auto;gap:2px 10px;margin:0;
word-break:break-word}
"""

# Read by tests/test_report.py through a headless browser's --dump-dom; harmless elsewhere.
_SCRIPT = """addEventListener("load",function(){var a=document.images,b=0;
for(var i=0;i<a.length;i++){if(!a[i].complete||a[i].naturalWidth===0)b++;}
document.body.dataset.images=a.length;document.body.dataset.brokenImages=b;
document.body.dataset.imagesLoaded="true";});"""


def render_page(sheet: ContactSheet, gallery: Gallery) -> str:
    """The whole page as an HTML string (UTF-8 when written)."""
    sections = (
        "".join(_section(n, s, gallery) for n, s in enumerate(sheet.sections)) or "<p>No jobs.</p>"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Contact sheet · {_e(sheet.header.session_id)}</title>"
        f"<style>{_CSS}</style></head><body>{_header(sheet, gallery)}"
        f"<main>{sections}</main><script>{_SCRIPT}</script></body></html>\n"
    )

"use strict";
// The contact sheet's one script, inlined in the page (works from file://, no network).
//
// 1. The image check: after load, count the images that did not load, for a headless browser to
//    read from the body's data attributes (tests/test_report.py).
// 2. The review: keep (k) / redo (r) marks on the cards, one variant picked per kept card (1-4),
//    focus moved across the grid with the arrow keys, the full image on space, and the
//    --upgrade / --retry commands for the marks in the panel. Marks live in localStorage under
//    one key per session and page path, each with the card's data-rev: a mark made on what a
//    card showed before (the job ran again since) is ignored and dropped.
//
// Cost with 1,000 cards: nothing runs per card at load (only the marked ones are painted), one
// listener of each kind on the document, and the grid index is built once, on the first arrow.
addEventListener("load", () => {
  const images = document.images;
  let broken = 0;
  for (let i = 0; i < images.length; i++) {
    if (!images[i].complete || images[i].naturalWidth === 0) broken++;
  }
  document.body.dataset.images = images.length;
  document.body.dataset.brokenImages = broken;
  document.body.dataset.imagesLoaded = "true";
});

(() => {
  const panel = document.getElementById("review");
  if (!panel) return;
  const session = document.body.dataset.session;
  const KEY = "imagegen.review:" + session + ":" + location.pathname;
  const toQuality = document.getElementById("to-quality");
  const viewer = document.getElementById("viewer");
  let state = { marks: {}, to: null }; // marks: job id -> {mark: "keep"|"redo", variant, rev}
  let current = null; // the card that has (or last had) focus
  let grid = null; // rows of cells of cards, in page order; built on the first arrow key
  const where = new Map(); // card -> [row, column, place in its cell]
  let shown = null; // the card in the viewer, and which of its variants
  let shownVariant = null;

  // -- storage -------------------------------------------------------------------------------
  function load() {
    try {
      const saved = JSON.parse(localStorage.getItem(KEY) || "null");
      if (saved && typeof saved.marks === "object" && saved.marks) {
        state = { marks: saved.marks, to: saved.to || null };
      }
    } catch (e) {
      say("marks are not kept: this browser refuses local storage here");
    }
  }
  function save() {
    try {
      localStorage.setItem(KEY, JSON.stringify(state));
    } catch (e) {
      say("marks are not kept: this browser refuses local storage here");
    }
  }

  // -- marks ---------------------------------------------------------------------------------
  const cardOf = (id) => document.getElementById("job-" + id);
  const variantsOf = (card) =>
    (card.dataset.variants || "").split(" ").filter(Boolean).map(Number);

  // The mark of a card, if it still applies to what the card shows.
  function markOf(card) {
    const m = state.marks[card.dataset.jobId];
    if (!m || m.rev !== card.dataset.rev) return null;
    if (m.mark === "redo") return m;
    if (m.mark !== "keep" || !card.hasAttribute("data-keepable")) return null;
    const variants = variantsOf(card);
    if (variants.length ? variants.indexOf(m.variant) < 0 : m.variant != null) return null;
    return m;
  }

  function setMark(card, mark, variant) {
    const id = card.dataset.jobId;
    if (mark) {
      state.marks[id] = { mark: mark, variant: variant == null ? null : variant, rev: card.dataset.rev };
    } else {
      delete state.marks[id];
    }
    save();
    paint(card);
    refresh();
  }

  function keep(card, variant) {
    const id = card.dataset.jobId;
    if (!card.hasAttribute("data-keepable")) {
      say("#" + id + " has no image to keep; r marks it for a redo");
      return;
    }
    const m = markOf(card);
    const variants = variantsOf(card);
    if (variants.length) {
      if (variant == null) {
        // k alone: unmark a kept card, or keep the variant in the viewer (else the first).
        if (m && m.mark === "keep") return setMark(card, null);
        variant = shown === card && shownVariant != null ? shownVariant : variants[0];
      } else if (variants.indexOf(variant) < 0) {
        say("#" + id + " has no variant " + variant);
        return;
      }
      if (m && m.mark === "keep" && m.variant === variant) return setMark(card, null);
      return setMark(card, "keep", variant);
    }
    if (variant != null) {
      say("#" + id + " has one image: k keeps it");
      return;
    }
    setMark(card, m && m.mark === "keep" ? null : "keep");
  }

  function redo(card) {
    const m = markOf(card);
    setMark(card, m && m.mark === "redo" ? null : "redo");
  }

  function paint(card) {
    const m = markOf(card);
    card.dataset.mark = m ? m.mark : "";
    for (const b of card.querySelectorAll("button[data-act]")) {
      const v = b.dataset.variant;
      let on = false;
      if (m && b.dataset.act === m.mark) on = v == null || Number(v) === m.variant;
      b.setAttribute("aria-pressed", on ? "true" : "false");
    }
    for (const shot of card.querySelectorAll(".shot[data-variant]")) {
      shot.classList.toggle("picked", !!m && m.mark === "keep" && Number(shot.dataset.variant) === m.variant);
    }
    if (shown === card) showIn(card);
  }

  // -- commands ------------------------------------------------------------------------------
  const quote = (s) => (/^[A-Za-z0-9_.,:\/@%+=-]+$/.test(s) ? s : "'" + s.replace(/'/g, "'\\''") + "'");
  const byId = (a, b) => a[0].localeCompare(b[0], undefined, { numeric: true });

  // "001,002,003,005" -> "001-003,005": a run of three or more ids of one width (the CLI's
  // ranges keep the low end's width); a picked variant is named "003:2".
  function jobList(items) {
    const out = [];
    for (let i = 0; i < items.length; ) {
      let j = i;
      while (
        j + 1 < items.length &&
        items[j][1] == null &&
        items[j + 1][1] == null &&
        /^\d+$/.test(items[j][0]) &&
        items[j + 1][0].length === items[j][0].length &&
        /^\d+$/.test(items[j + 1][0]) &&
        Number(items[j + 1][0]) === Number(items[j][0]) + 1
      ) j++;
      if (j - i >= 2) {
        out.push(items[i][0] + "-" + items[j][0]);
      } else {
        for (let k = i; k <= j; k++) out.push(items[k][0] + (items[k][1] == null ? "" : ":" + items[k][1]));
      }
      i = j + 1;
    }
    return out.join(",");
  }

  function refresh() {
    const keeps = [];
    const redos = [];
    for (const id of Object.keys(state.marks)) {
      const card = cardOf(id);
      const m = card && markOf(card);
      if (!m) continue;
      (m.mark === "keep" ? keeps : redos).push([id, m.mark === "keep" ? m.variant : null]);
    }
    keeps.sort(byId);
    redos.sort(byId);
    const program = panel.dataset.program;
    const options = panel.dataset.options ? " " + panel.dataset.options : "";
    const to = toQuality.value;
    document.getElementById("n-keep").textContent = keeps.length;
    document.getElementById("n-redo").textContent = redos.length;
    show(
      "upgrade",
      keeps.length && to
        ? program + " --upgrade " + quote(session) + " --job " + quote(jobList(keeps)) +
            " --to-quality " + quote(to) + options
        : "",
      keeps.length ? "this session is already at its provider's largest size" : "press k on an image to keep it"
    );
    show(
      "retry",
      redos.length ? program + " --retry " + quote(session) + " --job " + quote(jobList(redos)) + options : "",
      "press r on a cell to redo its job"
    );
  }

  function show(name, command, hint) {
    const code = document.getElementById("cmd-" + name);
    code.textContent = command;
    const help = document.getElementById("hint-" + name);
    help.textContent = hint;
    help.hidden = !!command;
    panel.querySelector('button[data-target="cmd-' + name + '"]').disabled = !command;
  }

  function copy(code) {
    const text = code.textContent;
    if (!text) return;
    // file:// pages may have no clipboard API, or have it refuse: then select the text.
    const fallback = () => {
      const range = document.createRange();
      range.selectNodeContents(code);
      const selection = getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      let done = false;
      try {
        done = document.execCommand("copy");
      } catch (e) {
        done = false;
      }
      say(done ? "copied" : "selected: press Ctrl+C (\u2318C) to copy");
    };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(text).then(() => say("copied"), fallback);
    } else {
      fallback();
    }
  }

  let clearTimer = null;
  function clear(button) {
    // Two clicks: one stray click must not lose a long review.
    if (!button.dataset.armed) {
      button.dataset.armed = "1";
      button.textContent = "click again to clear";
      clearTimer = setTimeout(() => {
        delete button.dataset.armed;
        button.textContent = "clear selection";
      }, 4000);
      return;
    }
    clearTimeout(clearTimer);
    delete button.dataset.armed;
    button.textContent = "clear selection";
    const marked = Object.keys(state.marks);
    state.marks = {};
    save();
    for (const id of marked) {
      const card = cardOf(id);
      if (card) paint(card);
    }
    refresh();
    say("selection cleared");
  }

  const status = document.getElementById("review-status");
  function say(text) {
    status.textContent = text;
  }

  // -- focus and the grid --------------------------------------------------------------------
  function buildGrid() {
    grid = [];
    for (const tr of document.querySelectorAll("#sheet tbody tr")) {
      const cells = [];
      for (const td of tr.querySelectorAll(":scope > td")) {
        const cards = Array.from(td.querySelectorAll(":scope > .job"));
        cards.forEach((card, n) => where.set(card, [grid.length, cells.length, n]));
        cells.push(cards);
      }
      if (cells.some((c) => c.length)) grid.push(cells);
      else cells.forEach((c) => c.forEach((card) => where.delete(card)));
    }
  }

  // The cards of the cell nearest column c in a row (same column first, then left, right).
  function nearest(cells, c) {
    for (let d = 0; d < cells.length + c; d++) {
      for (const cc of d ? [c - d, c + d] : [c]) {
        if (cc >= 0 && cc < cells.length && cells[cc].length) return cells[cc];
      }
    }
    return null;
  }

  function neighbour(card, key) {
    if (!grid) buildGrid();
    const at = where.get(card);
    if (!at) return null;
    const [r, c, n] = at;
    const cells = grid[r];
    if (key === "ArrowLeft" || key === "ArrowRight") {
      const step = key === "ArrowRight" ? 1 : -1;
      for (let cc = c + step; cc >= 0 && cc < cells.length; cc += step) {
        if (cells[cc].length) return cells[cc][Math.min(n, cells[cc].length - 1)];
      }
      return null;
    }
    const step = key === "ArrowDown" ? 1 : -1;
    if (cells[c][n + step]) return cells[c][n + step]; // cards stacked in one cell
    for (let rr = r + step; rr >= 0 && rr < grid.length; rr += step) {
      const target = nearest(grid[rr], c);
      if (target) return step > 0 ? target[0] : target[target.length - 1];
    }
    return null;
  }

  function focusCard(card) {
    if (current && current !== card) current.tabIndex = -1;
    current = card;
    card.tabIndex = 0;
    if (document.activeElement !== card) card.focus({ preventScroll: true });
    card.scrollIntoView({ block: "nearest", inline: "nearest" });
    if (!viewer.hidden) showIn(card);
  }

  // -- the viewer ----------------------------------------------------------------------------
  function fullImage(card, variant) {
    const pick =
      variant != null
        ? '.shot[data-variant="' + variant + '"] a[href]'
        : '.shot[data-role="output"] a[href], .shot[data-role="variant"] a[href]';
    const link = card.querySelector(pick);
    return link ? link.getAttribute("href") : null;
  }

  function showIn(card, variant) {
    if (variant == null) {
      const m = markOf(card);
      variant = m && m.variant != null ? m.variant : shown === card ? shownVariant : null;
      if (variant == null && variantsOf(card).length) variant = variantsOf(card)[0];
    }
    const href = fullImage(card, variant);
    const frame = viewer.querySelector(".frame");
    const caption = viewer.querySelector("figcaption");
    frame.textContent = "";
    if (href) {
      const img = document.createElement("img"); // made here: an empty <img> counts as broken
      img.src = href;
      img.alt = card.querySelector("img") ? card.querySelector("img").alt : "";
      frame.appendChild(img);
    }
    shown = card;
    shownVariant = variant;
    const m = markOf(card);
    const variants = variantsOf(card);
    caption.textContent =
      "#" + card.dataset.jobId +
      (variants.length ? " \u00b7 variant " + variant + " of " + variants.length + " (v: next)" : "") +
      (m ? " \u00b7 marked " + m.mark + (m.variant != null ? " " + m.variant : "") : "") +
      (href ? "" : " \u00b7 no image") +
      " \u00b7 k keep \u00b7 r redo \u00b7 space or esc close";
  }

  function openViewer(card) {
    if (!fullImage(card, null)) {
      say("#" + card.dataset.jobId + " has no image to show");
      return;
    }
    viewer.hidden = false;
    showIn(card);
  }

  function closeViewer() {
    viewer.hidden = true;
    viewer.querySelector(".frame").textContent = "";
    shown = null;
    shownVariant = null;
    if (current) current.focus({ preventScroll: true });
  }

  // -- events (one listener each, on the document) -------------------------------------------
  const ARROWS = ["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown"];
  document.addEventListener("keydown", (e) => {
    if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey) return;
    const t = e.target;
    if (t.isContentEditable || ["INPUT", "SELECT", "TEXTAREA"].indexOf(t.tagName) >= 0) return;
    const control = ["BUTTON", "SUMMARY"].indexOf(t.tagName) >= 0; // space presses these
    const card = (t.closest && t.closest(".job")) || current;
    const key = e.key;
    if (key === "Escape") {
      if (!viewer.hidden) {
        closeViewer();
        e.preventDefault();
      }
      return;
    }
    if (!card) {
      if (ARROWS.indexOf(key) >= 0) {
        const first = document.querySelector("#sheet .job");
        if (first) {
          focusCard(first);
          e.preventDefault();
        }
      }
      return;
    }
    if (ARROWS.indexOf(key) >= 0) {
      const next = neighbour(card, key);
      if (next) focusCard(next);
      e.preventDefault();
    } else if (key === " ") {
      if (control && viewer.hidden) return;
      if (viewer.hidden) openViewer(card);
      else closeViewer();
      e.preventDefault();
    } else if (key === "k" || key === "K") {
      keep(card);
      e.preventDefault();
    } else if (key === "r" || key === "R") {
      redo(card);
      e.preventDefault();
    } else if (/^[1-9]$/.test(key)) {
      keep(card, Number(key));
      e.preventDefault();
    } else if ((key === "v" || key === "V") && shown === card) {
      const variants = variantsOf(card);
      if (variants.length) {
        showIn(card, variants[(variants.indexOf(shownVariant) + 1) % variants.length]);
      }
      e.preventDefault();
    }
  });

  document.addEventListener("click", (e) => {
    if (e.target === viewer) return closeViewer();
    const button = e.target.closest && e.target.closest("button[data-act]");
    if (!button) return;
    const card = button.closest(".job");
    const act = button.dataset.act;
    if (card) {
      if (act === "keep") keep(card, button.dataset.variant ? Number(button.dataset.variant) : null);
      else if (act === "redo") redo(card);
      focusCard(card); // so that the keys go on from this card, not from the button
    } else if (act === "copy") {
      copy(document.getElementById(button.dataset.target));
    } else if (act === "clear") {
      clear(button);
    }
  });

  document.getElementById("sheet").addEventListener("focusin", (e) => {
    const card = e.target.closest(".job");
    if (card && card !== current) {
      if (current) current.tabIndex = -1;
      current = card;
      card.tabIndex = 0;
    }
  });

  toQuality.addEventListener("change", () => {
    state.to = toQuality.value;
    save();
    refresh();
  });

  // Another tab of this page changed the marks.
  addEventListener("storage", (e) => {
    if (e.key !== KEY) return;
    const before = Object.keys(state.marks);
    load();
    for (const id of new Set(before.concat(Object.keys(state.marks)))) {
      const card = cardOf(id);
      if (card) paint(card);
    }
    refresh();
  });

  // -- start ---------------------------------------------------------------------------------
  load();
  let dropped = false;
  for (const id of Object.keys(state.marks)) {
    const card = cardOf(id);
    if (card && !markOf(card)) {
      delete state.marks[id]; // the job ran again since it was marked
      dropped = true;
    } else if (card) {
      paint(card);
    }
  }
  if (dropped) save();
  if (state.to && Array.from(toQuality.options).some((o) => o.value === state.to)) {
    toQuality.value = state.to;
  }
  const first = document.querySelector("#sheet .job");
  if (first) first.tabIndex = 0;
  refresh();
})();

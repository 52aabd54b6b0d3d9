"""Headless Chromium driven over the DevTools protocol, for the contact sheet's review tests.

The system's Chromium (Debian's ``chromium`` package, which .ci/run installs) is started with
``--remote-debugging-port=0`` on loopback; the port it picked is read from the
``DevToolsActivePort`` file it writes in its profile folder, and the protocol is spoken over
one websocket (the ``websockets`` package's sync client). A handful of commands is all the
tests need: open a tab, load and reload a page, run an expression, press keys and click with
real input events (``Input.dispatchKeyEvent`` / ``dispatchMouseEvent``: the page's own
listeners see them as a person's). No browser is downloaded; nothing leaves the machine.
"""

from __future__ import annotations

import contextlib
import itertools
import shutil
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

CHROMIUM = shutil.which("chromium")
SKIP_REASON = (
    "needs a headless browser: Debian's chromium package (apt-get install -y chromium), "
    "which .ci/run installs"
)
#: For a test that needs the browser (a fixture that starts one may skip instead).
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason=SKIP_REASON)
#: A quiet headless browser that reaches nothing on its own (also test_report.py's one-shot
#: ``--dump-dom`` and ``--screenshot`` runs).
HEADLESS_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
#: ... driven over the DevTools protocol on loopback, at a port it picks.
FLAGS = (
    *HEADLESS_FLAGS,
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)
TIMEOUT = 30.0  # seconds for the browser to start, a page to load, a command to answer

# key -> (code, Windows virtual key code), for the keys the tests press.
_KEYS = {
    "ArrowLeft": ("ArrowLeft", 37),
    "ArrowUp": ("ArrowUp", 38),
    "ArrowRight": ("ArrowRight", 39),
    "ArrowDown": ("ArrowDown", 40),
    "Escape": ("Escape", 27),
    "Enter": ("Enter", 13),
    "Tab": ("Tab", 9),
    " ": ("Space", 32),
}


class BrowserError(Exception):
    """The browser did not start, answered with an error, or a script threw."""


class Chromium:
    """One headless browser with one tab; a context manager that stops the browser on exit."""

    def __init__(self, profile: Path, *, width: int = 1400, height: int = 1000) -> None:
        if CHROMIUM is None:
            raise BrowserError(SKIP_REASON)
        self.profile = profile
        self.size = (width, height)
        self._ids = itertools.count(1)
        self._events: list[dict[str, Any]] = []  # received, not yet waited for
        self._log: list[dict[str, Any]] = []  # every event received
        self._proc: subprocess.Popen[bytes] | None = None
        self._ws: ClientConnection | None = None
        self._session = ""
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> Chromium:
        self.profile.mkdir(parents=True, exist_ok=True)
        port_file = self.profile / "DevToolsActivePort"
        port_file.unlink(missing_ok=True)
        assert CHROMIUM is not None
        with (self.profile / "chromium.log").open("wb") as log:
            self._proc = subprocess.Popen(
                [CHROMIUM, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        try:
            port, path = self._wait_for_port(port_file)
            self._ws = self._stack.enter_context(
                connect(f"ws://127.0.0.1:{port}{path}", max_size=None, open_timeout=TIMEOUT)
            )
            target = self.call("Target.createTarget", {"url": "about:blank"}, tab=False)
            attached = self.call(
                "Target.attachToTarget",
                {"targetId": target["targetId"], "flatten": True},
                tab=False,
            )
            self._session = attached["sessionId"]
            self.call("Page.enable")
            self.call("Runtime.enable")
            # A background tab of a headless browser has no focus: let focus() and :focus work.
            self.call("Emulation.setFocusEmulationEnabled", {"enabled": True})
            width, height = self.size
            self.call(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            )
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._ws is not None:
            with contextlib.suppress(BrowserError, OSError, ConnectionClosed):
                self.call("Browser.close", tab=False)
            self._ws = None
        self._stack.close()
        if self._proc is not None:
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None

    def _wait_for_port(self, port_file: Path) -> tuple[int, str]:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                log = (self.profile / "chromium.log").read_text(errors="replace")
                raise BrowserError(f"chromium exited ({self._proc.returncode}): {log[-2000:]}")
            try:
                lines = port_file.read_text().splitlines()
            except FileNotFoundError:
                lines = []
            if len(lines) >= 2:
                return int(lines[0]), lines[1]
            time.sleep(0.05)
        raise BrowserError("chromium did not open its DevTools port in time")

    # -- the protocol ---------------------------------------------------------------------

    def call(
        self, method: str, params: dict[str, Any] | None = None, *, tab: bool = True
    ) -> dict[str, Any]:
        """Send one command (to the tab, or to the browser) and return its result."""
        assert self._ws is not None
        message: dict[str, Any] = {"id": next(self._ids), "method": method, "params": params or {}}
        if tab:
            message["sessionId"] = self._session
        self._ws.send(orjson.dumps(message).decode())
        deadline = time.monotonic() + TIMEOUT
        while True:
            answer = self._receive(deadline, method)
            if answer.get("id") == message["id"]:
                if "error" in answer:
                    raise BrowserError(f"{method}: {answer['error']}")
                result: dict[str, Any] = answer.get("result", {})
                return result
            if "method" in answer:
                self._events.append(answer)

    def _receive(self, deadline: float, waiting_for: str) -> dict[str, Any]:
        assert self._ws is not None
        left = deadline - time.monotonic()
        if left <= 0:
            raise BrowserError(f"no answer to {waiting_for} in {TIMEOUT:g} s")
        try:
            raw = self._ws.recv(timeout=left)
        except TimeoutError as exc:
            raise BrowserError(f"no answer to {waiting_for} in {TIMEOUT:g} s") from exc
        answer: dict[str, Any] = orjson.loads(raw)
        if "method" in answer:
            self._log.append(answer)
        return answer

    def log(self, event: str) -> list[dict[str, Any]]:
        """Every event of this name the tab sent so far (its domain enabled first)."""
        return [
            e for e in self._log if e["method"] == event and e.get("sessionId") == self._session
        ]

    def wait_for(self, event: str) -> dict[str, Any]:
        """The next event of this name from the tab (one already received counts)."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            for n, seen in enumerate(self._events):
                if seen["method"] == event and seen.get("sessionId") == self._session:
                    del self._events[: n + 1]
                    params: dict[str, Any] = seen.get("params", {})
                    return params
            self._events.append(self._receive(deadline, event))

    # -- what a test does -------------------------------------------------------------------

    def open(self, page: Path) -> None:
        """Load a file in the tab and wait for its load event (images included)."""
        self._events.clear()
        self.call("Page.navigate", {"url": page.resolve().as_uri()})
        self.wait_for("Page.loadEventFired")

    def reload(self) -> None:
        self._events.clear()
        self.call("Page.reload", {"ignoreCache": True})
        self.wait_for("Page.loadEventFired")

    def js(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        answer = self.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in answer:
            details = answer["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"{expression!r} threw: {text}")
        return answer["result"].get("value")

    def press(self, *keys: str) -> None:
        """Press and release each key in turn ("k", "3", "ArrowDown", " ", "Escape")."""
        for key in keys:
            if key in _KEYS:
                code, vk = _KEYS[key]
            elif len(key) == 1 and key.isalnum():
                code = f"Digit{key}" if key.isdigit() else f"Key{key.upper()}"
                vk = ord(key.upper())
            else:
                raise ValueError(f"no key code for {key!r}")
            down: dict[str, Any] = {
                "key": key,
                "code": code,
                "windowsVirtualKeyCode": vk,
                "nativeVirtualKeyCode": vk,
            }
            printable = len(key) == 1
            if printable:
                down |= {"type": "keyDown", "text": key, "unmodifiedText": key}
            else:
                down |= {"type": "rawKeyDown"}
            self.call("Input.dispatchKeyEvent", down)
            self.call(
                "Input.dispatchKeyEvent",
                {"type": "keyUp", "key": key, "code": code, "windowsVirtualKeyCode": vk},
            )

    def click(self, selector: str) -> None:
        """A real left click in the middle of the first element ``selector`` matches."""
        box = self.js(
            f"""(() => {{
                const el = document.querySelector({orjson.dumps(selector).decode()});
                if (!el) return null;
                el.scrollIntoView({{block: "center", inline: "center"}});
                const r = el.getBoundingClientRect();
                return [r.left + r.width / 2, r.top + r.height / 2];
            }})()"""
        )
        if box is None:
            raise BrowserError(f"nothing on the page matches {selector!r}")
        x, y = box
        self.call("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y})
        for kind in ("mousePressed", "mouseReleased"):
            self.call(
                "Input.dispatchMouseEvent",
                {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1},
            )

    def select_option(self, selector: str, value: str) -> None:
        """Choose ``value`` in a ``<select>``, as a person would (a change event follows)."""
        found = self.js(
            f"""(() => {{
                const el = document.querySelector({orjson.dumps(selector).decode()});
                if (!el) return false;
                el.value = {orjson.dumps(value).decode()};
                el.dispatchEvent(new Event("change", {{bubbles: true}}));
                return el.value === {orjson.dumps(value).decode()};
            }})()"""
        )
        if not found:
            raise BrowserError(f"no option {value!r} in {selector!r}")

"""Helpers for the end-to-end tests of the command line (test_cli.py, test_crash.py).

Two ways to run imagegen:

- in-process, :func:`run_cli`: ``imagegen.cli.main(argv)`` in the test's working directory,
  with its exit code (argparse's ``SystemExit`` included) and captured output;
- as a real process, :func:`spawn`: ``python -m imagegen`` against an in-test
  :class:`~imagegen.emulator.Emulator` (``GOOGLE_GEMINI_BASE_URL``), for locks and signals.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from PIL import Image

from imagegen import journal as journal_mod
from imagegen.cli import main
from imagegen.emulator import Emulator

REPO = Path(__file__).resolve().parents[1]
SAMPLE_COMBOS = REPO / "combos"
SAMPLE_CATALOGS = REPO / "catalogs"
SESSIONS = Path("sessions")  # the CLI's default, relative to the working directory
RESULTS = Path("Result_images")

#: Run flags that keep a run fast: no spacing between starts, line output.
FAST = ["--min-interval", "0", "--plain"]
#: The built-in emulator without its default 1 s per image.
OFFLINE = ["--offline", "--offline-latency", "0", *FAST]

TEST_KEY = "test-key-0123456789abcdef"
#: Variables a developer's shell may hold that would steer google-genai, google-auth or the CLI's
#: default provider: no test inherits them.
GOOGLE_VARS = (
    "GOOGLE_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_GEMINI_BASE_URL",
    "GOOGLE_VERTEX_BASE_URL",
    "GOOGLE_CLOUD_PROJECT",
    "GOOGLE_CLOUD_LOCATION",
    "GOOGLE_GENAI_USE_VERTEXAI",
    "GOOGLE_GENAI_USE_ENTERPRISE",
    "GOOGLE_GENAI_API_VERSION",
    "GOOGLE_APPLICATION_CREDENTIALS",
)


@dataclass(frozen=True)
class CliResult:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> CliResult:
    """``imagegen.cli.main(argv)`` in-process; argparse's SystemExit becomes the exit code."""
    capsys.readouterr()  # only this command's output
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return CliResult(code, captured.out, captured.err)


def use_emulator(monkeypatch: pytest.MonkeyPatch, emu: Emulator) -> None:
    """Point in-process runs without --offline at ``emu``, with a test key."""
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", emu.base_url)
    monkeypatch.setenv("GEMINI_API_KEY", TEST_KEY)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)


def service_account_file(path: Path, token_uri: str, email: str = "runner") -> Path:
    """A Google service account key file whose ``token_uri`` is ``token_uri`` (the emulator's
    ``/oauth2/token``), with a fresh RSA key: what ``GOOGLE_APPLICATION_CREDENTIALS`` points at
    for application-default credentials that google-auth refreshes without any network."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    info = {
        "type": "service_account",
        "project_id": "imagegen-test-project",
        "private_key_id": "emulator-key-1",
        "private_key": pem,
        "client_email": f"{email}@imagegen-test-project.iam.gserviceaccount.com",
        "client_id": "100000000000000000001",
        "token_uri": token_uri,
    }
    path.write_bytes(orjson.dumps(info))
    return path


def session_ids(root: Path) -> list[str]:
    return journal_mod.list_sessions(root / SESSIONS)


def only_session(root: Path) -> str:
    ids = session_ids(root)
    assert len(ids) == 1, ids
    return ids[0]


def load(root: Path, session_id: str) -> dict[str, Any]:
    """The session through imagegen's own reader (snapshot plus event log), as the snapshot's
    JSON document (what jq sees)."""
    doc = journal_mod.encode_session(journal_mod.load(root / SESSIONS, session_id))
    return orjson.loads(orjson.dumps(doc))


def prompt_of(doc: dict[str, Any], job: dict[str, Any]) -> str:
    """A job's whole prompt text from a session document (parts are stored once in ``texts``)."""
    return "".join(doc["texts"][key] for key in job["prompt"])


def snapshot(root: Path, session_id: str) -> dict[str, Any]:
    """The snapshot file alone, as ``jq`` would read it."""
    path = journal_mod.snapshot_path(root / SESSIONS, session_id)
    data: dict[str, Any] = orjson.loads(path.read_bytes())
    return data


def by_id(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {job["id"]: job for job in doc["jobs"]}


def image_size(path: Path | str) -> tuple[int, int]:
    """Width and height of a fully decoded image file."""
    with Image.open(path) as img:
        img.load()
        return img.size


def png_file(path: Path, size: tuple[int, int]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("P", size, 3).save(path, format="PNG")
    return path


def truncated_png(path: Path, size: tuple[int, int]) -> Path:
    out = io.BytesIO()
    Image.new("RGB", size, (1, 2, 3)).save(out, format="PNG")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(out.getvalue()[: len(out.getvalue()) // 2])
    return path


def pngs(root: Path) -> list[Path]:
    """Every visible .png under Result_images (temp files are hidden ``.NAME.PID.tmp``)."""
    base = root / RESULTS
    if not base.exists():
        return []
    return sorted(p for p in base.rglob("*.png") if not p.name.startswith("."))


# -- real processes --------------------------------------------------------------------------


def subprocess_env(emu: Emulator) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in GOOGLE_VARS and not k.lower().endswith("_proxy")
    }
    env.update(
        GOOGLE_GEMINI_BASE_URL=emu.base_url,
        GEMINI_API_KEY=TEST_KEY,
        NO_PROXY="127.0.0.1,localhost",
        PYTHONUNBUFFERED="1",
    )
    return env


@dataclass
class Proc:
    """A ``python -m imagegen`` process; everything it prints goes to ``log``."""

    popen: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def poll(self) -> int | None:
        return self.popen.poll()

    def wait(self, timeout: float) -> int:
        return self.popen.wait(timeout=timeout)

    def stop(self) -> None:
        """Kill it if it still runs (this test started it), and reap it."""
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait(timeout=30)
        if self.popen.stdout is not None:
            self.popen.stdout.close()


def spawn(cwd: Path, emu: Emulator, *argv: str, pipe_stdout: bool = False) -> Proc:
    """``python -m imagegen ARGV`` in ``cwd`` against ``emu``; output to a log file in ``cwd``
    (with ``pipe_stdout``, stdout is a pipe, ``popen.stdout``, and only stderr goes there)."""
    log = cwd / f"proc-{time.monotonic_ns()}.log"
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        popen = subprocess.Popen(
            [sys.executable, "-m", "imagegen", *argv],
            cwd=cwd,
            env=subprocess_env(emu),
            stdout=subprocess.PIPE if pipe_stdout else out,
            stderr=out if pipe_stdout else subprocess.STDOUT,
        )
    return Proc(popen, log)


def wait_for(
    predicate: Callable[[], bool],
    timeout: float,
    what: str,
    proc: Proc | None = None,
    interval: float = 0.01,
) -> None:
    """Poll ``predicate`` until it holds; fail after ``timeout`` s or if ``proc`` exits first."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"process exited with {proc.poll()} before: {what}\n{proc.output()}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for: {what}")
        time.sleep(interval)


def whole_lines(path: Path) -> list[dict[str, Any]]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    return [orjson.loads(line) for line in data.split(b"\n")[:-1]]


def statuses_in_log(lines: Sequence[dict[str, Any]]) -> dict[str, str]:
    """Each job's latest status according to a list of event log lines."""
    status: dict[str, str] = {}
    for event in lines:
        if "create" in event:
            status.update({j["id"]: j["status"] for j in event["create"]["jobs"]})
        elif "job" in event and "status" in event.get("set", {}):
            status[event["job"]] = event["set"]["status"]
    return status

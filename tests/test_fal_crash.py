"""fal's queue after a SIGKILL (issue 14): a job killed after its submit was accepted is
resumed by polling the same request, never submitted (and paid for) again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from imagegen import providers
from imagegen.emulator import Emulator
from imagegen.emulator.fal_routes import fal_state
from imagegen.emulator.tls import TLSListener

from .cli_helpers import (
    SAMPLE_CATALOGS,
    SAMPLE_COMBOS,
    image_size,
    load,
    only_session,
    prompt_of,
)

pytestmark = pytest.mark.slow

KEY = "1a2b3c4d-0000-4000-8000-00000000cafe:" + "f" * 32
RUN = [
    "--provider",
    "fal",
    "--wardrobe",
    "zip-hoodie",
    "--ui-style",
    "Orange",
    "--catalogs",
    "v3.2",
    "--combos",
    "C-U-009,C-U-010",
    "--combos-root",
    str(SAMPLE_COMBOS),
    "--catalogs-root",
    str(SAMPLE_CATALOGS),
    "--min-interval",
    "0",
    "--plain",
]


def _env(tls: TLSListener) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")},
        "FAL_QUEUE_RUN_HOST": tls.netloc,
        "SSL_CERT_FILE": str(tls.ca_file),
        "FAL_KEY": KEY,
        "NO_PROXY": "127.0.0.1,localhost",
    }


def _resume_tokens(log: Path) -> set[str]:
    """Job ids whose request id the journal holds (the submit was accepted)."""
    if not log.exists():
        return set()
    ids = set()
    for line in log.read_bytes().split(b"\n")[:-1]:
        event = orjson.loads(line)
        if event.get("set", {}).get("resume"):
            ids.add(event["job"])
    return ids


def test_a_kill_after_the_submit_resumes_by_polling_and_pays_once(tmp_path: Path) -> None:
    with Emulator(render="plain") as emu, TLSListener(emu) as tls:
        state = fal_state(emu)
        state.turnaround = 2.0  # seconds queued and running: the kill lands in between
        proc = subprocess.Popen(
            [sys.executable, "-m", "imagegen", *RUN],
            cwd=tmp_path,
            env=_env(tls),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 60
            sessions = tmp_path / "sessions"
            while time.monotonic() < deadline:
                logs = list(sessions.glob("*-events.jsonl")) if sessions.exists() else []
                if logs and len(_resume_tokens(logs[0])) >= 2:
                    break
                time.sleep(0.01)
            else:
                pytest.fail("no submit was journaled in time")
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        sid = only_session(tmp_path)
        killed = load(tmp_path, sid)
        submitted = {j["id"] for j in killed["jobs"] if j["resume"]}
        assert len(submitted) >= 2
        before = sum(state.submits.values())
        done = subprocess.run(
            [sys.executable, "-m", "imagegen", "--resume", sid, "--plain"],
            cwd=tmp_path,
            env=_env(tls),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        doc = load(tmp_path, sid)
        assert {j["status"] for j in doc["jobs"]} == {"completed"}
        running = {j["id"] for j in killed["jobs"] if j["status"] == "running"}
        for job in doc["jobs"]:
            posted = state.submits[prompt_of(doc, job)]
            if job["id"] in submitted:
                assert posted == 1, job["id"]  # journaled before the kill: polled, not re-posted
            else:
                # A kill between fal's answer to the submit and the journal entry: the request
                # id died with the process, so resume has to submit again (at most once more).
                assert posted <= (2 if job["id"] in running else 1), job["id"]
        assert sum(state.submits.values()) - before <= len(doc["jobs"]) - len(submitted)
        fal = providers.get("fal")
        for job in doc["jobs"]:
            want = fal.pixel_size(job["model"], job["quality"], job["aspect"])
            assert image_size(tmp_path / job["output"]) == want
            assert job["resume"] is None

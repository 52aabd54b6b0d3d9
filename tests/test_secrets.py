"""The API key never appears in the journal, the display, logs, errors or reports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from imagegen.emulator import Emulator, Outcome

from .cli_helpers import SAMPLE_CATALOGS, SAMPLE_COMBOS, subprocess_env

# Shaped like a Google key (so scrubbing by shape is exercised), built so no real-looking key
# sits in the source.
KEY = "AIza" + "SyRECOGNISABLEfakeKEY-0123456789abc"
BATCH = (
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
)


def run(cwd: Path, emu: Emulator, *argv: str) -> str:
    env = subprocess_env(emu) | {"GEMINI_API_KEY": KEY}
    done = subprocess.run(
        [sys.executable, "-m", "imagegen", *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.stdout + done.stderr


def test_a_session_with_failures_never_shows_the_key(tmp_path: Path) -> None:
    outputs = []
    with Emulator(render="plain") as emu:
        emu.enqueue(
            Outcome.error(503),
            Outcome.finish("IMAGE_SAFETY"),
            Outcome.error(400),
            Outcome.error(429, retry_delay="0s"),
            Outcome.drop(),
            Outcome.bad_json(),
        )
        emu.enqueue(Outcome.error(403), match="Travel")
        outputs.append(run(tmp_path, emu, *BATCH, "--retry-policy", str(policy(tmp_path))))
        outputs.append(run(tmp_path, emu, "--status"))
        outputs.append(run(tmp_path, emu, "--status", "--json"))
    with Emulator(render="plain", expected_key="another-key-entirely") as emu:  # key refused
        outputs.append(run(tmp_path, emu, *BATCH, "--new", "--verbose"))
    text = "\n".join(outputs)
    assert "stopped" in text.lower() and "Contact sheet" in text  # the runs really happened
    assert KEY not in text
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name.endswith("-events.jsonl") for p in files)
    assert any(p.name == "index.html" for p in files)
    assert [p for p in files if KEY.encode() in p.read_bytes()] == []


def policy(tmp: Path) -> Path:
    path = tmp / "fast.toml"
    path.write_text("[retry]\nserver_error_wait = 0\ntimeout_waits = [0, 0, 0]\n", encoding="utf-8")
    return path

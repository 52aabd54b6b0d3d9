"""``imagegen emulator --tls`` as a user runs it: a standalone process that prints, for each SDK,
what to export; a separate ``imagegen`` process given exactly those variables runs a batch on
every provider (Gemini, Vertex, OpenAI, and fal over HTTPS)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from .cli_helpers import GOOGLE_VARS, SAMPLE_CATALOGS, SAMPLE_COMBOS

SDK_VARS = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "FAL_KEY", "FAL_QUEUE_RUN_HOST", "SSL_CERT_FILE")
BATCH = (
    "--wardrobe", "zip-hoodie", "--ui-style", "Orange", "--catalogs", "v3.2",
    "--combos", "C-U-009", "--combos-root", str(SAMPLE_COMBOS),
    "--catalogs-root", str(SAMPLE_CATALOGS), "--min-interval", "0", "--plain",
)  # fmt: skip


def clean_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in (*GOOGLE_VARS, *SDK_VARS) and not k.lower().endswith("_proxy")
    }
    env.update(NO_PROXY="127.0.0.1,localhost", PYTHONUNBUFFERED="1")
    return env


def exports(lines: list[str]) -> dict[str, dict[str, str]]:
    """``{provider: {VAR: value}}`` from the emulator's "  name: export A=1 B=2" lines."""
    found: dict[str, dict[str, str]] = {}
    for line in lines:
        name, _, rest = line.strip().partition(":")
        words = rest.split()
        if words[:1] == ["export"]:
            found[name] = dict(pair.split("=", 1) for pair in words[1:])
    return found


def read_until_ready(emulator: subprocess.Popen[str]) -> list[str]:
    """The emulator's lines up to its ready line ("Render: ...")."""
    assert emulator.stdout is not None
    lines: list[str] = []
    while not lines or not lines[-1].startswith("Render:"):
        line = emulator.stdout.readline()
        assert line, "the emulator exited early"
        lines.append(line.rstrip("\n"))
    return lines


def test_every_sdk_follows_the_variables_the_standalone_emulator_prints(tmp_path: Path) -> None:
    emulator = subprocess.Popen(
        [sys.executable, "-m", "imagegen", "emulator", "--port", "0", "--tls", "--tls-port", "0",
         "--render", "plain"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )  # fmt: skip
    try:
        lines = read_until_ready(emulator)
        pointers = exports(lines)
        assert set(pointers) == {"gemini", "vertex", "openai", "fal"}, lines
        assert Path(pointers["fal"]["SSL_CERT_FILE"]).is_file()  # the CA, for fal-client
        results = {}
        for provider, variables in pointers.items():
            # Vertex is picked by GOOGLE_GENAI_USE_VERTEXAI alone, as the SDK would pick it.
            argv = BATCH if provider in ("gemini", "vertex") else (*BATCH, "--provider", provider)
            done = subprocess.run(
                [sys.executable, "-m", "imagegen", *argv],
                cwd=tmp_path,
                env=clean_env() | variables,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            results[provider] = done
        emulator.send_signal(signal.SIGINT)
        _, log = emulator.communicate(timeout=10)
    finally:
        if emulator.poll() is None:
            emulator.kill()
        emulator.wait()
        for stream in (emulator.stdout, emulator.stderr):
            if stream is not None:
                stream.close()
    for provider, done in results.items():
        assert done.returncode == 0, f"{provider}: {done.stdout}{done.stderr}"
        assert "All 3 jobs completed" in done.stdout, provider
    assert "/v1beta/models/gemini-3-pro-image:generateContent -> 200" in log
    assert "/v1beta1/publishers/google/models/gemini-3-pro-image:generateContent -> 200" in log
    assert "/v1/images/edits -> 200" in log
    assert "/fal-ai/nano-banana-pro/edit -> 200" in log
    assert not Path(pointers["fal"]["SSL_CERT_FILE"]).exists()  # removed when it stopped


def test_kill_stops_the_standalone_emulator_and_removes_its_ca() -> None:
    """SIGTERM (``kill``, or a shell's background job whose Ctrl-C is ignored) stops it like
    Ctrl-C: exit 0, the closing line, the throwaway CA's folder gone."""
    emulator = subprocess.Popen(
        [sys.executable, "-m", "imagegen", "emulator", "--port", "0", "--tls", "--tls-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    try:
        lines = read_until_ready(emulator)
        ca = Path(exports(lines)["fal"]["SSL_CERT_FILE"])
        assert ca.is_file()
        emulator.send_signal(signal.SIGTERM)
        out, _ = emulator.communicate(timeout=10)
    finally:
        if emulator.poll() is None:
            emulator.kill()
        emulator.wait()
    assert emulator.returncode == 0
    assert "Emulator stopped after 0 requests." in out
    assert not ca.parent.exists()

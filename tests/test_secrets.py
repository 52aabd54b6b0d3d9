"""Keys never appear in the journal, the display, logs, errors or reports: for every provider,
with a server that echoes them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from imagegen import journal as journal_mod
from imagegen.emulator import Emulator, Outcome
from imagegen.emulator.tls import TLSListener
from imagegen.emulator.vertex import vertex_state

from .cli_helpers import (
    GOOGLE_VARS,
    SAMPLE_CATALOGS,
    SAMPLE_COMBOS,
    service_account_file,
    subprocess_env,
)

SDK_VARS = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "FAL_KEY", "FAL_QUEUE_RUN_HOST", "SSL_CERT_FILE")

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


# -- every provider ----------------------------------------------------------------------------

PROVIDER_KEYS = {
    "gemini": ("GEMINI_API_KEY", "AIza" + "SyGEMINIsecretsTESTkey-0123456789ab"),
    "vertex": ("GOOGLE_API_KEY", "AIza" + "SyVERTEXsecretsTESTkey-0123456789ab"),
    "openai": ("OPENAI_API_KEY", "sk-" + "proj-SECRETStestKEY0123456789abcdefXYZ"),
    "fal": ("FAL_KEY", "5f1e2d3c-4b5a-4968-8776-" + "a5b4c3d2e1f0:" + "fedcba9876543210" * 2),
}
PROJECT = "imagegen-secrets-project"


def secrets_env(provider: str, emu: Emulator, tls: TLSListener) -> dict[str, str]:
    """A clean environment pointing ``provider``'s SDK at the emulator with its key, the way the
    README tells a user to (each SDK's own variables)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in (*GOOGLE_VARS, *SDK_VARS) and not k.lower().endswith("_proxy")
    }
    env.update(NO_PROXY="127.0.0.1,localhost", PYTHONUNBUFFERED="1")
    name, key = PROVIDER_KEYS[provider]
    env[name] = key
    if provider == "gemini":
        env["GOOGLE_GEMINI_BASE_URL"] = emu.base_url
    elif provider == "vertex":
        env["GOOGLE_VERTEX_BASE_URL"] = emu.base_url
    elif provider == "openai":
        env["OPENAI_BASE_URL"] = emu.base_url + "/v1"
    else:
        env.update(FAL_QUEUE_RUN_HOST=tls.netloc, SSL_CERT_FILE=str(tls.ca_file))
    return env


def imagegen(cwd: Path, env: dict[str, str], *argv: str) -> str:
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


def echoes(secret: str, half: str) -> list[Outcome]:
    """Failures whose messages echo ``secret``: plainly, across the 400-character cut (at
    several offsets, and ``half`` of it alone), in URLs, in auth headers; then a content block
    and a 403 that stops the batch."""
    return [
        Outcome.error(400, message=f"API key {secret} is not valid for this request"),
        Outcome.error(503, message="x" * 366 + secret + " trailing words"),
        Outcome.error(503, message="y" * 384 + secret),
        Outcome.error(503, message="v" * 420 + secret),
        Outcome.error(429, retry_delay="0s", message="z" * 393 + half),
        Outcome.error(
            429,
            retry_delay="0s",
            message=f"see https://console.example.invalid/quotas?key={secret}&alt=json",
        ),
        Outcome.finish("IMAGE_SAFETY"),
        Outcome.error(500, message=f"upstream said: Authorization: Bearer {secret}; Key {secret}"),
        Outcome.error(403, message=f"Forbidden for {secret} at https://x.invalid/v1?key={secret}"),
    ]


WINDOW = 16  # any 16 characters of a secret in a row count as a leak (a cut-off part of it)


def leaks(tmp: Path, text: str, *secrets: str) -> list[str]:
    """Where any of ``secrets``, or any part of one ``WINDOW`` characters long, shows: in
    ``text`` (what the runs printed) or in a file under ``tmp``."""
    parts = {s[i : i + WINDOW] for s in secrets for i in range(max(1, len(s) - WINDOW + 1))}
    found = [f"output: {p}" for p in sorted(parts) if p in text]
    for path in tmp.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path}: {p}" for p in sorted(parts) if p.encode() in data]
    return found


@pytest.mark.parametrize("provider", ["gemini", "vertex", "openai", "fal"])
def test_a_key_echoed_by_the_server_is_in_no_output_or_file(tmp_path: Path, provider: str) -> None:
    """A full CLI run whose every failure echoes the key, then --status (text and JSON),
    --report and --resume; and a run with a key the service refuses, with --verbose. The key,
    and for fal either half of it, is in no stdout, stderr, journal line, snapshot or contact
    sheet; the journal's error texts say *** where it was."""
    key = PROVIDER_KEYS[provider][1]
    pieces = (key, *key.split(":")) if provider == "fal" else (key,)
    half = pieces[-1] if provider == "fal" else key  # fal's secret half alone, or the key
    run_flags = (*BATCH, "--provider", provider, "--concurrency", "1")
    outputs = []
    with Emulator(render="plain") as emu, TLSListener(emu) as tls:
        env = secrets_env(provider, emu, tls)
        emu.enqueue(*echoes(key, half))
        outputs.append(imagegen(tmp_path, env, *run_flags, "--retry-policy", str(policy(tmp_path))))
        assert emu.pending == 0, outputs[-1]  # every echo was served
        sid = journal_mod.list_sessions(tmp_path / "sessions")[-1]
        outputs.append(imagegen(tmp_path, env, "--status", sid))
        outputs.append(imagegen(tmp_path, env, "--status", sid, "--json"))
        outputs.append(imagegen(tmp_path, env, "--report", sid))
        outputs.append(imagegen(tmp_path, env, "--resume", sid))
    with (
        Emulator(render="plain", expected_key="another-key-entirely") as emu,
        TLSListener(emu) as tls,
    ):
        env = secrets_env(provider, emu, tls)
        outputs.append(imagegen(tmp_path, env, *run_flags, "--new", "--verbose"))
    text = "\n".join(outputs)
    assert "Batch stopped" in text and "Contact sheet" in text  # the runs really happened
    assert leaks(tmp_path, text, *pieces) == []
    state = journal_mod.load(tmp_path / "sessions", sid)
    errors = [a.error or "" for js in state.jobs.values() for a in js.history]
    assert sum("***" in e for e in errors) >= 5, errors  # echoed, and scrubbed
    assert any(e.endswith("...") for e in errors)  # cut at 400, after the scrub


def test_vertex_oauth_tokens_are_secrets_and_the_project_id_is_not(tmp_path: Path) -> None:
    """Vertex with a project and application-default credentials: the server echoes the OAuth
    token it was sent; neither the token nor the service account's private key shows anywhere,
    while the project id, no secret, stays readable in the journal's errors."""
    with Emulator(render="plain") as emu, TLSListener(emu) as tls:
        env = secrets_env("vertex", emu, tls)
        del env["GOOGLE_API_KEY"]
        adc = service_account_file(tmp_path / "adc.json", emu.base_url + "/oauth2/token")
        env.update(
            GOOGLE_APPLICATION_CREDENTIALS=str(adc),
            GOOGLE_CLOUD_PROJECT=PROJECT,
            GOOGLE_CLOUD_LOCATION="us-central1",
        )
        emu.enqueue(
            Outcome.error(400, message="token {credential} is not allowed here"),
            Outcome.error(503, message="w" * 380 + "{credential}"),
            Outcome.error(
                403, message=f"Permission denied on projects/{PROJECT} for {{credential}}"
            ),
        )
        out = imagegen(
            tmp_path, env, *BATCH, "--provider", "vertex", "--concurrency", "1",
            "--retry-policy", str(policy(tmp_path)),
        )  # fmt: skip
        tokens = sorted(vertex_state(emu).tokens)
    assert len(tokens) == 1 and emu.pending == 0, out
    private_key = orjson.loads(adc.read_bytes())["private_key"]
    key_line = private_key.splitlines()[5]
    adc.unlink()  # the key file itself is the user's, not an output
    assert leaks(tmp_path, out, tokens[0], key_line) == []
    state = journal_mod.load(
        tmp_path / "sessions", journal_mod.list_sessions(tmp_path / "sessions")[-1]
    )
    errors = [a.error or "" for js in state.jobs.values() for a in js.history]
    assert any(f"projects/{PROJECT}" in e and "***" in e for e in errors), errors

"""``--provider`` end to end through the command line, for every job source: Vertex, OpenAI and
fal (offline, and against an in-test emulator reached through each SDK's own variables). The
images have the provider's promised sizes, the journal records provider and model,
``--resume``, ``--retry`` and ``--status`` need no ``--provider``, ``--dry-run`` shows provider,
model and price per job, and the pool limits default to the provider's own."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from imagegen.emulator import Emulator, Outcome
from imagegen.emulator.fal_routes import fal_state
from imagegen.emulator.openai_routes import openai_state
from imagegen.emulator.tls import TLSListener
from imagegen.emulator.vertex import vertex_state
from imagegen.providers import get
from imagegen.providers.fal.client import queue_pointed_at

from .cli_helpers import (
    FAST,
    GOOGLE_VARS,
    OFFLINE,
    SESSIONS,
    image_size,
    load,
    only_session,
    prompt_of,
    run_cli,
    service_account_file,
    session_ids,
    snapshot,
)
from .conftest import Workspace, write_image

PROVIDERS = ("vertex", "openai", "fal")
TINY = ("--wardrobe", "zip-hoodie", "--catalogs", "v1.0")  # 6 jobs in the `ws` workspace
SHOTS = Path("video-scripts")
KEYS = {
    "gemini": ("GEMINI_API_KEY", "AIza" + "SyGEMINIcliTESTkey-0123456789abcdefg"),
    "vertex": ("GOOGLE_API_KEY", "AIza" + "SyVERTEXcliTESTkey-0123456789abcdefg"),
    "openai": ("OPENAI_API_KEY", "sk-" + "proj-cliTESTkey0123456789abcdef"),
    "fal": ("FAL_KEY", "0a1b2c3d-4e5f-4a6b-8c7d-" + "9e8f7a6b5c4d:" + "0123456789abcdef" * 2),
}
SDK_VARS = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "FAL_KEY", "FAL_QUEUE_RUN_HOST", "SSL_CERT_FILE")


@pytest.fixture
def ws(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """conftest's workspace as the working directory, no key or SDK pointer in the
    environment, one distinct wardrobe description per combo (unique prompts per job)."""
    monkeypatch.chdir(workspace.root)
    for name in (*GOOGLE_VARS, *SDK_VARS):
        monkeypatch.delenv(name, raising=False)
    for txt in workspace.combos.rglob("wardrobe.txt"):
        txt.write_text(f"Zip hoodie of combo {txt.parent.name}\n", encoding="utf-8")
    return workspace


def shot_tree(root: Path) -> None:
    """Three shots in two exercises, one anchor image each."""
    write_image(root / "anchors" / "plank.png", (96, 64), "PNG")
    for exercise, name, prompt in (
        ("plank-hold", "01-intro", "Plank hold, side view."),
        ("plank-hold", "02-detail", "Plank hold, elbow close-up."),
        ("walking-lunge", "01-stride", "A walking lunge stride."),
    ):
        folder = root / SHOTS / exercise / "shots" / name
        folder.mkdir(parents=True)
        data = {"anchor_image": "anchors/plank.png", "engineered_prompt": prompt}
        (folder / "prompt.json").write_text(json.dumps(data), encoding="utf-8")


def promised(provider: str, aspect: str, quality: str = "1K") -> tuple[int, int]:
    info = get(provider)
    size = info.pixel_size(info.default_model, quality, aspect)
    assert size is not None
    return size


def assert_recorded(doc: dict[str, Any], provider: str) -> None:
    """The session, and every job in it, names the provider and its default model."""
    model = get(provider).default_model
    assert doc["config"]["provider"] == provider and doc["config"]["model"] == model
    assert {(j["provider"], j["model"]) for j in doc["jobs"]} == {(provider, model)}


# -- offline, every source ---------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_combos_offline_stop_then_resume_and_status_need_no_provider(
    ws: Workspace, capsys: pytest.CaptureFixture[str], provider: str
) -> None:
    info = get(provider)
    price = info.estimate(info.default_model, "1K", "16:9", 4)
    first = run_cli(
        capsys, *TINY, "--provider", provider, "--aspect", "16:9", *OFFLINE,
        "--max-cost", f"{2.5 * price:.4f}",
    )  # fmt: skip
    assert first.code == 3, first.out + first.err  # stopped at the budget
    assert "Stopped at the budget" in first.out
    sid = only_session(ws.root)
    done = [j for j in snapshot(ws.root, sid)["jobs"] if j["status"] == "completed"]
    assert 1 <= len(done) < 6

    status = run_cli(capsys, "--status", sid)
    assert status.code == 0
    assert f"Provider: {provider} · {info.default_model}" in status.out

    resumed = run_cli(capsys, "--resume", sid)  # no --provider, no --offline
    assert resumed.code == 0, resumed.out + resumed.err
    doc = load(ws.root, sid)
    assert_recorded(doc, provider)
    assert {j["status"] for j in doc["jobs"]} == {"completed"}
    for job in doc["jobs"]:
        assert image_size(job["output"]) == promised(provider, "16:9"), job["output"]
        assert job["image"]["size_ok"] is True
    as_json = run_cli(capsys, "--status", sid, "--json")
    assert json.loads(as_json.out)["config"]["provider"] == provider


@pytest.mark.parametrize("provider", PROVIDERS)
def test_shots_offline_then_retry_of_one_shot_needs_no_provider(
    ws: Workspace, capsys: pytest.CaptureFixture[str], provider: str
) -> None:
    shot_tree(ws.root)
    r = run_cli(
        capsys, "shots", "--all", "--shots-root", str(SHOTS), "--provider", provider, *OFFLINE
    )
    assert r.code == 0, r.out + r.err
    images = sorted((ws.root / SHOTS).rglob("image.png"))
    assert len(images) == 3
    assert {image_size(p) for p in images} == {promised(provider, "1:1")}
    sid = only_session(ws.root)
    assert_recorded(load(ws.root, sid), provider)

    again = run_cli(capsys, "--retry", sid, "--job", "002")
    assert again.code == 0, again.out + again.err
    doc = load(ws.root, sid)
    assert_recorded(doc, provider)
    retried = next(j for j in doc["jobs"] if j["id"] == "002")
    assert retried["status"] == "completed" and retried["attempts"] == 2


# -- against an emulator, reached through each SDK's own variables ----------------------------


@pytest.fixture
def pointed(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    """One emulator (plain images) that every provider's SDK reaches as the README says: the
    Google SDK through GOOGLE_VERTEX_BASE_URL, OpenAI's through OPENAI_BASE_URL, fal's through
    its queue host and a trusted CA (set in-process, as FAL_QUEUE_RUN_HOST would be)."""
    with ExitStack() as stack:
        emu = stack.enter_context(Emulator(render="plain"))
        tls = stack.enter_context(TLSListener(emu))
        stack.enter_context(queue_pointed_at(tls.netloc, tls.ca_file))
        monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", emu.base_url)
        monkeypatch.setenv("GOOGLE_VERTEX_BASE_URL", emu.base_url)
        monkeypatch.setenv("OPENAI_BASE_URL", emu.base_url + "/v1")
        for name, key in KEYS.values():
            monkeypatch.setenv(name, key)
        yield emu


def generated(emu: Emulator, provider: str, prompt: str) -> int:
    """Images the emulator handed out for ``prompt`` through this provider's routes."""
    if provider == "openai":
        return openai_state(emu).generated[prompt]
    if provider == "fal":
        with fal_state(emu).lock:
            return fal_state(emu).generated[prompt]
    return emu.generated[prompt]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_failed_job_is_retried_on_the_sessions_provider_without_naming_it(
    ws: Workspace, pointed: Emulator, capsys: pytest.CaptureFixture[str], provider: str
) -> None:
    pointed.enqueue(Outcome.error(400, message="this one request is refused"), match="Unboxing")
    first = run_cli(capsys, *TINY, "--provider", provider, "--combos", "C-U-001", *FAST)
    assert first.code == 1, first.out + first.err
    sid = only_session(ws.root)
    doc = load(ws.root, sid)
    failed = [j for j in doc["jobs"] if j["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["error_kind"] == "bad_request"
    assert "this one request is refused" in failed[0]["error"]

    status = run_cli(capsys, "--status", sid)
    assert "Failed:" in status.out and f"Provider: {provider}" in status.out

    retried = run_cli(capsys, "--retry", sid)
    assert retried.code == 0, retried.out + retried.err
    doc = load(ws.root, sid)
    assert_recorded(doc, provider)
    assert {j["status"] for j in doc["jobs"]} == {"completed"}
    assert generated(pointed, provider, prompt_of(doc, failed[0])) == 1  # on this provider
    if provider == "vertex":
        assert vertex_state(pointed).auth["api_key"] == 3  # express mode, one call per attempt


def test_vertex_with_a_project_and_application_default_credentials(
    ws: Workspace,
    pointed: Emulator,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No API key at all: GOOGLE_CLOUD_PROJECT/LOCATION and a service account key file whose
    tokens the emulator issues; the project id is no secret and shows where Vertex names it."""
    for name in ("GOOGLE_API_KEY", "GEMINI_API_KEY"):
        monkeypatch.delenv(name)
    adc = service_account_file(ws.root / "adc.json", pointed.base_url + "/oauth2/token")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(adc))
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "imagegen-cli-project")
    monkeypatch.setenv("GOOGLE_CLOUD_LOCATION", "europe-west4")
    pointed.enqueue(Outcome.error(403), match="Unboxing")
    r = run_cli(capsys, *TINY, "--provider", "vertex", "--combos", "C-U-001", *FAST)
    assert r.code == 3, r.out + r.err  # a permission denial stops the batch
    state = vertex_state(pointed)
    assert state.refreshes == 1 and state.auth["bearer"] >= 1 and state.auth["api_key"] == 0
    assert all("projects/imagegen-cli-project/locations/europe-west4/" in p for p in state.paths)
    doc = load(ws.root, only_session(ws.root))
    stopped = [j for j in doc["jobs"] if j["error_kind"] == "batch_stop"]
    assert "projects/imagegen-cli-project/locations/europe-west4" in stopped[0]["error"]


def test_vertex_without_key_or_project_exits_2_naming_both_and_writes_nothing(
    ws: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    r = run_cli(capsys, *TINY, "--provider", "vertex", *FAST)
    assert r.code == 2
    assert len(r.err_lines) == 1
    for word in ("GOOGLE_CLOUD_PROJECT", "GOOGLE_API_KEY", "--offline"):
        assert word in r.err
    assert not (ws.root / SESSIONS).exists()


# -- dry run and pool defaults -----------------------------------------------------------------


@pytest.mark.parametrize("provider", ("gemini", *PROVIDERS))
def test_dry_run_shows_provider_model_and_price_per_job(
    ws: Workspace, capsys: pytest.CaptureFixture[str], provider: str
) -> None:
    info = get(provider)
    model = info.default_model
    r = run_cli(capsys, *TINY, "--provider", provider, "--dry-run", "--json")
    assert r.code == 0, r.err
    rows = json.loads(r.out)["jobs"]
    assert len(rows) == 6
    for row in rows:
        assert (row["provider"], row["model"]) == (provider, model)
        price = info.estimate(model, row["quality"], row["aspect"], row["references"])
        assert row["price_usd"] == round(price, 6) > 0
    table = run_cli(capsys, *TINY, "--provider", provider, "--dry-run")
    text = " ".join(table.out.split())
    assert f"({provider} {model}, published prices of {info.prices_as_of}" in text
    assert f"{rows[0]['price_usd']:.3f}" in text
    assert not (ws.root / SESSIONS).exists()


def test_use_vertexai_makes_vertex_the_default_provider(
    ws: Workspace, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOGLE_GENAI_USE_VERTEXAI", "true")
    r = run_cli(capsys, *TINY, "--dry-run", "--json")
    assert {row["provider"] for row in json.loads(r.out)["jobs"]} == {"vertex"}


@pytest.mark.parametrize("provider", ("gemini", *PROVIDERS))
def test_pool_limits_default_to_the_providers_own_and_flags_override_them(
    ws: Workspace, capsys: pytest.CaptureFixture[str], provider: str
) -> None:
    pool = get(provider).pool
    # One job: nothing waits for the provider's default spacing between starts.
    base = (*TINY, "--combos", "C-U-001", "--prompts", "GN01", "--provider", provider, "--offline")
    r = run_cli(capsys, *base, "--offline-latency", "0", "--plain")
    assert r.code == 0, r.out + r.err
    first = only_session(ws.root)
    doc = snapshot(ws.root, first)
    assert len(doc["jobs"]) == 1
    config = doc["config"]
    assert (config["concurrency"], config["min_interval"], config["rpm"]) == (
        pool.concurrency,
        pool.min_interval,
        pool.rpm,
    )
    r = run_cli(
        capsys, *base, "--new", "--concurrency", "7", "--min-interval", "0", "--rpm", "99",
        "--offline-latency", "0", "--plain",
    )  # fmt: skip
    assert r.code == 0, r.out + r.err
    (second,) = set(session_ids(ws.root)) - {first}
    config = snapshot(ws.root, second)["config"]
    assert (config["concurrency"], config["min_interval"], config["rpm"]) == (7, 0.0, 99)


@pytest.mark.parametrize("provider", ("gemini", "vertex", "openai"))
def test_the_default_concurrency_is_what_the_service_sees(
    ws: Workspace, pointed: Emulator, capsys: pytest.CaptureFixture[str], provider: str
) -> None:
    """Six jobs that each take 0.4 s, nothing between starts: the calls in flight at once
    are the provider's default concurrency, no more."""
    pointed.latency = 0.4
    r = run_cli(capsys, *TINY, "--provider", provider, *FAST)
    assert r.code == 0, r.out + r.err
    assert pointed.max_in_flight == get(provider).pool.concurrency

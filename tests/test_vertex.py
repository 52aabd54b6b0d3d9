"""Vertex AI through the real google-genai SDK against the loopback emulator: the routes and auth
the SDK really sends (express-mode key; project and location with OAuth credentials, injected
or loaded as application-default credentials and refreshed at the emulator), the SDK's own
environment variables, and the mapping of Vertex's failures into imagegen.errors."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import google.oauth2.credentials
import httpx
import pytest
import pytest_asyncio
from google import genai
from google.genai import errors as genai_errors
from google.genai import types
from PIL import Image

from imagegen.emulator import Emulator, Outcome
from imagegen.emulator.vertex import vertex_state
from imagegen.errors import (
    AttemptTimeout,
    BadRequest,
    BatchStop,
    InputError,
    NoImage,
    ProviderError,
    RateLimited,
    ServerError,
)
from imagegen.providers import gemini as gemini_info
from imagegen.providers import get
from imagegen.providers import vertex as info
from imagegen.providers.base import ImageRequest, Reference
from imagegen.providers.gemini.client import GeminiProvider

from .cli_helpers import GOOGLE_VARS, service_account_file

PRO = "gemini-3-pro-image"
# Shaped like a Google key, built at run time (no key-shaped literal in the source).
KEY = "AIza" + "SyVERTEXexpressMODEkey-0123456789abc"
PROJECT = "imagegen-test-project"
EXPRESS_PATH = f"/v1beta1/publishers/google/models/{PRO}:generateContent"


def project_path(location: str, model: str = PRO) -> str:
    return (
        f"/v1beta1/projects/{PROJECT}/locations/{location}/publishers/google/models/{model}"
        ":generateContent"
    )


def png(width: int = 40, height: int = 30) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (10, 200, 90)).save(out, "PNG")
    return out.getvalue()


def image_request(
    prompt: str = "A cat on a mat",
    *,
    model: str = PRO,
    quality: str = "1K",
    aspect: str = "1:1",
    references: tuple[Reference, ...] = (),
    timeout: float = 10.0,
) -> ImageRequest:
    return ImageRequest(model, prompt, references, quality, aspect, timeout)


def size_of(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as img:
        return img.size


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in GOOGLE_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(render="plain") as emulator:
        yield emulator


@pytest_asyncio.fixture
async def express(emu: Emulator) -> AsyncIterator[GeminiProvider]:
    async with GeminiProvider(KEY, vertexai=True, base_url=emu.base_url) as provider:
        yield provider


def token_credentials(
    token: str = "ya29.injected-test-token",
) -> google.oauth2.credentials.Credentials:
    """OAuth credentials with a valid token: the SDK uses them without refreshing (no network)."""
    return google.oauth2.credentials.Credentials(token=token)


def assert_clean(exc: BaseException, *secrets: str, echoed: bool = False) -> None:
    """No secret in our error; nor in the SDK's exception it was raised from, unless the server
    itself echoed the secret (the SDK's own text then holds it: it is never shown, the runner
    records our message only)."""
    for secret in (KEY, *secrets):
        assert secret not in str(exc)
        assert secret not in repr(exc)
        if exc.__cause__ is not None and not echoed:
            assert secret not in str(exc.__cause__)


# -- what the SDK sends ----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_express_mode_posts_the_key_to_the_v1beta1_publisher_route(
    emu: Emulator, express: GeminiProvider
) -> None:
    refs = (Reference("ui", "image/png", png()),)
    generation = await express.generate(image_request(aspect="16:9", references=refs))
    assert size_of(generation.image) == (1376, 768)
    assert generation.model_version == PRO and generation.finish_reason == "STOP"
    assert generation.usage.image_tokens == 1120
    assert emu.last_request_path == EXPRESS_PATH
    assert vertex_state(emu).auth == {"api_key": 1}
    sent = emu.last_request_json
    assert sent is not None
    assert sent["generationConfig"]["imageConfig"] == {"aspectRatio": "16:9", "imageSize": "1K"}
    assert sent["contents"][0]["parts"][1]["inlineData"]["mime_type"] == "image/png"


@pytest.mark.asyncio
@pytest.mark.parametrize(("location", "want"), [("us-central1", "us-central1"), (None, "global")])
async def test_project_and_location_post_a_bearer_token_to_the_project_route(
    emu: Emulator, location: str | None, want: str
) -> None:
    async with GeminiProvider(
        None,
        vertexai=True,
        project=PROJECT,
        location=location,
        credentials=token_credentials(),
        base_url=emu.base_url,
    ) as provider:
        generation = await provider.generate(image_request(quality="2K", aspect="4:5"))
    assert size_of(generation.image) == (1856, 2304)
    assert emu.last_request_path == project_path(want)
    assert vertex_state(emu).auth == {"bearer": 1}


@pytest.mark.asyncio
async def test_google_vertex_base_url_points_both_modes_at_the_emulator(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOGLE_VERTEX_BASE_URL", emu.base_url)
    async with GeminiProvider(KEY, vertexai=True) as provider:
        await provider.generate(image_request())
    assert emu.last_request_path == EXPRESS_PATH
    async with GeminiProvider(
        None, vertexai=True, project=PROJECT, credentials=token_credentials()
    ) as provider:
        await provider.generate(image_request())
    assert emu.last_request_path == project_path("global")


@pytest.mark.asyncio
async def test_the_sdk_left_to_its_environment_would_lose_the_project_behind_a_base_url(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Why the adapter passes project and location itself: google-genai 3.4.0, given a
    base_url and a project only through GOOGLE_CLOUD_PROJECT, posts to the bare base URL with
    no credentials at all."""
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", PROJECT)
    monkeypatch.setenv("GOOGLE_CLOUD_LOCATION", "us-central1")
    client = genai.Client(
        vertexai=True,
        credentials=token_credentials(),
        http_options=types.HttpOptions(
            base_url=emu.base_url, retry_options=types.HttpRetryOptions(attempts=1)
        ),
    )
    try:
        with pytest.raises(genai_errors.ClientError) as caught:
            await client.aio.models.generate_content(model=PRO, contents="x")
    finally:
        await client.aio.aclose()
        client.close()
    sent = caught.value.response.request  # type: ignore[union-attr]
    assert sent.url.path == "/"
    assert "authorization" not in {name.lower() for name in sent.headers}
    assert vertex_state(emu).auth == {}  # no Vertex route was even reached


@pytest.mark.asyncio
async def test_use_vertexai_in_the_environment_does_not_turn_gemini_into_vertex(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOGLE_GENAI_USE_VERTEXAI", "true")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", PROJECT)
    async with GeminiProvider(KEY, base_url=emu.base_url) as provider:
        await provider.generate(image_request())
    assert emu.last_request_path == f"/v1beta/models/{PRO}:generateContent"


def test_vertex_needs_a_key_or_a_project() -> None:
    with pytest.raises(InputError, match=r"GOOGLE_API_KEY.*GOOGLE_CLOUD_PROJECT"):
        GeminiProvider(" ", vertexai=True)


# -- application-default credentials, refreshed at the emulator --------------------------------


@pytest.mark.asyncio
async def test_adc_from_a_service_account_file_is_refreshed_once_and_sent_as_bearer(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    adc = service_account_file(tmp_path / "adc.json", emu.base_url + "/oauth2/token")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(adc))
    async with GeminiProvider(None, vertexai=True, project=PROJECT, base_url=emu.base_url) as p:
        await p.generate(image_request())
        await p.generate(image_request())
    state = vertex_state(emu)
    assert state.refreshes == 1  # the token is kept until it expires
    assert state.auth == {"bearer": 2}
    assert emu.last_request_path == project_path("global")


@pytest.mark.asyncio
async def test_a_refused_refresh_stops_the_batch_saying_how_to_renew(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    adc = service_account_file(tmp_path / "adc.json", emu.base_url + "/oauth2/token", "revoked")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(adc))
    async with GeminiProvider(None, vertexai=True, project=PROJECT, base_url=emu.base_url) as p:
        with pytest.raises(BatchStop) as caught:
            await p.generate(image_request())
    assert caught.value.reason == "invalid_credentials"
    assert "invalid_grant" in str(caught.value)
    assert "gcloud auth application-default login" in str(caught.value)
    assert emu.requests == 1  # the token request; no generateContent went out


@pytest.mark.asyncio
async def test_user_credentials_are_refreshed_at_their_token_uri(emu: Emulator) -> None:
    credentials = google.oauth2.credentials.Credentials(
        token=None,
        refresh_token="a-refresh-token",
        token_uri=emu.base_url + "/oauth2/token",
        client_id="client",
        client_secret="client-secret-value",
    )
    async with GeminiProvider(
        None, vertexai=True, project=PROJECT, credentials=credentials, base_url=emu.base_url
    ) as provider:
        await provider.generate(image_request())
    assert vertex_state(emu).refreshes == 1
    assert credentials.token in vertex_state(emu).tokens


@pytest.mark.asyncio
async def test_no_application_default_credentials_stops_the_batch(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A file that does not exist fails at once, before any search of gcloud's files or of a
    # metadata server (which would need the network).
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    async with GeminiProvider(None, vertexai=True, project=PROJECT, base_url=emu.base_url) as p:
        with pytest.raises(BatchStop) as caught:
            await p.generate(image_request())
    assert caught.value.reason == "no_credentials"
    assert "GOOGLE_APPLICATION_CREDENTIALS" in str(caught.value)
    assert emu.requests == 0


@pytest.mark.asyncio
async def test_a_token_the_service_does_not_know_stops_the_batch_without_showing_it() -> None:
    token = "ya29.a-token-from-another-world"
    with Emulator(render="plain", expected_key="only-this") as emu:
        async with GeminiProvider(
            None,
            vertexai=True,
            project=PROJECT,
            credentials=token_credentials(token),
            base_url=emu.base_url,
        ) as provider:
            with pytest.raises(BatchStop) as caught:
                await provider.generate(image_request())
    assert caught.value.reason == "invalid_key"
    assert str(caught.value).startswith("HTTP 401 UNAUTHENTICATED: Request had invalid auth")
    assert_clean(caught.value, token)


@pytest.mark.asyncio
async def test_an_invalid_express_key_stops_the_batch_without_showing_it() -> None:
    with Emulator(render="plain", expected_key="the-right-key") as emu:
        async with GeminiProvider(KEY, vertexai=True, base_url=emu.base_url) as provider:
            with pytest.raises(BatchStop) as caught:
                await provider.generate(image_request())
    assert caught.value.reason == "invalid_key"
    assert "API key not valid" in str(caught.value)
    assert_clean(caught.value)


# -- Vertex's failures, through the SDK --------------------------------------------------------

PER_DAY = "generate_content_requests_per_day_per_project_per_base_model"
PER_MINUTE = "generate_content_requests_per_minute_per_project_per_base_model"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("outcome", "error_type", "retry_after", "reason"),
    [
        (Outcome.error(429), RateLimited, None, None),
        (Outcome.error(429, retry_delay="7s"), RateLimited, 7.0, None),
        (Outcome.error(429, quota_id=PER_MINUTE), RateLimited, None, None),
        (Outcome.error(429, quota_id=PER_DAY), BatchStop, None, "quota_per_day"),
        (Outcome.error(400), BadRequest, None, None),
        (Outcome.error(403), BatchStop, None, "permission_denied"),
        (Outcome.error(403, reason="BILLING_DISABLED"), BatchStop, None, "billing_disabled"),
        (Outcome.error(403, reason="SERVICE_DISABLED"), BatchStop, None, "api_disabled"),
        (Outcome.error(404), BatchStop, None, "model_not_found"),
        (Outcome.error(499), BadRequest, None, None),
        (Outcome.error(500), ServerError, None, None),
        (Outcome.error(503), ServerError, None, None),
        (Outcome.error(504), ServerError, None, None),
        (Outcome.prompt_blocked(), NoImage, None, "PROMPT_BLOCKED:SAFETY"),
        (Outcome.prompt_blocked("MODEL_ARMOR"), NoImage, None, "PROMPT_BLOCKED:MODEL_ARMOR"),
        (Outcome.prompt_blocked("JAILBREAK"), NoImage, None, "PROMPT_BLOCKED:JAILBREAK"),
        (Outcome.finish("IMAGE_SAFETY"), NoImage, None, "IMAGE_SAFETY"),
        (Outcome.finish("SAFETY"), NoImage, None, "SAFETY"),
        (Outcome.finish("IMAGE_PROHIBITED_CONTENT"), NoImage, None, "IMAGE_PROHIBITED_CONTENT"),
        (Outcome.text_only("No picture."), NoImage, None, "TEXT_ONLY"),
        (Outcome.bad_json(), ServerError, None, None),
        (Outcome.drop(), ServerError, None, None),
        (Outcome.bad_image(), ServerError, None, None),
    ],
    ids=lambda value: (
        f"{value.kind}{value.code}{value.reason or value.quota_id or ''}"
        if isinstance(value, Outcome)
        else None
    ),
)
async def test_vertex_outcome_maps_to_our_error(
    emu: Emulator,
    express: GeminiProvider,
    outcome: Outcome,
    error_type: type[ProviderError],
    retry_after: float | None,
    reason: str | None,
) -> None:
    emu.enqueue(outcome)
    with pytest.raises(ProviderError) as caught:
        await express.generate(image_request())
    exc = caught.value
    assert type(exc) is error_type
    assert exc.retry_after == retry_after
    if reason is not None:
        assert getattr(exc, "reason", None) == reason
    assert "\n" not in str(exc)
    assert_clean(exc)
    assert emu.requests == 1  # the SDK did not retry


@pytest.mark.asyncio
async def test_vertex_429_says_resource_exhausted_and_waits_the_policy_default(
    emu: Emulator, express: GeminiProvider
) -> None:
    emu.enqueue(Outcome.error(429))
    with pytest.raises(RateLimited) as caught:
        await express.generate(image_request())
    assert str(caught.value).startswith("HTTP 429 RESOURCE_EXHAUSTED: Resource exhausted.")
    assert caught.value.retry_after is None  # Vertex sends no RetryInfo: the policy's wait


@pytest.mark.asyncio
async def test_a_filtered_image_says_vertexs_finish_message_and_the_blocked_category(
    emu: Emulator, express: GeminiProvider
) -> None:
    emu.enqueue(Outcome.finish("IMAGE_SAFETY"), Outcome.finish("SAFETY"))
    with pytest.raises(NoImage) as first:
        await express.generate(image_request())
    assert str(first.value).startswith(
        "no image (finish reason IMAGE_SAFETY): Unable to show the generated image."
    )
    with pytest.raises(NoImage) as second:
        await express.generate(image_request())
    assert str(second.value) == "no image (finish reason SAFETY) [HARM_CATEGORY_SEXUALLY_EXPLICIT]"
    assert not second.value.retryable


@pytest.mark.asyncio
async def test_a_permission_denial_names_the_project_which_is_no_secret(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", PROJECT)
    emu.enqueue(Outcome.error(403), Outcome.error(403, reason="BILLING_DISABLED"))
    async with GeminiProvider(
        None,
        vertexai=True,
        project=PROJECT,
        location="europe-west4",
        credentials=token_credentials(),
        base_url=emu.base_url,
    ) as provider:
        with pytest.raises(BatchStop) as denied:
            await provider.generate(image_request())
        with pytest.raises(BatchStop) as billing:
            await provider.generate(image_request())
    assert f"projects/{PROJECT}/locations/europe-west4" in str(denied.value)
    assert "enable billing" in str(billing.value) and f"project #{PROJECT}" in str(billing.value)


@pytest.mark.asyncio
async def test_an_unknown_model_names_the_model_and_the_publisher_resource(
    express: GeminiProvider,
) -> None:
    with pytest.raises(BatchStop) as caught:
        await express.generate(image_request(model="gemini-3-pro-image-preview"))
    message = str(caught.value)
    assert caught.value.reason == "model_not_found"
    assert message.startswith("HTTP 404 NOT_FOUND: model 'gemini-3-pro-image-preview'")
    assert "Publisher Model `publishers/google/models/gemini-3-pro-image-preview`" in message


@pytest.mark.asyncio
async def test_a_hang_past_the_timeout_is_an_attempt_timeout(
    emu: Emulator, express: GeminiProvider
) -> None:
    emu.enqueue(Outcome.hang(2.0))
    with pytest.raises(AttemptTimeout):
        await express.generate(image_request(timeout=0.3))


@pytest.mark.asyncio
async def test_a_key_or_token_echoed_by_vertex_is_scrubbed(
    emu: Emulator, express: GeminiProvider
) -> None:
    token = "ya29.c.echoed-oauth-token_0123456789"
    emu.enqueue(Outcome.error(400, message=f"bad {KEY} in ?key={KEY} with Bearer {token}"))
    with pytest.raises(BadRequest) as caught:
        await express.generate(image_request())
    assert_clean(caught.value, token, echoed=True)
    assert str(caught.value).count("***") >= 3


# -- auth from the environment, and the info -------------------------------------------------


def test_a_project_in_the_environment_wins_over_a_key_as_in_the_sdk() -> None:
    env = {"GOOGLE_CLOUD_PROJECT": "p1", "GOOGLE_API_KEY": "k1", "GEMINI_API_KEY": "k2"}
    assert info.read_auth(env) == info.VertexAuth(None, "p1", "global")
    env["GOOGLE_CLOUD_LOCATION"] = "us-central1"
    assert info.read_auth(env).location == "us-central1"
    assert info.read_auth({"GEMINI_API_KEY": "k2", "GOOGLE_API_KEY": "k1"}).api_key == "k1"
    assert info.read_auth({"GEMINI_API_KEY": "k2"}).api_key == "k2"


def test_no_credentials_names_both_ways_and_the_emulator() -> None:
    with pytest.raises(InputError) as caught:
        info.read_auth({})
    message = str(caught.value)
    for word in ("GOOGLE_CLOUD_PROJECT", "application-default", "GOOGLE_API_KEY", "--offline"):
        assert word in message


@pytest.mark.parametrize(
    ("env", "vertex"),
    [
        ({}, False),
        ({"GOOGLE_GENAI_USE_VERTEXAI": "True"}, True),
        ({"GOOGLE_GENAI_USE_VERTEXAI": "1"}, True),
        ({"GOOGLE_GENAI_USE_VERTEXAI": "false"}, False),
        ({"GOOGLE_GENAI_USE_VERTEXAI": "true", "GOOGLE_GENAI_USE_ENTERPRISE": "0"}, False),
        ({"GOOGLE_GENAI_USE_ENTERPRISE": "TRUE"}, True),
    ],
)
def test_vertex_by_default_reads_the_sdks_switches(env: dict[str, str], vertex: bool) -> None:
    assert info.vertex_by_default(env) is vertex


def test_registry_gives_vertex_info_priced_as_the_gemini_api() -> None:
    vertex = get("vertex")
    assert vertex.name == "vertex" and vertex.default_model == PRO
    assert "gemini-3-pro-image-preview" not in vertex.models  # discontinued on Vertex
    assert vertex.key_vars == ("GOOGLE_API_KEY", "GEMINI_API_KEY")
    assert "GOOGLE_CLOUD_PROJECT" not in vertex.key_vars  # a project id is not a secret
    assert vertex.pixel_size(PRO, "4K", "21:9") == (6336, 2688)
    assert vertex.estimate(PRO, "4K", "1:1", 2) == gemini_info.estimate(PRO, "4K", "1:1", 2)
    assert "unverified" in vertex.prices_as_of
    assert vertex.reason_labels["MODEL_ARMOR"] == "safety block"
    assert vertex.pool != get("gemini").pool


def test_loading_the_vertex_info_does_not_import_the_sdk() -> None:
    code = (
        "import sys; from imagegen.providers import get; get('vertex'); "
        "print('google.genai' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["False"]


# -- the emulator's Vertex routes, as raw HTTP -------------------------------------------------


def test_the_emulator_answers_v1_and_v1beta1_and_leaves_other_vertex_paths_404(
    emu: Emulator,
) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "raw"}]}]}
    with httpx.Client(base_url=emu.base_url, headers={"x-goog-api-key": KEY}) as client:
        for version in ("v1", "v1beta1"):
            path = f"/{version}/publishers/google/models/{PRO}:generateContent"
            assert client.post(path, json=body).status_code == 200
        path = f"/v1/projects/{PROJECT}/locations/us-central1/publishers/google/models/{PRO}"
        assert client.post(path + ":generateContent", json=body).status_code == 200
        missing = client.post(f"/v1beta1/publishers/google/models/{PRO}:countTokens", json=body)
        assert missing.status_code == 404
        assert missing.json()["error"]["status"] == "NOT_FOUND"  # Google's shape, not fal's
        bare = httpx.post(emu.base_url + EXPRESS_PATH, json=body)
        assert bare.status_code == 401
        assert bare.json()["error"]["details"][0]["reason"] == "CREDENTIALS_MISSING"
    assert vertex_state(emu).routes == {"express": 3, "project": 1}


def test_the_token_endpoint_refuses_what_it_cannot_grant(emu: Emulator) -> None:
    url = emu.base_url + "/oauth2/token"
    refused = httpx.post(url, data={"grant_type": "password", "username": "u"})
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    revoked = httpx.post(url, data={"grant_type": "refresh_token", "refresh_token": "revoked-1"})
    assert revoked.status_code == 400
    granted = httpx.post(url, data={"grant_type": "refresh_token", "refresh_token": "fine"})
    assert granted.json()["access_token"].startswith("ya29.emulator-")
    assert vertex_state(emu).refreshes == 1

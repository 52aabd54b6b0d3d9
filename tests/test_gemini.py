"""GeminiProvider through the real google-genai SDK against the loopback emulator: request
building, response reading, and the mapping of every failure into imagegen.errors."""

from __future__ import annotations

import base64
import io
import math
import time
from collections.abc import AsyncIterator, Iterator

import httpx2
import pytest
import pytest_asyncio
from google.genai import errors as genai_errors
from google.genai import types
from PIL import Image

from imagegen.emulator import Emulator, Outcome
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
from imagegen.providers.base import ImageRequest, Reference
from imagegen.providers.gemini.client import GeminiProvider, read_generation
from imagegen.providers.gemini.errors import ERROR_MAP, STATUS_MAP, map_error

PRO = "gemini-3-pro-image"
# Shaped like a real key, so both the exact-key and the pattern scrubbing are exercised.
KEY = "AIza" + "SyTEST0123456789abcdefghijklmnopqrs"  # fake; split so it is no key-shaped literal


def png(width: int = 40, height: int = 30, color: tuple[int, int, int] = (10, 200, 90)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, "PNG")
    return out.getvalue()


def jpeg(width: int = 40, height: int = 30) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 10, 10)).save(out, "JPEG")
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


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(render="plain") as emulator:
        yield emulator


@pytest_asyncio.fixture
async def provider(emu: Emulator) -> AsyncIterator[GeminiProvider]:
    async with GeminiProvider(KEY, base_url=emu.base_url) as gemini:
        yield gemini


def assert_no_key(exc: BaseException) -> None:
    assert KEY not in str(exc)
    assert KEY not in repr(exc)


# -- success -------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_generation_has_the_image_real_mime_usage_and_version(
    provider: GeminiProvider,
) -> None:
    prompt = "A cat on a mat, photographed from above"
    refs = (Reference("ui", "image/png", png()), Reference("pose", "image/jpeg", jpeg()))
    generation = await provider.generate(image_request(prompt, references=refs))
    assert Image.open(io.BytesIO(generation.image)).size == (1024, 1024)
    assert generation.mime_type == "image/png"
    assert generation.finish_reason == "STOP"
    assert generation.model_version == PRO
    usage = generation.usage
    assert usage.prompt_tokens == math.ceil(len(prompt) / 4) + 2 * 258
    assert usage.output_tokens == usage.image_tokens == 1120
    assert 200 <= usage.thought_tokens <= 400


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("quality", "aspect", "pixels"),
    [("1K", "16:9", (1376, 768)), ("1K", "9:16", (768, 1376)), ("4K", "1:1", (4096, 4096))],
)
async def test_pixel_size_follows_quality_and_aspect(
    provider: GeminiProvider, quality: str, aspect: str, pixels: tuple[int, int]
) -> None:
    generation = await provider.generate(image_request(quality=quality, aspect=aspect))
    assert Image.open(io.BytesIO(generation.image)).size == pixels
    if quality == "4K":
        assert generation.usage.image_tokens == 2000


@pytest.mark.asyncio
async def test_request_sends_text_then_references_in_order_with_image_config(
    emu: Emulator, provider: GeminiProvider
) -> None:
    refs = (
        Reference("wardrobe", "image/jpeg", jpeg()),
        Reference("ui", "image/png", png()),
        Reference("pose", "image/png", png(7, 9)),
    )
    await provider.generate(image_request("Prompt text", references=refs, aspect="4:5"))
    sent = emu.last_request_json
    assert sent is not None
    parts = sent["contents"][0]["parts"]
    assert parts[0] == {"text": "Prompt text"}
    inline = [p["inlineData"] for p in parts[1:]]
    assert [i["mime_type"] for i in inline] == ["image/jpeg", "image/png", "image/png"]
    assert [base64.urlsafe_b64decode(i["data"]) for i in inline] == [r.data for r in refs]
    config = sent["generationConfig"]
    assert config["responseModalities"] == ["TEXT", "IMAGE"]
    assert config["imageConfig"] == {"aspectRatio": "4:5", "imageSize": "1K"}


@pytest.mark.asyncio
@pytest.mark.parametrize("model", ["gemini-2.5-flash-image", "gemini-3.1-flash-image"])
async def test_flash_models_are_not_sent_an_image_size(
    emu: Emulator, provider: GeminiProvider, model: str
) -> None:
    generation = await provider.generate(image_request(model=model, quality="2K"))
    sent = emu.last_request_json
    assert sent is not None
    assert sent["generationConfig"]["imageConfig"] == {"aspectRatio": "1:1"}
    assert Image.open(io.BytesIO(generation.image)).size == (1024, 1024)


@pytest.mark.asyncio
async def test_thought_image_is_skipped_for_the_final_one(
    emu: Emulator, provider: GeminiProvider
) -> None:
    emu.enqueue(Outcome.thought_then_image())
    generation = await provider.generate(image_request(aspect="16:9"))
    assert Image.open(io.BytesIO(generation.image)).size == (1376, 768)


@pytest.mark.asyncio
async def test_wrong_size_is_returned_as_is(emu: Emulator, provider: GeminiProvider) -> None:
    # Checking the size against the request is the caller's business, not the adapter's.
    emu.enqueue(Outcome.wrong_size(320, 200))
    generation = await provider.generate(image_request())
    assert Image.open(io.BytesIO(generation.image)).size == (320, 200)


def test_declared_mime_is_replaced_by_the_sniffed_one() -> None:
    response = types.GenerateContentResponse(
        candidates=[
            types.Candidate(
                content=types.Content(
                    role="model",
                    parts=[types.Part.from_bytes(data=jpeg(), mime_type="image/png")],
                ),
                finish_reason=types.FinishReason.STOP,
            )
        ]
    )
    generation = read_generation(response)
    assert generation.mime_type == "image/jpeg"
    assert generation.usage.prompt_tokens == 0


def _image_response(data: bytes) -> types.GenerateContentResponse:
    part = types.Part.from_bytes(data=data, mime_type="image/png")
    return types.GenerateContentResponse(
        candidates=[
            types.Candidate(
                content=types.Content(role="model", parts=[part]),
                finish_reason=types.FinishReason.STOP,
            )
        ]
    )


@pytest.mark.parametrize("size", [(40, 30), (900, 900)])
def test_a_png_altered_in_transit_is_a_server_error(size: tuple[int, int]) -> None:
    out = io.BytesIO()
    Image.effect_noise(size, 64).save(out, format="PNG")
    data = bytearray(out.getvalue())
    data[data.index(b"IDAT") + 20] ^= 0xFF  # one flipped bit pattern in the pixel data
    with pytest.raises(ServerError, match="do not decode"):
        read_generation(_image_response(bytes(data)))
    assert read_generation(_image_response(out.getvalue())).mime_type == "image/png"


@pytest.mark.asyncio
async def test_base_url_comes_from_the_environment_when_not_given(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", emu.base_url)
    async with GeminiProvider(KEY) as gemini:
        await gemini.generate(image_request())
    assert emu.requests == 1


def test_an_empty_key_is_an_input_error() -> None:
    with pytest.raises(InputError, match="GEMINI_API_KEY"):
        GeminiProvider("  ")


# -- failures, through the SDK -------------------------------------------------------------

PER_DAY = "GenerateRequestsPerDayPerProjectPerModel"
PER_MINUTE = "GenerateRequestsPerMinutePerProjectPerModel"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("outcome", "error_type", "retry_after", "reason"),
    [
        (Outcome.error(429, retry_delay="58s"), RateLimited, 58.0, None),
        (Outcome.error(429, retry_delay="1.5s"), RateLimited, 1.5, None),
        (Outcome.error(429), RateLimited, None, None),
        (Outcome.error(429, retry_delay="9s", quota_id=PER_MINUTE), RateLimited, 9.0, None),
        (Outcome.error(429, retry_delay="9s", quota_id=PER_DAY), BatchStop, None, "quota_per_day"),
        (Outcome.error(400), BadRequest, None, None),
        (Outcome.error(400, reason="API_KEY_INVALID"), BatchStop, None, "invalid_key"),
        (Outcome.error(401), BatchStop, None, "invalid_key"),
        (Outcome.error(403), BatchStop, None, "permission_denied"),
        (Outcome.error(403, reason="BILLING_DISABLED"), BatchStop, None, "billing_disabled"),
        (Outcome.error(404), BatchStop, None, "model_not_found"),
        (Outcome.error(409), BadRequest, None, None),
        (Outcome.error(413), BadRequest, None, None),
        (Outcome.error(408), ServerError, None, None),
        (Outcome.error(500), ServerError, None, None),
        (Outcome.error(502), ServerError, None, None),
        (Outcome.error(503), ServerError, None, None),
        (Outcome.error(503, retry_delay="2s"), ServerError, 2.0, None),
        (Outcome.error(504), ServerError, None, None),
        (Outcome.error(599), ServerError, None, None),
        (Outcome.prompt_blocked(), NoImage, None, "PROMPT_BLOCKED:SAFETY"),
        (Outcome.prompt_blocked("OTHER"), NoImage, None, "PROMPT_BLOCKED:OTHER"),
        (Outcome.finish("IMAGE_SAFETY"), NoImage, None, "IMAGE_SAFETY"),
        (Outcome.finish("PROHIBITED_CONTENT"), NoImage, None, "PROHIBITED_CONTENT"),
        (Outcome.finish("IMAGE_RECITATION"), NoImage, None, "IMAGE_RECITATION"),
        (Outcome.finish("NO_IMAGE"), NoImage, None, "NO_IMAGE"),
        (Outcome.text_only("I cannot draw that."), NoImage, None, "TEXT_ONLY"),
        (Outcome.bad_json(), ServerError, None, None),
        (Outcome.drop(), ServerError, None, None),
        (Outcome.bad_image(), ServerError, None, None),
    ],
    ids=lambda value: value.kind + str(value.code) if isinstance(value, Outcome) else None,
)
async def test_outcome_maps_to_our_error(
    emu: Emulator,
    provider: GeminiProvider,
    outcome: Outcome,
    error_type: type[ProviderError],
    retry_after: float | None,
    reason: str | None,
) -> None:
    emu.enqueue(outcome)
    with pytest.raises(ProviderError) as info:
        await provider.generate(image_request())
    exc = info.value
    assert type(exc) is error_type
    assert exc.retry_after == retry_after
    if reason is not None:
        assert getattr(exc, "reason", None) == reason
    if error_type is not NoImage:
        assert exc.__cause__ is not None  # raise ... from exc keeps the SDK's exception
    message = str(exc)
    assert "\n" not in message
    if outcome.kind == "error":
        assert message.startswith(f"HTTP {outcome.code} {outcome.status}: ")
    assert_no_key(exc)
    if exc.__cause__ is not None:
        assert KEY not in str(exc.__cause__)


@pytest.mark.asyncio
async def test_messages_are_one_readable_line(emu: Emulator, provider: GeminiProvider) -> None:
    emu.enqueue(Outcome.error(429, message="Quota exceeded.\n  Try later.", retry_delay="58s"))
    with pytest.raises(RateLimited) as info:
        await provider.generate(image_request())
    assert str(info.value) == "HTTP 429 RESOURCE_EXHAUSTED: Quota exceeded. Try later."


@pytest.mark.asyncio
async def test_a_key_echoed_by_the_server_is_scrubbed(
    emu: Emulator, provider: GeminiProvider
) -> None:
    emu.enqueue(Outcome.error(400, message=f"API key {KEY} has no access; see ?key={KEY}"))
    with pytest.raises(BadRequest) as info:
        await provider.generate(image_request())
    assert_no_key(info.value)
    assert "***" in str(info.value)


@pytest.mark.asyncio
async def test_invalid_key_stops_the_batch() -> None:
    with Emulator(render="plain", expected_key="the-right-key") as emu:
        async with GeminiProvider(KEY, base_url=emu.base_url) as gemini:
            with pytest.raises(BatchStop) as info:
                await gemini.generate(image_request())
    assert info.value.reason == "invalid_key"
    assert "API key not valid" in str(info.value)
    assert_no_key(info.value)


@pytest.mark.asyncio
async def test_unknown_model_stops_the_batch_naming_the_model(provider: GeminiProvider) -> None:
    with pytest.raises(BatchStop) as info:
        await provider.generate(image_request(model="gemini-9-imaginary-image"))
    assert info.value.reason == "model_not_found"
    assert "'gemini-9-imaginary-image'" in str(info.value)
    assert str(info.value).startswith("HTTP 404 NOT_FOUND: ")
    assert_no_key(info.value)


@pytest.mark.asyncio
async def test_a_hang_past_the_timeout_is_an_attempt_timeout_at_the_deadline(
    emu: Emulator, provider: GeminiProvider
) -> None:
    emu.enqueue(Outcome.hang(2.0))
    started = time.monotonic()
    with pytest.raises(AttemptTimeout) as info:
        await provider.generate(image_request(timeout=0.3))
    elapsed = time.monotonic() - started
    assert 0.3 <= elapsed < 1.0
    assert "0.3 s" in str(info.value)
    assert info.value.retryable
    # The provider is still usable after a cancelled request.
    assert (await provider.generate(image_request())).mime_type == "image/png"


@pytest.mark.asyncio
async def test_the_sdk_backstop_timeout_is_an_attempt_timeout_too(
    emu: Emulator, provider: GeminiProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should our deadline scope not fire, the SDK's own httpx2 timeout still ends the wait."""
    monkeypatch.setattr("imagegen.providers.gemini.client.SDK_TIMEOUT_MARGIN", -0.8)
    emu.enqueue(Outcome.hang(2.0))
    started = time.monotonic()
    with pytest.raises(AttemptTimeout, match="ReadTimeout") as info:
        await provider.generate(image_request(timeout=1.0))
    assert time.monotonic() - started < 0.9
    assert isinstance(info.value.__cause__, httpx2.ReadTimeout)


@pytest.mark.asyncio
async def test_body_that_is_not_json_says_so(emu: Emulator, provider: GeminiProvider) -> None:
    emu.enqueue(Outcome.bad_json())
    with pytest.raises(ServerError, match=r"^the response body is not JSON \(JSONDecodeError: "):
        await provider.generate(image_request())


@pytest.mark.asyncio
async def test_unknown_model_request_is_still_recorded(
    emu: Emulator, provider: GeminiProvider
) -> None:
    with pytest.raises(BatchStop):
        await provider.generate(image_request(model="gemini-0-image", prompt="recorded"))
    sent = emu.last_request_json
    assert sent is not None
    assert sent["contents"][0]["parts"][0] == {"text": "recorded"}


@pytest.mark.asyncio
async def test_connection_refused_is_a_server_error() -> None:
    with Emulator() as emu:
        url = emu.base_url  # the port is free again once the emulator stops
    async with GeminiProvider(KEY, base_url=url) as gemini:
        with pytest.raises(ServerError, match="ConnectError") as info:
            await gemini.generate(image_request())
    assert isinstance(info.value.__cause__, httpx2.ConnectError)
    assert_no_key(info.value)


@pytest.mark.asyncio
async def test_sdk_retries_are_off(emu: Emulator, provider: GeminiProvider) -> None:
    emu.enqueue(Outcome.error(503), Outcome.error(503))
    with pytest.raises(ServerError):
        await provider.generate(image_request())
    assert emu.requests == 1


# -- the maps are complete -----------------------------------------------------------------


def _subclasses(cls: type[BaseException]) -> set[type[BaseException]]:
    found = set(cls.__subclasses__())
    for sub in list(found):
        found |= _subclasses(sub)
    return found


REQUEST_ERRORS = sorted(
    _subclasses(httpx2.RequestError) | {httpx2.RequestError}, key=lambda c: c.__name__
)


@pytest.mark.parametrize("exc_type", REQUEST_ERRORS, ids=[c.__name__ for c in REQUEST_ERRORS])
def test_every_httpx2_request_error_is_mapped(exc_type: type[BaseException]) -> None:
    mapped = map_error(exc_type("boom"), model=PRO, api_key=KEY)
    assert mapped is not None
    assert mapped.retryable
    expected = AttemptTimeout if issubclass(exc_type, httpx2.TimeoutException) else ServerError
    assert type(mapped) is expected
    assert str(mapped).endswith(f"({exc_type.__name__}: boom)")


@pytest.mark.parametrize("code", range(400, 600))
def test_every_http_error_code_is_mapped(code: int) -> None:
    error_class = genai_errors.ClientError if code < 500 else genai_errors.ServerError
    exc = error_class(code, {"error": {"code": code, "status": "X", "message": "m"}})
    mapped = map_error(exc, model=PRO, api_key=KEY)
    assert mapped is not None
    if code in (401, 403, 404):
        assert type(mapped) is BatchStop
    elif code == 429:
        assert type(mapped) is RateLimited
    elif code == 408 or code >= 500:
        assert type(mapped) is ServerError
    else:
        assert type(mapped) is BadRequest
    assert mapped.retryable == (code in (408, 429) or code >= 500)


def test_the_maps_cover_the_notes_error_table() -> None:
    assert set(STATUS_MAP) >= {400, 403, 404, 408, 429, 500, 502, 503, 504}
    assert all(issubclass(target, ProviderError) for target, _ in ERROR_MAP.values())


def test_unknown_exceptions_are_not_mapped() -> None:
    # A bug (our own or the SDK's) must surface as itself, not as a retryable provider error.
    assert map_error(ValueError("bug"), model=PRO) is None
    assert map_error(KeyError("bug"), model=PRO) is None

"""OpenAIProvider through the real openai SDK against the loopback emulator: sizes, references,
usage and cost, and the mapping of every failure into imagegen.errors."""

from __future__ import annotations

import calendar
import io
import math
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator

import httpx2
import openai
import pytest
import pytest_asyncio
from PIL import Image

from imagegen.emulator import Emulator, Outcome
from imagegen.emulator.openai_routes import openai_state
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
from imagegen.providers import get
from imagegen.providers import openai as info
from imagegen.providers.base import ImageRequest, Reference, Usage
from imagegen.providers.openai.client import (
    ERROR_MAP,
    STATUS_MAP,
    OpenAIProvider,
    map_error,
    retry_after_seconds,
)

MODEL = "gpt-image-2"
# Shaped like a real project key; built at run time so no key-shaped literal is in the source.
KEY = "sk-" + "proj-" + "TEST0123456789abcdefghijklmnopqrstuvwxyzABCD"


def png(width: int = 40, height: int = 30, color: tuple[int, int, int] = (10, 200, 90)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, "PNG")
    return out.getvalue()


def jpeg(width: int = 40, height: int = 30) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 10, 10)).save(out, "JPEG")
    return out.getvalue()


def size_of(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as img:
        return img.size


def image_request(
    prompt: str = "A cat on a mat",
    *,
    model: str = MODEL,
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
async def provider(emu: Emulator) -> AsyncIterator[OpenAIProvider]:
    async with OpenAIProvider(KEY, base_url=emu.base_url + "/v1") as adapter:
        yield adapter


def assert_no_key(exc: BaseException) -> None:
    for text in (str(exc), repr(exc)):
        assert KEY not in text
        assert not re.search(r"sk-[A-Za-z0-9_\-*]{6,}", text)


# -- success -------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_generation_has_the_image_usage_cost_and_request_id(
    emu: Emulator, provider: OpenAIProvider
) -> None:
    prompt = "A cat on a mat, photographed from above"
    generation = await provider.generate(image_request(prompt, aspect="16:9"))
    assert size_of(generation.image) == (1280, 720)
    assert generation.mime_type == "image/png"
    assert generation.request_id is not None and generation.request_id.startswith("req_")
    output = math.ceil(1280 * 720 * 4160 / (1024 * 1024))
    assert generation.usage == Usage(
        prompt_tokens=math.ceil(len(prompt) / 4), output_tokens=output, image_tokens=output
    )
    cost = info.cost(MODEL, "1K", "16:9", 0, generation.usage)
    assert cost == pytest.approx(
        generation.usage.prompt_tokens * 8e-6 + generation.usage.output_tokens * 30e-6
    )
    sent = openai_state(emu).last_params
    assert sent is not None
    assert sent["size"] == "1280x720"
    assert (sent["quality"], sent["output_format"], sent["n"]) == ("high", "png", 1)
    assert openai_state(emu).received == []  # generations, not edits


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("quality", "aspect"),
    [(q, a) for q in info.QUALITIES for a in ("1:1", "9:16", "21:9", "3:2")],
)
async def test_every_tier_gives_the_promised_pixel_size(
    provider: OpenAIProvider, quality: str, aspect: str
) -> None:
    generation = await provider.generate(image_request(quality=quality, aspect=aspect))
    assert size_of(generation.image) == info.pixel_size(MODEL, quality, aspect)


@pytest.mark.asyncio
async def test_every_reference_is_delivered_in_order_through_images_edit(
    emu: Emulator, provider: OpenAIProvider
) -> None:
    refs = tuple(
        Reference(f"role {i}", "image/png" if i % 2 else "image/jpeg", png(10 + i, 9))
        if i % 2
        else Reference(f"role {i}", "image/jpeg", jpeg(10 + i, 9))
        for i in range(16)
    )
    generation = await provider.generate(image_request("Edit them", references=refs))
    received = openai_state(emu).references
    assert [image.data for image in received] == [r.data for r in refs]
    assert {image.name for image in received} == {"image[]"}
    assert [image.content_type for image in received] == [r.mime_type for r in refs]
    assert received[0].filename == "01-role_0.jpg"
    assert generation.usage.prompt_tokens == math.ceil(len("Edit them") / 4) + 16 * 765


@pytest.mark.asyncio
async def test_seventeen_references_are_refused_before_any_call(
    emu: Emulator, provider: OpenAIProvider
) -> None:
    refs = tuple(Reference(f"r{i}", "image/png", png()) for i in range(17))
    with pytest.raises(InputError, match="at most 16"):
        await provider.generate(image_request(references=refs))
    assert emu.requests == 0


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("model", "quality", "aspect", "match"),
    [
        ("gpt-image-1", "1K", "1:1", "retired"),
        ("dall-e-3", "1K", "1:1", "not supported"),
        ("gpt-image-1.5", "1K", "16:9", "fixed-size"),
        (MODEL, "8K", "1:1", "--quality"),
        (MODEL, "1k", "1:1", "--quality"),
        (MODEL, "1K", "7:2", "--aspect"),
    ],
)
async def test_what_the_api_cannot_do_is_refused_not_changed(
    emu: Emulator, provider: OpenAIProvider, model: str, quality: str, aspect: str, match: str
) -> None:
    with pytest.raises(InputError, match=match):
        await provider.generate(image_request(model=model, quality=quality, aspect=aspect))
    assert emu.requests == 0


@pytest.mark.asyncio
async def test_base_url_comes_from_openai_base_url(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", emu.base_url + "/v1")
    async with OpenAIProvider(KEY) as adapter:
        await adapter.generate(image_request())
    assert openai_state(emu).requests == 1


def test_an_empty_key_is_an_input_error() -> None:
    with pytest.raises(InputError, match="OPENAI_API_KEY"):
        OpenAIProvider(" ")


# -- failures, through the SDK -------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("outcome", "error_type", "retry_after", "reason"),
    [
        (Outcome.error(429, retry_delay="7s"), RateLimited, 7.0, None),
        (Outcome.error(429, retry_delay="0.5s"), RateLimited, 0.5, None),
        (Outcome.error(429), RateLimited, None, None),
        (Outcome.error(429, reason="insufficient_quota"), BatchStop, None, "insufficient_quota"),
        (Outcome.error(400), BadRequest, None, None),
        (Outcome.error(400, reason="billing_hard_limit_reached"), BatchStop, None, None),
        (Outcome.error(401), BatchStop, None, "invalid_key"),
        (Outcome.error(403), BatchStop, None, "permission_denied"),
        (Outcome.error(404), BatchStop, None, "model_not_found"),
        (Outcome.error(409), ServerError, None, None),
        (Outcome.error(413), BadRequest, None, None),
        (Outcome.error(500), ServerError, None, None),
        (Outcome.error(502), ServerError, None, None),
        (Outcome.error(503), ServerError, None, None),
        (Outcome.error(503, retry_delay="2s"), ServerError, 2.0, None),
        (Outcome.error(504), ServerError, None, None),
        (Outcome.prompt_blocked(), NoImage, None, "moderation_blocked"),
        (Outcome.finish("IMAGE_SAFETY"), NoImage, None, "moderation_blocked"),
        (Outcome.text_only(), NoImage, None, "NO_IMAGE"),
        (Outcome.bad_json(), ServerError, None, None),
        (Outcome.drop(), ServerError, None, None),
        (Outcome.bad_image(), ServerError, None, None),
    ],
    ids=lambda value: value.kind + str(value.code) if isinstance(value, Outcome) else None,
)
async def test_outcome_maps_to_our_error(
    emu: Emulator,
    provider: OpenAIProvider,
    outcome: Outcome,
    error_type: type[ProviderError],
    retry_after: float | None,
    reason: str | None,
) -> None:
    emu.enqueue(outcome)
    with pytest.raises(ProviderError) as caught:
        await provider.generate(image_request())
    exc = caught.value
    assert type(exc) is error_type
    assert exc.retry_after == retry_after
    if reason is not None:
        assert getattr(exc, "reason", None) == reason
    assert "\n" not in str(exc)
    assert_no_key(exc)
    assert openai_state(emu).requests == 1  # the SDK did not retry


@pytest.mark.asyncio
async def test_moderation_block_says_the_stage_and_category(
    emu: Emulator, provider: OpenAIProvider
) -> None:
    emu.enqueue(Outcome.finish("IMAGE_SAFETY"))
    with pytest.raises(NoImage) as caught:
        await provider.generate(image_request())
    message = str(caught.value)
    assert message.startswith("HTTP 400 moderation_blocked: Your request was rejected")
    assert "(moderation stage output: sexual)" in message
    assert not caught.value.retryable


@pytest.mark.asyncio
async def test_invalid_key_stops_the_batch_and_the_masked_echo_is_scrubbed() -> None:
    with Emulator(render="plain", expected_key="sk-the-right-key-000") as emu:
        async with OpenAIProvider(KEY, base_url=emu.base_url + "/v1") as adapter:
            with pytest.raises(BatchStop) as caught:
                await adapter.generate(image_request())
    assert caught.value.reason == "invalid_key"
    assert "Incorrect API key provided: ***" in str(caught.value)
    assert_no_key(caught.value)
    assert KEY[-4:] not in str(caught.value)


@pytest.mark.asyncio
async def test_a_key_echoed_by_the_server_is_scrubbed(
    emu: Emulator, provider: OpenAIProvider
) -> None:
    emu.enqueue(Outcome.error(400, message=f"bad request from {KEY} (Bearer {KEY})"))
    with pytest.raises(BadRequest) as caught:
        await provider.generate(image_request())
    assert_no_key(caught.value)
    assert "***" in str(caught.value)


@pytest.mark.asyncio
async def test_unknown_model_on_the_service_stops_the_batch_naming_it(
    provider: OpenAIProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A model we list but the account cannot use answers 404 model_not_found.
    monkeypatch.setattr("imagegen.emulator.openai_routes.KNOWN_MODELS", frozenset())
    with pytest.raises(BatchStop) as caught:
        await provider.generate(image_request())
    assert caught.value.reason == "model_not_found"
    assert f"'{MODEL}'" in str(caught.value)


@pytest.mark.asyncio
async def test_a_hang_past_the_timeout_is_an_attempt_timeout_at_the_deadline(
    emu: Emulator, provider: OpenAIProvider
) -> None:
    emu.enqueue(Outcome.hang(2.0))
    started = time.monotonic()
    with pytest.raises(AttemptTimeout, match=r"0\.3 s"):
        await provider.generate(image_request(timeout=0.3))
    assert 0.3 <= time.monotonic() - started < 1.0
    assert (await provider.generate(image_request())).mime_type == "image/png"
    assert openai_state(emu).requests == 2


@pytest.mark.asyncio
async def test_connection_refused_is_a_server_error() -> None:
    with Emulator() as emu:
        url = emu.base_url + "/v1"
    async with OpenAIProvider(KEY, base_url=url) as adapter:
        with pytest.raises(ServerError, match="APIConnectionError") as caught:
            await adapter.generate(image_request())
    assert isinstance(caught.value.__cause__, openai.APIConnectionError)
    assert_no_key(caught.value)


@pytest.mark.asyncio
async def test_sdk_retries_are_off(emu: Emulator, provider: OpenAIProvider) -> None:
    emu.enqueue(Outcome.error(503), Outcome.error(429, retry_delay="0s"))
    with pytest.raises(ServerError):
        await provider.generate(image_request())
    assert openai_state(emu).requests == 1
    assert emu.pending == 1


# -- pure pieces ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
        ({"retry-after": "9"}, 9.0),
        ({"retry-after": "0.25"}, 0.25),
        ({"retry-after": "Wed, 02 Dec 2026 06:00:30 GMT"}, 30.0),
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after_reads_ms_seconds_and_dates(
    headers: dict[str, str], seconds: float | None
) -> None:
    now = float(calendar.timegm((2026, 12, 2, 6, 0, 0)))
    assert retry_after_seconds(headers, now=now) == seconds


def test_the_size_table_in_the_docstring_is_the_one_used() -> None:
    doc = info.__doc__ or ""
    for aspect in info.ASPECTS:
        row = re.search(rf"^\s+{re.escape(aspect)}\s+(\S+)\s+(\S+)\s+(\S+)\s*$", doc, re.M)
        assert row is not None, aspect
        assert [str(info.SIZES[q, aspect]) for q in info.QUALITIES] == list(row.groups())


@pytest.mark.parametrize("size", sorted(info.SIZES.values(), key=str), ids=str)
def test_every_size_obeys_the_api_rules(size: info.Size) -> None:
    width, height = size.width, size.height
    assert width % 16 == 0 and height % 16 == 0
    assert max(width, height) <= 3 * min(width, height)
    assert max(width, height) <= info.MAX_EDGE
    assert info.MIN_PIXELS <= width * height <= info.MAX_PIXELS


def test_sizes_keep_the_ratio_exactly_and_grow_with_the_tier() -> None:
    for aspect in info.ASPECTS:
        a, b = (int(x) for x in aspect.split(":"))
        areas = []
        for quality in info.QUALITIES:
            size = info.SIZES[quality, aspect]
            assert size.width * b == size.height * a
            areas.append(size.width * size.height)
        assert areas == sorted(areas) and len(set(areas)) == 3


def test_a_call_without_usage_is_priced_at_the_estimate_not_zero() -> None:
    assert info.cost(MODEL, "2K", "1:1", 1, Usage()) == info.estimate(MODEL, "2K", "1:1", 1)


def test_estimate_is_in_the_published_range() -> None:
    # 4160 tokens at $30/1M is ~$0.125 for a high-quality 1024x1024 image.
    assert info.estimate(MODEL, "1K", "1:1", 0) == pytest.approx(0.1263, abs=1e-3)
    assert info.estimate(MODEL, "1K", "1:1", 2) > info.estimate(MODEL, "1K", "1:1", 0)
    assert info.estimate(MODEL, "4K", "16:9", 0) > info.estimate(MODEL, "2K", "16:9", 0)


REQUEST_ERRORS = sorted(
    {httpx2.RequestError, *httpx2.RequestError.__subclasses__()}
    | {sub for cls in httpx2.RequestError.__subclasses__() for sub in cls.__subclasses__()},
    key=lambda c: c.__name__,
)


@pytest.mark.parametrize("exc_type", REQUEST_ERRORS, ids=[c.__name__ for c in REQUEST_ERRORS])
def test_every_httpx2_request_error_is_mapped(exc_type: type[BaseException]) -> None:
    mapped = map_error(exc_type("boom"), model=MODEL, api_key=KEY)
    assert mapped is not None and mapped.retryable


def _status_error(code: int, body: object = None) -> openai.APIStatusError:
    request = httpx2.Request("POST", "https://api.openai.com/v1/images/generations")
    response = httpx2.Response(code, request=request)
    return openai.APIStatusError(f"Error code: {code}", response=response, body=body)


@pytest.mark.parametrize("code", range(400, 600))
def test_every_http_status_is_mapped(code: int) -> None:
    mapped = map_error(_status_error(code), model=MODEL, api_key=KEY)
    assert mapped is not None
    if code in (401, 403, 404):
        assert type(mapped) is BatchStop
    elif code == 429:
        assert type(mapped) is RateLimited
    elif code in (408, 409) or code >= 500:
        assert type(mapped) is ServerError
    else:
        assert type(mapped) is BadRequest


def test_the_maps_cover_the_sdk_error_classes() -> None:
    assert set(STATUS_MAP) >= {400, 401, 403, 404, 429, 500, 503}
    assert all(issubclass(target, ProviderError) for target, _ in ERROR_MAP.values())
    for cls in (openai.APITimeoutError, openai.APIConnectionError, TimeoutError):
        assert map_error(cls.__new__(cls), model=MODEL) is not None


def test_unknown_exceptions_are_not_mapped() -> None:
    assert map_error(ValueError("bug"), model=MODEL) is None


# -- registry ------------------------------------------------------------------------------


def test_registry_gives_openai_info() -> None:
    provider = get("openai")
    assert provider.default_model == "gpt-image-2"
    assert provider.max_references == 16
    assert provider.key_vars == ("OPENAI_API_KEY",)
    assert provider.pixel_size(MODEL, "2K", "16:9") == (2560, 1440)
    assert provider.reason_labels["moderation_blocked"] == "safety block"


def test_loading_the_info_does_not_import_the_sdk() -> None:
    code = (
        "import sys; from imagegen.providers import get; get('openai'); get('fal'); "
        "print('openai' in sys.modules, 'fal_client' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["False", "False"]

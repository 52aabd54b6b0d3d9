"""FalProvider through the real fal-client SDK against the loopback emulator over HTTPS: the
queue round trip, references, checkpoint and resume, the SDK's own retries being off (a hung or
dropped submit is never posted twice), and the mapping of every failure into imagegen.errors."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import fal_client
import fal_client.client as fal_sdk
import httpx
import pytest
import pytest_asyncio
from PIL import Image

from imagegen.emulator import Emulator, Outcome
from imagegen.emulator.fal_routes import fal_state
from imagegen.emulator.tls import TLSListener
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
from imagegen.providers import fal as info
from imagegen.providers import get
from imagegen.providers.base import ImageRequest, Reference
from imagegen.providers.fal.client import (
    ERROR_MAP,
    STATUS_MAP,
    FalProvider,
    map_error,
    queue_pointed_at,
    scrub,
)

PRO, FLASH = "fal-ai/nano-banana-pro", "fal-ai/nano-banana"
# Shaped like a real fal key (KEY_ID:KEY_SECRET); built at run time, no key-shaped literal.
KEY = "0a1b2c3d-4e5f-4a6b-8c7d-" + "9e8f7a6b5c4d" + ":" + "0123456789abcdef" * 2


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
    model: str = PRO,
    quality: str = "1K",
    aspect: str = "1:1",
    references: tuple[Reference, ...] = (),
    timeout: float = 10.0,
    resume: str | None = None,
) -> ImageRequest:
    return ImageRequest(model, prompt, references, quality, aspect, timeout, resume)


@pytest.fixture
def emu() -> Iterator[Emulator]:
    """The emulator behind HTTPS, with fal-client pointed at it (host and trusted CA)."""
    with (
        Emulator(render="plain") as emulator,
        TLSListener(emulator) as tls,
        queue_pointed_at(tls.netloc, tls.ca_file),
    ):
        yield emulator


@pytest_asyncio.fixture
async def provider(emu: Emulator) -> AsyncIterator[FalProvider]:
    async with FalProvider(KEY, poll_first=0.01, poll_max=0.05) as adapter:
        yield adapter


def assert_no_key(exc: BaseException) -> None:
    for text in (str(exc), repr(exc)):
        assert KEY not in text
        for half in KEY.split(":"):
            assert half not in text


class Journal:
    """A checkpoint that records request ids and how far fal had got when each arrived."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.ids: list[str] = []
        self.polls_before: list[int] = []

    async def __call__(self, request_id: str) -> None:
        self.ids.append(request_id)
        self.polls_before.append(fal_state(self.emu).status_polls)


# -- success -------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_generation_round_trip_with_checkpoint_before_polling(
    emu: Emulator, provider: FalProvider
) -> None:
    state = fal_state(emu)
    state.turnaround = 0.2
    journal = Journal(emu)
    generation = await provider.generate(image_request(quality="2K", aspect="16:9"), journal)
    assert size_of(generation.image) == (2752, 1536) == info.pixel_size(PRO, "2K", "16:9")
    assert generation.mime_type == "image/png"
    assert journal.ids == [generation.request_id]
    assert journal.polls_before == [0]  # journaled before the first status poll
    assert state.submits["A cat on a mat"] == 1
    assert state.status_polls >= 2  # it waited through the queue
    assert state.downloads == 1
    assert state.download_auth == [None]  # the key went to the queue only, not to the image
    assert info.cost(PRO, "2K", "16:9", 0, generation.usage) == 0.15


@pytest.mark.asyncio
async def test_every_reference_is_delivered_as_a_data_url_to_the_edit_app(
    emu: Emulator, provider: FalProvider
) -> None:
    refs = tuple(
        Reference(f"r{i}", "image/jpeg", jpeg(10 + i, 9))
        if i % 2
        else Reference(f"r{i}", "image/png", png(10 + i, 9))
        for i in range(14)
    )
    await provider.generate(image_request("Edit them", references=refs))
    state = fal_state(emu)
    assert list(state.received[0]) == [r.data for r in refs]
    (job,) = state.jobs.values()
    assert job.app == "fal-ai/nano-banana-pro/edit"
    assert job.arguments["image_urls"][1].startswith("data:image/jpeg;base64,")
    assert job.arguments["resolution"] == "1K"
    assert (job.arguments["num_images"], job.arguments["output_format"]) == (1, "png")


@pytest.mark.asyncio
async def test_no_references_go_to_the_app_itself_and_flash_gets_no_resolution(
    emu: Emulator, provider: FalProvider
) -> None:
    generation = await provider.generate(image_request(model=FLASH, aspect="16:9"))
    (job,) = fal_state(emu).jobs.values()
    assert job.app == FLASH
    assert "resolution" not in job.arguments and "image_urls" not in job.arguments
    assert size_of(generation.image) == (1344, 768)


@pytest.mark.asyncio
async def test_an_image_as_a_data_url_is_decoded(emu: Emulator, provider: FalProvider) -> None:
    fal_state(emu).image_delivery = "data"
    generation = await provider.generate(image_request(aspect="4:5"))
    assert size_of(generation.image) == (928, 1152)
    assert fal_state(emu).downloads == 0


@pytest.mark.asyncio
async def test_resume_polls_the_journaled_request_and_never_submits_again(
    emu: Emulator, provider: FalProvider
) -> None:
    state = fal_state(emu)
    state.turnaround = 0.3
    journal = Journal(emu)
    with pytest.raises(AttemptTimeout):
        await provider.generate(image_request(timeout=0.1), journal)
    assert len(journal.ids) == 1 and state.submits["A cat on a mat"] == 1
    generation = await provider.generate(image_request(resume=journal.ids[0]), journal)
    assert generation.request_id == journal.ids[0]
    assert state.submits["A cat on a mat"] == 1  # paid once
    assert journal.ids == [generation.request_id]  # a resumed id is not checkpointed again


@pytest.mark.asyncio
async def test_resuming_an_unknown_request_id_is_a_bad_request(
    emu: Emulator, provider: FalProvider
) -> None:
    with pytest.raises(BadRequest, match="does not know this request id"):
        await provider.generate(image_request(resume="no-such-request"))
    assert sum(fal_state(emu).submits.values()) == 0


# -- the SDK's own retries are off ---------------------------------------------------------


@pytest.mark.asyncio
async def test_a_hung_submit_is_never_posted_twice(emu: Emulator, provider: FalProvider) -> None:
    emu.enqueue(Outcome.hang(3.0), match="hung")
    journal = Journal(emu)
    started = time.monotonic()
    with pytest.raises(AttemptTimeout, match=r"0\.4 s"):
        await provider.generate(image_request("hung", timeout=0.4), journal)
    assert time.monotonic() - started < 1.5
    assert fal_state(emu).submits["hung"] == 1
    assert journal.ids == []  # no answer, no request id


@pytest.mark.asyncio
async def test_a_submit_hung_past_the_sdks_own_timeout_is_not_reposted(emu: Emulator) -> None:
    """The SDK's timeout fires first (inside our deadline): fal-client would retry it."""
    emu.enqueue(Outcome.hang(1.5), match="slow")
    async with FalProvider(KEY, poll_first=0.01, sdk_timeout=0.3) as adapter:
        with pytest.raises(AttemptTimeout, match="ReadTimeout"):
            await adapter.generate(image_request("slow", timeout=5.0))
    assert fal_state(emu).submits["slow"] == 1


@pytest.mark.asyncio
async def test_with_the_sdks_retries_on_that_submit_would_be_posted_again(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Control: the test above can tell. fal-client's default (10 tries) posts twice."""
    monkeypatch.setattr(fal_sdk, "MAX_ATTEMPTS", 10)
    emu.enqueue(Outcome.hang(1.5), match="slow")
    async with FalProvider(KEY, poll_first=0.01, sdk_timeout=0.3) as adapter:
        await adapter.generate(image_request("slow", timeout=5.0))
    assert fal_state(emu).submits["slow"] == 2


@pytest.mark.asyncio
async def test_a_dropped_submit_answer_is_not_reposted(
    emu: Emulator, provider: FalProvider
) -> None:
    emu.enqueue(Outcome.drop(), match="dropped")
    with pytest.raises(ServerError, match="RemoteProtocolError"):
        await provider.generate(image_request("dropped"))
    assert fal_state(emu).submits["dropped"] == 1
    assert len(fal_state(emu).jobs) == 1  # fal had queued it: a repost would pay twice


@pytest.mark.asyncio
async def test_a_rate_limited_submit_is_not_reposted(emu: Emulator, provider: FalProvider) -> None:
    emu.enqueue(Outcome.error(429), Outcome.error(429), match="busy")
    with pytest.raises(RateLimited):
        await provider.generate(image_request("busy"))
    assert fal_state(emu).submits["busy"] == 1
    assert emu.pending == 1


def test_importing_the_adapter_set_the_sdks_own_retry_setting() -> None:
    assert fal_sdk.MAX_ATTEMPTS == 1


# -- failures ------------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("outcome", "error_type", "retry_after", "reason"),
    [
        (Outcome.error(429, retry_delay="7s"), RateLimited, 7.0, None),
        (Outcome.error(429), RateLimited, None, None),
        (Outcome.error(400), BadRequest, None, None),
        (Outcome.error(401), BatchStop, None, "invalid_key"),
        (Outcome.error(403), BatchStop, None, "permission_denied"),
        (Outcome.error(404), BatchStop, None, "model_not_found"),
        (Outcome.error(422), BadRequest, None, None),
        (Outcome.error(500), ServerError, None, None),
        (Outcome.error(502), ServerError, None, None),
        (Outcome.error(503), ServerError, None, None),
        (Outcome.error(504), ServerError, None, None),
        (Outcome.prompt_blocked(), NoImage, None, "content_policy_violation"),
        (Outcome.finish("IMAGE_SAFETY"), NoImage, None, "content_policy_violation"),
        (Outcome.text_only("No picture today."), NoImage, None, "NO_IMAGE"),
        (Outcome.bad_json(), ServerError, None, None),
        (Outcome.drop(), ServerError, None, None),
        (Outcome.bad_image(), ServerError, None, None),
    ],
    ids=lambda value: value.kind + str(value.code) if isinstance(value, Outcome) else None,
)
async def test_outcome_maps_to_our_error(
    emu: Emulator,
    provider: FalProvider,
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
    assert sum(fal_state(emu).submits.values()) == 1


@pytest.mark.asyncio
async def test_a_content_policy_block_says_so(emu: Emulator, provider: FalProvider) -> None:
    emu.enqueue(Outcome.prompt_blocked())
    with pytest.raises(NoImage) as caught:
        await provider.generate(image_request())
    assert str(caught.value).startswith("HTTP 422 content_policy_violation: body.prompt: ")
    assert not caught.value.retryable


@pytest.mark.asyncio
async def test_an_invalid_key_stops_the_batch_without_showing_it() -> None:
    with (
        Emulator(render="plain", expected_key="another-key") as emu,
        TLSListener(emu) as tls,
        queue_pointed_at(tls.netloc, tls.ca_file),
    ):
        async with FalProvider(KEY) as adapter:
            with pytest.raises(BatchStop) as caught:
                await adapter.generate(image_request())
    assert caught.value.reason == "invalid_key"
    assert_no_key(caught.value)
    assert caught.value.__cause__ is not None
    assert KEY not in str(caught.value.__cause__)


@pytest.mark.asyncio
async def test_an_unknown_app_stops_the_batch_naming_the_model(
    emu: Emulator, provider: FalProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An app that fal does not have (renamed, withdrawn) answers the submit with 404.
    monkeypatch.setattr(
        "imagegen.providers.fal.client.application", lambda model, refs: "fal-ai/imaginary"
    )
    with pytest.raises(BatchStop) as caught:
        await provider.generate(image_request())
    assert caught.value.reason == "model_not_found"
    assert "'fal-ai/nano-banana-pro'" in str(caught.value)


@pytest.mark.asyncio
async def test_connection_refused_is_a_server_error(tmp_path: Path) -> None:
    with Emulator() as gone, TLSListener(gone) as tls:
        netloc = tls.netloc  # the port is free again once the listener stops
        ca_file = tmp_path / "ca.pem"
        ca_file.write_bytes(tls.ca_file.read_bytes())
    with queue_pointed_at(netloc, ca_file):
        async with FalProvider(KEY) as adapter:
            with pytest.raises(ServerError, match="ConnectError") as caught:
                await adapter.generate(image_request())
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert_no_key(caught.value)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("model", "quality", "aspect", "references", "match"),
    [
        ("fal-ai/flux", "1K", "1:1", 0, "not supported"),
        (FLASH, "2K", "1:1", 0, "not available"),
        (PRO, "8K", "1:1", 0, "not available"),
        (PRO, "1K", "7:2", 0, "--aspect"),
        (PRO, "1K", "1:1", 15, "at most 14"),
    ],
)
async def test_what_fal_cannot_do_is_refused_before_any_call(
    emu: Emulator,
    provider: FalProvider,
    model: str,
    quality: str,
    aspect: str,
    references: int,
    match: str,
) -> None:
    refs = tuple(Reference(f"r{i}", "image/png", png()) for i in range(references))
    request = image_request(model=model, quality=quality, aspect=aspect, references=refs)
    with pytest.raises(InputError, match=match):
        await provider.generate(request)
    assert emu.requests == 0


def test_an_empty_key_is_an_input_error() -> None:
    with pytest.raises(InputError, match="FAL_KEY"):
        FalProvider("")


# -- pointing the SDK with its own environment variables -----------------------------------


def test_fal_queue_run_host_and_ssl_cert_file_point_a_fresh_process_at_the_emulator() -> None:
    """What a person does: set the variables before the process imports fal_client."""
    script = textwrap.dedent(
        """
        import os, anyio
        from imagegen.providers.base import ImageRequest
        from imagegen.providers.fal.client import FalProvider

        async def main():
            async with FalProvider(os.environ["FAL_KEY"], poll_first=0.01) as provider:
                request = ImageRequest("fal-ai/nano-banana-pro", "env", (), "1K", "3:2", 20)
                generation = await provider.generate(request)
            print(len(generation.image), generation.mime_type)

        anyio.run(main)
        """
    )
    with Emulator(render="plain") as emu, TLSListener(emu) as tls:
        env = {
            **os.environ,
            "FAL_QUEUE_RUN_HOST": tls.netloc,
            "SSL_CERT_FILE": str(tls.ca_file),
            "FAL_KEY": KEY,
        }
        done = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.split()[1] == "image/png"
        assert fal_state(emu).submits["env"] == 1


# -- pure pieces ---------------------------------------------------------------------------


def test_scrub_removes_the_key_its_halves_and_key_shaped_text() -> None:
    key_id, secret = KEY.split(":")
    text = f"{KEY} / {key_id} / {secret} / Key abc:def / other {'1a2b3c4d-' * 1}"
    cleaned = scrub(text, KEY)
    assert key_id not in cleaned and secret not in cleaned
    assert "Key ***" in cleaned


@pytest.mark.parametrize("code", range(400, 600))
def test_every_http_status_is_mapped(code: int) -> None:
    request = httpx.Request("POST", "https://queue.fal.run/fal-ai/nano-banana-pro")
    response = httpx.Response(code, request=request)
    exc = fal_client.FalClientHTTPError("boom", code, {}, response=response)
    mapped = map_error(exc, stage="submit", api_key=KEY)
    assert mapped is not None
    if code in (401, 403, 404):
        assert type(mapped) is BatchStop
    elif code == 429:
        assert type(mapped) is RateLimited
    elif code in (408, 409) or code >= 500:
        assert type(mapped) is ServerError
    else:
        assert type(mapped) is BadRequest


REQUEST_ERRORS = sorted(
    {httpx.RequestError, *httpx.RequestError.__subclasses__()}
    | {sub for cls in httpx.RequestError.__subclasses__() for sub in cls.__subclasses__()},
    key=lambda c: c.__name__,
)


@pytest.mark.parametrize("exc_type", REQUEST_ERRORS, ids=[c.__name__ for c in REQUEST_ERRORS])
def test_every_httpx_request_error_is_mapped(exc_type: type[BaseException]) -> None:
    mapped = map_error(exc_type("boom"), api_key=KEY)
    assert mapped is not None and mapped.retryable


def test_the_maps_are_complete_and_unknowns_propagate() -> None:
    assert set(STATUS_MAP) >= {400, 401, 403, 404, 422, 429, 500, 503}
    assert all(issubclass(target, ProviderError) for target, _ in ERROR_MAP.values())
    assert map_error(ValueError("bug")) is None


def test_registry_gives_fal_info() -> None:
    provider = get("fal")
    assert provider.default_model == PRO
    assert provider.max_references == 14
    assert provider.key_vars == ("FAL_KEY",)
    assert provider.estimate(PRO, "4K", "1:1", 3) == 0.30
    assert provider.pixel_size(FLASH, "1K", "1:1") is None
    assert provider.reason_labels["content_policy_violation"] == "safety block"

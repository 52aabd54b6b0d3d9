"""One failure policy for every provider: each kind of failure, as each service answers it, comes
out of the provider's adapter (its real SDK, against the emulator) as the same error of our tree,
and the retry policy treats it the same way.

    failure                      our error        retried   batch
    429 with a retry delay       RateLimited      yes       waits the server's delay
    429 without one              RateLimited      yes       waits the policy's default
    quota / balance exhausted    BatchStop        no        stops
    5xx                          ServerError      yes
    no answer in time            AttemptTimeout   yes
    content policy block         NoImage          no
    invalid key                  BatchStop        no        stops (invalid_key)
    unknown model                BatchStop        no        stops (model_not_found)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import pytest

from imagegen.emulator import Emulator, Outcome
from imagegen.emulator.tls import TLSListener
from imagegen.errors import (
    AttemptTimeout,
    BatchStop,
    NoImage,
    ProviderError,
    RateLimited,
    ServerError,
)
from imagegen.providers import get
from imagegen.providers.base import ImageProvider, ImageRequest
from imagegen.retry import RetryPolicy

from .cli_helpers import GOOGLE_VARS

PROVIDERS = ("gemini", "vertex", "openai", "fal")
KEYS = {
    "gemini": "AIza" + "SyERRORSgeminiTESTkey-0123456789abcd",
    "vertex": "AIza" + "SyERRORSvertexTESTkey-0123456789abcd",
    "openai": "sk-" + "proj-ERRORStestKEY0123456789abcdef",
    "fal": "1a2b3c4d-5e6f-4a7b-8c9d-" + "0e1f2a3b4c5d:" + "0123456789abcdef" * 2,
}
#: How each service says "quota / balance exhausted" (notes: Gemini's QuotaFailure per-day id,
#: Vertex's quota named in its message, OpenAI's insufficient_quota, fal's locked user).
QUOTA = {
    "gemini": Outcome.error(429, quota_id="GenerateRequestsPerDayPerProjectPerModel"),
    "vertex": Outcome.error(429, quota_id="generate_content_requests_per_day_per_project"),
    "openai": Outcome.error(429, reason="insufficient_quota"),
    "fal": Outcome.error(403, message="User is locked. Reason: Exhausted balance."),
}
#: Where each emulator family keeps the models it serves (emptied: the model is unknown).
MODEL_TABLES = {
    "gemini": "imagegen.emulator.wire.KNOWN_MODELS",
    "vertex": "imagegen.emulator.vertex.KNOWN_MODELS",
    "openai": "imagegen.emulator.openai_routes.KNOWN_MODELS",
    "fal": "imagegen.emulator.fal_routes.KNOWN_APPS",
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*GOOGLE_VARS, "OPENAI_BASE_URL", "FAL_QUEUE_RUN_HOST", "SSL_CERT_FILE"):
        monkeypatch.delenv(name, raising=False)


@asynccontextmanager
async def adapter(provider: str, emu: Emulator) -> AsyncIterator[ImageProvider]:
    """``provider``'s adapter, through its real SDK, pointed at ``emu``."""
    async with AsyncExitStack() as stack:
        if provider in ("gemini", "vertex"):
            from imagegen.providers.gemini.client import GeminiProvider

            made: ImageProvider = await stack.enter_async_context(
                GeminiProvider(KEYS[provider], vertexai=provider == "vertex", base_url=emu.base_url)
            )
        elif provider == "openai":
            from imagegen.providers.openai.client import OpenAIProvider

            made = await stack.enter_async_context(
                OpenAIProvider(KEYS[provider], base_url=emu.base_url + "/v1")
            )
        else:
            from imagegen.providers.fal.client import FalProvider, queue_pointed_at

            tls = stack.enter_context(TLSListener(emu))
            stack.enter_context(queue_pointed_at(tls.netloc, tls.ca_file))
            made = await stack.enter_async_context(
                FalProvider(KEYS[provider], poll_first=0.01, poll_max=0.05)
            )
        yield made


def request(provider: str, timeout: float = 10.0) -> ImageRequest:
    return ImageRequest(get(provider).default_model, "A failing prompt", (), "1K", "1:1", timeout)


async def failure(
    provider: str,
    outcome: Outcome | None,
    *,
    expected_key: str | None = None,
    attempt_seconds: float = 10.0,
) -> ProviderError:
    """The error ``provider``'s adapter raises when the emulator answers with ``outcome``."""
    with Emulator(render="plain", expected_key=expected_key) as emu:
        if outcome is not None:
            emu.enqueue(outcome)
        async with adapter(provider, emu) as made:
            with pytest.raises(ProviderError) as caught:
                await made.generate(request(provider, attempt_seconds))
    assert KEYS[provider] not in str(caught.value)
    return caught.value


def policy_retries(error: ProviderError) -> bool:
    return RetryPolicy().attempts_for(error) > 1


@pytest.mark.asyncio
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_rate_limits_are_retried_after_the_servers_delay_or_the_policys(
    provider: str,
) -> None:
    with_delay = await failure(provider, Outcome.error(429, retry_delay="7s"))
    assert type(with_delay) is RateLimited and with_delay.retry_after == 7.0
    assert RetryPolicy().wait_for(with_delay, 1) == 7.0
    without = await failure(provider, Outcome.error(429))
    assert type(without) is RateLimited and without.retry_after is None
    assert RetryPolicy().wait_for(without, 1) == RetryPolicy().rate_limit_wait
    assert policy_retries(with_delay) and policy_retries(without)


@pytest.mark.asyncio
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_an_exhausted_quota_or_balance_stops_the_batch(provider: str) -> None:
    error = await failure(provider, QUOTA[provider])
    assert type(error) is BatchStop and not error.retryable
    assert error.reason in ("quota_per_day", "insufficient_quota", "permission_denied")


@pytest.mark.asyncio
@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("code", [500, 502, 503, 504])
async def test_server_errors_are_retried(provider: str, code: int) -> None:
    error = await failure(provider, Outcome.error(code))
    assert type(error) is ServerError and policy_retries(error)


@pytest.mark.asyncio
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_no_answer_in_time_is_a_retried_timeout(provider: str) -> None:
    error = await failure(provider, Outcome.hang(3.0), attempt_seconds=0.4)
    assert type(error) is AttemptTimeout and policy_retries(error)


@pytest.mark.asyncio
@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("outcome", [Outcome.prompt_blocked(), Outcome.finish("IMAGE_SAFETY")])
async def test_a_content_policy_block_fails_the_job_without_retry(
    provider: str, outcome: Outcome
) -> None:
    error = await failure(provider, outcome)
    assert type(error) is NoImage and not policy_retries(error)
    assert get(provider).reason_labels.get(error.reason.removeprefix("PROMPT_BLOCKED:")) == (
        "safety block"
    )


@pytest.mark.asyncio
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_an_invalid_key_stops_the_batch(provider: str) -> None:
    error = await failure(provider, None, expected_key="the-only-valid-key")
    assert type(error) is BatchStop and error.reason == "invalid_key"


@pytest.mark.asyncio
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_an_unknown_model_stops_the_batch_naming_it(
    provider: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(MODEL_TABLES[provider], frozenset())
    error = await failure(provider, None)
    assert type(error) is BatchStop and error.reason == "model_not_found"
    assert repr(get(provider).default_model) in str(error)

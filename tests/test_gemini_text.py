"""GeminiTextWriter through the real google-genai SDK against the emulator's text answers: the
request it sends, the words and usage it reads, the price, and every failure mapped."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from imagegen.emulator import Emulator, Outcome
from imagegen.errors import AttemptTimeout, BatchStop, NoText, RateLimited, ServerError
from imagegen.model import Usage
from imagegen.providers.gemini import text_cost, text_price
from imagegen.providers.gemini.client import GeminiTextWriter

FLASH = "gemini-2.5-flash"
KEY = "text-writer-test-key-0123"
TURKISH = "Bir madenci çiftliği, turuncu ışıklar."  # noqa: RUF001  (Turkish dotless i)


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(render="plain") as emulator:
        yield emulator


@pytest_asyncio.fixture
async def writer(emu: Emulator) -> AsyncIterator[GeminiTextWriter]:
    async with GeminiTextWriter(KEY, base_url=emu.base_url, timeout=5.0) as w:
        yield w


async def write(writer: GeminiTextWriter, text: str = "Write a prompt for a diagram.") -> object:
    return await writer.write(text, model=FLASH, max_tokens=512, temperature=0.3)


@pytest.mark.asyncio
async def test_a_text_model_answers_in_words_with_usage(
    emu: Emulator, writer: GeminiTextWriter
) -> None:
    answer = await writer.write(
        "Write a prompt for a diagram of blocks.", model=FLASH, max_tokens=512, temperature=0.3
    )
    assert answer.text.startswith("Emulated image prompt ")
    assert answer.finish_reason == "STOP" and answer.model_version == FLASH
    usage = answer.usage
    assert usage.prompt_tokens == 10 and usage.output_tokens > 10
    assert 64 <= usage.thought_tokens < 128 and usage.image_tokens == 0
    assert emu.written == {"Write a prompt for a diagram of blocks.": 1}
    assert not emu.generated  # no image was made
    sent = emu.last_request_json or {}
    config = sent["generationConfig"]
    assert config["responseModalities"] == ["TEXT"]
    assert config["maxOutputTokens"] == 512 and config["temperature"] == 0.3
    again = await writer.write(
        "Write a prompt for a diagram of blocks.", model=FLASH, max_tokens=512, temperature=0.3
    )
    assert again.text == answer.text  # deterministic for the same request


@pytest.mark.asyncio
async def test_scripted_words_are_returned_as_written(
    emu: Emulator, writer: GeminiTextWriter
) -> None:
    emu.enqueue(Outcome.text_only(TURKISH), match="miners")
    answer = await writer.write("miners at work", model=FLASH, max_tokens=64, temperature=0.0)
    assert answer.text == TURKISH


@pytest.mark.asyncio
async def test_the_on_request_hook_sees_a_text_request_before_it_is_answered(
    emu: Emulator, writer: GeminiTextWriter
) -> None:
    seen: list[tuple[str, int]] = []
    emu.on_request = lambda prompt: seen.append((prompt, sum(emu.written.values())))
    await write(writer, "a hooked request")
    assert seen == [("a hooked request", 0)]  # in flight: not answered, not counted yet
    assert emu.written == {"a hooked request": 1}


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("outcome", "error", "reason"),
    [
        (Outcome.prompt_blocked("SAFETY"), NoText, "PROMPT_BLOCKED:SAFETY"),
        (Outcome.finish("SAFETY"), NoText, "SAFETY"),
        (Outcome.finish("STOP"), NoText, "EMPTY"),
        (Outcome.error(503), ServerError, None),
        (Outcome.error(429, retry_delay="7s"), RateLimited, None),
        (Outcome.error(403), BatchStop, None),
        (Outcome.bad_json(), ServerError, None),
    ],
)
async def test_failures_map_into_our_errors(
    emu: Emulator,
    writer: GeminiTextWriter,
    outcome: Outcome,
    error: type[Exception],
    reason: str | None,
) -> None:
    emu.enqueue(outcome)
    with pytest.raises(error) as caught:
        await write(writer)
    if reason is not None:
        assert getattr(caught.value, "reason", None) == reason
    if isinstance(caught.value, RateLimited):
        assert caught.value.retry_after == 7.0
    assert KEY not in str(caught.value)


@pytest.mark.asyncio
async def test_a_hang_past_the_timeout_is_an_attempt_timeout(emu: Emulator) -> None:
    emu.enqueue(Outcome.hang(2.0))
    async with GeminiTextWriter(KEY, base_url=emu.base_url, timeout=0.2) as short:
        with pytest.raises(AttemptTimeout):
            await write(short)


def test_text_is_priced_per_token_with_thinking_at_the_output_rate() -> None:
    usage = Usage(prompt_tokens=1_000_000, output_tokens=500_000, thought_tokens=500_000)
    assert text_cost(FLASH, usage) == pytest.approx(0.30 + 2.50)
    assert text_price("gemini-9-unknown") == text_price("gemini-3-pro-preview")

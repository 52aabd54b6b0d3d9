"""Writing the null ``image_prompt`` s while planning: the text model, its retries, its price.

Prompts are written after every check has passed and before the session exists (the plan's
``complete`` step, never on ``--dry-run``), a few at a time, through a Gemini text model
(:class:`imagegen.providers.base.TextWriter`) under the run's retry policy. Each written prompt
goes into the episode's prompt cache at once, so a run that stops half-way pays for none of
them again. What they cost is the session's ``planning_cost_usd`` (counted in the summary,
against ``--max-cost`` and each episode's cap).

A refusal (the text model would not write) stops the run before anything else is paid, naming
the chapter: the fix is to write its ``image_prompt``; a failing service stops it too (exit 3).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import anyio

from ...errors import (
    EXIT_STOPPED,
    ImagegenError,
    InputError,
    NoText,
    ProviderError,
    unwrap_group,
)
from ...executors.limiter import Sleep
from ...providers.base import TextWriter
from ...providers.gemini import text_cost, text_price
from ...retry import RetryPolicy, call_with_retries
from .config import TextSpend
from .jobs import BasePrompt
from .prompt_cache import PromptCache, cache_key, write_prompt_cache
from .prompts import PromptTemplate, TextUsage, write_image_prompt

#: Prompts written at once (the text model's calls are short; a few overlap well).
CONCURRENCY = 4
#: Tokens an answer of 150-250 words takes, with room for thinking: for estimates only.
ESTIMATED_ANSWER_TOKENS = 600


class PromptsNotWritten(ImagegenError):
    """The text model's service failed while writing prompts; those written are cached."""

    exit_code = EXIT_STOPPED


@dataclass(frozen=True, slots=True)
class PromptTask:
    """One prompt to write: the episode folder, the chapter, where it is in the file."""

    folder: str
    chapter_id: str
    source: Path
    instructions: str


@dataclass
class TextModel:
    """A :class:`~.prompts.PromptWriter` over a text model: the template's model, token limit
    and temperature, the retry policy, and the price of each call."""

    client: TextWriter
    template: PromptTemplate
    policy: RetryPolicy
    sleep: Sleep = anyio.sleep

    async def write(self, instructions: str) -> tuple[str, TextUsage]:
        template = self.template
        answer = await call_with_retries(
            lambda: self.client.write(
                instructions,
                model=template.model,
                max_tokens=template.max_tokens,
                temperature=template.temperature,
            ),
            self.policy,
            sleep=self.sleep,
        )
        usage = answer.usage
        return answer.text, TextUsage(
            template.model,
            usage.prompt_tokens,
            usage.output_tokens + usage.thought_tokens,
            text_cost(template.model, usage),
        )


def estimate_usd(template: PromptTemplate, instructions: str) -> float:
    """What writing one prompt should cost (USD): the instructions at ~4 characters a token,
    an answer of :data:`ESTIMATED_ANSWER_TOKENS`."""
    per_in, per_out = text_price(template.model)
    tokens_in = math.ceil(len(instructions) / 4)
    return (tokens_in * per_in + ESTIMATED_ANSWER_TOKENS * per_out) / 1_000_000


async def write_prompts(
    tasks: Sequence[PromptTask],
    template: PromptTemplate,
    caches: dict[str, PromptCache],
    model: TextModel,
    now: datetime,
) -> tuple[dict[tuple[str, str], BasePrompt], dict[str, TextSpend]]:
    """Write every task's prompt (cache first); returns them by (folder, chapter id) and what
    each episode spent. ``caches`` (by folder) are updated and written as prompts arrive.

    Raises InputError when the text model refuses a chapter, PromptsNotWritten when its
    service fails; prompts written before either are in the cache.
    """
    written: dict[tuple[str, str], BasePrompt] = {}
    spends: dict[str, TextSpend] = {}
    limiter = anyio.CapacityLimiter(CONCURRENCY)

    async def one(task: PromptTask) -> None:
        async with limiter:
            try:
                result = await write_image_prompt(
                    task.instructions, template, caches[task.folder], model, now
                )
            except NoText as exc:
                raise InputError(
                    f"{task.source}: chapter {task.chapter_id}: the text model would not write "
                    f"an image prompt ({exc.reason}); write its visuals[0].image_prompt"
                ) from exc
            except ProviderError as exc:
                raise PromptsNotWritten(
                    f"writing the image prompt of {task.chapter_id} ({task.source}): {exc}; "
                    "prompts written so far are cached: run again to continue"
                ) from exc
        spend = spends.get(task.folder, TextSpend())
        if result.usage is None:
            source = f"cache, written by {result.entry.model}"
            spend = replace(spend, cached=spend.cached + 1)
        else:
            source = f"written by {result.usage.model}"
            cache = caches[task.folder].record(result.key, result.entry)
            caches[task.folder] = cache
            write_prompt_cache(Path(task.folder), cache)  # at once: never paid for twice
            spend = replace(
                spend,
                input_tokens=spend.input_tokens + result.usage.input_tokens,
                output_tokens=spend.output_tokens + result.usage.output_tokens,
                cost_usd=spend.cost_usd + result.usage.cost_usd,
                written=spend.written + 1,
            )
        spends[task.folder] = spend
        written[task.folder, task.chapter_id] = BasePrompt(result.prompt, source)

    with unwrap_group():  # one refusal or failure, reported as itself
        async with anyio.create_task_group() as tg:
            for task in tasks:
                tg.start_soon(one, task)
    return written, spends


def cached_prompt(
    template: PromptTemplate, cache: PromptCache, instructions: str
) -> BasePrompt | None:
    """The prompt the cache holds for these instructions, or None (it must be written)."""
    hit = cache.lookup(cache_key(template.text_hash, instructions))
    return None if hit is None else BasePrompt(hit.prompt, f"cache, written by {hit.model}")

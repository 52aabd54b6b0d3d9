"""Writing an image prompt with a text model, for chapters whose ``image_prompt`` is null.

Seed 002 section 4: a template (Markdown with YAML front matter: ``name``, ``model``,
``temperature``, ``max_tokens``) is filled from the chapter and sent to a text model, which
answers with the prompt as plain text. The template is a file the user can edit; the bundled
one is ``prompt_template.md`` next to this module. Placeholders are written ``{{ name }}`` with
the names of seed 001 step 4: see :data:`TEMPLATE_FIELDS`.

The text-model call is behind :class:`PromptWriter` (one async method); this module only builds
its instructions, consults the cache and cleans its answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import ClassVar, Protocol, TypeVar

import yaml

from ...errors import InputError, ProviderError
from ...model import ErrorKind
from .episode import Chapter
from .jsonfile import digest, iso_utc
from .prompt_cache import CachedPrompt, PromptCache, cache_key

T = TypeVar("T")

DEFAULT_TEMPLATE = "prompt_template.md"
DEFAULT_TEXT_MODEL = "gemini-2.5-flash"
#: The template sees the narration's start only (seed 002 section 4.2: ``narration.text[:300]``).
NARRATION_CONTEXT_CHARS = 300
TEMPLATE_FIELDS = (
    "chapter_title",
    "visual_type",
    "visual_description",
    "narration_context",
    "style_prefix",
)
_QUOTES = {'"': '"', "'": "'", "“": "”", "«": "»"}
_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")


@dataclass(frozen=True, slots=True)
class PromptTemplate:
    """A parsed template. ``text_hash`` digests the whole file, front matter included."""

    name: str
    model: str
    temperature: float
    max_tokens: int
    body: str
    text_hash: str
    source: str


@dataclass(frozen=True, slots=True)
class TextUsage:
    """What one text-model call used: tokens, and its cost in USD (priced by the writer)."""

    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


class PromptWriter(Protocol):
    """A text model. Returns the prompt it wrote and its usage; raises ProviderError."""

    async def write(self, instructions: str) -> tuple[str, TextUsage]: ...


class EmptyPrompt(ProviderError):
    """The text model answered with nothing usable. Sampling again may help."""

    kind: ClassVar[ErrorKind] = "empty_prompt"
    retryable = True


@dataclass(frozen=True, slots=True)
class WrittenPrompt:
    """A chapter's base prompt (no style prefix) and where it came from.

    ``usage`` is None on a cache hit (nothing was spent). On a miss, the caller records
    ``entry`` under ``key`` in its cache: the caller owns the cache, so concurrent writers
    cannot lose each other's entries.
    """

    prompt: str
    key: str
    entry: CachedPrompt
    usage: TextUsage | None

    @property
    def cached(self) -> bool:
        return self.usage is None


def load_template(path: Path | None = None) -> PromptTemplate:
    """The template at ``path``, or the bundled one; raises InputError naming the file."""
    if path is None:
        ref = resources.files(__package__).joinpath(DEFAULT_TEMPLATE)
        try:
            text = ref.read_text(encoding="utf-8")
        except FileNotFoundError as exc:  # a wheel built without the package data
            raise InputError(
                f"the bundled {DEFAULT_TEMPLATE} is missing from this installation; "
                "set IMAGE_GEN_PROMPT_TEMPLATE to a template file"
            ) from exc
        return parse_template(text, f"(bundled) {DEFAULT_TEMPLATE}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(
            f"{path}: cannot read the prompt template ({exc}); fix the path "
            "(IMAGE_GEN_PROMPT_TEMPLATE) or remove it to use the bundled template"
        ) from exc
    return parse_template(text, str(path))


def parse_template(text: str, source: str) -> PromptTemplate:
    """Split front matter from body and check both. Pure; raises InputError naming ``source``."""
    meta: object = {}
    body = text
    if text.startswith("---"):
        head, sep, rest = text[3:].partition("\n---")
        if not sep:
            raise InputError(f"{source}: front matter has no closing '---' line; add one")
        try:
            meta = yaml.safe_load(head) or {}
        except yaml.YAMLError as exc:
            raise InputError(f"{source}: front matter is not YAML ({exc}); fix it") from exc
        body = rest.partition("\n")[2]
    if not isinstance(meta, dict):
        raise InputError(f"{source}: front matter is not a mapping; write 'key: value' lines")
    unknown = sorted({m for m in _PLACEHOLDER.findall(body) if m not in TEMPLATE_FIELDS})
    if unknown:
        known = ", ".join("{{ " + f + " }}" for f in TEMPLATE_FIELDS)
        raise InputError(f"{source}: unknown placeholder {{{{ {unknown[0]} }}}}; use {known}")
    if not body.strip():
        raise InputError(f"{source}: the template has no text; write the instructions")
    return PromptTemplate(
        name=_meta(meta, "name", str, "imagegen", source),
        model=_meta(meta, "model", str, DEFAULT_TEXT_MODEL, source),
        temperature=float(_meta(meta, "temperature", float, 0.3, source)),
        max_tokens=_meta(meta, "max_tokens", int, 2048, source),
        body=body,
        text_hash=digest(text),
        source=source,
    )


def _meta(meta: dict[object, object], key: str, kind: type[T], default: T, source: str) -> T:
    value = meta.get(key, default)
    widened = kind is float and isinstance(value, int)  # temperature: 1 means 1.0
    if isinstance(value, bool) or not (isinstance(value, kind) or widened):
        raise InputError(f"{source}: front matter {key}: {value!r} is not a {kind.__name__}")
    return value  # type: ignore[return-value]  # an int where a float is asked for is fine


def narration_context(text: str) -> str:
    """The narration's first :data:`NARRATION_CONTEXT_CHARS` characters, cut after a whole
    word where there is one, with '…' when cut."""
    text = " ".join(text.split())
    if len(text) <= NARRATION_CONTEXT_CHARS:
        return text
    head = text[: NARRATION_CONTEXT_CHARS + 1]
    cut = head.rsplit(" ", 1)[0] if " " in head else head[:NARRATION_CONTEXT_CHARS]
    return cut.rstrip() + "…"


def render_instructions(template: PromptTemplate, chapter: Chapter, style_prefix: str) -> str:
    """The template's body filled from ``chapter`` (which must have a visual). Pure."""
    if chapter.visual is None:
        raise ValueError(f"chapter {chapter.chapter_id} has no visual to write a prompt for")
    values = {
        "chapter_title": chapter.title,
        "visual_type": chapter.visual.type,
        "visual_description": chapter.visual.description,
        "narration_context": narration_context(chapter.narration),
        "style_prefix": style_prefix.strip() or "(none)",
    }
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template.body).strip() + "\n"


def clean_prompt(text: str) -> str:
    """The model's answer without wrapping: whitespace, a code fence, matching quotes.

    Raises EmptyPrompt when nothing is left.
    """
    text = text.strip()
    if text.startswith("```") and text.endswith("```") and len(text) >= 6:
        inner = text[3:-3]
        first, newline, rest = inner.partition("\n")
        # A first line without spaces is the fence's language tag ("```text").
        text = (rest if newline and " " not in first.strip() else inner).strip()
    if len(text) >= 2 and _QUOTES.get(text[0]) == text[-1]:
        text = text[1:-1].strip()
    if not text:
        raise EmptyPrompt("the text model wrote an empty image prompt")
    return text


async def write_image_prompt(
    instructions: str,
    template: PromptTemplate,
    cache: PromptCache,
    writer: PromptWriter,
    now: datetime,
) -> WrittenPrompt:
    """The prompt for ``instructions``: from ``cache``, else written by ``writer``.

    Raises what the writer raises (ProviderError), or EmptyPrompt.
    """
    key = cache_key(template.text_hash, instructions)
    hit = cache.lookup(key)
    if hit is not None:
        return WrittenPrompt(hit.prompt, key, hit, None)
    answer, usage = await writer.write(instructions)
    prompt = clean_prompt(answer)
    entry = CachedPrompt(
        prompt, usage.model, usage.input_tokens, usage.output_tokens, usage.cost_usd, iso_utc(now)
    )
    return WrittenPrompt(prompt, key, entry, usage)


def compose_prompt(style_prefix: str, prompt: str) -> str:
    """The prompt sent for the image: the style prefix, a space, the chapter's prompt.

    Seed 002 section 3.2 concatenates the two; stripping first keeps one space between them
    whether or not the prefix ends with one.
    """
    prefix = style_prefix.strip()
    return f"{prefix} {prompt.strip()}" if prefix else prompt.strip()

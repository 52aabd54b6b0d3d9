"""Chapter images for an education video (seeds 001 and 002): the pure building blocks."""

from .episode import (
    CHAPTERS_FILE,
    VISUAL_TYPES,
    Chapter,
    Episode,
    EpisodeError,
    Visual,
    load_episode,
    parse_episode,
)
from .placeholder import Placeholder, draw_placeholder
from .prompt_cache import (
    CachedPrompt,
    PromptCache,
    read_prompt_cache,
    write_prompt_cache,
)
from .prompts import (
    EmptyPrompt,
    PromptTemplate,
    PromptWriter,
    TextUsage,
    WrittenPrompt,
    compose_prompt,
    load_template,
    write_image_prompt,
)
from .settings import ImageSettings, settings_from_env

__all__ = [
    "CHAPTERS_FILE",
    "VISUAL_TYPES",
    "CachedPrompt",
    "Chapter",
    "EmptyPrompt",
    "Episode",
    "EpisodeError",
    "ImageSettings",
    "Placeholder",
    "PromptCache",
    "PromptTemplate",
    "PromptWriter",
    "TextUsage",
    "Visual",
    "WrittenPrompt",
    "compose_prompt",
    "draw_placeholder",
    "load_episode",
    "load_template",
    "parse_episode",
    "read_prompt_cache",
    "settings_from_env",
    "write_image_prompt",
    "write_prompt_cache",
]

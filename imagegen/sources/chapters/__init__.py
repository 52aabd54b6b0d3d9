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
from .settings import ImageSettings, settings_from_env

__all__ = [
    "CHAPTERS_FILE",
    "VISUAL_TYPES",
    "Chapter",
    "Episode",
    "EpisodeError",
    "ImageSettings",
    "Visual",
    "load_episode",
    "parse_episode",
    "settings_from_env",
]

"""Image prompts a text model has written, kept so an unchanged chapter never pays twice.

File: ``{episode}/images/.prompt_cache.json`` (hidden: it is the stage's memory, not an output)::

    {"format": 1,
     "entries": {"sha256:...": {"prompt": "...", "model": "gemini-2.5-flash",
                                "input_tokens": 412, "output_tokens": 180, "cost_usd": 0.0005,
                                "created_at": "2026-02-28T10:30:00Z"}}}

The key is a digest of the template file (front matter included, so a new model or temperature
misses) and of the instructions rendered from it (which hold every chapter field the model
sees). Looking up and recording are pure; reading and writing are the two I/O functions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from .jsonfile import JSON, digest, write_json

CACHE_FILE = Path("images") / ".prompt_cache.json"
CACHE_FORMAT = 1


@dataclass(frozen=True, slots=True)
class CachedPrompt:
    """A prompt as the text model wrote it (cleaned), and what writing it cost (USD)."""

    prompt: str
    model: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    created_at: str


@dataclass(frozen=True, slots=True)
class PromptCache:
    """Written prompts by :func:`cache_key`. Never mutated: :meth:`record` returns a new cache."""

    entries: Mapping[str, CachedPrompt] = field(default_factory=dict)

    def lookup(self, key: str) -> CachedPrompt | None:
        return self.entries.get(key)

    def record(self, key: str, entry: CachedPrompt) -> PromptCache:
        return PromptCache({**self.entries, key: entry})

    def keep(self, keys: Iterable[str]) -> PromptCache:
        """Only the entries under ``keys``: drop prompts of chapters since edited or removed."""
        wanted = set(keys)
        return PromptCache({k: v for k, v in self.entries.items() if k in wanted})


def cache_key(template_hash: str, instructions: str) -> str:
    """The cache key of instructions rendered from the template whose file hash is given."""
    return digest({"template": template_hash, "instructions": instructions})


def read_prompt_cache(episode_dir: Path) -> PromptCache:
    """The episode's cache; empty when missing or unreadable.

    A damaged cache is not worth stopping for: every prompt in it can be written again, and the
    next :func:`write_prompt_cache` replaces it.
    """
    try:
        data = orjson.loads((episode_dir / CACHE_FILE).read_bytes())
        return cache_from_json(data)
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return PromptCache()


def write_prompt_cache(episode_dir: Path, cache: PromptCache) -> None:
    """Replace the episode's cache file atomically."""
    write_json(episode_dir / CACHE_FILE, cache_to_json(cache))


def cache_to_json(cache: PromptCache) -> JSON:
    entries: dict[str, JSON] = {
        key: {
            "prompt": e.prompt,
            "model": e.model,
            "input_tokens": e.input_tokens,
            "output_tokens": e.output_tokens,
            "cost_usd": e.cost_usd,
            "created_at": e.created_at,
        }
        for key, e in sorted(cache.entries.items())
    }
    return {"format": CACHE_FORMAT, "entries": entries}


def cache_from_json(data: Any) -> PromptCache:
    """Raises KeyError, TypeError or ValueError when ``data`` is not a cache of this format."""
    if data["format"] != CACHE_FORMAT:
        raise ValueError(f"prompt cache format {data['format']!r}")
    entries = {}
    for key, e in data["entries"].items():
        if not isinstance(e["prompt"], str) or not e["prompt"]:
            raise ValueError(f"prompt cache entry {key}: no prompt")
        entries[str(key)] = CachedPrompt(
            e["prompt"],
            str(e["model"]),
            int(e["input_tokens"]),
            int(e["output_tokens"]),
            float(e["cost_usd"]),
            str(e["created_at"]),
        )
    return PromptCache(entries)

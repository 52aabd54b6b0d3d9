"""What a chapters session records in its config, and reading it back in the after-save steps.

The session config (the journal's ``config``) holds, besides the run options::

    "episodes": [{"dir": "episodes/ep1", "episode_id": "ep1", "schema_version": "1.0",
                  "chapters": ["ch01", ...], "expected": ["ch01", ...],
                  "prompt_hash": "sha256:...", "input_content_hash": "sha256:..."}, ...],
    "force": false, "chapter": null, "style_prefix": "...", "image_size": "1920x1080",
    "max_episode_cost_usd": 10.0, "prompt_template": null,
    "text_model": "gemini-2.5-flash", "template_name": "imagegen",
    "cost_caps": {"episodes/ep1": 10.0, ...},          (imagegen.executors.budget)
    "planning_cost_usd": 0.004,                         (text written while planning)
    "planning_costs": {"episodes/ep1": 0.004, ...},
    "planning_usage": {"episodes/ep1": {"input_tokens": 812, "output_tokens": 640,
                                        "written": 2, "cached": 0}, ...}

Each episode's folder (as given on the command line) is its jobs' ``cost_group``, so the
runner holds each episode to its own ``max_episode_cost_usd``. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...model import JSON


@dataclass(frozen=True, slots=True)
class EpisodeConfig:
    """One episode as a session planned it. ``chapters`` are every chapter id in file order,
    ``expected`` those that should end with an image (the ones with a visual)."""

    dir: str
    episode_id: str
    schema_version: str
    chapters: tuple[str, ...]
    expected: tuple[str, ...]
    prompt_hash: str
    input_content_hash: str

    @property
    def path(self) -> Path:
        return Path(self.dir)

    def to_json(self) -> dict[str, JSON]:
        return {
            "dir": self.dir,
            "episode_id": self.episode_id,
            "schema_version": self.schema_version,
            "chapters": list(self.chapters),
            "expected": list(self.expected),
            "prompt_hash": self.prompt_hash,
            "input_content_hash": self.input_content_hash,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EpisodeConfig:
        """Raises KeyError or TypeError when ``data`` is not an episode record."""
        return cls(
            dir=str(data["dir"]),
            episode_id=str(data["episode_id"]),
            schema_version=str(data["schema_version"]),
            chapters=tuple(str(c) for c in data["chapters"]),
            expected=tuple(str(c) for c in data["expected"]),
            prompt_hash=str(data["prompt_hash"]),
            input_content_hash=str(data["input_content_hash"]),
        )


@dataclass(frozen=True, slots=True)
class TextSpend:
    """What writing an episode's prompts took while planning (USD; tokens, thinking included
    in ``output_tokens``); ``written`` prompts came from the text model, ``cached`` from the
    episode's prompt cache."""

    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    written: int = 0
    cached: int = 0


def episodes_of(config: Mapping[str, Any]) -> tuple[EpisodeConfig, ...]:
    """The session's episodes; () for a config without them (another source's session)."""
    raw = config.get("episodes")
    if not isinstance(raw, list):
        return ()
    return tuple(EpisodeConfig.from_json(e) for e in raw if isinstance(e, Mapping))


def episode_of(config: Mapping[str, Any], folder: str) -> EpisodeConfig:
    """The episode recorded for ``folder``; KeyError if the session has none."""
    for episode in episodes_of(config):
        if episode.dir == folder:
            return episode
    raise KeyError(f"the session records no episode {folder!r}")


def text_spend(config: Mapping[str, Any], folder: str) -> TextSpend:
    """What planning spent writing prompts for ``folder``'s episode (zero if nothing)."""
    usage = (config.get("planning_usage") or {}).get(folder) or {}
    cost = (config.get("planning_costs") or {}).get(folder) or 0.0
    return TextSpend(
        input_tokens=int(usage.get("input_tokens", 0)),
        output_tokens=int(usage.get("output_tokens", 0)),
        cost_usd=float(cost),
        written=int(usage.get("written", 0)),
        cached=int(usage.get("cached", 0)),
    )


def spend_to_json(spends: Mapping[str, TextSpend]) -> dict[str, JSON]:
    """The ``planning_*`` config keys for the episodes' spends (by folder)."""
    return {
        "planning_cost_usd": round(sum(s.cost_usd for s in spends.values()), 6),
        "planning_costs": {k: round(s.cost_usd, 6) for k, s in spends.items()},
        "planning_usage": {
            k: {
                "input_tokens": s.input_tokens,
                "output_tokens": s.output_tokens,
                "written": s.written,
                "cached": s.cached,
            }
            for k, s in spends.items()
        },
    }

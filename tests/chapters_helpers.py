"""Test seams for the chapter image stage: episodes on disk and a scripted text model."""

from __future__ import annotations

import io
import json
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from PIL import Image

from imagegen.errors import ProviderError
from imagegen.sources.chapters.prompts import TextUsage
from imagegen.sources.chapters.settings import ImageSettings

NOW = datetime(2026, 3, 1, 10, 0, 0, tzinfo=UTC)
SMALL = ImageSettings(width=64, height=36)  # placeholders drawn small: tests stay fast


def at(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


def chapter(
    chapter_id: str,
    kind: str = "diagram",
    *,
    title: str | None = None,
    description: str = "a simple diagram",
    image_prompt: str | None = "A clean diagram of blocks linked in a chain",
    narration: str = "In this chapter we look at blocks.",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "chapter_id": chapter_id,
        "title": title or f"Chapter {chapter_id}",
        "visuals": [{"type": kind, "description": description, "image_prompt": image_prompt}],
        "narration": {"text": narration},
        **extra,
    }


def write_episode(
    folder: Path,
    chapters: list[dict[str, Any]],
    *,
    episode_id: str = "ep001",
    schema_version: Any = "1.0",
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    doc = {"schema_version": schema_version, "episode_id": episode_id, "chapters": chapters}
    path = folder / "chapters.json"
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=2), encoding="utf-8")
    return path


def mixed_chapters() -> list[dict[str, Any]]:
    """One of each visual type, one null prompt, a Turkish title."""
    return [
        chapter("ch01", "title_card", title="Giriş: Bitcoin Nedir?", image_prompt=None),
        chapter("ch02", "diagram"),
        chapter("ch03", "b_roll", image_prompt=None, description="miners at work"),
        chapter("ch04", "screen_share", image_prompt="A generic wallet app screen"),
        chapter("ch05", "talking_head", title="Özet", image_prompt=None),
    ]


def png(width: int = 48, height: int = 27, colour: tuple[int, int, int] = (20, 90, 200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, format="PNG")
    return out.getvalue()


@dataclass
class FakeWriter:
    """A scriptable text model: answers from ``answers`` in order, then a default."""

    answers: deque[str | ProviderError] = field(default_factory=deque)
    calls: list[str] = field(default_factory=list)
    cost_usd: float = 0.001

    async def write(self, instructions: str) -> tuple[str, TextUsage]:
        self.calls.append(instructions)
        answer = self.answers.popleft() if self.answers else f"Prompt #{len(self.calls)}"
        if isinstance(answer, ProviderError):
            raise answer
        return answer, TextUsage("fake-text", 100, 50, self.cost_usd)

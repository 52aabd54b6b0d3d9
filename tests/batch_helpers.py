"""Helpers for the Batch API executor's tests: jobs with real reference files, the emulator on
a ManualClock, a sleep that advances that clock, and one run of a session through the real
session shell (:func:`imagegen.session.run_jobs`) and the real google-genai SDK."""

from __future__ import annotations

import io
import random
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from PIL import Image
from rich.console import Console

from imagegen import providers
from imagegen.emulator import Emulator
from imagegen.emulator.clock import ManualClock
from imagegen.executors.batch import BatchSettings
from imagegen.executors.batch_plan import ShardLimits
from imagegen.executors.limiter import Limits
from imagegen.executors.pool import RunResult
from imagegen.journal import Journal
from imagegen.model import Job, JobState
from imagegen.providers import ProviderInfo
from imagegen.providers.base import ImageProvider
from imagegen.providers.gemini.client import GeminiProvider
from imagegen.retry import RetryPolicy
from imagegen.session import Settings, run_jobs

MODEL = "gemini-3-pro-image"
KEY = "test-key-0123456789"
NO_JITTER = RetryPolicy(jitter=0.0)


def photo(path: Path, seed: int, size: tuple[int, int] = (160, 120)) -> Path:
    """A small JPEG of noise (distinct per seed, so distinct content)."""
    rng = random.Random(seed)
    data = bytes(rng.getrandbits(8) for _ in range(size[0] * size[1] * 3))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.frombytes("RGB", size, data).save(path, format="JPEG", quality=90)
    return path


@dataclass
class Combos:
    """Three combos of reference photos; combo C holds a copy of one of combo A's photos
    (another file, the same bytes): 5 files, 4 distinct contents."""

    root: Path
    refs: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def make(cls, root: Path) -> Combos:
        a = (photo(root / "A" / "ui.jpg", 1), photo(root / "A" / "wardrobe.jpg", 2))
        b = (photo(root / "B" / "ui.jpg", 3),)
        c_copy = root / "C" / "ui.jpg"
        c_copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(a[0], c_copy)
        c = (c_copy, photo(root / "C" / "pose.jpg", 4))
        return cls(
            root, {"A": tuple(map(str, a)), "B": tuple(map(str, b)), "C": tuple(map(str, c))}
        )

    distinct = 4


def make_jobs(root: Path, combos: Combos, prompts: int = 2, quality: str = "1K") -> list[Job]:
    """``prompts`` prompts x the three combos, ids 001..; outputs under ``root/out``."""
    jobs = []
    n = 0
    for p in range(1, prompts + 1):
        for combo, refs in combos.refs.items():
            n += 1
            job_id = f"{n:03d}"
            jobs.append(
                Job(
                    id=job_id,
                    source="combos",
                    title=f"P{p} + {combo}",
                    group=("test", f"P{p}", combo),
                    prompt_file=f"P{p}.md",
                    prompt_parts=(f"Prompt P{p} for combo {combo}, job {job_id}.",),
                    references=refs,
                    target=str(root / "out" / f"P{p}" / combo / f"{{time}}-P{p}-{{quality}}.png"),
                    quality=quality,
                    aspect="1:1",
                    model=MODEL,
                )
            )
    return jobs


def new_session(root: Path, jobs: list[Job], **config: Any) -> Journal:
    base = {"quality": "1K", "provider": "gemini", "source": "combos", "header": ["test"]}
    return Journal.create(
        root / "sessions", base | config, [JobState(j) for j in jobs], fsync=False
    )


class Sleeper:
    """A sleep that advances the emulator's ManualClock instead of waiting; records waits."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.clock.advance(seconds)
        await anyio.lowlevel.checkpoint()


def settings(
    clock: ManualClock,
    sleep: Sleeper,
    *,
    batch: BatchSettings | None = None,
    upload: bool = True,
    max_cost: float | None = None,
    policy: RetryPolicy = NO_JITTER,
) -> Settings:
    return Settings(
        limits=Limits(3, 0.0, 1_000_000),
        policy=policy,
        timeout=30.0,
        max_cost=max_cost,
        fsync=False,
        batch=batch,
        upload_references=upload,
        clock=clock,
        sleep=sleep,
    )


def batch_settings(**kw: Any) -> BatchSettings:
    kw.setdefault("poll", 30.0)
    kw.setdefault("deadline", 86_400.0)
    return BatchSettings(**kw)


def small_limits(requests: int = 1000, size: int = 2_000_000_000) -> ShardLimits:
    return ShardLimits(requests, size)


def run(
    journal: Journal,
    emu: Emulator,
    s: Settings,
    mode: str = "run",
    job_ids: tuple[str, ...] = (),
    *,
    others: Mapping[str, tuple[ImageProvider, ProviderInfo]] | None = None,
) -> RunResult:
    """One run of the session through the real session shell and the real SDK (``others``:
    the adapters of any other providers its jobs name)."""
    info = providers.get("gemini")

    async def go() -> RunResult:
        async with GeminiProvider(KEY, base_url=emu.base_url) as provider:
            return await run_jobs(
                journal,
                s,
                provider,
                info,
                Console(file=io.StringIO()),
                mode,
                job_ids,
                others={"gemini": (provider, info), **(others or {})},
            )

    return anyio.run(go)

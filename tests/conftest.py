"""Shared test seams: a tiny workspace on disk, a scriptable fake provider, a virtual clock."""

from __future__ import annotations

import io
import textwrap
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import anyio
import pytest
from PIL import Image

from imagegen import providers
from imagegen.errors import ProviderError
from imagegen.journal import Journal
from imagegen.model import Job, JobState, Usage
from imagegen.providers.base import Checkpoint, Generation, ImageRequest
from imagegen.providers.gemini import tier_size as pixel_size
from imagegen.sources import RunDefaults
from imagegen.sources.combos import Selection, plan_jobs


@cache
def png_bytes(width: int, height: int, color: tuple[int, int, int] = (200, 120, 40)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, format="PNG", compress_level=1)
    return out.getvalue()


def write_image(path: Path, size: tuple[int, int] = (64, 48), fmt: str = "PNG") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (10, 200, 90)).save(path, format=fmt)
    return path


def write_prompt(path: Path, body: str, **meta: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    head = "".join(f"{k}: {v}\n" for k, v in meta.items())
    path.write_text((f"---\n{head}---\n" if meta else "") + textwrap.dedent(body), encoding="utf-8")
    return path


@dataclass
class Workspace:
    root: Path

    @property
    def combos(self) -> Path:
        return self.root / "combos"

    @property
    def catalogs(self) -> Path:
        return self.root / "catalogs"

    def combo(
        self,
        folder: str,
        style: str,
        combo_id: str,
        roles: tuple[str, ...] = ("ui", "wardrobe", "pose"),
        description: str | None = "Red zip hoodie",
    ) -> Path:
        path = self.combos / folder / f"{style}_UI_Combos" / combo_id
        for i, role in enumerate(roles):
            write_image(
                path / f"{role}.{'png' if i % 2 == 0 else 'jpg'}",
                fmt="PNG" if i % 2 == 0 else "JPEG",
            )
        if description is not None:
            (path / "wardrobe.txt").write_text(description + "\n", encoding="utf-8")
        return path


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    """Two wardrobes (alias zip-hoodie -> Hoodie_combo), two styles, catalogs v1.0 and v2.0."""
    ws = Workspace(tmp_path)
    ws.combos.mkdir(parents=True)
    (ws.combos / "wardrobes.toml").write_text(
        '[wardrobes]\nzip-hoodie = "Hoodie_combo"\nt-shirt = "t-shirt_combo"\n', encoding="utf-8"
    )
    for combo_id in ("C-U-001", "C-U-000"):
        ws.combo("Hoodie_combo", "Studio", combo_id)
    ws.combo("Hoodie_combo", "Orange", "C-U-009", roles=("wardrobe", "ui", "product", "bottom"))
    ws.combo("t-shirt_combo", "Studio", "C-U-100", description="White tee")
    write_prompt(
        ws.catalogs / "catalog_v1.0" / "ZH01_unboxing.md",
        "Unboxing on a desk.\n",
        wardrobe="zip-hoodie",
    )
    write_prompt(ws.catalogs / "catalog_v1.0" / "GN01_morning.md", "Morning run at dawn.\n")
    write_prompt(
        ws.catalogs / "catalog_v1.0" / "TS01_beach.md",
        "Beach volleyball.\n",
        wardrobe="t-shirt",
        aspect="4:5",
    )
    write_prompt(
        ws.catalogs / "catalog_v2.0" / "ZH02_travel.md", "Airport lounge.\n", wardrobe="zip-hoodie"
    )
    return ws


@dataclass
class FakeProvider:
    """A scriptable provider (llm's MockModel.enqueue style) that counts calls per prompt.

    Scripted items are exceptions to raise or ``"image"``; unscripted calls return an image of
    the tier's exact pixel size. ``on_call`` runs at the start of each call (to observe timing).
    """

    scripts: list[tuple[str | None, deque[object]]] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)
    generated: Counter[str] = field(default_factory=Counter)
    in_flight: int = 0
    max_in_flight: int = 0
    call_duration: float = 0.0
    sleep: Callable[[float], object] | None = None
    on_call: Callable[[ImageRequest], None] | None = None
    size_override: tuple[int, int] | None = None
    thought_tokens: int = 100

    def enqueue(self, *outcomes: object, match: str | None = None) -> None:
        self.scripts.append((match, deque(outcomes)))

    def _next(self, prompt: str) -> object:
        for match, queue in self.scripts:
            if queue and (match is None or match in prompt):
                return queue.popleft()
        return "image"

    async def generate(
        self, request: ImageRequest, checkpoint: Checkpoint | None = None
    ) -> Generation:
        self.calls[request.prompt] += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.on_call:
                self.on_call(request)
            outcome = self._next(request.prompt)
            if isinstance(outcome, ProviderError):
                await anyio.lowlevel.checkpoint()
                raise outcome  # failures answer at once; images take call_duration
            if self.call_duration and self.sleep is not None:
                await self.sleep(self.call_duration)  # type: ignore[misc]
            else:
                await anyio.lowlevel.checkpoint()
            size = self.size_override or pixel_size(request.quality, request.aspect)
            self.generated[request.prompt] += 1
            return Generation(
                png_bytes(*size),
                "image/png",
                "STOP",
                Usage(
                    prompt_tokens=800,
                    output_tokens=1120,
                    thought_tokens=self.thought_tokens,
                    image_tokens=1120,
                ),
            )
        finally:
            self.in_flight -= 1


class VirtualClock:
    """Virtual time for anyio tests: ``sleep`` parks the task; :meth:`drive` advances time
    to the earliest wake-up whenever every other task has had many turns to run."""

    def __init__(self) -> None:
        self.busy_threads = 0
        self.now = 0.0
        self._sleepers: list[tuple[float, int, anyio.Event]] = []
        self._n = 0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        event = anyio.Event()
        self._n += 1
        self._sleepers.append((self.now + max(0.0, seconds), self._n, event))
        await event.wait()

    def track_threads(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Hold virtual time still while a task waits on real work in a worker thread."""
        real = anyio.to_thread.run_sync

        async def tracked(func: Callable[..., Any], *args: Any, **kw: Any) -> Any:
            self.busy_threads += 1
            try:
                return await real(func, *args, **kw)
            finally:
                self.busy_threads -= 1

        monkeypatch.setattr(anyio.to_thread, "run_sync", tracked)

    async def drive(self) -> None:
        while True:
            for _ in range(50):
                await anyio.lowlevel.checkpoint()
            if self.busy_threads:
                await anyio.sleep(0.0005)
            elif self._sleepers:
                self._sleepers.sort()
                wake, _, event = self._sleepers.pop(0)
                self.now = max(self.now, wake)
                event.set()
            else:
                await anyio.sleep(0.001)


def gemini_defaults(quality: str = "1K", aspect: str = "1:1") -> RunDefaults:
    info = providers.get("gemini")
    return RunDefaults(info, info.default_model, quality, aspect)


def plan_combos(ws: Workspace, *, quality: str = "1K", aspect: str = "1:1", **kw: Any) -> list[Job]:
    """Jobs of the combos source for the test workspace (zip-hoodie, catalogs v1.0 and v2.0)."""
    base: dict[str, Any] = {
        "wardrobes": ("zip-hoodie",),
        "catalogs": ("v1.0", "v2.0"),
        "combos_root": ws.combos,
        "catalogs_root": ws.catalogs,
        "output": ws.root / "out",
    }
    base.update(kw)
    return plan_jobs(Selection(**base), gemini_defaults(quality, aspect))


def new_journal(ws: Workspace, sessions: Path, *, fsync: bool = False, **kw: Any) -> Journal:
    """A new session (holding its lock) of the test workspace's jobs: 3 hoodie combos x the 2
    catalog v1.0 prompts for zip-hoodie, 6 jobs (unless ``kw`` selects others)."""
    kw.setdefault("catalogs", ("v1.0",))
    jobs = plan_combos(ws, **kw)
    config = {"quality": "1K", "provider": "gemini", "source": "combos", "header": ["test"]}
    return Journal.create(sessions, config, [JobState(j) for j in jobs], fsync=fsync)

"""Faults through the real SDK and the emulator: each answer gets its policy; a mixed storm
recovers without breaking the pool's limits or paying twice."""

from __future__ import annotations

import itertools
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest

from imagegen import journal as journal_mod
from imagegen import providers
from imagegen.emulator import Emulator, Outcome
from imagegen.executors.limiter import Limits, StartGate
from imagegen.executors.pool import Runner, RunResult
from imagegen.journal import Journal
from imagegen.model import Job, JobState
from imagegen.providers.base import Checkpoint, Generation, ImageRequest
from imagegen.providers.gemini.client import GeminiProvider
from imagegen.retry import RetryPolicy

from .conftest import VirtualClock, write_image

KEY = "AIza" + "FAKEfaultsTESTkey0123456789abcdefghi"  # fake, recognisable; never to be echoed


def make_jobs(tmp: Path, count: int) -> list[Job]:
    ref = str(write_image(tmp / "refs" / "ui.png", (32, 32)))
    return [
        Job(
            id=f"{n:03d}",
            source="combos",
            title=f"storm {n:03d}",
            group=("storm", f"{n:03d}", "image"),
            prompt_file=f"catalog_v1.0/ZH{n:03d}_storm.md",
            prompt_parts=(f"storm job {n:03d} .",),
            references=(ref,),
            target=str(tmp / "out" / f"{n:03d}" / "{time}-ZH-{quality}.png"),
            quality="1K",
            aspect="1:1",
            model="gemini-3-pro-image",
        )
        for n in range(1, count + 1)
    ]


async def run_with_emulator(
    tmp: Path,
    jobs: list[Job],
    emulator: Emulator,
    clock: VirtualClock,
    limits: Limits,
    timeout: float = 0.5,  # noqa: ASYNC109 (the per-attempt timeout the runner passes on)
) -> tuple[RunResult, dict[str, Any], list[float], int]:
    """Run ``jobs`` through the real SDK; returns the result, the journal, the start grants
    (virtual seconds) and the peak of our own calls in flight."""
    journal = Journal.create(
        tmp / "sessions", {"provider": "gemini"}, [JobState(j) for j in jobs], fsync=False
    )
    gate = StartGate(limits, clock=clock, sleep=clock.sleep)
    grants: list[float] = []
    grant = gate.wait_turn

    async def recorded_turn() -> float:
        grants.append(await grant())
        return grants[-1]

    gate.wait_turn = recorded_turn  # type: ignore[method-assign]
    provider = GeminiProvider(KEY, base_url=emulator.base_url)
    real_generate = provider.generate
    calls = {"now": 0, "peak": 0}

    async def counted(request: ImageRequest, checkpoint: Checkpoint | None = None) -> Generation:
        calls["now"] += 1
        calls["peak"] = max(calls["peak"], calls["now"])
        try:
            return await real_generate(request, checkpoint)
        finally:
            calls["now"] -= 1

    provider.generate = counted  # type: ignore[method-assign]
    runner = Runner(
        journal,
        provider,
        providers.get("gemini"),
        gate,
        policy=RetryPolicy(jitter=0.0),
        timeout=timeout,
        clock=clock,
        sleep=clock.sleep,
    )
    with journal:
        async with anyio.create_task_group() as tg:
            tg.start_soon(clock.drive)
            async with journal.writing():
                result = await runner.run([j.id for j in jobs])
            tg.cancel_scope.cancel()
    await provider.aclose()
    state = journal_mod.load(tmp / "sessions", journal.session_id)
    doc = orjson.loads(orjson.dumps(journal_mod.encode_session(state)))
    return result, doc, grants, calls["peak"]


TRANSIENT = [
    Outcome.error(429, retry_delay="2s"),
    Outcome.error(429),
    Outcome.error(500),
    Outcome.error(502),
    Outcome.error(503),
    Outcome.error(504),
    Outcome.drop(),
    Outcome.bad_json(),
    Outcome.bad_image(),
    Outcome.hang(1.5),
]
TERMINAL = {
    "IMAGE_SAFETY": Outcome.finish("IMAGE_SAFETY"),
    "PROHIBITED_CONTENT": Outcome.finish("PROHIBITED_CONTENT"),
    "NO_IMAGE": Outcome.finish("NO_IMAGE"),
    "PROMPT_BLOCKED:SAFETY": Outcome.prompt_blocked("SAFETY"),
    "TEXT_ONLY": Outcome.text_only(),
    "bad_request": Outcome.error(400),
}


@pytest.mark.slow
@pytest.mark.asyncio
async def test_a_storm_of_mixed_faults_recovers_within_limits_paying_once(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """200 jobs, about a third of first attempts failing in mixed ways."""
    clock = VirtualClock()
    clock.track_threads(monkeypatch)
    rng = random.Random(7)
    jobs = make_jobs(tmp_path, 200)
    expected: dict[str, str] = {}
    with Emulator(render="plain") as emulator:
        for job in jobs:
            roll = rng.random()
            if roll < 0.28:
                emulator.enqueue(rng.choice(TRANSIENT), match=job.prompt)
                expected[job.id] = "completed"
            elif roll < 0.33:
                reason = rng.choice(list(TERMINAL))
                emulator.enqueue(TERMINAL[reason], match=job.prompt)
                expected[job.id] = reason
            else:
                expected[job.id] = "completed"
        limits = Limits(concurrency=3, min_interval=0.2, rpm=120)
        result, doc, grants, peak = await run_with_emulator(tmp_path, jobs, emulator, clock, limits)
        generated = emulator.generated
    by_id = {j["id"]: j for j in doc["jobs"]}
    for job_id, want in expected.items():
        entry = by_id[job_id]
        if want == "completed":
            assert entry["status"] == "completed", (job_id, entry["history"])
        else:
            assert entry["status"] == "failed" and entry["attempts"] == 1
            assert want in (entry["finish_reason"] or entry["error_kind"]), entry
    # Nobody paid twice: one generation per completed job, none for the terminal ones ...
    for job in jobs:
        paid = generated[job.prompt]
        # ... except a hung call, which the service may finish (and bill) after we gave up.
        hung = any("timeout" in (h.get("outcome") or "") for h in by_id[job.id]["history"])
        want = 1 if expected[job.id] == "completed" else 0
        assert want <= paid <= want + (1 if hung else 0), job.id
    # The pool kept its limits while recovering.
    assert peak <= 3
    assert all(b - a >= 0.2 - 1e-9 for a, b in itertools.pairwise(grants))
    assert all(sum(1 for t in grants if s <= t < s + 60.0) <= 120 for s in grants)
    assert result.exit_code == 1  # the terminal ones failed; nothing crashed or stopped
    # The key is in no file the session wrote: journal, event log, images.
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(written) > 150 and not [p for p in written if KEY.encode() in p.read_bytes()]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("outcome", "reason"),
    [
        (Outcome.error(403), "permission_denied"),
        (Outcome.error(429, quota_id="GenerateRequestsPerDayPerProjectPerModel"), "per-day"),
        (Outcome.error(400, reason="API_KEY_INVALID"), "invalid"),
    ],
)
async def test_batch_stoppers_leave_the_rest_pending(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    outcome: Outcome,
    reason: str,
) -> None:
    clock = VirtualClock()
    clock.track_threads(monkeypatch)
    jobs = make_jobs(tmp_path, 8)
    with Emulator(render="plain") as emulator:
        emulator.enqueue(outcome)  # the first call, whichever job makes it
        result, doc, _, _ = await run_with_emulator(
            tmp_path, jobs, emulator, clock, Limits(1, 0.0, 60)
        )
    assert result.exit_code == 3 and reason in (result.stop_reason or "").lower()
    assert [j["status"] for j in doc["jobs"]] == ["pending"] * 8
    assert KEY not in str(doc)


@pytest.mark.asyncio
async def test_unknown_model_stops_the_batch_naming_the_model(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = VirtualClock()
    clock.track_threads(monkeypatch)
    jobs = [replace(j, model="gemini-9-imaginary") for j in make_jobs(tmp_path, 3)]
    with Emulator(render="plain") as emulator:
        result, _, _, _ = await run_with_emulator(
            tmp_path, jobs, emulator, clock, Limits(1, 0.0, 60)
        )
    assert result.exit_code == 3 and "gemini-9-imaginary" in (result.stop_reason or "")


@pytest.mark.asyncio
async def test_consecutive_server_errors_trip_the_breaker_and_pause_the_pool(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = VirtualClock()
    clock.track_threads(monkeypatch)
    jobs = make_jobs(tmp_path, 6)
    with Emulator(render="plain") as emulator:
        # Six, one per job: with three calls in flight, which answer is read first is a race,
        # and a success read between five errors would reset the count. The first six calls
        # all fail, so the fifth error read trips the breaker whatever the order.
        emulator.enqueue(*[Outcome.error(503)] * 6)
        result, doc, grants, _ = await run_with_emulator(
            tmp_path, jobs, emulator, clock, Limits(3, 0.0, 60)
        )
    assert result.exit_code == 0  # each job had one error, then succeeded
    assert doc["pause_reason"].startswith("circuit breaker: 5 server errors")
    # Once it tripped, nothing started for the 60 s pause (the per-job wait is only 15 s).
    assert max(b - a for a, b in itertools.pairwise(grants)) >= 60.0

"""The placeholder provider: drawn locally at the job's pixel size, no key, no cost, no call slot
or budget; checked per job beside the session's own provider."""

from __future__ import annotations

from dataclasses import replace

import anyio
import pytest

from imagegen import providers
from imagegen.cli.verbs import check_capabilities
from imagegen.errors import BadRequest, InputError
from imagegen.executors.budget import Budget
from imagegen.executors.limiter import Limits, StartGate
from imagegen.executors.pool import Runner
from imagegen.images import sniff
from imagegen.journal import Journal
from imagegen.model import Job, JobState
from imagegen.providers.base import ImageRequest
from imagegen.providers.placeholder import PlaceholderProvider, parse_pixels
from imagegen.providers.placeholder.draw import describe
from imagegen.retry import RetryPolicy
from imagegen.session import api_key

from .conftest import FakeProvider, VirtualClock, Workspace, plan_combos

INFO = providers.get("placeholder")


def request(
    text: str = "Giriş", model: str = "title_card", quality: str = "640x360"
) -> ImageRequest:
    return ImageRequest(model, text, (), quality, "16:9", 10.0)


def placeholder_job(job_id: str, out: str, quality: str = "320x180") -> Job:
    return Job(
        id=job_id,
        source="combos",
        title=f"card {job_id}",
        group=("s", "r", job_id),
        prompt_file="-",
        prompt_parts=(f"Title {job_id}",),
        references=(),
        target=out,
        quality=quality,
        aspect="16:9",
        model="title_card",
        provider="placeholder",
        replace=True,
    )


@pytest.mark.asyncio
async def test_draws_the_prompt_at_the_requested_pixels_the_same_every_time() -> None:
    provider = PlaceholderProvider()
    one = await provider.generate(request())
    two = await provider.generate(request())
    info = sniff(one.image)
    assert (info.format, info.width, info.height) == ("PNG", 640, 360)
    assert one.image == two.image and one.usage.output_tokens == 0
    assert one.model_version == "title_card_default v1"
    other = await provider.generate(request(model="talking_head"))
    assert other.image != one.image  # another template, another colour


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("model", "quality"), [("title_card", "2K"), ("title_card", "10x10"), ("neon", "640x360")]
)
async def test_a_bad_size_or_template_is_a_bad_request(model: str, quality: str) -> None:
    with pytest.raises(BadRequest):
        await PlaceholderProvider().generate(request(model=model, quality=quality))


def test_costs_nothing_needs_no_key_and_is_local(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    assert api_key(INFO, offline=False) == ""
    assert INFO.local and INFO.estimate("plain", "640x360", "16:9", 0) == 0.0
    assert INFO.pixel_size("plain", "1920x1080", "16:9") == (1920, 1080)
    assert parse_pixels("1920X1080") == (1920, 1080) and parse_pixels("2K") is None
    facts = describe("Özet", "talking_head")
    assert facts["template_name"] == "talking_head_default" and facts["text_overlay"] == "Özet"


def test_jobs_are_checked_against_their_own_provider(
    workspace: Workspace, tmp_path: object
) -> None:
    jobs = [JobState(j) for j in plan_combos(workspace)][:1]
    drawn = JobState(placeholder_job("009", "x.png", "1920x1080"))
    check_capabilities([*jobs, drawn])  # 1920x1080 is no Gemini tier, and needs none
    with pytest.raises(InputError, match=r"card 009: placeholder size '2K'"):
        check_capabilities([replace(drawn, job=replace(drawn.job, quality="2K"))])


@pytest.mark.asyncio
async def test_placeholder_jobs_take_no_call_slot_and_no_budget(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A budget with room for no image at all still lets every placeholder be drawn, while
    the one generated job is refused; the placeholders wait for no start turn."""
    clock = VirtualClock()
    clock.track_threads(monkeypatch)
    out = workspace.root / "out"
    generated = plan_combos(workspace)[0]
    jobs = [generated, *(placeholder_job(f"10{i}", str(out / f"p{i}.png")) for i in range(3))]
    journal = Journal.create(
        workspace.root / "sessions",
        {"provider": "gemini"},
        [JobState(j) for j in jobs],
        fsync=False,
    )
    fake = FakeProvider()
    runner = Runner(
        journal,
        fake,
        providers.get("gemini"),
        StartGate(Limits(1, 60.0, 1), clock=clock, sleep=clock.sleep),
        policy=RetryPolicy(jitter=0.0),
        clock=clock,
        sleep=clock.sleep,
        budget=Budget(limit=0.05),
        others={"placeholder": (PlaceholderProvider(), INFO)},
    )
    with journal:
        async with anyio.create_task_group() as tg:
            tg.start_soon(clock.drive)
            async with journal.writing():
                result = await runner.run([j.id for j in reversed(jobs)])
            tg.cancel_scope.cancel()
    states = journal.state.jobs
    assert [states[f"10{i}"].status for i in range(3)] == ["completed"] * 3
    assert all(states[f"10{i}"].cost_usd == 0.0 for i in range(3))
    assert states[generated.id].status == "pending" and not fake.calls
    assert (result.stop_reason or "").startswith("budget reached")
    assert clock.now == 0.0  # no start turn was waited for
    for i in range(3):
        assert sniff((out / f"p{i}.png").read_bytes()).width == 320

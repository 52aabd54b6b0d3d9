"""The emulator's Batch API through the real google-genai SDK: create from an uploaded JSONL
file or inline requests, turnaround on an injected clock, results downloaded and matched by key,
and every scripted fault (stuck, expired, failed, cancelled, partial failures, shuffled results,
503s on create and on download)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import orjson
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types
from PIL import Image

from imagegen.emulator import Emulator, Outcome
from imagegen.emulator.batches import BatchOutcome
from imagegen.emulator.clock import ManualClock

from .emulator_sdk import (
    KEY,
    NO_TLS,
    PRO,
    file_part,
    png,
    raw_client,
    request,
    sdk_client,
    upload,
)

HOUR = 3600.0
TURNAROUND = 10.0  # pending + running, seconds, as set by the emu fixture


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def emu(clock: ManualClock) -> Iterator[Emulator]:
    with Emulator(render="plain", clock=clock) as emulator:
        emulator.batches.pending_seconds = 4.0
        emulator.batches.running_seconds = 6.0
        yield emulator


@pytest.fixture
def client(emu: Emulator) -> Iterator[genai.Client]:
    with sdk_client(emu.base_url) as sdk:
        yield sdk


def jsonl(lines: list[tuple[str, dict[str, Any]]]) -> bytes:
    return b"".join(orjson.dumps({"key": key, "request": body}) + b"\n" for key, body in lines)


def submit(
    client: genai.Client, lines: list[tuple[str, dict[str, Any]]], name: str = "session-1"
) -> types.BatchJob:
    """Upload the JSONL input file and create a batch from it."""
    source = upload(client, jsonl(lines), mime_type="jsonl", display_name=f"{name}-input")
    return client.batches.create(model=PRO, src=source.name or "", config={"display_name": name})


def jobs(*keys: str) -> list[tuple[str, dict[str, Any]]]:
    return [(key, request(f"Prompt {key}")) for key in keys]


def poll(client: genai.Client, job: types.BatchJob) -> types.BatchJob:
    return client.batches.get(name=job.name or "")


def results(client: genai.Client, job: types.BatchJob) -> list[dict[str, Any]]:
    """The result lines of a finished batch, in file order."""
    assert job.dest is not None and job.dest.file_name is not None
    data = client.files.download(file=job.dest.file_name)
    return [orjson.loads(line) for line in data.splitlines()]


def raw_batch(emu: Emulator, job: types.BatchJob) -> dict[str, Any]:
    """The Operation JSON as the wire has it (the SDK drops batchStats, done, error)."""
    with raw_client(emu.base_url) as http:
        body: dict[str, Any] = http.get(f"/v1beta/{job.name}").json()
    return body


# -- the happy path ------------------------------------------------------------------------


def test_file_batch_goes_pending_running_succeeded_and_its_results_download(
    emu: Emulator, clock: ManualClock, client: genai.Client
) -> None:
    job = submit(client, jobs("job-1", "job-2", "job-3"), name="session-a-shard-0")
    assert job.name is not None and job.name.startswith("batches/")
    assert (job.state, job.display_name, job.model) == (
        types.JobState.JOB_STATE_PENDING,
        "session-a-shard-0",
        f"models/{PRO}",
    )
    assert job.dest is None and not job.done
    clock.advance(4)
    assert poll(client, job).state == types.JobState.JOB_STATE_RUNNING
    clock.advance(6)
    done = poll(client, job)
    assert done.state == types.JobState.JOB_STATE_SUCCEEDED and done.done
    assert done.end_time is not None and done.create_time is not None
    assert (done.end_time - done.create_time).total_seconds() == TURNAROUND
    lines = results(client, done)
    assert [line["key"] for line in lines] == ["job-1", "job-2", "job-3"]
    for line in lines:
        response = types.GenerateContentResponse.model_validate(line["response"])
        assert response.parts is not None and response.parts[-1].inline_data is not None
        image = Image.open(io.BytesIO(response.parts[-1].inline_data.data or b""))
        assert image.size == (1024, 1024)
    assert emu.batches.created == ["session-a-shard-0"]
    assert emu.files.downloads == 1


def test_wire_shape_has_operation_stats_and_the_output_twice(
    emu: Emulator, clock: ManualClock, client: genai.Client
) -> None:
    job = submit(client, jobs("a", "b"))
    pending = raw_batch(emu, job)
    assert pending["metadata"]["state"] == "BATCH_STATE_PENDING"
    assert pending["metadata"]["batchStats"] == {"requestCount": "2", "pendingRequestCount": "2"}
    assert "done" not in pending
    clock.advance(TURNAROUND)
    done = raw_batch(emu, job)
    assert done["done"] is True
    assert done["metadata"]["batchStats"] == {"requestCount": "2", "successfulRequestCount": "2"}
    assert done["metadata"]["output"]["responsesFile"] == done["response"]["responsesFile"]
    assert done["metadata"]["inputConfig"]["fileName"].startswith("files/")


def test_a_result_is_exactly_the_online_answer_to_the_same_request(
    emu: Emulator, clock: ManualClock, client: genai.Client
) -> None:
    body = request("A red hoodie on a hanger", aspect="4:5", size="2K")
    job = submit(client, [("only", body)])
    clock.advance(TURNAROUND)
    (line,) = results(client, poll(client, job))
    with raw_client(emu.base_url) as http:
        online = http.post(f"/v1beta/models/{PRO}:generateContent", json=body).json()
    assert line["response"] == online


def test_inline_requests_answer_inline_with_their_metadata(
    clock: ManualClock, client: genai.Client
) -> None:
    config = types.GenerateContentConfig(
        response_modalities=["IMAGE"],
        image_config=types.ImageConfig(aspect_ratio="16:9", image_size="1K"),
    )
    src = [
        types.InlinedRequest(contents=f"Prompt {key}", config=config, metadata={"key": key})
        for key in ("x1", "x2")
    ]
    job = client.batches.create(model=PRO, src=src, config={"display_name": "inline"})
    clock.advance(TURNAROUND)
    done = poll(client, job)
    assert done.dest is not None and done.dest.inlined_responses is not None
    answers = done.dest.inlined_responses
    assert [a.metadata for a in answers] == [{"key": "x1"}, {"key": "x2"}]
    for answer in answers:
        assert answer.response is not None and answer.response.parts is not None
        image = answer.response.parts[-1].inline_data
        assert image is not None
        assert Image.open(io.BytesIO(image.data or b"")).size == (1376, 768)


def test_results_stream_to_a_file(clock: ManualClock, client: genai.Client, tmp_path: Path) -> None:
    job = submit(client, jobs(*(f"k{i}" for i in range(5))))
    clock.advance(TURNAROUND)
    done = poll(client, job)
    assert done.dest is not None and done.dest.file_name is not None
    target = tmp_path / "results.jsonl"
    client.files.download(file=done.dest.file_name, destination=str(target))
    keys = [orjson.loads(line)["key"] for line in target.read_bytes().splitlines()]
    assert keys == [f"k{i}" for i in range(5)]


def test_each_request_is_generated_once_however_often_the_batch_is_read(
    emu: Emulator, clock: ManualClock, client: genai.Client
) -> None:
    job = submit(client, jobs("a", "b"))
    clock.advance(TURNAROUND)
    for _ in range(3):
        poll(client, job)
    list(client.batches.list())
    assert emu.generated == {"Prompt a": 1, "Prompt b": 1}


# -- references by file URI ----------------------------------------------------------------


def test_file_data_references_in_batch_lines_resolve_to_the_uploaded_bytes(
    clock: ManualClock, client: genai.Client
) -> None:
    ref = upload(client, png(color=(1, 2, 3)))
    job = submit(client, [("with-ref", request("A cat", file_part(ref)))])
    clock.advance(TURNAROUND)
    (line,) = results(client, poll(client, job))
    usage = line["response"]["usageMetadata"]
    assert {"modality": "IMAGE", "tokenCount": 258} in usage["promptTokensDetails"]


def test_a_reference_that_expired_before_the_batch_ran_fails_only_its_line(
    emu: Emulator, clock: ManualClock, client: genai.Client
) -> None:
    emu.files.ttl = 5.0  # the reference expires while the batch is pending
    ref = upload(client, png())
    emu.files.ttl = 48 * HOUR
    job = submit(client, [("gone", request("A", file_part(ref))), ("fine", request("B"))])
    clock.advance(TURNAROUND)
    gone, fine = results(client, poll(client, job))
    assert gone["key"] == "gone" and gone["error"]["code"] == 7  # PERMISSION_DENIED
    assert "may not exist" in gone["error"]["message"]
    assert fine["key"] == "fine" and "response" in fine


def test_a_reference_is_read_as_of_the_batch_end_not_when_results_are_fetched(
    clock: ManualClock, client: genai.Client
) -> None:
    ref = upload(client, png())
    job = submit(client, [("ref", request("A", file_part(ref)))])
    # At the first look the reference (uploaded at 0) has expired, but the results file
    # (written at the batch's end, 10 s in) has not.
    clock.advance(48 * HOUR + 5)
    (line,) = results(client, poll(client, job))
    assert "response" in line


def test_the_results_file_expires_48_hours_after_the_batch_ended(
    clock: ManualClock, client: genai.Client
) -> None:
    job = submit(client, jobs("a"))
    clock.advance(TURNAROUND + 48 * HOUR)
    done = poll(client, job)
    assert done.state == types.JobState.JOB_STATE_SUCCEEDED
    with pytest.raises(genai_errors.ClientError) as excinfo:
        results(client, done)
    assert excinfo.value.code == 403


# -- scripted faults -----------------------------------------------------------------------


def test_partial_failures_come_from_the_per_prompt_script(
    emu: Emulator, clock: ManualClock, client: genai.Client
) -> None:
    emu.enqueue(Outcome.error(500), match="Prompt p2")
    emu.enqueue(Outcome.prompt_blocked("PROHIBITED_CONTENT"), match="Prompt p3")
    emu.enqueue(Outcome.finish("IMAGE_SAFETY"), match="Prompt p4")
    emu.enqueue(Outcome.error(429, retry_delay="30s"), match="Prompt p5")
    job = submit(client, jobs("p1", "p2", "p3", "p4", "p5"))
    clock.advance(TURNAROUND)
    by_key = {line["key"]: line for line in results(client, poll(client, job))}
    assert by_key["p1"]["response"]["candidates"][0]["finishReason"] == "STOP"
    assert by_key["p2"]["error"] == {
        "code": 13,
        "message": by_key["p2"]["error"]["message"],
    }
    assert by_key["p3"]["response"]["promptFeedback"] == {"blockReason": "PROHIBITED_CONTENT"}
    assert by_key["p4"]["response"]["candidates"][0]["finishReason"] == "IMAGE_SAFETY"
    assert by_key["p5"]["error"]["code"] == 8  # RESOURCE_EXHAUSTED
    assert by_key["p5"]["error"]["details"][0]["retryDelay"] == "30s"
    stats = raw_batch(emu, job)["metadata"]["batchStats"]
    assert stats == {"requestCount": "5", "successfulRequestCount": "3", "failedRequestCount": "2"}
    assert emu.pending == 0


def test_shuffled_results_come_out_of_order_but_every_key_once(
    emu: Emulator, clock: ManualClock, client: genai.Client
) -> None:
    keys = [f"job-{i:03d}" for i in range(30)]
    emu.batches.enqueue(BatchOutcome.succeed(shuffle=True))
    job = submit(client, jobs(*keys))
    clock.advance(TURNAROUND)
    lines = results(client, poll(client, job))
    got = [line["key"] for line in lines]
    assert got != keys
    assert sorted(got) == keys
    for line in lines:
        assert line["response"]["candidates"][0]["finishReason"] == "STOP"


def test_a_stuck_batch_stays_pending_until_it_expires_after_48_hours(
    emu: Emulator, clock: ManualClock, client: genai.Client
) -> None:
    emu.batches.enqueue(BatchOutcome.stuck())
    job = submit(client, jobs("a"))
    clock.advance(48 * HOUR - 1)
    assert poll(client, job).state == types.JobState.JOB_STATE_PENDING
    clock.advance(1)
    expired = poll(client, job)
    assert expired.state == types.JobState.JOB_STATE_EXPIRED and expired.dest is None


def test_a_batch_stuck_running_can_be_cancelled(
    emu: Emulator, clock: ManualClock, client: genai.Client
) -> None:
    emu.batches.enqueue(BatchOutcome.stuck("RUNNING"))
    job = submit(client, jobs("a"))
    clock.advance(5 * HOUR)
    assert poll(client, job).state == types.JobState.JOB_STATE_RUNNING
    client.batches.cancel(name=job.name or "")
    client.batches.cancel(name=job.name or "")  # again: no harm
    clock.advance(48 * HOUR)
    cancelled = poll(client, job)
    assert cancelled.state == types.JobState.JOB_STATE_CANCELLED and cancelled.dest is None
    assert emu.generated == {}


def test_cancelling_a_finished_batch_is_refused(clock: ManualClock, client: genai.Client) -> None:
    job = submit(client, jobs("a"))
    clock.advance(TURNAROUND)
    with pytest.raises(genai_errors.ClientError) as excinfo:
        client.batches.cancel(name=job.name or "")
    assert excinfo.value.code == 400
    assert poll(client, job).state == types.JobState.JOB_STATE_SUCCEEDED


@pytest.mark.parametrize(
    ("outcome", "state"),
    [
        (BatchOutcome.expire(), types.JobState.JOB_STATE_EXPIRED),
        (BatchOutcome.fail(), types.JobState.JOB_STATE_FAILED),
        (BatchOutcome.cancel(), types.JobState.JOB_STATE_CANCELLED),
    ],
)
def test_scripted_ends_have_no_output(
    emu: Emulator,
    clock: ManualClock,
    client: genai.Client,
    outcome: BatchOutcome,
    state: types.JobState,
) -> None:
    emu.batches.enqueue(outcome)
    job = submit(client, jobs("a", "b"))
    clock.advance(TURNAROUND - 1)
    assert poll(client, job).state == types.JobState.JOB_STATE_RUNNING
    clock.advance(1)
    ended = poll(client, job)
    assert ended.state == state and ended.done and ended.dest is None
    wire = raw_batch(emu, job)
    assert "output" not in wire["metadata"] and "response" not in wire
    if state == types.JobState.JOB_STATE_FAILED:
        assert wire["error"]["code"] == 13


def test_batch_outcomes_are_matched_by_display_name(
    emu: Emulator, clock: ManualClock, client: genai.Client
) -> None:
    emu.batches.enqueue(BatchOutcome.expire(), match="shard-2")
    first = submit(client, jobs("a"), name="s-shard-1")
    second = submit(client, jobs("b"), name="s-shard-2")
    clock.advance(TURNAROUND)
    assert poll(client, first).state == types.JobState.JOB_STATE_SUCCEEDED
    assert poll(client, second).state == types.JobState.JOB_STATE_EXPIRED
    assert emu.batches.pending == 0


def test_a_slow_batch_gets_its_own_turnaround(
    emu: Emulator, clock: ManualClock, client: genai.Client
) -> None:
    emu.batches.enqueue(BatchOutcome.succeed(pending_seconds=20 * HOUR, running_seconds=HOUR))
    job = submit(client, jobs("a"))
    clock.advance(20 * HOUR)
    assert poll(client, job).state == types.JobState.JOB_STATE_RUNNING
    clock.advance(HOUR)
    assert poll(client, job).state == types.JobState.JOB_STATE_SUCCEEDED


def test_download_503s_n_times_then_succeeds(
    emu: Emulator, clock: ManualClock, client: genai.Client
) -> None:
    job = submit(client, jobs("a"))
    clock.advance(TURNAROUND)
    done = poll(client, job)
    emu.files.fail_downloads(2, code=503)
    for _ in range(2):
        with pytest.raises(genai_errors.ServerError) as excinfo:
            results(client, done)
        assert (excinfo.value.code, excinfo.value.status) == (503, "UNAVAILABLE")
    assert [line["key"] for line in results(client, done)] == ["a"]
    assert (emu.files.failed_downloads, emu.files.downloads) == (2, 1)


def test_create_503_creates_nothing(emu: Emulator, client: genai.Client) -> None:
    emu.batches.fail_creates(1, code=503)
    with pytest.raises(genai_errors.ServerError):
        submit(client, jobs("a"), name="session-b")
    assert emu.batches.created == []
    submit(client, jobs("a"), name="session-b")
    assert emu.batches.created == ["session-b"]
    assert emu.batches.create_attempts == 2


def test_a_lost_create_answer_leaves_a_batch_that_list_finds_by_display_name(
    emu: Emulator, client: genai.Client
) -> None:
    """The crash between the create call and the journal entry: resume lists and finds it."""
    emu.batches.fail_creates(1, code=503, after_create=True)
    with pytest.raises(genai_errors.ServerError):
        submit(client, jobs("a"), name="session-c-shard-7")
    for i in range(12):
        submit(client, jobs("x"), name=f"other-{i}")
    found = [
        job
        for job in client.batches.list(config={"page_size": 5})
        if job.display_name == "session-c-shard-7"
    ]
    assert len(found) == 1 and found[0].state == types.JobState.JOB_STATE_PENDING


def test_list_pages_newest_first(client: genai.Client) -> None:
    names = [submit(client, jobs("a"), name=f"n{i}").name for i in range(7)]
    pager = client.batches.list(config={"page_size": 3})
    assert len(pager.page) == 3
    assert [job.name for job in pager] == names[::-1]


def test_a_deleted_batch_is_404(client: genai.Client) -> None:
    job = submit(client, jobs("a"))
    client.batches.delete(name=job.name or "")
    with pytest.raises(genai_errors.ClientError) as excinfo:
        poll(client, job)
    assert (excinfo.value.code, excinfo.value.status) == (404, "NOT_FOUND")
    assert not list(client.batches.list())


# -- rejected creates ----------------------------------------------------------------------


def test_a_bare_batch_id_is_refused_by_the_sdk_before_the_wire(
    emu: Emulator, client: genai.Client
) -> None:
    job = submit(client, jobs("a"))
    before = emu.requests
    with pytest.raises(ValueError, match="Invalid batch job name"):
        client.batches.get(name=(job.name or "").removeprefix("batches/"))
    assert emu.requests == before


def test_create_from_an_unknown_file_is_403(client: genai.Client) -> None:
    with pytest.raises(genai_errors.ClientError) as excinfo:
        client.batches.create(model=PRO, src="files/nosuchfile", config={"display_name": "x"})
    assert (excinfo.value.code, excinfo.value.status) == (403, "PERMISSION_DENIED")


def test_create_for_an_unknown_model_is_404(client: genai.Client) -> None:
    source = upload(client, jsonl(jobs("a")), mime_type="jsonl")
    with pytest.raises(genai_errors.ClientError) as excinfo:
        client.batches.create(model="gemini-9-imaginary", src=source.name or "")
    assert excinfo.value.code == 404


def test_a_jsonl_line_that_is_not_json_is_400_naming_the_line(client: genai.Client) -> None:
    source = upload(client, jsonl(jobs("a")) + b"{not json\n", mime_type="jsonl")
    with pytest.raises(genai_errors.ClientError) as excinfo:
        client.batches.create(model=PRO, src=source.name or "")
    assert excinfo.value.code == 400
    assert "line 2" in str(excinfo.value)


def test_a_bad_request_inside_a_valid_line_fails_only_that_line(
    clock: ManualClock, client: genai.Client
) -> None:
    job = submit(client, [("bad", request("A", aspect="7:3")), ("good", request("B"))])
    clock.advance(TURNAROUND)
    bad, good = results(client, poll(client, job))
    assert bad["error"]["code"] == 3 and "7:3" in bad["error"]["message"]
    assert "response" in good


def test_inline_requests_over_20_mb_are_400(emu: Emulator) -> None:
    big = {"request": request("x"), "metadata": {"pad": "y" * (20 * 1024 * 1024)}}
    body = {"batch": {"displayName": "big", "inputConfig": {"requests": {"requests": [big]}}}}
    with raw_client(emu.base_url) as http:
        response = http.post(f"/v1beta/models/{PRO}:batchGenerateContent", json=body)
    assert response.status_code == 400
    assert emu.batches.created == []


def test_batch_routes_need_a_key(emu: Emulator) -> None:
    with raw_client(emu.base_url, key=False) as http:
        assert http.get("/v1beta/batches").status_code == 403


def test_with_no_turnaround_the_create_answer_is_already_done(
    emu: Emulator, client: genai.Client
) -> None:
    emu.batches.pending_seconds = emu.batches.running_seconds = 0.0
    job = submit(client, jobs("a"))
    assert job.state == types.JobState.JOB_STATE_SUCCEEDED
    assert [line["key"] for line in results(client, job)] == ["a"]


@pytest.mark.asyncio
async def test_the_async_client_runs_the_whole_round_trip(
    emu: Emulator, clock: ManualClock
) -> None:
    """Upload, create, poll, list and stream the results with client.aio on our httpx2 client."""
    async with httpx2.AsyncClient(verify=NO_TLS) as http:
        options = types.HttpOptions(
            base_url=emu.base_url,
            api_version="v1beta",
            retry_options=types.HttpRetryOptions(attempts=1),
            httpx_async_client=http,
        )
        aio = genai.Client(api_key=KEY, http_options=options).aio
        source = await aio.files.upload(
            file=io.BytesIO(jsonl(jobs("a", "b"))), config={"mime_type": "jsonl"}
        )
        job = await aio.batches.create(
            model=PRO, src=source.name or "", config={"display_name": "async-1"}
        )
        clock.advance(TURNAROUND)
        done = await aio.batches.get(name=job.name or "")
        assert [j.display_name async for j in await aio.batches.list()] == ["async-1"]
        assert done.dest is not None and done.dest.file_name is not None
        sink = io.BytesIO()
        await aio.files.download(file=done.dest.file_name, destination=sink)
    keys = [orjson.loads(line)["key"] for line in sink.getvalue().splitlines()]
    assert keys == ["a", "b"]

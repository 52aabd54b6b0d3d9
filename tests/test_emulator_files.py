"""The emulator's Files API through the real google-genai SDK: resumable upload, metadata,
expiry on an injected clock, deletion, faults, and ``fileData`` references in generateContent."""

from __future__ import annotations

import io
import os
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import httpx
import httpx2
import pytest
import pytest_asyncio
from google import genai
from google.genai import errors as genai_errors
from google.genai import types
from PIL import Image

from imagegen.emulator import Emulator
from imagegen.emulator.clock import ManualClock

from .emulator_sdk import KEY, NO_TLS, PRO, file_part, png, raw_client, sdk_client, upload

DAY = 24 * 3600.0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def emu(clock: ManualClock) -> Iterator[Emulator]:
    with Emulator(render="plain", clock=clock) as emulator:
        yield emulator


@pytest.fixture
def client(emu: Emulator) -> Iterator[genai.Client]:
    with sdk_client(emu.base_url) as sdk:
        yield sdk


def generate_with(client: genai.Client, *parts: types.Part) -> types.GenerateContentResponse:
    config = types.GenerateContentConfig(
        response_modalities=["IMAGE"],
        image_config=types.ImageConfig(aspect_ratio="1:1", image_size="1K"),
    )
    contents = types.Content(role="user", parts=list(parts))
    return client.models.generate_content(model=PRO, contents=contents, config=config)


def api_error(excinfo: pytest.ExceptionInfo[genai_errors.APIError]) -> tuple[int, str | None]:
    return excinfo.value.code, excinfo.value.status


# -- upload --------------------------------------------------------------------------------


def test_upload_returns_an_active_file_that_expires_after_48_hours(
    emu: Emulator, client: genai.Client
) -> None:
    data = png()
    file = upload(client, data, display_name="ref-ui")
    assert file.name is not None and file.name.startswith("files/")
    assert file.uri == f"{emu.base_url}/v1beta/{file.name}"
    assert file.mime_type == "image/png"
    assert file.size_bytes == len(data)
    assert file.display_name == "ref-ui"
    assert file.state == types.FileState.ACTIVE
    assert file.source == types.FileSource.UPLOADED
    assert file.create_time is not None and file.expiration_time is not None
    assert file.expiration_time - file.create_time == timedelta(hours=48)
    assert (emu.files.uploads, emu.files.uploaded_bytes) == (1, len(data))


def test_a_file_over_8_mb_goes_up_in_chunks_and_arrives_whole(
    emu: Emulator, client: genai.Client
) -> None:
    data = os.urandom(9 * 1024 * 1024 + 17)
    file = upload(client, data, mime_type="application/octet-stream")
    assert file.size_bytes == len(data)
    assert emu.files.get(file.name or "").data == data
    assert emu.requests == 3  # start, an 8 MB chunk, then the rest with finalize


def test_a_requested_name_is_kept_and_a_taken_one_is_409(client: genai.Client) -> None:
    assert upload(client, png(), name="ref-ui-0001").name == "files/ref-ui-0001"
    with pytest.raises(genai_errors.ClientError) as excinfo:
        upload(client, png(), name="ref-ui-0001")
    assert api_error(excinfo) == (409, "ALREADY_EXISTS")


def test_a_name_with_capitals_is_rejected(client: genai.Client) -> None:
    with pytest.raises(genai_errors.ClientError) as excinfo:
        upload(client, png(), name="Ref_UI")
    assert api_error(excinfo) == (400, "INVALID_ARGUMENT")


def test_scripted_upload_fault_fails_the_start_then_the_next_upload_works(
    emu: Emulator, client: genai.Client
) -> None:
    emu.files.fail_uploads(1, code=503)
    with pytest.raises(genai_errors.ServerError) as excinfo:
        upload(client, png())
    assert api_error(excinfo) == (503, "UNAVAILABLE")
    assert upload(client, png()).state == types.FileState.ACTIVE
    assert (emu.files.failed_uploads, emu.files.uploads) == (1, 1)


@pytest_asyncio.fixture
async def aclient(emu: Emulator) -> AsyncIterator[genai.Client]:
    """The async client as the project builds it: its own httpx2 AsyncClient."""
    async with httpx2.AsyncClient(verify=NO_TLS) as http:
        options = types.HttpOptions(
            base_url=emu.base_url,
            api_version="v1beta",
            retry_options=types.HttpRetryOptions(attempts=1),
            httpx_async_client=http,
        )
        yield genai.Client(api_key=KEY, http_options=options)


@pytest.mark.asyncio
async def test_async_upload_and_get_work_through_our_httpx2_client(
    emu: Emulator, aclient: genai.Client
) -> None:
    data = png()
    file = await aclient.aio.files.upload(file=io.BytesIO(data), config={"mime_type": "image/png"})
    again = await aclient.aio.files.get(name=file.name or "")
    assert again.size_bytes == len(data)
    assert emu.files.uploads == 1


# -- the resumable protocol on the wire ----------------------------------------------------


def test_start_answers_an_absolute_upload_url_and_chunks_need_no_key(emu: Emulator) -> None:
    with raw_client(emu.base_url) as http, raw_client(emu.base_url, key=False) as keyless:
        started = http.post(
            "/upload/v1beta/files",
            json={"file": {"displayName": "raw"}},
            headers={
                "X-Goog-Upload-Protocol": "resumable",
                "X-Goog-Upload-Command": "start",
                "X-Goog-Upload-Header-Content-Length": "6",
                "X-Goog-Upload-Header-Content-Type": "image/png",
            },
        )
        assert started.status_code == 200
        assert started.headers["x-goog-upload-status"] == "active"
        url = started.headers["x-goog-upload-url"]
        assert url.startswith(f"{emu.base_url}/upload/v1beta/files?upload_id=")

        def chunk(command: str, offset: int, data: bytes) -> httpx.Response:
            return keyless.post(
                url,
                content=data,
                headers={"X-Goog-Upload-Command": command, "X-Goog-Upload-Offset": str(offset)},
            )

        first = chunk("upload", 0, b"abc")
        assert (first.status_code, first.headers["x-goog-upload-status"]) == (200, "active")
        query = keyless.post(url, headers={"X-Goog-Upload-Command": "query"})
        assert query.headers["x-goog-upload-size-received"] == "3"
        wrong = chunk("upload", 1, b"def")
        assert (wrong.status_code, wrong.headers["x-goog-upload-status"]) == (400, "final")
        last = chunk("upload, finalize", 3, b"def")
        assert (last.status_code, last.headers["x-goog-upload-status"]) == (200, "final")
        file = last.json()["file"]
        assert (file["displayName"], file["sizeBytes"], file["mimeType"]) == (
            "raw",
            "6",
            "image/png",
        )
        gone = chunk("upload", 6, b"more")
        assert (gone.status_code, gone.headers["x-goog-upload-status"]) == (404, "final")


def test_a_final_size_other_than_declared_is_400(emu: Emulator) -> None:
    with raw_client(emu.base_url) as http:
        started = http.post(
            "/upload/v1beta/files",
            json={"file": {"mimeType": "image/png"}},
            headers={
                "X-Goog-Upload-Protocol": "resumable",
                "X-Goog-Upload-Command": "start",
                "X-Goog-Upload-Header-Content-Length": "10",
            },
        )
        done = http.post(
            started.headers["x-goog-upload-url"],
            content=b"short",
            headers={"X-Goog-Upload-Command": "upload, finalize", "X-Goog-Upload-Offset": "0"},
        )
    assert done.status_code == 400
    assert emu.files.uploads == 0


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({"X-Goog-Upload-Protocol": "resumable", "X-Goog-Upload-Command": "start"}, 403),
        ({"x-goog-api-key": KEY, "X-Goog-Upload-Protocol": "multipart"}, 400),
    ],
)
def test_start_needs_a_key_and_the_resumable_protocol(
    emu: Emulator, headers: dict[str, str], code: int
) -> None:
    with raw_client(emu.base_url, key=False) as http:
        response = http.post(
            "/upload/v1beta/files",
            json={"file": {"mimeType": "image/png"}},
            headers=headers | {"X-Goog-Upload-Header-Content-Type": "image/png"},
        )
    assert response.status_code == code


# -- metadata, expiry, deletion, download ---------------------------------------------------


def test_get_answers_the_metadata_until_the_file_expires(
    clock: ManualClock, client: genai.Client
) -> None:
    file = upload(client, png())
    clock.advance(2 * DAY - 1)
    assert client.files.get(name=file.name or "").uri == file.uri
    clock.advance(1)
    with pytest.raises(genai_errors.ClientError) as excinfo:
        client.files.get(name=file.name or "")
    assert api_error(excinfo) == (403, "PERMISSION_DENIED")
    assert "may not exist" in str(excinfo.value)


def test_the_file_lifetime_is_configurable(
    emu: Emulator, clock: ManualClock, client: genai.Client
) -> None:
    emu.files.ttl = 60.0
    file = upload(client, png())
    clock.advance(60)
    with pytest.raises(genai_errors.ClientError):
        client.files.get(name=file.name or "")


def test_an_unknown_deleted_or_forgotten_file_is_403(emu: Emulator, client: genai.Client) -> None:
    deleted, forgotten = upload(client, png()), upload(client, png())
    client.files.delete(name=deleted.name or "")
    emu.files.forget(forgotten.name or "")
    for name in ("files/nosuchfile", deleted.name, forgotten.name):
        with pytest.raises(genai_errors.ClientError) as excinfo:
            client.files.get(name=name or "")
        assert api_error(excinfo) == (403, "PERMISSION_DENIED")
    with pytest.raises(genai_errors.ClientError):
        client.files.delete(name=deleted.name or "")


def test_an_uploaded_file_cannot_be_downloaded(client: genai.Client) -> None:
    file = upload(client, png())
    with pytest.raises(genai_errors.ClientError) as excinfo:
        client.files.download(file=file.name or "")
    assert api_error(excinfo)[0] == 400


def test_list_pages_through_live_files_newest_first(
    clock: ManualClock, client: genai.Client
) -> None:
    names = []
    for _ in range(5):
        names.append(upload(client, png()).name)
        clock.advance(1)
    listed = [f.name for f in client.files.list(config={"page_size": 2})]
    assert listed == names[::-1]


# -- fileData references in generateContent ------------------------------------------------


def test_file_data_resolves_to_the_uploaded_bytes(emu: Emulator, client: genai.Client) -> None:
    ref = png(color=(200, 10, 10))
    file = upload(client, ref)
    by_uri = generate_with(client, types.Part(text="A cat"), file_part(file))
    inline = generate_with(
        client, types.Part(text="A cat"), types.Part.from_bytes(data=ref, mime_type="image/png")
    )
    sent = emu.last_request_json
    assert sent is not None
    assert by_uri.usage_metadata is not None and inline.usage_metadata is not None
    assert by_uri.usage_metadata.prompt_token_count == inline.usage_metadata.prompt_token_count
    # The request digest covers the reference bytes: same bytes, same image.
    assert by_uri.response_id == inline.response_id
    assert by_uri.parts is not None and by_uri.parts[-1].inline_data is not None
    image = by_uri.parts[-1].inline_data.data or b""
    assert Image.open(io.BytesIO(image)).size == (1024, 1024)


def test_file_data_of_an_expired_file_is_403(clock: ManualClock, client: genai.Client) -> None:
    file = upload(client, png())
    clock.advance(2 * DAY)
    with pytest.raises(genai_errors.ClientError) as excinfo:
        generate_with(client, types.Part(text="A cat"), file_part(file))
    assert api_error(excinfo) == (403, "PERMISSION_DENIED")


@pytest.mark.parametrize(
    ("uri", "code"),
    [
        ("https://generativelanguage.googleapis.com/v1beta/files/nosuchfile", 403),
        ("gs://bucket/ref.png", 400),
    ],
)
def test_file_data_of_an_unknown_or_malformed_uri(
    client: genai.Client, uri: str, code: int
) -> None:
    part = types.Part(file_data=types.FileData(file_uri=uri, mime_type="image/png"))
    with pytest.raises(genai_errors.ClientError) as excinfo:
        generate_with(client, types.Part(text="A cat"), part)
    assert api_error(excinfo)[0] == code


def test_file_data_of_a_file_that_is_not_an_image_is_400(client: genai.Client) -> None:
    file = upload(client, b'{"key": "x"}\n', mime_type="jsonl")
    with pytest.raises(genai_errors.ClientError) as excinfo:
        generate_with(client, types.Part(text="A cat"), file_part(file))
    assert api_error(excinfo) == (400, "INVALID_ARGUMENT")

"""The emulator's OpenAI and fal route families, spoken to with plain httpx (no SDK): routes,
auth, validation, what was received, scripted outcomes in each provider's shapes, the fal
queue's phases, and the HTTPS listener."""

from __future__ import annotations

import base64
import io
import ssl
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from PIL import Image

from imagegen.emulator import Emulator, Outcome
from imagegen.emulator.fal_routes import fal_state
from imagegen.emulator.openai_routes import openai_state, size_problem
from imagegen.emulator.tls import TLSListener

NO_TLS = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
OPENAI_KEY = "sk-test-" + "0123456789abcdef"
FAL_KEY = "fal-test-key"


def png(width: int = 40, height: int = 30, color: tuple[int, int, int] = (10, 200, 90)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, "PNG")
    return out.getvalue()


def size_of(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as img:
        return img.size


def data_url(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(render="plain") as emulator:
        yield emulator


@pytest.fixture
def oa(emu: Emulator) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {OPENAI_KEY}"}
    with httpx.Client(base_url=emu.base_url, verify=NO_TLS, headers=headers) as client:
        yield client


@pytest.fixture
def tls(emu: Emulator) -> Iterator[TLSListener]:
    with TLSListener(emu) as listener:
        yield listener


@pytest.fixture
def fal(tls: TLSListener) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Key {FAL_KEY}"}
    verify = tls.client_context()
    with httpx.Client(base_url=tls.base_url, verify=verify, headers=headers) as client:
        yield client


# -- OpenAI --------------------------------------------------------------------------------


def test_openai_generation_is_b64_png_of_the_size_with_usage(oa: httpx.Client) -> None:
    response = oa.post(
        "/v1/images/generations",
        json={"model": "gpt-image-2", "prompt": "A cat", "size": "1536x864", "quality": "high"},
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"].startswith("req_")
    body = response.json()
    assert size_of(base64.b64decode(body["data"][0]["b64_json"])) == (1536, 864)
    usage = body["usage"]
    assert usage["input_tokens"] == usage["input_tokens_details"]["text_tokens"] == 2
    assert usage["output_tokens"] == usage["output_tokens_details"]["image_tokens"] > 4160
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]


def test_openai_edits_records_every_image_part(emu: Emulator, oa: httpx.Client) -> None:
    refs = [png(10 + i, 10) for i in range(16)]
    files = [("image[]", (f"{i}.png", ref, "image/png")) for i, ref in enumerate(refs)]
    response = oa.post(
        "/v1/images/edits", data={"model": "gpt-image-2", "prompt": "Edit"}, files=files
    )
    assert response.status_code == 200
    received = openai_state(emu).references
    assert [image.data for image in received] == refs
    assert {image.name for image in received} == {"image[]"}
    assert response.json()["usage"]["input_tokens_details"]["image_tokens"] == 16 * 765


def test_openai_edits_refuses_a_seventeenth_image(oa: httpx.Client) -> None:
    files = [("image[]", (f"{i}.png", png(), "image/png")) for i in range(17)]
    response = oa.post("/v1/images/edits", data={"prompt": "Edit"}, files=files)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "image"


def test_openai_edits_refuses_bytes_that_are_no_image(oa: httpx.Client) -> None:
    files = [("image[]", ("a.png", b"not an image", "image/png"))]
    response = oa.post("/v1/images/edits", data={"prompt": "Edit"}, files=files)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_image_file"


@pytest.mark.parametrize(
    ("model", "size", "ok"),
    [
        ("gpt-image-2", "3840x2160", True),
        ("gpt-image-2", "3856x2160", False),  # edge over 3840
        ("gpt-image-2", "1000x1000", False),  # not a multiple of 16
        ("gpt-image-2", "2048x672", False),  # ratio over 3:1
        ("gpt-image-2", "768x768", False),  # under 655,360 pixels
        ("gpt-image-2.5-flare", "2880x2880", True),
        ("gpt-image-1.5", "1536x1024", True),
        ("gpt-image-1.5", "1280x720", False),  # fixed-size model
    ],
)
def test_openai_sizes_follow_the_sdk_docstring(model: str, size: str, ok: bool) -> None:
    assert (size_problem(model, size) is None) is ok


def test_openai_without_key_is_401(emu: Emulator) -> None:
    with httpx.Client(base_url=emu.base_url) as client:
        response = client.post("/v1/images/generations", json={"prompt": "A cat"})
    assert response.status_code == 401
    assert "API key" in response.json()["error"]["message"]


def test_openai_wrong_key_is_401_invalid_api_key_with_the_key_masked() -> None:
    with Emulator(render="plain", expected_key="sk-right-key-0000") as emu:
        headers = {"Authorization": f"Bearer {OPENAI_KEY}"}
        with httpx.Client(base_url=emu.base_url, headers=headers) as client:
            response = client.post("/v1/images/generations", json={"prompt": "A cat"})
    error = response.json()["error"]
    assert response.status_code == 401
    assert error["code"] == "invalid_api_key"
    assert OPENAI_KEY not in error["message"]
    assert OPENAI_KEY[:8] in error["message"]


@pytest.mark.parametrize("model", ["dall-e-3", "gpt-image-1", "gpt-image-9"])
def test_openai_retired_or_unknown_model_is_404(oa: httpx.Client, model: str) -> None:
    response = oa.post("/v1/images/generations", json={"model": model, "prompt": "A cat"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"


@pytest.mark.parametrize(
    ("outcome", "status", "code", "headers"),
    [
        (Outcome.error(429, retry_delay="7s"), 429, None, {"retry-after": "7"}),
        (Outcome.error(429, reason="insufficient_quota"), 429, "insufficient_quota", {}),
        (Outcome.error(503), 503, None, {}),
        (Outcome.prompt_blocked(), 400, "moderation_blocked", {}),
        (Outcome.finish("IMAGE_SAFETY"), 400, "moderation_blocked", {}),
    ],
    ids=["429-retry-after", "429-quota", "503", "blocked-input", "blocked-output"],
)
def test_openai_scripted_errors_have_openai_shapes(
    emu: Emulator,
    oa: httpx.Client,
    outcome: Outcome,
    status: int,
    code: str | None,
    headers: dict[str, str],
) -> None:
    emu.enqueue(outcome)
    response = oa.post("/v1/images/generations", json={"model": "gpt-image-2", "prompt": "x"})
    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"}
    assert error["code"] == code
    for name, value in headers.items():
        assert response.headers[name] == value
    if code == "moderation_blocked":
        assert error["type"] == "image_generation_user_error"
        stage = "input" if outcome.kind == "prompt_blocked" else "output"
        assert error["moderation_details"]["moderation_stage"] == stage


def test_openai_text_only_is_an_answer_without_data(emu: Emulator, oa: httpx.Client) -> None:
    emu.enqueue(Outcome.text_only())
    response = oa.post("/v1/images/generations", json={"model": "gpt-image-2", "prompt": "x"})
    assert response.status_code == 200
    assert response.json()["data"] == []


def test_gemini_routes_still_answer(emu: Emulator) -> None:
    with httpx.Client(base_url=emu.base_url, headers={"x-goog-api-key": "k"}) as client:
        response = client.post(
            "/v1beta/models/gemini-3-pro-image:generateContent",
            json={"contents": [{"parts": [{"text": "A cat"}]}]},
        )
    assert response.status_code == 200
    assert "candidates" in response.json()


# -- fal -----------------------------------------------------------------------------------


def submit(fal: httpx.Client, prompt: str = "A cat", **arguments: Any) -> dict[str, Any]:
    app = arguments.pop("app", "fal-ai/nano-banana-pro/edit")
    arguments.setdefault("image_urls", [data_url(png())])
    response = fal.post(f"/{app}", json={"prompt": prompt, **arguments})
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_fal_submit_answers_urls_on_the_host_it_was_called_by(
    tls: TLSListener, fal: httpx.Client
) -> None:
    answer = submit(fal)
    base = f"https://{tls.netloc}/fal-ai/nano-banana-pro/requests/{answer['request_id']}"
    assert answer["response_url"] == base
    assert answer["status_url"] == base + "/status"
    assert answer["cancel_url"] == base + "/cancel"
    assert answer["status"] == "IN_QUEUE"


def test_fal_queue_goes_through_its_phases_in_the_turnaround(
    emu: Emulator, fal: httpx.Client
) -> None:
    fal_state(emu).turnaround = 0.4
    answer = submit(fal)
    first = fal.get(answer["status_url"], params={"logs": False})
    assert first.status_code == 202
    assert first.json()["status"] == "IN_QUEUE"
    assert first.json()["queue_position"] == 0
    assert fal.get(answer["response_url"]).status_code == 400  # still in progress
    time.sleep(0.25)  # the emulator's own turnaround, not a client wait
    middle = fal.get(answer["status_url"], params={"logs": True}).json()
    assert middle["status"] == "IN_PROGRESS"
    assert isinstance(middle["logs"], list)
    time.sleep(0.2)
    done = fal.get(answer["status_url"]).json()
    assert done["status"] == "COMPLETED"
    assert "logs" in done and "metrics" in done


def test_fal_result_image_is_served_and_sized_like_pro(emu: Emulator, fal: httpx.Client) -> None:
    answer = submit(fal, resolution="2K", aspect_ratio="16:9")
    result = fal.get(answer["response_url"]).json()
    image = result["images"][0]
    assert (image["width"], image["height"]) == (2752, 1536)
    download = fal.get(image["url"], headers={"Authorization": ""})
    assert download.status_code == 200
    assert size_of(download.content) == (2752, 1536)
    assert fal_state(emu).downloads == 1


def test_fal_result_as_a_data_url(emu: Emulator, fal: httpx.Client) -> None:
    fal_state(emu).image_delivery = "data"
    answer = submit(fal, app="fal-ai/nano-banana", image_urls=None)
    url = fal.get(answer["response_url"]).json()["images"][0]["url"]
    assert url.startswith("data:image/png;base64,")
    assert size_of(base64.b64decode(url.split(",", 1)[1])) == (1024, 1024)


def test_fal_records_every_reference_and_counts_submits(emu: Emulator, fal: httpx.Client) -> None:
    refs = [png(10 + i, 12) for i in range(14)]
    submit(fal, "Fourteen", image_urls=[data_url(ref) for ref in refs])
    submit(fal, "Fourteen", image_urls=[data_url(refs[0])])
    state = fal_state(emu)
    assert list(state.received[0]) == refs
    assert state.submits["Fourteen"] == 2


@pytest.mark.parametrize(
    ("arguments", "loc"),
    [
        ({"image_urls": [data_url(png())] * 15}, ["body", "image_urls"]),
        ({"image_urls": ["https://example.invalid/a.png"]}, ["body", "image_urls", 0]),
        ({"image_urls": [data_url(b"nope")]}, ["body", "image_urls", 0]),
        ({"resolution": "8K"}, ["body", "resolution"]),
        ({"aspect_ratio": "7:1"}, ["body", "aspect_ratio"]),
    ],
    ids=["15-images", "not-a-data-url", "not-an-image", "resolution", "aspect"],
)
def test_fal_refuses_bad_input_with_422(
    fal: httpx.Client, arguments: dict[str, Any], loc: list[object]
) -> None:
    body = {"prompt": "A cat", "image_urls": [data_url(png())], **arguments}
    response = fal.post("/fal-ai/nano-banana-pro/edit", json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == loc


def test_fal_edit_needs_image_urls(fal: httpx.Client) -> None:
    response = fal.post("/fal-ai/nano-banana-pro/edit", json={"prompt": "A cat"})
    assert response.status_code == 422


def test_fal_auth_and_unknown_apps(tls: TLSListener) -> None:
    verify = tls.client_context()
    with httpx.Client(base_url=tls.base_url, verify=verify) as client:
        assert client.post("/fal-ai/nano-banana-pro", json={"prompt": "x"}).status_code == 401
        headers = {"Authorization": "Key k"}
        missing = client.post("/fal-ai/imaginary", json={"prompt": "x"}, headers=headers)
        assert missing.status_code == 404
        unknown = client.get("/fal-ai/nano-banana-pro/requests/nope/status", headers=headers)
        assert unknown.status_code == 404


def test_fal_wrong_key_is_401() -> None:
    with Emulator(render="plain", expected_key="right") as emu, TLSListener(emu) as tls:
        headers = {"Authorization": "Key wrong"}
        verify = tls.client_context()
        with httpx.Client(base_url=tls.base_url, verify=verify, headers=headers) as client:
            response = client.post("/fal-ai/nano-banana-pro", json={"prompt": "x"})
    assert response.status_code == 401


def test_fal_scripted_error_on_submit_queues_nothing(emu: Emulator, fal: httpx.Client) -> None:
    emu.enqueue(Outcome.error(429, retry_delay="3s", reason="rate_limited"), match="busy")
    response = fal.post("/fal-ai/nano-banana-pro", json={"prompt": "busy"})
    assert response.status_code == 429
    assert response.headers["retry-after"] == "3"
    assert response.json()["error_type"] == "rate_limited"
    assert fal_state(emu).jobs == {}
    assert fal_state(emu).submits["busy"] == 1


def test_fal_blocked_prompt_completes_with_an_error_and_a_422_result(
    emu: Emulator, fal: httpx.Client
) -> None:
    emu.enqueue(Outcome.prompt_blocked(), match="blocked")
    answer = submit(fal, "blocked")
    status = fal.get(answer["status_url"]).json()
    assert status["status"] == "COMPLETED"
    assert status["error_type"] == "content_policy_violation"
    result = fal.get(answer["response_url"])
    assert result.status_code == 422
    assert result.json()["detail"][0]["type"] == "content_policy_violation"


def test_fal_cancel(emu: Emulator, fal: httpx.Client) -> None:
    fal_state(emu).turnaround = 30.0
    answer = submit(fal)
    assert fal.put(answer["cancel_url"]).status_code == 202
    status = fal.get(answer["status_url"]).json()
    assert (status["status"], status["error_type"]) == ("COMPLETED", "client_cancelled")
    assert fal.put(answer["cancel_url"]).json() == {"status": "ALREADY_COMPLETED"}


def test_fal_hang_queues_at_once_and_answers_late(emu: Emulator, fal: httpx.Client) -> None:
    emu.enqueue(Outcome.hang(5.0), match="slow")
    with pytest.raises(httpx.ReadTimeout):
        fal.post("/fal-ai/nano-banana-pro", json={"prompt": "slow"}, timeout=0.3)
    assert len(fal_state(emu).jobs) == 1  # accepted, and so paid for, though never answered


def test_tls_listener_is_refused_by_a_client_that_does_not_trust_its_ca(
    tls: TLSListener,
) -> None:
    with httpx.Client(base_url=tls.base_url) as client, pytest.raises(httpx.ConnectError):
        client.post("/fal-ai/nano-banana-pro", json={"prompt": "x"})


def test_tls_listener_writes_its_ca_for_ssl_cert_file(tls: TLSListener) -> None:
    text = tls.ca_file.read_text()
    assert text.startswith("-----BEGIN CERTIFICATE-----")
    context = ssl.create_default_context(cafile=str(tls.ca_file))
    with httpx.Client(base_url=tls.base_url, verify=context) as client:
        assert client.get("/fal-files/none.png").status_code == 404

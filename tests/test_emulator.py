"""The emulator's wire behaviour, spoken to with plain httpx (no SDK): routes, keys, casings,
base64 alphabets, pixel sizes, usage numbers, scripted outcomes and stats."""

from __future__ import annotations

import base64
import io
import json
import math
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from imagegen.emulator import Emulator, Outcome
from imagegen.emulator.outcomes import Script

PRO = "gemini-3-pro-image"
KEY = "test-key"
# Loading CA certificates for every httpx.Client costs ~50 ms; loopback HTTP needs none.
NO_TLS = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def http_client(base_url: str, **kwargs: Any) -> httpx.Client:
    return httpx.Client(base_url=base_url, verify=NO_TLS, **kwargs)


def png(width: int = 64, height: int = 48, color: tuple[int, int, int] = (10, 200, 90)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, "PNG")
    return out.getvalue()


def jpeg(width: int = 64, height: int = 48) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 10, 10)).save(out, "JPEG")
    return out.getvalue()


def b64(data: bytes, *, urlsafe: bool = True, pad: bool = True) -> str:
    text = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(data).decode()
    return text if pad else text.rstrip("=")


def request_body(
    prompt: str = "A cat on a mat",
    refs: tuple[bytes, ...] = (),
    *,
    aspect: str | None = "1:1",
    size: str | None = "1K",
    camel: bool = True,
    urlsafe: bool = True,
    pad: bool = True,
) -> dict[str, Any]:
    """A generateContent body; ``camel`` picks the SDK's mixed casing, else all snake_case."""
    parts: list[dict[str, Any]] = [{"text": prompt}]
    for ref in refs:
        mime = "image/png" if ref.startswith(b"\x89PNG") else "image/jpeg"
        data = b64(ref, urlsafe=urlsafe, pad=pad)
        if camel:
            parts.append({"inlineData": {"mime_type": mime, "data": data}})
        else:
            parts.append({"inline_data": {"mime_type": mime, "data": data}})
    image_config: dict[str, str] = {}
    if aspect is not None:
        image_config["aspectRatio" if camel else "aspect_ratio"] = aspect
    if size is not None:
        image_config["imageSize" if camel else "image_size"] = size
    config_key, image_key = (
        ("generationConfig", "imageConfig") if camel else ("generation_config", "image_config")
    )
    return {
        "contents": [{"role": "user", "parts": parts}],
        config_key: {"responseModalities": ["TEXT", "IMAGE"], image_key: image_config},
    }


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(render="plain") as emulator:
        yield emulator


@pytest.fixture
def http(emu: Emulator) -> Iterator[httpx.Client]:
    with http_client(emu.base_url, headers={"x-goog-api-key": KEY}) as client:
        yield client


def generate(
    http: httpx.Client,
    body: dict[str, Any] | None = None,
    model: str = PRO,
    version: str = "v1beta",
) -> httpx.Response:
    return http.post(f"/{version}/models/{model}:generateContent", json=body or request_body())


def final_image(response: httpx.Response) -> Image.Image:
    """The last non-thought image part of the first candidate, decoded."""
    parts = response.json()["candidates"][0]["content"]["parts"]
    images = [p for p in parts if "inlineData" in p and not p.get("thought")]
    return Image.open(io.BytesIO(base64.b64decode(images[-1]["inlineData"]["data"])))


def error_of(response: httpx.Response) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == response.status_code
    return error


# -- routes and keys -----------------------------------------------------------------------


def test_header_key_on_v1beta_returns_the_notes_response_shape(http: httpx.Client) -> None:
    response = generate(http)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=UTF-8"
    body = response.json()
    candidate = body["candidates"][0]
    assert candidate["finishReason"] == "STOP"
    assert candidate["content"]["role"] == "model"
    assert body["modelVersion"] == PRO
    assert body["responseId"]
    assert final_image(response).size == (1024, 1024)


def test_query_key_and_v1_path_are_accepted(emu: Emulator) -> None:
    with http_client(emu.base_url) as client:
        response = client.post(
            f"/v1/models/{PRO}:generateContent", params={"key": KEY}, json=request_body()
        )
    assert response.status_code == 200


def test_missing_key_is_403_permission_denied(emu: Emulator) -> None:
    with http_client(emu.base_url) as client:
        response = generate(client)
    assert response.status_code == 403
    assert error_of(response)["status"] == "PERMISSION_DENIED"


def test_wrong_key_is_400_api_key_invalid_without_echoing_the_key() -> None:
    with (
        Emulator(render="plain", expected_key="right-key") as emu,
        http_client(emu.base_url, headers={"x-goog-api-key": "wrong-key"}) as client,
    ):
        response = generate(client)
        accepted = client.post(
            f"/v1beta/models/{PRO}:generateContent",
            json=request_body(),
            headers={"x-goog-api-key": "right-key"},
        )
    assert response.status_code == 400
    error = error_of(response)
    assert error["status"] == "INVALID_ARGUMENT"
    assert {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "API_KEY_INVALID",
    }.items() <= (error["details"][0].items())
    assert "wrong-key" not in response.text
    assert accepted.status_code == 200


def test_unknown_model_is_404_naming_the_model(http: httpx.Client) -> None:
    response = generate(http, model="gemini-9-imaginary")
    assert response.status_code == 404
    error = error_of(response)
    assert error["status"] == "NOT_FOUND"
    assert "gemini-9-imaginary" in error["message"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", f"/v1beta/models/{PRO}:streamGenerateContent"),
        ("POST", "/v1beta/files"),
        ("GET", f"/v1beta/models/{PRO}:generateContent"),
    ],
)
def test_other_routes_are_404(http: httpx.Client, method: str, path: str) -> None:
    response = http.request(method, path, json=request_body())
    assert response.status_code == 404
    assert error_of(response)["status"] == "NOT_FOUND"


@pytest.mark.parametrize("model", ["gemini-3-pro-image-preview", "gemini-3.1-flash-image"])
def test_every_known_model_answers(http: httpx.Client, model: str) -> None:
    assert generate(http, model=model).status_code == 200


# -- request parsing -----------------------------------------------------------------------


@pytest.mark.parametrize("camel", [True, False], ids=["camelCase", "snake_case"])
@pytest.mark.parametrize(
    ("urlsafe", "pad"),
    [(True, True), (True, False), (False, True), (False, False)],
    ids=["urlsafe", "urlsafe-nopad", "standard", "standard-nopad"],
)
def test_casings_and_base64_alphabets_decode_the_same_references(
    emu: Emulator, http: httpx.Client, camel: bool, urlsafe: bool, pad: bool
) -> None:
    # Bytes chosen so their base64 holds '-'/'_' (URL-safe) or '+'/'/' (standard) and padding.
    refs = (png(61, 47), jpeg(33, 21))
    body = request_body(refs=refs, aspect="16:9", size="1K", camel=camel, urlsafe=urlsafe, pad=pad)
    response = generate(http, body)
    assert response.status_code == 200, response.text
    assert final_image(response).size == (1376, 768)
    usage = response.json()["usageMetadata"]
    assert usage["promptTokenCount"] == math.ceil(len("A cat on a mat") / 4) + 2 * 258
    assert emu.last_request_json == body


@pytest.mark.parametrize(
    ("image_config", "needle"),
    [
        ({"imageSize": "1k"}, "1k"),
        ({"imageSize": "8K"}, "8K"),
        ({"aspectRatio": "7:3"}, "7:3"),
    ],
)
def test_bad_image_config_is_400(
    http: httpx.Client, image_config: dict[str, str], needle: str
) -> None:
    body = request_body()
    body["generationConfig"]["imageConfig"] = image_config
    response = generate(http, body)
    assert response.status_code == 400
    error = error_of(response)
    assert error["status"] == "INVALID_ARGUMENT"
    assert needle in error["message"]


def test_malformed_json_is_400(http: httpx.Client) -> None:
    response = http.post(
        f"/v1beta/models/{PRO}:generateContent",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert error_of(response)["status"] == "INVALID_ARGUMENT"


def test_undecodable_reference_is_400_unable_to_process(http: httpx.Client) -> None:
    response = generate(http, request_body(refs=(png()[:40],)))
    assert response.status_code == 400
    assert "Unable to process input image" in error_of(response)["message"]


def test_bad_base64_is_400(http: httpx.Client) -> None:
    body = request_body()
    body["contents"][0]["parts"].append({"inlineData": {"mimeType": "image/png", "data": "@@@"}})
    response = generate(http, body)
    assert response.status_code == 400
    assert "Base64" in error_of(response)["message"]


# -- images and usage ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "aspect", "pixels"),
    [
        ("1K", "1:1", (1024, 1024)),
        ("4K", "1:1", (4096, 4096)),
        ("1K", "16:9", (1376, 768)),
        ("2K", "9:16", (1536, 2752)),
        ("1K", "21:9", (1584, 672)),
        ("2K", "4:3", (2400, 1792)),
        (None, None, (1024, 1024)),
    ],
)
def test_pro_pixel_sizes(
    http: httpx.Client, size: str | None, aspect: str | None, pixels: tuple[int, int]
) -> None:
    response = generate(http, request_body(size=size, aspect=aspect))
    assert final_image(response).size == pixels


@pytest.mark.parametrize(
    ("aspect", "pixels"), [("1:1", (1024, 1024)), ("16:9", (1344, 768)), ("2:3", (832, 1248))]
)
def test_flash_has_one_size_per_ratio_and_ignores_image_size(
    http: httpx.Client, aspect: str, pixels: tuple[int, int]
) -> None:
    response = generate(
        http, request_body(aspect=aspect, size="4K"), model="gemini-2.5-flash-image"
    )
    assert final_image(response).size == pixels
    assert response.json()["usageMetadata"]["candidatesTokenCount"] == 1290


@pytest.mark.parametrize(("size", "tokens"), [("1K", 1120), ("2K", 1120), ("4K", 2000)])
def test_usage_bills_the_output_image_as_tokens(http: httpx.Client, size: str, tokens: int) -> None:
    prompt = "x" * 41
    usage = generate(http, request_body(prompt, refs=(png(),), size=size)).json()["usageMetadata"]
    assert usage["promptTokenCount"] == 11 + 258
    assert usage["candidatesTokenCount"] == tokens
    assert usage["candidatesTokensDetails"] == [{"modality": "IMAGE", "tokenCount": tokens}]
    assert 200 <= usage["thoughtsTokenCount"] <= 400
    assert usage["totalTokenCount"] == (
        usage["promptTokenCount"] + tokens + usage["thoughtsTokenCount"]
    )


def test_collage_shows_the_references_and_is_deterministic() -> None:
    green = png(200, 200, (0, 255, 0))
    with (
        Emulator(render="collage") as emu,
        http_client(emu.base_url, headers={"x-goog-api-key": KEY}) as client,
    ):
        first = generate(client, request_body("Green square\nmore text", refs=(green,)))
        again = generate(client, request_body("Green square\nmore text", refs=(green,)))
        other = generate(client, request_body("Another prompt", refs=(green,)))
    image = final_image(first).convert("RGB")
    assert image.size == (1024, 1024)
    assert image.getpixel((512, 450)) == (0, 255, 0)  # the reference fills the grid cell
    band = image.getpixel((3, 1020))
    assert band == (20, 20, 20)  # the caption band at the bottom
    assert final_image(first).tobytes() == final_image(again).tobytes()
    assert final_image(first).tobytes() != final_image(other).tobytes()


def test_plain_render_colour_follows_the_request(http: httpx.Client) -> None:
    one = final_image(generate(http, request_body("one"))).convert("RGB")
    two = final_image(generate(http, request_body("two"))).convert("RGB")
    assert one.getpixel((0, 0)) != two.getpixel((0, 0))


# -- scripted outcomes ---------------------------------------------------------------------


def test_scripted_outcomes_are_consumed_fifo_by_matching_requests(
    emu: Emulator, http: httpx.Client
) -> None:
    emu.enqueue(Outcome.error(503), Outcome.error(500), match="ZH01")
    emu.enqueue(Outcome.error(429))
    assert generate(http, request_body("ZH01 unboxing")).status_code == 503
    assert generate(http, request_body("GN01 morning")).status_code == 429
    assert generate(http, request_body("GN01 morning")).status_code == 200
    assert generate(http, request_body("ZH01 unboxing")).status_code == 500
    assert generate(http, request_body("ZH01 unboxing")).status_code == 200
    assert emu.pending == 0


def test_script_matches_across_all_text_parts(emu: Emulator, http: httpx.Client) -> None:
    emu.enqueue(Outcome.error(503), match="second part")
    body = request_body("first part")
    body["contents"][0]["parts"].append({"text": "second part"})
    assert generate(http, body).status_code == 503


def test_error_outcome_carries_retry_quota_and_reason_details(
    emu: Emulator, http: httpx.Client
) -> None:
    emu.enqueue(
        Outcome.error(
            429, retry_delay="58s", quota_id="GenerateRequestsPerDayPerProjectPerModel", reason="X"
        )
    )
    error = error_of(generate(http))
    assert error["status"] == "RESOURCE_EXHAUSTED"
    by_type = {d["@type"].rsplit(".", 1)[1]: d for d in error["details"]}
    assert by_type["RetryInfo"]["retryDelay"] == "58s"
    assert by_type["QuotaFailure"]["violations"][0]["quotaId"].startswith("GenerateRequestsPerDay")
    assert by_type["ErrorInfo"]["reason"] == "X"


def test_error_outcome_without_extras_has_no_details(emu: Emulator, http: httpx.Client) -> None:
    emu.enqueue(Outcome.error(503, message="The model is overloaded."))
    error = error_of(generate(http))
    assert error == {"code": 503, "status": "UNAVAILABLE", "message": "The model is overloaded."}


def test_prompt_blocked_has_no_candidates(emu: Emulator, http: httpx.Client) -> None:
    emu.enqueue(Outcome.prompt_blocked("PROHIBITED_CONTENT"))
    body = generate(http).json()
    assert "candidates" not in body
    assert body["promptFeedback"] == {"blockReason": "PROHIBITED_CONTENT"}


@pytest.mark.parametrize("reason", ["IMAGE_SAFETY", "PROHIBITED_CONTENT", "NO_IMAGE"])
def test_finish_outcome_has_the_reason_and_no_parts(
    emu: Emulator, http: httpx.Client, reason: str
) -> None:
    emu.enqueue(Outcome.finish(reason))
    candidate = generate(http).json()["candidates"][0]
    assert candidate["finishReason"] == reason
    assert "content" not in candidate


def test_text_only_outcome(emu: Emulator, http: httpx.Client) -> None:
    emu.enqueue(Outcome.text_only("No."))
    candidate = generate(http).json()["candidates"][0]
    assert candidate["finishReason"] == "STOP"
    assert candidate["content"]["parts"] == [{"text": "No."}]


def test_bad_json_outcome_is_a_200_that_is_not_json(emu: Emulator, http: httpx.Client) -> None:
    emu.enqueue(Outcome.bad_json())
    response = generate(http)
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.text)


def test_drop_outcome_closes_the_connection_mid_body(emu: Emulator, http: httpx.Client) -> None:
    emu.enqueue(Outcome.drop())
    with pytest.raises(httpx.RemoteProtocolError):
        generate(http)
    assert generate(http).status_code == 200  # the pool recovers with a new connection


def test_bad_image_outcome_sends_bytes_that_do_not_decode(
    emu: Emulator, http: httpx.Client
) -> None:
    emu.enqueue(Outcome.bad_image())
    image = final_image(generate(http))
    assert image.format == "PNG"
    with pytest.raises(OSError, match="truncated"):
        image.load()


def test_wrong_size_outcome(emu: Emulator, http: httpx.Client) -> None:
    emu.enqueue(Outcome.wrong_size(300, 200))
    assert final_image(generate(http)).size == (300, 200)


def test_thought_then_image_sends_a_thought_image_first(emu: Emulator, http: httpx.Client) -> None:
    emu.enqueue(Outcome.thought_then_image())
    response = generate(http)
    parts = response.json()["candidates"][0]["content"]["parts"]
    assert parts[0]["thought"] is True
    assert "inlineData" in parts[0]
    assert final_image(response).size == (1024, 1024)


def test_hang_delays_the_answer_and_stop_wakes_it() -> None:
    with (
        Emulator(render="plain") as emu,
        http_client(emu.base_url, headers={"x-goog-api-key": KEY}) as client,
    ):
        emu.enqueue(Outcome.hang(0.3))
        started = time.monotonic()
        assert generate(client).status_code == 200
        assert time.monotonic() - started >= 0.3
        emu.enqueue(Outcome.hang(30))
        failures: list[Exception] = []

        def hang() -> None:
            try:
                generate(client)
            except httpx.HTTPError as exc:
                failures.append(exc)

        worker = threading.Thread(target=hang)
        worker.start()
        time.sleep(0.1)
        stopping = time.monotonic()
    worker.join(5)
    assert time.monotonic() - stopping < 2
    assert not worker.is_alive()
    assert len(failures) == 1  # stop() hung up on the waiting request


def test_script_file_entries(tmp_path: Path, http: httpx.Client, emu: Emulator) -> None:
    script = tmp_path / "script.json"
    script.write_text(
        json.dumps(
            [
                {"match": "ZH01", "outcomes": [{"kind": "error", "code": 503}, {"kind": "image"}]},
                {"match": None, "outcomes": [{"kind": "wrong_size", "width": 10, "height": 20}]},
            ]
        )
    )
    emu.script_from_file(script)
    assert generate(http, request_body("ZH01")).status_code == 503
    assert final_image(generate(http, request_body("ZH01"))).size == (1024, 1024)
    assert final_image(generate(http, request_body("GN01"))).size == (10, 20)


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("{", "not JSON"),
        ('{"match": "x"}', "JSON list"),
        ('[{"match": "x", "outcomes": [{"kind": "explode"}]}]', "explode"),
        ('[{"outcomes": [{"kind": "hang", "minutes": 3}]}]', "minutes"),
        ('[{"outcomes": [{"kind": "error", "code": 200}]}]', "4xx or 5xx"),
    ],
)
def test_bad_script_file_names_the_file(tmp_path: Path, content: str, needle: str) -> None:
    script = tmp_path / "bad.json"
    script.write_text(content)
    with pytest.raises(ValueError, match=needle) as info:
        Script().load(script)
    assert str(script) in str(info.value)


# -- stats ---------------------------------------------------------------------------------


def test_stats_count_requests_generations_and_peak_concurrency() -> None:
    with Emulator(render="plain", latency=0.2) as emu:
        emu.enqueue(Outcome.error(503), match="fail")

        def one(prompt: str) -> None:
            with http_client(emu.base_url, headers={"x-goog-api-key": KEY}) as client:
                generate(client, request_body(prompt))

        threads = [threading.Thread(target=one, args=(p,)) for p in ("a", "a", "b", "fail")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert emu.requests == 4
        assert emu.generated == {"a": 2, "b": 1}
        assert emu.max_in_flight == 4
        starts = emu.request_starts
        assert len(starts) == 4
        assert max(starts) - min(starts) < 0.2  # all arrived before the first answered
        assert emu.last_request_json is not None


def test_base_url_needs_a_running_emulator() -> None:
    emu = Emulator()
    with pytest.raises(RuntimeError, match="not running"):
        _ = emu.base_url


# -- CLI -----------------------------------------------------------------------------------


def test_cli_serves_until_interrupted() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "imagegen.emulator", "--port", "0", "--render", "plain"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("Emulator listening on http://127.0.0.1:")
        url = first.rsplit(" ", 1)[1].strip()
        assert "GOOGLE_GEMINI_BASE_URL=" + url in proc.stdout.readline() + proc.stdout.readline()
        with http_client(url, params={"key": "secret-query-key"}) as client:
            assert generate(client).status_code == 200
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0
    assert "stopped after 1 requests" in out
    assert f"/v1beta/models/{PRO}:generateContent -> 200 image" in err
    assert "secret-query-key" not in err


def test_cli_reports_a_bad_script(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from imagegen.emulator import main

    script = tmp_path / "bad.json"
    script.write_text("{")
    assert main(["--port", "0", "--script", str(script)]) == 2
    assert str(script) in capsys.readouterr().err

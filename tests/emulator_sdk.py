"""Helpers for tests that drive the emulator's Files and Batch APIs through the real SDK."""

from __future__ import annotations

import io
import ssl
from typing import Any

import httpx
from google import genai
from google.genai import types
from PIL import Image

PRO = "gemini-3-pro-image"
KEY = "test-key"
# Loading CA certificates for every client costs ~50 ms; loopback HTTP needs none.
NO_TLS = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def sdk_client(base_url: str) -> genai.Client:
    """A google-genai client on the emulator, pinned to v1beta, SDK retries off (as ours)."""
    options = types.HttpOptions(
        base_url=base_url,
        api_version="v1beta",
        retry_options=types.HttpRetryOptions(attempts=1),
        client_args={"verify": NO_TLS},
        async_client_args={"ssl": NO_TLS},
    )
    return genai.Client(api_key=KEY, http_options=options)


def raw_client(base_url: str, *, key: bool = True) -> httpx.Client:
    """Plain httpx on the emulator, for what the SDK hides (headers, batchStats, errors)."""
    headers = {"x-goog-api-key": KEY} if key else {}
    return httpx.Client(base_url=base_url, verify=NO_TLS, headers=headers)


def png(width: int = 40, height: int = 30, color: tuple[int, int, int] = (10, 200, 90)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, "PNG")
    return out.getvalue()


def upload(
    client: genai.Client, data: bytes, mime_type: str = "image/png", **config: Any
) -> types.File:
    """Upload bytes through ``client.files.upload`` (the resumable protocol)."""
    settings = types.UploadFileConfig(mime_type=mime_type, **config)
    return client.files.upload(file=io.BytesIO(data), config=settings)


def request(
    prompt: str, *refs: types.Part, aspect: str = "1:1", size: str = "1K"
) -> dict[str, Any]:
    """A REST GenerateContentRequest, as a JSONL input line holds it."""
    parts: list[dict[str, Any]] = [{"text": prompt}]
    for ref in refs:
        assert ref.file_data is not None
        parts.append(
            {"fileData": {"fileUri": ref.file_data.file_uri, "mimeType": ref.file_data.mime_type}}
        )
    return {
        "contents": [{"role": "user", "parts": parts}],
        "generationConfig": {
            "responseModalities": ["IMAGE"],
            "imageConfig": {"aspectRatio": aspect, "imageSize": size},
        },
    }


def file_part(file: types.File) -> types.Part:
    assert file.uri is not None and file.mime_type is not None
    return types.Part(file_data=types.FileData(file_uri=file.uri, mime_type=file.mime_type))

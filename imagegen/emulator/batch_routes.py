"""The Batch API routes, as google-genai 3.4.0 calls them (``batches.py``; notes ``providers.md``).

    POST   /v1beta/models/{model}:batchGenerateContent   create -> Operation (see .batches)
    GET    /v1beta/batches/{id}                           get    -> Operation
    GET    /v1beta/batches?pageSize=N&pageToken=T         list   -> {"operations", "nextPageToken"?}
    POST   /v1beta/batches/{id}:cancel                    cancel -> {}
    DELETE /v1beta/batches/{id}                           delete -> {}

Create body (SDK ``_CreateBatchJobParameters_to_mldev``): ``{"batch": {"displayName"?,
"inputConfig": {"fileName": "files/ID"} | {"requests": {"requests": [{"request": {...},
"metadata"?: {...}}]}}}}``; the model is in the path only. A JSONL input file holds one
``{"key", "request"}`` a line (raw REST, either casing inside, as for ``generateContent``).
Checks, in order: API key (as ``generateContent``), a known model (404), an inline body under
20 MB (the batch-mode guide's limit; 400), the input file (403 if unknown or expired, as every
Files API reference), one request at least (400). A missing ``displayName`` is accepted (the
reference calls it required; the SDK sends it only when given: lenient here).

A bare id on the client side never reaches here: the SDK raises ValueError for a name that is
not ``batches/ID`` (``_transformers.t_batch_job_name``). The SDK reads only ``name`` and
``metadata.*`` of an Operation (``_BatchJob_from_mldev``); ``done``, ``response`` and ``error``
are there for other clients. An unknown (or deleted) batch is a 404 NOT_FOUND (a guess).
List order is newest first (a guess); the page token is opaque and stays valid while batches
are created (it marks the last batch seen, not an offset).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import SplitResult, parse_qs

import orjson

from . import wire
from .batch_wire import BatchRequest, parse_inline, parse_jsonl
from .batches import BatchStore
from .httpd import Handler

# The batch-mode guide: "the total request size is under 20MB" for inline requests.
MAX_INLINE_BYTES = 20 * 1024 * 1024
DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 100

_CREATE = re.compile(r"^/v1beta/models/([^/:]+):batchGenerateContent$")
_ONE = re.compile(r"^/v1beta/batches/([^/:]+)$")
_CANCEL = re.compile(r"^/v1beta/batches/([^/:]+):cancel$")
_LIST = "/v1beta/batches"

CheckKey = Callable[[Handler, SplitResult], None]


class BatchRoutes:
    """Answers the Batch API paths; :meth:`answer` returns False for any other path."""

    def __init__(self, store: BatchStore, check_key: CheckKey) -> None:
        self.store = store
        self._check_key = check_key

    def answer(self, handler: Handler, url: SplitResult, body: bytes) -> bool:
        path, method = url.path, handler.command
        create = _CREATE.match(path)
        cancel = _CANCEL.match(path)
        one = _ONE.match(path)
        if create and method == "POST":
            self._check_key(handler, url)
            handler.note = "batches.create"
            self._create(handler, create.group(1), body)
        elif cancel and method == "POST":
            self._check_key(handler, url)
            handler.note = "batches.cancel"
            self.store.cancel(cancel.group(1))
            handler.reply(200, b"{}")
        elif one and method == "GET":
            self._check_key(handler, url)
            handler.note = "batches.get"
            handler.reply(200, self.store.resource(self.store.get(one.group(1))))
        elif one and method == "DELETE":
            self._check_key(handler, url)
            handler.note = "batches.delete"
            self.store.delete(one.group(1))
            handler.reply(200, b"{}")
        elif path == _LIST and method == "GET":
            self._check_key(handler, url)
            handler.note = "batches.list"
            self._list(handler, parse_qs(url.query))
        else:
            return False
        return True

    def _create(self, handler: Handler, model: str, body: bytes) -> None:
        if model not in wire.KNOWN_MODELS:
            raise wire.WireError(
                404,
                "NOT_FOUND",
                f"models/{model} is not found for API version v1beta, or is not supported for "
                "batchGenerateContent. Call ListModels to see the list of available models and "
                "their supported methods.",
            )
        if len(body) > MAX_INLINE_BYTES:
            raise wire.invalid_argument(
                f"Request payload size exceeds the limit: {MAX_INLINE_BYTES} bytes."
            )
        batch = wire.load_json(body).get("batch")
        if not isinstance(batch, dict):
            raise wire.invalid_argument("* BatchGenerateContentRequest.batch: batch is required")
        display = _either(batch, "displayName", "display_name") or ""
        config = _either(batch, "inputConfig", "input_config")
        if not isinstance(config, dict):
            raise wire.invalid_argument("* batch.input_config: input_config is required")
        file_name = _either(config, "fileName", "file_name")
        inline = config.get("requests")
        if (file_name is None) == (inline is None):
            raise wire.invalid_argument(
                "* batch.input_config: exactly one of file_name or requests is required"
            )
        requests: tuple[BatchRequest, ...]
        if file_name is not None:
            stored = self.store.files.get(str(file_name))
            file_name = stored.name
            requests = parse_jsonl(stored.data, stored.name)
        else:
            items = inline.get("requests") if isinstance(inline, dict) else None
            if not isinstance(items, list):
                raise wire.invalid_argument("* batch.input_config.requests.requests: required")
            requests = parse_inline(items)
        created = self.store.create(model, str(display), requests, file_name)
        handler.reply(200, self.store.resource(created))

    def _list(self, handler: Handler, query: dict[str, list[str]]) -> None:
        try:
            size = int(query.get("pageSize", [DEFAULT_PAGE_SIZE])[0])
        except ValueError as exc:
            raise wire.invalid_argument("Invalid pageSize") from exc
        size = DEFAULT_PAGE_SIZE if size <= 0 else min(size, MAX_PAGE_SIZE)
        batches = self.store.listing()
        token = query.get("pageToken", [""])[0]
        if token:
            try:
                after = int(base64.urlsafe_b64decode(token.encode()).decode().removeprefix("seq:"))
            except (ValueError, binascii.Error) as exc:
                raise wire.invalid_argument("Invalid pageToken") from exc
            batches = [b for b in batches if b.seq < after]
        page = batches[:size]
        body: dict[str, Any] = {
            "operations": [orjson.Fragment(self.store.resource(b)) for b in page]
        }
        if len(batches) > size:
            token = base64.urlsafe_b64encode(f"seq:{page[-1].seq}".encode()).decode()
            body["nextPageToken"] = token
        handler.reply(200, orjson.dumps(body))


def _either(obj: dict[str, Any], camel: str, snake: str) -> Any:
    return obj.get(camel, obj.get(snake))

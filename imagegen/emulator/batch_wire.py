"""The Batch API wire format: parse batch inputs, build result lines and the batch resource.

Pure functions, no sockets, no clock (the caller passes the time). Sources: notes
``providers.md`` "Gemini Batch API"; google-genai 3.4.0 ``batches.py``
(``_CreateBatchJobParameters_to_mldev``, ``_BatchJob_from_mldev``,
``_BatchJobDestination_from_mldev``); live shapes recorded in flachesis/gemini-rust#13 (an
Operation with ``@type`` ``...v1main.GenerateContentBatch``, ``batchStats`` counts as strings,
``name`` repeated in the metadata) and in public client code that checked a finished file batch
(``output.responsesFile`` "files/batch-..." repeated as ``response.responsesFile``).

    input line (JSONL)   {"key": str, "request": GenerateContentRequest}
    inline request       {"request": GenerateContentRequest, "metadata"?: {str: str}}
    result line / inline {"key" | "metadata", "response": GenerateContentResponse}
                         {"key" | "metadata", "error": {"code", "message", "details"?}}
    batch resource       {"name": "batches/ID", "metadata": {"@type", "name", "model":
                          "models/M", "displayName", "inputConfig"? (file batches only),
                          "createTime", "updateTime", "endTime"?, "batchStats", "state":
                          "BATCH_STATE_*", "output"?}, "done"?: true, "response"? | "error"?}

A response is byte for byte the body an online ``generateContent`` answer carries. An error's
``code`` is a google.rpc.Code number (13 INTERNAL, as in googleapis/python-genai#1341), not an
HTTP status. ``batchStats`` leaves zero counts out (proto3 JSON). Inline results echo the
request's ``metadata`` as the API reference says (googleapis/python-genai#2008 reports the live
service leaving it out: key inline results by position as well if it matters).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from . import wire
from .answers import Answer
from .clock import rfc3339

if TYPE_CHECKING:
    from .batches import Batch

# google.rpc.Code numbers for the status names the emulator uses.
GRPC_CODES = {
    "CANCELLED": 1,
    "UNKNOWN": 2,
    "INVALID_ARGUMENT": 3,
    "DEADLINE_EXCEEDED": 4,
    "NOT_FOUND": 5,
    "ALREADY_EXISTS": 6,
    "PERMISSION_DENIED": 7,
    "RESOURCE_EXHAUSTED": 8,
    "FAILED_PRECONDITION": 9,
    "ABORTED": 10,
    "NOT_IMPLEMENTED": 12,
    "UNIMPLEMENTED": 12,
    "INTERNAL": 13,
    "UNAVAILABLE": 14,
    "UNAUTHENTICATED": 16,
}
_BATCH_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch"
_OUTPUT_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatchOutput"
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "CANCELLED", "EXPIRED"})


@dataclass(frozen=True, slots=True)
class BatchRequest:
    """One request of a batch: ``key`` (JSONL input) or ``metadata`` (inline), and the body."""

    request: dict[str, Any] = field(repr=False)
    key: str | None = None
    metadata: dict[str, Any] | None = None


def parse_jsonl(data: bytes, file_name: str) -> tuple[BatchRequest, ...]:
    """The requests of a JSONL input file: one ``{"key", "request"}`` object a line.

    Blank lines are skipped. Raises WireError(400) naming the line for one that is not such an
    object (the service's exact answer is not known: this is a guess), and for a file with no
    request at all.
    """
    requests: list[BatchRequest] = []
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise wire.invalid_argument(f"{file_name} line {number} is not JSON: {exc}") from exc
        if not isinstance(item, dict) or not isinstance(item.get("request"), dict):
            raise wire.invalid_argument(
                f'{file_name} line {number}: expected {{"key": ..., "request": {{...}}}}'
            )
        key = item.get("key")
        requests.append(BatchRequest(item["request"], None if key is None else str(key)))
    if not requests:
        raise wire.invalid_argument(f"{file_name} holds no requests")
    return tuple(requests)


def parse_inline(items: Iterable[Any]) -> tuple[BatchRequest, ...]:
    """The requests of ``inputConfig.requests.requests``: ``{"request", "metadata"?}`` each."""
    requests: list[BatchRequest] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("request"), dict):
            raise wire.invalid_argument(
                f"Invalid value at 'batch.input_config.requests.requests[{index}].request'"
            )
        metadata = item.get("metadata")
        requests.append(
            BatchRequest(item["request"], metadata=metadata if isinstance(metadata, dict) else None)
        )
    if not requests:
        raise wire.invalid_argument("* batch.input_config.requests: no requests")
    return tuple(requests)


def result_line(item: BatchRequest, answer: Answer | wire.WireError) -> tuple[bytes, bool]:
    """(one result as JSON bytes, whether it is an error) for the answer to ``item``.

    A 200 answer becomes ``response``; an error answer or a rejected request (WireError)
    becomes ``error``; a 200 whose body is not JSON (:meth:`Outcome.bad_json`: a proxy page)
    has no batch equivalent and becomes an INTERNAL error.
    """
    head: dict[str, Any] = {}
    if item.key is not None:
        head["key"] = item.key
    if item.metadata is not None:
        head["metadata"] = item.metadata
    if isinstance(answer, Answer) and answer.code == 200:
        try:
            orjson.loads(answer.body)
        except orjson.JSONDecodeError:
            # Outcome.bad_json: a batch has no proxy page to send; the request failed inside.
            return orjson.dumps(head | {"error": {"code": 13, "message": "Internal error"}}), True
        # A Fragment embeds the answer's bytes as they are: the same JSON an online call gets.
        return orjson.dumps(head | {"response": orjson.Fragment(answer.body)}), False
    error = orjson.loads(answer.body).get("error", {})
    status = error.get("status", "UNKNOWN")
    rpc: dict[str, Any] = {"code": GRPC_CODES.get(status, 2), "message": error.get("message", "")}
    if error.get("details"):
        rpc["details"] = error["details"]
    return orjson.dumps(head | {"error": rpc}), True


def operation(batch: Batch, now: float) -> dict[str, Any]:
    """The batch resource (a long-running Operation) as of ``now``; its results must be made."""
    state, since = batch.state_at(now)
    count = len(batch.requests)
    stats: dict[str, str] = {"requestCount": str(count)}
    if state in ("PENDING", "RUNNING"):
        stats["pendingRequestCount"] = str(count)
    elif state == "SUCCEEDED":
        for name, value in (
            ("successfulRequestCount", count - batch.failures),
            ("failedRequestCount", batch.failures),
        ):
            if value:
                stats[name] = str(value)
    metadata: dict[str, Any] = {
        "@type": _BATCH_TYPE,
        "name": batch.name,
        "model": f"models/{batch.model}",
        "displayName": batch.display_name,
        "createTime": rfc3339(batch.create_time),
        "updateTime": rfc3339(since),
        "batchStats": stats,
        "state": f"BATCH_STATE_{state}",
    }
    if batch.input_file is not None:
        metadata["inputConfig"] = {"fileName": batch.input_file}
    body: dict[str, Any] = {"name": batch.name, "metadata": metadata}
    if state not in TERMINAL:
        return body
    metadata["endTime"] = rfc3339(since)
    body["done"] = True
    if state == "SUCCEEDED" and batch.results is not None:
        if batch.input_file is not None:
            output: dict[str, Any] = {"responsesFile": batch.results_file}
        else:
            fragments = [orjson.Fragment(line) for line in batch.results]
            output = {"inlinedResponses": {"inlinedResponses": fragments}}
        metadata["output"] = output
        body["response"] = {"@type": _OUTPUT_TYPE, **output}
    elif state == "FAILED":
        body["error"] = {"code": 13, "message": batch.outcome.message}
    return body

"""The journal's JSON: typed values <-> the dicts in the snapshot and the event log, validated.

Pure: dicts in, typed values out (and back); no files. Format 2 is the seed's schema (seed 003,
"Log Structure") plus fields; format 1 (journals written before the job model, combos only)
still loads: its jobs become combos jobs with the same labels, output folder and prompt.

A job in the snapshot is flat, as in the seed: the core fields, then the source's labels as
keys of their own (``prompt_file``, ``combo``, ... for combos). Prompt texts are stored once
per session in ``texts`` (key: the first 16 hex digits of the text's SHA-256) and a job lists
the keys of its parts, so a 5 MB catalog prompt sent with 40 combos is written once.

Anything a hand edit can break is checked here: a message names the file, the job and the
field, and says how to recover (the event log holds every change).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Final

from ..errors import InputError
from ..model import (
    BATCH_CHANGE_FIELDS,
    BATCH_STATES,
    ERROR_KINDS,
    JOB_UPDATE_FIELDS,
    JSON,
    SESSION_UPDATE_FIELDS,
    STATUSES,
    TIME_FIELD,
    Attempt,
    BatchChange,
    BatchRecord,
    Event,
    ImageMeta,
    Job,
    JobEvent,
    JobState,
    JobUpdate,
    Owner,
    SessionEvent,
    SessionState,
    SessionUpdate,
    UploadRecord,
    Usage,
)

FORMAT_VERSION: Final = 2

#: Keys of a job entry that are not source labels (format 2 and format 1).
PLAN_KEYS: Final = (
    "id",
    "source",
    "title",
    "group",
    "prompt_file",
    "prompt",
    "references",
    "target",
    "quality",
    "aspect",
    "model",
    "provider",
    "replace",
    "cost_group",
    "variants",
)
PROGRESS_KEYS: Final = (
    "status",
    "attempts",
    "output",
    "error",
    "error_kind",
    "started",
    "completed",
    "finish_reason",
    "usage",
    "cost_usd",
    "image",
    "resume",
    "kept",
    "delivery",
    "variant_outputs",
    "request_id",
    "model_version",
    "history",
)
CORE_KEYS: Final = frozenset(PLAN_KEYS) | frozenset(PROGRESS_KEYS)
HEADER_KEYS: Final = (
    "version",
    "session_id",
    "started",
    "updated",
    "state",
    "stop_reason",
    "parent",
    "children",
    "paused_until",
    "pause_reason",
    "owner",
    "config",
    "batches",
    "uploads",
    "texts",
    "jobs",
    "summary",
    "journal",
)
# Format-1 fields that became labels of the combos source.
_V1_LABELS = ("wardrobe", "ui_style", "combo", "catalog", "prompt_id", "short_id", "output_dir")


def text_key(text: str) -> str:
    """The key a prompt part is stored under: 16 hex digits of its SHA-256."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def jobs_digest(job_ids: Iterable[str]) -> str:
    """16 hex digits of the SHA-256 of the job ids in order; a snapshot stores it so a reader
    can tell, without parsing the event log's create line, that no job was removed by hand."""
    return hashlib.sha256("\n".join(job_ids).encode("utf-8")).hexdigest()[:16]


# -- jobs ----------------------------------------------------------------------------------


def encode_plan(job: Job, texts: dict[str, str]) -> dict[str, JSON]:
    """A job's planned fields as the snapshot keeps them; its prompt parts go into ``texts``."""
    keys = []
    for part in job.prompt_parts:
        key = text_key(part)
        texts.setdefault(key, part)
        keys.append(key)
    out: dict[str, JSON] = {
        "id": job.id,
        "source": job.source,
        "title": job.title,
        "prompt_file": job.prompt_file,
    }
    for name, value in job.labels:
        if name in CORE_KEYS:
            raise ValueError(f"label {name!r} of job {job.id} shadows a journal field")
        out[name] = value
    out.update(
        group=list(job.group),
        prompt=keys,
        references=list(job.references),
        target=job.target,
        quality=job.quality,
        aspect=job.aspect,
        model=job.model,
        provider=job.provider,
        replace=job.replace,
        variants=job.variants,
    )
    if job.cost_group is not None:  # absent otherwise: journals without caps stay as they were
        out["cost_group"] = job.cost_group
    return out


def encode_progress(js: JobState) -> dict[str, JSON]:
    """A job's progress fields (orjson writes the dataclasses inside as objects)."""
    return {
        "status": js.status,
        "attempts": js.attempts,
        "output": js.output,
        "error": js.error,
        "error_kind": js.error_kind,
        "started": js.started,
        "completed": js.completed,
        "finish_reason": js.finish_reason,
        "usage": js.usage,
        "cost_usd": js.cost_usd,
        "image": js.image,
        "resume": js.resume,
        "kept": js.kept,
        "delivery": js.delivery,
        "variant_outputs": js.variant_outputs,
        "request_id": js.request_id,
        "model_version": js.model_version,
        "history": js.history,
    }


class _Where:
    """Names the place a problem was found, for one-line messages."""

    def __init__(self, path: Path | str, fix: str) -> None:
        self.path, self.fix = str(path), fix

    def error(self, job_id: object, problem: str) -> InputError:
        who = f"job {job_id}: " if job_id is not None else ""
        return InputError(f"{self.path}: {who}{problem}; {self.fix}")


def _str(
    d: Mapping[str, Any], key: str, where: _Where, job_id: object, *, null: bool = False
) -> Any:
    value = d.get(key)
    if value is None and null:
        return None
    if not isinstance(value, str):
        raise where.error(job_id, f"field {key!r} must be text, not {value!r}")
    return value


def decode_job(d: Any, texts: Mapping[str, str], where: _Where) -> JobState:
    """A snapshot's job entry (format 1 or 2) as a JobState; InputError names what is wrong."""
    if not isinstance(d, dict):
        raise where.error(None, f"a job entry must be an object, not {str(d)[:40]!r}")
    job_id = d.get("id")
    if not isinstance(job_id, str) or not job_id:
        raise where.error(None, f"a job has no valid 'id' ({job_id!r})")
    job = _decode_plan(d, texts, where, job_id) if "source" in d else _decode_v1_plan(d, where)
    return _decode_progress(d, job, where)


_PLAN_TEXT: Final = ("source", "title", "prompt_file", "target", "quality", "aspect", "model")


def _decode_plan(d: dict[str, Any], texts: Mapping[str, str], where: _Where, job_id: str) -> Job:
    prompt = d.get("prompt")
    if not isinstance(prompt, list):
        raise where.error(job_id, "field 'prompt' must be a list of text keys")
    try:
        parts = tuple([texts[k] for k in prompt])
    except (KeyError, TypeError):
        bad = next(k for k in prompt if not isinstance(k, str) or k not in texts)
        if not isinstance(bad, str):
            raise where.error(job_id, "field 'prompt' must be a list of text keys") from None
        raise where.error(job_id, f"prompt part {bad!r} is not in 'texts'") from None
    group = d.get("group")
    if not (isinstance(group, list) and len(group) == 3 and all(isinstance(g, str) for g in group)):
        raise where.error(job_id, "field 'group' must be three texts (section, row, column)")
    refs = d.get("references")
    if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
        raise where.error(job_id, "field 'references' must be a list of paths")
    for key in _PLAN_TEXT:
        if not isinstance(d.get(key), str):
            _str(d, key, where, job_id)  # raises, naming the field
    extra = d.keys() - CORE_KEYS  # labels, kept in the order the source wrote them
    return Job(
        id=job_id,
        source=d["source"],
        title=d["title"],
        group=(group[0], group[1], group[2]),
        prompt_file=d["prompt_file"],
        prompt_parts=parts,
        references=tuple(refs),
        target=d["target"],
        quality=d["quality"],
        aspect=d["aspect"],
        model=d["model"],
        provider=_str(d, "provider", where, job_id),
        replace=bool(d.get("replace", False)),
        labels=tuple((k, v) for k, v in d.items() if k in extra) if extra else (),
        cost_group=_str(d, "cost_group", where, job_id, null=True),
        variants=_variants(d.get("variants", 1), where, job_id),
    )


def _variants(value: Any, where: _Where, job_id: str) -> int:
    if not isinstance(value, int) or not 1 <= value <= 4:
        raise where.error(job_id, f"variants must be a whole number from 1 to 4, not {value!r}")
    return value


def _decode_v1_plan(d: dict[str, Any], where: _Where) -> Job:
    job_id = d["id"]
    for key in ("prompt", "quality", "aspect", "model", "prompt_file", *_V1_LABELS):
        _str(d, key, where, job_id)
    refs = d.get("references")
    if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
        raise where.error(job_id, "field 'references' must be a list of paths")
    return Job(
        id=job_id,
        source="combos",
        title=f"{d['prompt_id']} + {d['combo']}",
        group=(f"{d['catalog']} · {d['ui_style']}", d["prompt_id"], d["combo"]),
        prompt_file=d["prompt_file"],
        prompt_parts=(d["prompt"],),
        references=tuple(refs),
        target=f"{d['output_dir']}/{TIME_FIELD}-{d['short_id']}-{{quality}}.png",
        quality=d["quality"],
        aspect=d["aspect"],
        model=d["model"],
        provider="gemini",
        labels=tuple((k, d[k]) for k in _V1_LABELS),
    )


def _decode_progress(d: dict[str, Any], job: Job, where: _Where) -> JobState:
    status = d.get("status")
    if status not in STATUSES:
        raise where.error(job.id, f"status {status!r} is not one of {', '.join(STATUSES)}")
    attempts = d.get("attempts", 0)
    if not isinstance(attempts, int) or attempts < 0:
        raise where.error(job.id, f"attempts must be a whole number >= 0, not {attempts!r}")
    history = d.get("history") or []
    if not isinstance(history, list):
        raise where.error(job.id, "field 'history' must be a list")
    # null is every progress field's default; text is checked here without a call.
    fields: dict[str, Any] = {}
    for key, check in _PROGRESS_CHECKS:
        value = d.get(key)
        if value is not None:
            fields[key] = (
                value
                if check is _check_text and type(value) is str
                else check(value, where, job.id, key)
            )
    return JobState(
        job=job,
        status=status,
        attempts=attempts,
        history=tuple([_decode_attempt(h, where, job.id) for h in history]),
        **fields,
    )


def _decode_attempt(h: Any, where: _Where, job_id: str) -> Attempt:
    if not isinstance(h, dict) or not isinstance(h.get("ended"), str):
        raise where.error(job_id, "a history entry must be an object with 'ended'")
    wait, cost = h.get("wait"), h.get("cost_usd")
    return Attempt(
        attempt=int(h.get("attempt") or 0),
        started=h.get("started"),
        ended=h["ended"],
        outcome=str(h.get("outcome") or ""),
        error=h.get("error"),
        wait=float(wait) if isinstance(wait, int | float) else None,
        output=h.get("output"),
        cost_usd=float(cost) if isinstance(cost, int | float) else None,
    )


_NULLABLE_TEXT = (
    "output",
    "error",
    "started",
    "completed",
    "finish_reason",
    "resume",
    "kept",
    "delivery",
    "request_id",
    "model_version",
)


def _decode_update(values: Mapping[str, Any], where: _Where, job_id: str) -> JobUpdate:
    """A ``set`` object of the event log as a typed JobUpdate."""
    return JobUpdate(**_decode_fields(values, where, job_id))


def _check_status(value: Any, where: _Where, job_id: str, key: str) -> Any:
    if value not in STATUSES:
        raise where.error(job_id, f"status {value!r} is not one of {', '.join(STATUSES)}")
    return value


def _check_attempts(value: Any, where: _Where, job_id: str, key: str) -> Any:
    if not isinstance(value, int) or value < 0:
        raise where.error(job_id, f"attempts must be a whole number >= 0, not {value!r}")
    return value


def _check_error_kind(value: Any, where: _Where, job_id: str, key: str) -> Any:
    if value is not None and value not in ERROR_KINDS:
        raise where.error(job_id, f"error_kind {value!r} is not one of {', '.join(ERROR_KINDS)}")
    return value


def _check_text(value: Any, where: _Where, job_id: str, key: str) -> Any:
    if value is not None and not isinstance(value, str):
        raise where.error(job_id, f"field {key!r} must be text or null, not {value!r}")
    return value


def _check_cost(value: Any, where: _Where, job_id: str, key: str) -> Any:
    if value is not None and not isinstance(value, int | float):
        raise where.error(job_id, f"cost_usd must be a number or null, not {value!r}")
    return None if value is None else float(value)


def _check_usage(value: Any, where: _Where, job_id: str, key: str) -> Any:
    return _decode_record(Usage, value, where, job_id, key)


def _check_image(value: Any, where: _Where, job_id: str, key: str) -> Any:
    return _decode_record(ImageMeta, value, where, job_id, key)


def _check_variants(value: Any, where: _Where, job_id: str, key: str) -> Any:
    if value is None:
        return ()
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise where.error(job_id, "variant_outputs must be a list of paths")
    return tuple(value)


_Check = Callable[[Any, _Where, str, str], Any]
#: Each field a job update may set, and how its JSON value is checked and typed.
_CHECKS: Final[dict[str, _Check]] = {
    "status": _check_status,
    "attempts": _check_attempts,
    "error_kind": _check_error_kind,
    "cost_usd": _check_cost,
    "usage": _check_usage,
    "image": _check_image,
    "variant_outputs": _check_variants,
    **{name: _check_text for name in _NULLABLE_TEXT},
}
assert set(_CHECKS) == set(JOB_UPDATE_FIELDS), set(JOB_UPDATE_FIELDS) ^ set(_CHECKS)
_PROGRESS_CHECKS: Final = tuple(
    (k, _CHECKS[k]) for k in PROGRESS_KEYS if k not in ("status", "attempts", "history")
)


def _decode_fields(values: Mapping[str, Any], where: _Where, job_id: str) -> dict[str, Any]:
    """Job fields from JSON, each checked (InputError names the job and field) and typed."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        check = _CHECKS.get(key)
        if check is None:
            raise where.error(job_id, f"unknown field {key!r}")
        # Most fields are text or null: checked here without a call.
        out[key] = (
            value
            if check is _check_text and (value is None or type(value) is str)
            else check(value, where, job_id, key)
        )
    return out


def _decode_record(cls: Any, value: Any, where: _Where, job_id: str, key: str) -> Any:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise where.error(job_id, f"field {key!r} must be an object or null")
    try:
        return cls(**value)  # the usual case: exactly the fields this version writes
    except TypeError:
        pass
    known = {k: v for k, v in value.items() if k in cls.__dataclass_fields__}
    try:
        return cls(**known)
    except TypeError as exc:
        raise where.error(job_id, f"field {key!r} is incomplete ({exc})") from exc


# -- events --------------------------------------------------------------------------------


def encode_job_event(event: JobEvent) -> dict[str, JSON]:
    out: dict[str, JSON] = {
        "seq": event.seq,
        "at": event.at,
        "job": event.job_id,
        "set": event.update.changes(),
    }
    if event.attempt is not None:
        out["history"] = event.attempt
    return out


def encode_session_event(event: SessionEvent) -> dict[str, JSON]:
    changes = event.update.changes()
    if isinstance(batch := changes.get("batch"), BatchChange):
        changes["batch"] = batch.changes()
    return {"seq": event.seq, "at": event.at, "session": changes}


def decode_event(d: Any, where: _Where) -> Event:
    """A change line of the event log as a typed event (the create line is handled apart)."""
    if not isinstance(d, dict) or not isinstance(d.get("seq"), int) or "at" not in d:
        raise where.error(None, "a line is not an event (no seq/at)")
    if "job" in d:
        job_id = d["job"]
        update = _decode_update(d.get("set") or {}, where, job_id)
        attempt = _decode_attempt(d["history"], where, job_id) if d.get("history") else None
        return JobEvent(d["seq"], str(d["at"]), str(job_id), update, attempt)
    if "session" in d:
        return SessionEvent(d["seq"], str(d["at"]), _decode_session_update(d["session"], where))
    raise where.error(None, f"event {d['seq']} is neither a job nor a session change")


def _decode_session_update(values: Any, where: _Where) -> SessionUpdate:
    if not isinstance(values, dict):
        raise where.error(None, "a session change must be an object")
    fields: dict[str, Any] = {}
    for key, value in values.items():
        if key not in SESSION_UPDATE_FIELDS:
            continue  # a field of a newer or older version: nothing this one folds
        if key == "children":
            value = tuple(str(c) for c in value or ())
        elif key == "owner":
            value = _decode_owner(value)
        elif key == "batch":
            value = _decode_batch_change(value, where)
        elif key == "upload":
            value = _decode_upload(value, where)
        fields[key] = value
    return SessionUpdate(**fields)


# -- batches and uploads (issue 15) ---------------------------------------------------------

_BATCH_TEXT = ("display_name", "model", "state")
_BATCH_NULLABLE = ("name", "input_file", "results_file", "created", "last_poll", "error")


def _decode_batch_change(value: Any, where: _Where) -> BatchChange:
    """A batch change (or a whole record) as typed fields; InputError names the shard."""
    if not isinstance(value, dict) or not isinstance(value.get("shard"), int):
        raise where.error(None, "a batch entry must be an object with a whole-number 'shard'")
    shard = value["shard"]

    def bad(problem: str) -> InputError:
        return where.error(None, f"batch shard {shard}: {problem}")

    fields: dict[str, Any] = {}
    for key, item in value.items():
        if key not in BATCH_CHANGE_FIELDS:
            continue  # a field of a newer version
        if key in _BATCH_TEXT and not isinstance(item, str):
            raise bad(f"field {key!r} must be text, not {item!r}")
        if key == "state" and item not in BATCH_STATES:
            raise bad(f"state {item!r} is not one of {', '.join(BATCH_STATES)}")
        if key in _BATCH_NULLABLE and item is not None and not isinstance(item, str):
            raise bad(f"field {key!r} must be text or null, not {item!r}")
        if key == "polls" and (not isinstance(item, int) or item < 0):
            raise bad(f"polls must be a whole number >= 0, not {item!r}")
        if key == "job_ids":
            if not isinstance(item, list) or not all(isinstance(j, str) for j in item):
                raise bad("field 'job_ids' must be a list of job ids")
            item = tuple(item)
        fields[key] = item
    return BatchChange(**fields)


def _decode_upload(value: Any, where: _Where) -> UploadRecord:
    if not isinstance(value, dict):
        raise where.error(None, "an upload entry must be an object")
    for key in ("digest", "name", "uri", "mime_type"):
        if not isinstance(value.get(key), str) or not value[key]:
            raise where.error(None, f"an upload entry's {key!r} must be text")
    size = value.get("size")
    if not isinstance(size, int) or size < 0:
        raise where.error(None, f"upload {value['name']}: size must be a whole number of bytes")
    return UploadRecord(
        value["digest"],
        value["name"],
        value["uri"],
        value["mime_type"],
        size,
        value.get("expires") if isinstance(value.get("expires"), str) else None,
        value.get("uploaded") if isinstance(value.get("uploaded"), str) else None,
    )


def _decode_batches(
    raw: Any, where: _Where, jobs: Mapping[str, JobState]
) -> dict[int, BatchRecord]:
    if raw is None:
        return {}
    if not isinstance(raw, list):
        raise where.error(None, "field 'batches' must be a list")
    out: dict[int, BatchRecord] = {}
    for item in raw:
        change = _decode_batch_change(item, where)
        if change.shard in out:
            raise where.error(None, f"batch shard {change.shard} appears twice")
        try:
            record = change.apply(None)
        except TypeError as exc:
            raise where.error(None, f"batch shard {change.shard} is incomplete ({exc})") from exc
        unknown = [j for j in record.job_ids if j not in jobs]
        if unknown:
            raise where.error(
                unknown[0], f"is in batch shard {record.shard} but not in the session"
            )
        out[record.shard] = record
    return out


def _decode_uploads(raw: Any, where: _Where) -> dict[str, UploadRecord]:
    if raw is None:
        return {}
    if not isinstance(raw, list):
        raise where.error(None, "field 'uploads' must be a list")
    records = [_decode_upload(item, where) for item in raw]
    return {r.digest: r for r in records}


def _decode_owner(value: Any) -> Owner | None:
    if not isinstance(value, dict) or not isinstance(value.get("pid"), int):
        return None
    start = value.get("process_start")
    return Owner(
        value["pid"],
        str(value.get("host") or ""),
        str(value.get("since") or ""),
        start if isinstance(start, int) else None,
    )


# -- the whole session ----------------------------------------------------------------------


def encode_header(state: SessionState) -> dict[str, JSON]:
    """The snapshot's fields before ``texts`` and ``jobs``, in the seed's order."""
    out: dict[str, JSON] = {
        "version": FORMAT_VERSION,
        "session_id": state.session_id,
        "started": state.started,
        "updated": state.updated,
        "state": state.state,
        "stop_reason": state.stop_reason,
        "parent": state.parent,
        "children": list(state.children),
        "paused_until": state.paused_until,
        "pause_reason": state.pause_reason,
        "owner": state.owner,
        "config": state.config,
    }
    if state.batches or state.uploads:  # a batch session (issue 15); absent otherwise
        out["batches"] = list(state.batches.values())
        out["uploads"] = list(state.uploads.values())
    out.update(state.extra)
    return out


def encode_session(state: SessionState) -> dict[str, JSON]:
    """The whole session as the snapshot holds it (without the log bookkeeping)."""
    texts: dict[str, str] = {}
    doc = encode_header(state)
    jobs = [encode_plan(js.job, texts) | encode_progress(js) for js in state.jobs.values()]
    doc["texts"] = texts
    doc["jobs"] = jobs
    doc["summary"] = state.summary().as_dict()
    return doc


def decode_session(d: Any, where_path: Path | str, fix: str) -> SessionState:
    """A snapshot (or the create line's document) as a SessionState; InputError if invalid.

    Raises InputError for a newer format, a missing field, a job that does not validate,
    a duplicate job id, or a ``summary.total`` that disagrees with the jobs listed (jobs
    removed by hand).
    """
    where = _Where(where_path, fix)
    if not isinstance(d, dict):
        raise where.error(None, "not a session document")
    version = d.get("version", 1)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise InputError(f"{where_path}: written by a newer imagegen (format {version}); upgrade")
    for key in ("session_id", "started"):
        if not isinstance(d.get(key), str):
            raise where.error(None, f"field {key!r} is missing")
    texts = d.get("texts") or {}
    if not isinstance(texts, dict):
        raise where.error(None, "field 'texts' must be an object")
    raw_jobs = d.get("jobs")
    if not isinstance(raw_jobs, list):
        raise where.error(None, "field 'jobs' must be a list")
    jobs: dict[str, JobState] = {}
    for raw in raw_jobs:
        js = decode_job(raw, texts, where)
        if js.id in jobs:
            raise where.error(js.id, "the id appears twice")
        jobs[js.id] = js
    total = (d.get("summary") or {}).get("total") if isinstance(d.get("summary"), dict) else None
    if isinstance(total, int) and total != len(jobs):
        raise where.error(
            None, f"summary.total is {total} but {len(jobs)} jobs are listed (jobs removed?)"
        )
    config = d.get("config") or {}
    if not isinstance(config, dict):
        raise where.error(None, "field 'config' must be an object")
    if version < 2:
        config = _v1_config(config)
    return SessionState(
        version=version,
        session_id=d["session_id"],
        started=d["started"],
        updated=str(d.get("updated") or d["started"]),
        config=config,
        jobs=jobs,
        state=str(d.get("state") or "new"),
        stop_reason=d.get("stop_reason"),
        parent=d.get("parent"),
        children=tuple(str(c) for c in d.get("children") or ()),
        paused_until=d.get("paused_until"),
        pause_reason=d.get("pause_reason"),
        owner=_decode_owner(d.get("owner")),
        seq=int((d.get("journal") or {}).get("seq", 0)),
        extra={k: v for k, v in d.items() if k not in HEADER_KEYS},
        batches=_decode_batches(d.get("batches"), where, jobs),
        uploads=_decode_uploads(d.get("uploads"), where),
    )


def _v1_config(config: dict[str, Any]) -> dict[str, Any]:
    """A format-1 config (combos only) with the fields format 2 adds."""
    catalogs = config.get("catalogs") or []
    listed = ", ".join(catalogs) if isinstance(catalogs, list) else str(catalogs)
    ui = config.get("ui_style") or "all"
    return {
        "source": "combos",
        "provider": "gemini",
        "header": [
            f"Wardrobe: {config.get('wardrobe')} | UI: {ui} | Quality: {config.get('quality')}",
            f"Catalogs: {listed}",
        ],
        "facts": [
            ["wardrobe", str(config.get("wardrobe"))],
            ["UI style", str(ui)],
            ["catalogs", listed],
        ],
        **config,
    }


def where(path: Path | str, fix: str) -> _Where:
    """A place for :func:`decode_event` messages: the file and how to recover."""
    return _Where(path, fix)

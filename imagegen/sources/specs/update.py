"""Recording a saved image in its spec file, in place (seed 004, "YAML update strategy").

A chapter image gets ``generated_at``, ``file_name``, ``file_path``, ``provider``, ``model`` and
``provider_metadata``; a location overview or part gets one mapping with those fields appended
to ``generated_images``. ``provider_metadata`` holds ``request_id``, ``model_version``,
``prompt_sha256`` (of the prompt sent), ``image_sha256`` (of the saved bytes) and ``cost_usd``.

Each update, under a lock file next to the spec (``.{name}.lock``, filelock), re-reads the file
as it is on disk *now*, finds the item by its id, and:

- returns ``already recorded`` when the item already holds this result (same ``file_path`` and
  ``image_sha256``): a resume that re-applies a result never duplicates an entry;
- returns ``stale: item removed`` / ``stale: prompt changed`` when the item is gone or its
  prompt fields no longer match the task's fingerprint, and ``stale: recorded meanwhile`` when
  a chapter image's output fields changed since planning (a result written by hand or by
  another run: never overwritten, unless it is one the caller itself recorded earlier for
  this item, ``replaces``: a retry; a location item's list only grows, so nothing is lost by
  appending to it): nothing is written, the caller keeps the image and reports it;
- otherwise changes only those fields (:mod:`.yamlfile` keeps every other line as written) and
  replaces the file atomically: a temporary file in the same folder, fsync, rename, fsync of
  the folder. A crash leaves the old file or the new one (and perhaps a ``.{name}.*.tmp``).

Blocking file I/O: call it from a worker thread (``anyio.to_thread.run_sync``).
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

import filelock
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from .edits import append_entry, set_field
from .errors import SpecError
from .plan import Task
from .schema import OUTPUT_FIELDS, Kind, fingerprint, locate, prompt_fields
from .yamlfile import is_null, parse, plain, render

#: Seconds to wait for another writer of the same spec file before giving up.
LOCK_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class ImageResult:
    """A saved image, as written into its spec. ``file_path`` is relative to ROOT with ``/``;
    ``generated_at`` must carry a time zone (written as UTC, whole seconds)."""

    file_path: str
    generated_at: datetime
    provider: str
    model: str
    image_sha256: str
    prompt_sha256: str
    request_id: str | None = None
    model_version: str | None = None
    cost_usd: float | None = None

    @classmethod
    def of(
        cls,
        task: Task,
        image: bytes,
        *,
        provider: str,
        model: str,
        generated_at: datetime,
        request_id: str | None = None,
        model_version: str | None = None,
        cost_usd: float | None = None,
        file_path: str | None = None,
    ) -> ImageResult:
        """The result of ``task`` saved as ``image`` (at ``task.output`` unless ``file_path``)."""
        return cls(
            file_path=file_path or task.output,
            generated_at=generated_at,
            provider=provider,
            model=model,
            image_sha256=hashlib.sha256(image).hexdigest(),
            prompt_sha256=task.prompt_sha256,
            request_id=request_id,
            model_version=model_version,
            cost_usd=cost_usd,
        )

    def fields(self) -> dict[str, Any]:
        """The output fields in the order they are written."""
        if self.generated_at.tzinfo is None:
            raise ValueError("generated_at needs a time zone (use datetime.now(UTC))")
        metadata = CommentedMap()
        metadata["request_id"] = self.request_id
        metadata["model_version"] = self.model_version
        metadata["prompt_sha256"] = self.prompt_sha256
        metadata["image_sha256"] = self.image_sha256
        metadata["cost_usd"] = None if self.cost_usd is None else round(self.cost_usd, 6)
        return {
            "generated_at": f"{self.generated_at.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}",
            "file_name": PurePosixPath(self.file_path).name,
            "file_path": self.file_path,
            "provider": self.provider,
            "model": self.model,
            "provider_metadata": metadata,
        }


class Outcome(StrEnum):
    WRITTEN = "written"
    ALREADY = "already recorded"
    STALE_REMOVED = "stale: item removed"
    STALE_CHANGED = "stale: prompt changed"
    STALE_RECORDED = "stale: recorded meanwhile"


class Recordable(Protocol):
    """What :func:`record_result` needs of a task: a :class:`~.plan.Task`, or an
    :class:`ItemRef` rebuilt from a journal."""

    @property
    def id(self) -> str: ...
    @property
    def kind(self) -> Kind: ...
    @property
    def file(self) -> Path: ...
    @property
    def item_id(self) -> str: ...
    @property
    def fingerprint(self) -> str: ...
    @property
    def output_fingerprint(self) -> str: ...


@dataclass(frozen=True, slots=True)
class ItemRef:
    """A planned item, as much of it as recording a result needs: the task id, the item's
    kind, file and id, and its prompt and output fingerprints at planning (the output one is
    a chapter image's; an empty one is not checked)."""

    id: str
    kind: Kind
    file: Path
    item_id: str
    fingerprint: str
    output_fingerprint: str = ""


@dataclass(frozen=True, slots=True)
class Update:
    """What :func:`record_result` did. ``reformatted``: lines other than the output fields
    were rewritten in ruamel's style (only when the merge of :mod:`.yamlfile` could not keep
    them); ``detail`` is one line for the report."""

    outcome: Outcome
    task_id: str
    file: Path
    detail: str = ""
    reformatted: bool = False

    @property
    def recorded(self) -> bool:
        """The spec now records the image (written now or before)."""
        return self.outcome in (Outcome.WRITTEN, Outcome.ALREADY)


def record_result(
    task: Recordable,
    result: ImageResult,
    *,
    timeout: float = LOCK_TIMEOUT,
    replaces: Collection[str] = (),
) -> Update:
    """Write ``result`` into ``task``'s item, re-reading the file first (module docstring).

    ``replaces`` are the ``file_path`` values of results the caller recorded for this item
    before (relative to ROOT): a chapter image holding one of them takes the new result.

    Returns an :class:`Update`; raises SpecError when the file no longer parses or the lock
    is held longer than ``timeout`` seconds, and OSError when it cannot be written. In every
    failing case the file is unchanged.
    """
    fields = result.fields()  # a bad result fails before the lock is taken
    file = task.file
    lock = filelock.FileLock(str(lock_path(file)), timeout=timeout)
    try:
        lock.acquire()
    except filelock.Timeout as exc:
        raise SpecError(
            f"{file}: another writer held {lock_path(file).name} for {timeout:g} s; is another "
            "run updating this spec? The image is kept; run again to record it"
        ) from exc
    try:
        return _record(task, result, fields, frozenset(replaces))
    finally:
        lock.release()


def lock_path(file: Path) -> Path:
    """The lock file that serialises writers of ``file``: ``.{name}.lock`` beside it."""
    return file.with_name(f".{file.name}.lock")


def _record(
    task: Recordable, result: ImageResult, fields: dict[str, Any], replaces: frozenset[str]
) -> Update:
    file = task.file
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        return Update(Outcome.STALE_REMOVED, task.id, file, f"{file} no longer exists")
    doc = parse(raw, file)
    node = locate(doc.data, task.kind, task.item_id, file)
    if node is None:
        return Update(
            Outcome.STALE_REMOVED, task.id, file, f"{task.item_id!r} is no longer in {file}"
        )
    if _holds(node, task, result):
        return Update(Outcome.ALREADY, task.id, file, f"{result.file_path} already recorded")
    if fingerprint(node, prompt_fields(task.kind)) != task.fingerprint:
        return Update(
            Outcome.STALE_CHANGED,
            task.id,
            file,
            f"the prompt fields of {task.item_id!r} changed after planning; "
            f"{result.file_path} was made from the old ones",
        )
    recorded = task.output_fingerprint
    if (
        task.kind == "chapter"
        and recorded
        and fingerprint(node, OUTPUT_FIELDS) != recorded
        and plain(node.get("file_path")) not in replaces
    ):
        return Update(
            Outcome.STALE_RECORDED,
            task.id,
            file,
            f"{task.item_id!r} was given a result after planning (by hand or another run); "
            f"{result.file_path} is not recorded over it",
        )
    if task.kind == "chapter":
        for key, value in fields.items():
            set_field(node, key, value)
    else:
        listed = node.get("generated_images")
        if not is_null(listed) and not isinstance(listed, CommentedSeq):
            raise SpecError(
                f"{file}: {task.item_id!r}, field generated_images: is no longer a list; "
                "make it [] or a list, then run again (the image is kept)"
            )
        entry = CommentedMap()
        entry.update(fields)
        append_entry(node, "generated_images", entry)
    rendered = render(doc)
    write_atomic(file, rendered.data)
    return Update(Outcome.WRITTEN, task.id, file, reformatted=rendered.reformatted)


def _holds(node: CommentedMap, task: Recordable, result: ImageResult) -> bool:
    if task.kind == "chapter":
        records = [node]
    else:
        entries = node.get("generated_images")
        records = [e for e in entries if isinstance(e, CommentedMap)] if entries else []
    for record in records:
        metadata = record.get("provider_metadata")
        if (
            plain(record.get("file_path")) == result.file_path
            and isinstance(metadata, CommentedMap)
            and not is_null(metadata.get("image_sha256"))
            and plain(metadata.get("image_sha256")) == result.image_sha256
        ):
            return True
    return False


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: temporary file beside it, fsync, rename, fsync the folder.

    The file keeps its permission bits; a symbolic link is followed (the target is replaced).
    On any error the temporary file is removed and ``path`` is unchanged.
    """
    target = path.resolve()
    try:
        mode: int | None = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        mode = None
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            Path(tmp).chmod(mode)
        Path(tmp).replace(target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)


def _fsync_dir(folder: Path) -> None:
    # The rename is durable only once the directory entry is on disk (POSIX); some file
    # systems refuse to open a directory for this, which costs durability, not correctness.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

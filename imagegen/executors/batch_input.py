"""The input side of a batch: its jobs' reference images resolved, their lines on disk.

Each distinct reference path is resolved once: uploaded to the provider's file store and sent
by URI (:class:`~.uploads.ReferenceUploads`: once per distinct content, journaled, alive for
the batch's whole deadline), or read and sent inline where that is smaller (or with
``--inline-references``). Then one JSONL line per job, keyed by its id, is written shard by
shard within :class:`~.batch_plan.ShardLimits`: a worker thread writes the lines one at a
time, so memory does not grow with the session.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import anyio

from ..journal import Journal, now_iso
from ..model import Job, JobUpdate, UploadRecord
from ..providers.base import ImageRequest, Reference
from ..providers.batch import BatchService
from ..references import ReferenceCache
from .batch_plan import ShardLimits, Shards
from .uploads import ReferenceUploads, reference_header


@dataclass(frozen=True, slots=True)
class ShardFile:
    """A shard's input file on disk: its number, the job ids in it (in line order), bytes."""

    shard: int
    path: Path
    job_ids: tuple[str, ...]
    size: int
    model: str


def shard_path(work_dir: Path, shard: int) -> Path:
    return work_dir / f"shard-{shard:03d}.jsonl"


class BatchInput:
    """Resolves references and writes input lines for a batch executor.

    ``uploads`` None sends every reference inline; ``min_life`` is the seconds an uploaded
    reference must still live (the batch's deadline and a margin); ``retrying`` runs an
    upload under the retry policy.
    """

    def __init__(
        self,
        journal: Journal,
        service: BatchService,
        limits: ShardLimits,
        work_dir: Path,
        *,
        uploads: ReferenceUploads | None,
        min_life: float,
        retrying: Callable[[Callable[[], Awaitable[Any]]], Awaitable[Any]],
        references: ReferenceCache | None = None,
    ) -> None:
        self.journal = journal
        self.service = service
        self.limits = limits
        self.work_dir = work_dir
        self.uploads = uploads
        self.min_life = min_life
        self.retrying = retrying
        self.references = references or ReferenceCache()

    async def resolve(self, ids: Sequence[str]) -> dict[str, Reference]:
        """Each distinct reference path of the jobs ``ids``, by URI or inline. A job whose
        reference cannot be read fails now, as online (``reference_unreadable``). Raises
        ProviderError when an upload fails for good."""
        paths: dict[str, list[str]] = {}
        for job_id in ids:
            for path in self.journal.job(job_id).job.references:
                paths.setdefault(path, []).append(job_id)
        refs: dict[str, Reference] = {}
        for path, users in paths.items():
            try:
                refs[path] = await self._reference(path)
            except (OSError, ValueError) as exc:
                await self._fail_unreadable(users, f"reference image unreadable: {exc}")
        return refs

    async def _reference(self, path: str) -> Reference:
        record: UploadRecord | None = None
        if self.uploads is not None:
            role, mime = await anyio.to_thread.run_sync(reference_header, path)
            uploads, life = self.uploads, self.min_life
            record = await self.retrying(
                lambda: uploads.resolve(path, mime, min_life=life, verify=True)
            )
            if record is not None:
                return Reference(role, record.mime_type, b"", path=path, uri=record.uri)
        (inline,) = await anyio.to_thread.run_sync(self.references.load, [path])
        return inline

    async def _fail_unreadable(self, job_ids: list[str], error: str) -> None:
        await self.journal.update_many(
            (
                job_id,
                JobUpdate(
                    status="failed",
                    error=error,
                    error_kind="reference_unreadable",
                    completed=now_iso(),
                ),
                None,
            )
            for job_id in job_ids
            if self.journal.job(job_id).status in ("pending", "retry", "submitted")
        )

    def write(
        self, ids: Sequence[str], refs: dict[str, Reference], model: str, first: int
    ) -> list[ShardFile]:
        """Write the lines of ``ids`` (blocking: a worker thread) into shard files numbered
        from ``first``, cut at the limits; returns them in order. A job missing a reference
        in ``refs`` (it failed unreadable) is left out. Raises ValueError for a line over the
        byte limit on its own, OSError if the folder cannot be written."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        shards: list[ShardFile] = []
        cut = Shards(self.limits)
        number = first
        members: list[str] = []
        sink: IO[bytes] | None = None
        try:
            for job_id in ids:
                job = self.journal.job(job_id).job
                if any(p not in refs for p in job.references):
                    continue
                line = self.service.request_line(job_id, request(job, refs)) + b"\n"
                if sink is not None and not cut.fits(len(line)):
                    sink.close()
                    sink = None
                    shards.append(_shard(self.work_dir, number, members, cut.bytes, model))
                    number, members = number + 1, []
                    cut.start()
                if sink is None:
                    cut.fits(len(line))  # raises for a line that can never fit
                    sink = shard_path(self.work_dir, number).open("wb")
                sink.write(line)
                cut.add(len(line))
                members.append(job_id)
            if sink is not None:
                sink.close()
                sink = None
                shards.append(_shard(self.work_dir, number, members, cut.bytes, model))
        finally:
            if sink is not None:
                sink.close()
        return shards


def _shard(work_dir: Path, number: int, members: list[str], size: int, model: str) -> ShardFile:
    return ShardFile(number, shard_path(work_dir, number), tuple(members), size, model)


def request(job: Job, refs: dict[str, Reference]) -> ImageRequest:
    """The request a job's line asks for (the timeout is the service's business)."""
    return ImageRequest(
        job.model,
        job.prompt,
        tuple(refs[p] for p in job.references),
        job.quality,
        job.aspect,
        0.0,
    )

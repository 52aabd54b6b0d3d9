"""Where a paid image goes: its file name, its durable save, and the spool when it cannot go.

Names. A job's ``target`` (the source's choice) is rendered when an attempt starts (``{time}``,
``{quality}``), cut to fit the file system's name limit (with a short hash so that two long
names stay distinct), and made unique within the process; ``-2``, ``-3`` are added at save time
if another process took the name meanwhile. A file is never overwritten; a job planned with
``replace`` moves the old file aside (``NAME.replaced-TIME.png``) first.

Saving. The bytes (always PNG) go to a temporary file in the destination folder named after the
session, job and attempt (``.imagegen-SESSION-JOB-aN.tmp``), fsynced, then hard-linked to the
final name and the folder fsynced. The temporary file stays until the journal says the job is
completed: after a crash it is the proof that an image was paid for and is whole, so resume
adopts it without a call (:meth:`Outputs.adopt`). Nothing else in the folder is ever adopted.

The spool. When the destination cannot be written (a full disk, a read-only folder, a file
where a folder should be), the bytes are kept in ``{sessions}/{session}-kept/`` (else the
system's temporary folder) and the journal says where; resume places them without a call.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from PIL import Image

from .files import fsync_dir, write_atomic
from .images import ImageInfo, probe, sniff
from .model import QUALITY_FIELD, TIME_FIELD, Job

#: Bytes kept free in a name for the ``-NNN`` a collision adds.
_SUFFIX_ROOM = 4
_DEFAULT_NAME_MAX = 255


@dataclass(frozen=True, slots=True)
class Placement:
    """A saved image: its final path, what it is, and where a replaced file was moved."""

    path: Path
    info: ImageInfo
    aside: Path | None = None


class StorageError(Exception):
    """The destination cannot be written; ``path`` is where the image should have gone and
    ``cause`` the OS's words ("No space left on device", "Read-only file system", ...)."""

    def __init__(self, path: Path, cause: str) -> None:
        super().__init__(f"cannot write {path}: {cause}")
        self.path = path
        self.cause = cause


def name_max(folder: Path) -> int:
    """The longest file name, in bytes, the file system of ``folder`` (or its nearest
    existing parent) allows; 255 where it cannot be asked."""
    probe_dir = folder
    while not probe_dir.exists() and probe_dir != probe_dir.parent:
        probe_dir = probe_dir.parent
    try:
        return int(os.pathconf(probe_dir, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return _DEFAULT_NAME_MAX


def fit_name(name: str, limit: int) -> str:
    """``name`` cut to at most ``limit`` bytes (UTF-8), keeping its extension; a cut name
    ends with ``~`` and 8 hex digits of the whole name's SHA-1, so distinct names stay so."""
    if len(os.fsencode(name)) <= limit:
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    tail = "~" + hashlib.sha1(name.encode("utf-8")).hexdigest()[:8] + (f".{ext}" if ext else "")
    room = limit - len(os.fsencode(tail))
    cut = stem
    while cut and len(os.fsencode(cut)) > room:
        cut = cut[:-1]
    return cut + tail


def render_target(job: Job, when: datetime) -> Path:
    """The job's target with ``{time}`` and ``{quality}`` filled, its name fitted."""
    text = job.target.replace(TIME_FIELD, f"{when:%Y-%m-%d-%H-%M-%S}").replace(
        QUALITY_FIELD, job.quality
    )
    path = Path(text)
    return path.with_name(fit_name(path.name, name_max(path.parent) - _SUFFIX_ROOM))


def _numbered(path: Path, n: int) -> Path:
    return path if n == 1 else path.with_name(f"{path.stem}-{n}{path.suffix}")


def to_png(data: bytes, info: ImageInfo) -> bytes:
    """The image as PNG: bytes unchanged if already PNG, else decoded and re-encoded losslessly.

    Outputs are always ``.png`` (seed 003 layout), whatever format the provider sent.
    """
    if info.format == "PNG":
        return data
    with Image.open(io.BytesIO(data)) as img:
        out = io.BytesIO()
        img.save(out, format="PNG")
        return out.getvalue()


#: Free-space readings are trusted this long (seconds) before a call reads them again.
SPACE_TTL = 1.0


def bytes_bound(size: tuple[int, int] | None) -> int:
    """An upper bound of one image file's bytes: its raw RGB pixels (a PNG is smaller), or
    a 4K square's when the provider promises no size."""
    width, height = size or (4096, 4096)
    return width * height * 3


class Outputs:
    """Names, saves, adopts and spools the images of one session (``session_id``)."""

    def __init__(
        self,
        session_id: str,
        spool_dir: Path,
        *,
        fsync: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.session_id = session_id
        self.spool_dir = spool_dir
        self.fsync = fsync
        self._claimed: set[Path] = set()
        self._clock = clock
        self._ready: set[Path] = set()
        self._space: dict[Path, tuple[float, int]] = {}  # folder -> (read at, free bytes)

    def needs_check(self, folder: Path, need: int) -> bool:
        """True unless ``folder`` was checked and its free space read recently with room for
        ``need`` bytes (no system call)."""
        if folder not in self._ready:
            return True
        read = self._space.get(folder)
        return read is None or self._clock() - read[0] > SPACE_TTL or read[1] < 2 * need

    def check(self, folder: Path, need: int) -> None:
        """Make ``folder`` and check it can take an image of ``need`` bytes (blocking).

        Raises StorageError naming the cause: a file where a folder should be, a read-only
        file system, no permission, or less free space than the image needs.
        """
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(folder, _cause(exc, folder / "x")) from exc
        if not os.access(folder, os.W_OK):
            read_only = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
            raise StorageError(
                folder, "read-only file system" if read_only else "permission denied"
            )
        free = shutil.disk_usage(folder).free
        self._space[folder] = (self._clock(), free)
        if free < need:
            raise StorageError(
                folder, f"only {free / 1e6:.1f} MB free, an image needs up to {need / 1e6:.1f} MB"
            )
        self._ready.add(folder)

    def temp_path(self, planned: Path, job_id: str, attempt: int) -> Path:
        """The temporary file an attempt's image is written to, beside its final name."""
        return planned.with_name(self.temp_name(job_id, attempt))

    def temp_name(self, job_id: str, attempt: int) -> str:
        """The name (no folder) of :meth:`temp_path`."""
        return f".imagegen-{self.session_id}-{job_id}-a{attempt}.tmp"

    def plan(self, job: Job, when: datetime, variant: int = 1) -> Path:
        """The final path an attempt starting at ``when`` aims for (``NAME-vK.png`` for the
        K-th of several variants); unique in this process. Touches no file."""
        base = render_target(job, when)
        if job.variants > 1:
            base = base.with_name(f"{base.stem}-v{variant}{base.suffix}")
        if job.replace:
            return base
        n = 1
        while _numbered(base, n) in self._claimed:
            n += 1
        path = _numbered(base, n)
        self._claimed.add(path)
        return path

    def release(self, path: Path | None) -> None:
        """Forget a planned name once its attempt has ended."""
        if path is not None:
            self._claimed.discard(path)

    # -- blocking: run these in a worker thread ---------------------------------------------

    def save(self, job: Job, job_id: str, attempt: int, planned: Path, data: bytes) -> Placement:
        """Write ``data`` (checked whole by the provider) durably at ``planned`` (or the next
        free ``-N`` name); returns where it went. Raises StorageError if it cannot."""
        info = probe(data)
        png = to_png(data, info)
        if info.format != "PNG":  # what the file is, not what the provider sent
            info = ImageInfo("PNG", "image/png", info.width, info.height)
        tmp = self.temp_path(planned, job_id, attempt)
        try:
            planned.parent.mkdir(parents=True, exist_ok=True)
            with tmp.open("wb") as fh:
                fh.write(png)
                fh.flush()
                if self.fsync:
                    os.fsync(fh.fileno())
            placement = self._link(job, tmp, planned, info)
            if self.fsync:
                fsync_dir(planned.parent)
        except OSError as exc:
            _unlink_quietly(tmp)
            raise StorageError(planned, _cause(exc, planned)) from exc
        return placement

    def _link(self, job: Job, tmp: Path, planned: Path, info: ImageInfo) -> Placement:
        if job.replace:
            aside = None
            if planned.exists() or planned.is_symlink():
                aside = self._free(
                    planned.with_name(
                        f"{planned.stem}.replaced-{datetime.now():%Y-%m-%d-%H-%M-%S}"
                        f"{planned.suffix}"
                    )
                )
                os.link(planned, aside)
            staged = tmp.with_name(tmp.name + ".new")
            os.link(tmp, staged)
            staged.replace(planned)  # atomic: the old file is already kept aside
            return Placement(planned, info, aside)
        for n in range(1, 10_000):
            candidate = _numbered(planned, n)
            try:
                os.link(tmp, candidate)
            except FileExistsError:
                continue  # taken by another process since planning: the next name
            return Placement(candidate, info)
        raise FileExistsError(errno.EEXIST, "no free name", str(planned))

    @staticmethod
    def _free(path: Path) -> Path:
        n = 1
        while _numbered(path, n).exists():
            n += 1
        return _numbered(path, n)

    def discard_temp(self, planned: Path, job_id: str, attempt: int) -> None:
        """Remove an attempt's temporary file once the journal records its image."""
        _unlink_quietly(self.temp_path(planned, job_id, attempt))

    def adopt(self, job: Job, job_id: str, attempt: int, planned: Path) -> Placement | None:
        """After a crash: the image an attempt paid for and wrote, if it is whole.

        Looks for the attempt's temporary file: if the final name already links to it, that
        is the image; otherwise it is linked now. A temporary file that is not a whole image
        is removed and None returned (the job runs again). Raises StorageError if the link
        cannot be made.
        """
        tmp = self.temp_path(planned, job_id, attempt)
        if not tmp.is_file():
            return None
        try:
            info = sniff(tmp.read_bytes())
        except (OSError, ValueError):
            _unlink_quietly(tmp)
            return None
        for candidate in _siblings_of(tmp):
            return Placement(candidate, info)
        try:
            placement = self._link(job, tmp, planned, info)
            if self.fsync:
                fsync_dir(planned.parent)
        except OSError as exc:
            raise StorageError(planned, _cause(exc, planned)) from exc
        return placement

    def keep(self, job_id: str, attempt: int, data: bytes) -> Path:
        """Keep a paid image that cannot go where it belongs: the session's spool folder,
        else the system's temporary folder. Raises OSError if neither can be written."""
        name = f"{job_id}-a{attempt}.png"
        try:
            png = to_png(data, probe(data))
        except ValueError:
            png = data
        spools = (
            self.spool_dir,
            Path(tempfile.gettempdir()) / "imagegen-kept" / self.session_id,
        )
        error: OSError | None = None
        for folder in spools:
            path = folder / name
            try:
                write_atomic(path, png, fsync=self.fsync)
            except OSError as exc:
                error = exc
                continue
            return path
        assert error is not None
        raise error


def _siblings_of(tmp: Path) -> list[Path]:
    """Other names in ``tmp``'s folder that are the same file (a link made before a crash)."""
    try:
        st = tmp.stat()
    except OSError:
        return []
    if st.st_nlink < 2:
        return []
    out = []
    for entry in os.scandir(tmp.parent):
        if entry.name == tmp.name or entry.name.startswith("."):
            continue
        try:
            other = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if other.st_ino == st.st_ino and other.st_dev == st.st_dev:
            out.append(Path(entry.path))
    return out


def _cause(exc: OSError, planned: Path) -> str:
    """The OS's reason, in the words a user acts on."""
    if exc.errno == errno.ENOSPC:
        return "no space left on device"
    if exc.errno == errno.EROFS:
        return "read-only file system"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.errno in (errno.ENOTDIR, errno.EEXIST) and not planned.parent.is_dir():
        # mkdir/link under a path where a regular file stands
        blocker = next((p for p in (planned.parent, *planned.parent.parents) if p.is_file()), None)
        return f"{blocker or planned.parent} is a file, not a folder"
    if exc.errno == errno.ENAMETOOLONG:
        return "file name too long"
    return exc.strerror or str(exc)


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)

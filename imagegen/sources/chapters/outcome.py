"""What became of one chapter job, as its manifest entry. Pure.

A completed job gives an ``ok`` entry claiming ``images/{chapter_id}.png``: generated
(``generation_method`` the provider's name, its model, the prompt sent, what the provider
reported) or drawn (``generation_method`` "template", no model, no prompt, the placeholder's
facts). A failed job gives an entry that claims no file: "rejected" when the answer held no
image (a content-policy refusal: the same prompt would be refused again), "failed" otherwise,
with the reason and the prompt that was sent (seed 001 step 8, seed 002 section 3.3).

``metadata`` always has ``cost_usd`` and ``generated_at`` (UTC, when the job ended) and names
the session and job that made it, so a later step can tell its own entry from a newer one.
"""

from __future__ import annotations

from datetime import UTC, datetime

from ...model import JSON, JobState
from ...providers.placeholder.draw import describe
from .jobs import TEMPLATE_METHOD
from .jsonfile import iso_utc
from .manifest import EntryStatus, ImageEntry
from .plan import image_path

PNG = "image/png"


def ended_at(state: JobState) -> str:
    """When the job ended, as the manifest writes times (UTC); the journal's times are local."""
    local = state.completed or state.started
    if local is None:
        return ""
    return iso_utc(datetime.fromisoformat(local).astimezone(UTC))


def image_entry(state: JobState, session_id: str) -> ImageEntry:
    """The ``ok`` entry of a completed chapter job, without ``size_bytes`` (the file's size
    once it carries the entry: :func:`.steps.carry` sets it)."""
    job = state.job
    chapter_id = str(job.label("chapter_id"))
    title = str(job.label("chapter_title"))
    visual_type = str(job.label("visual_type") or "")
    method = str(job.label("generation_method"))
    image = state.image
    size = f"{image.width}x{image.height}" if image else None
    details: dict[str, JSON] = {"session_id": session_id, "job_id": job.id}
    if method == TEMPLATE_METHOD:
        details |= describe(job.prompt, job.model)
        prompt = model = None
    else:
        usage = state.usage
        details |= {
            "finish_reason": state.finish_reason,
            "usage": None
            if usage is None
            else {
                "prompt_tokens": usage.prompt_tokens,
                "output_tokens": usage.output_tokens,
                "thought_tokens": usage.thought_tokens,
                "image_tokens": usage.image_tokens,
            },
            "quality": job.quality,
            "aspect": job.aspect,
            "attempts": state.attempts,
            "prompt_source": job.label("prompt_source"),
        }
        if state.error:  # a note on a kept image ("wrong size: ...")
            details["note"] = state.error
        prompt, model = job.prompt, job.model
    return ImageEntry(
        chapter_id=chapter_id,
        chapter_title=title,
        visual_type=visual_type,
        status=EntryStatus.OK,
        content_hash=str(job.label("content_hash")),
        generated_at=ended_at(state),
        cost_usd=round(state.cost_usd or 0.0, 6),
        file_path=image_path(chapter_id),
        prompt=prompt,
        generation_method=method,
        model=model,
        size=size,
        mime_type=PNG,
        details=details,
    )


def failure_entry(state: JobState, session_id: str) -> ImageEntry:
    """The entry of a failed chapter job: "rejected" (no image in the answer) or "failed"."""
    job = state.job
    rejected = state.error_kind == "no_image"
    details: dict[str, JSON] = {
        "session_id": session_id,
        "job_id": job.id,
        "error": state.error,
        "error_kind": state.error_kind,
        "attempts": state.attempts,
    }
    return ImageEntry(
        chapter_id=str(job.label("chapter_id")),
        chapter_title=str(job.label("chapter_title")),
        visual_type=str(job.label("visual_type") or ""),
        status=EntryStatus.REJECTED if rejected else EntryStatus.FAILED,
        content_hash=str(job.label("content_hash")),
        generated_at=ended_at(state),
        cost_usd=round(state.cost_usd or 0.0, 6),
        prompt=job.prompt,
        generation_method=str(job.label("generation_method")),
        model=job.model,
        reason=state.finish_reason or state.error_kind,
        details=details,
    )


def made_by(entry: ImageEntry) -> tuple[str | None, str | None]:
    """The session and job an entry names (None for entries of other tools or versions)."""
    sid, jid = entry.details.get("session_id"), entry.details.get("job_id")
    return (sid if isinstance(sid, str) else None, jid if isinstance(jid, str) else None)

"""``provenance/imagegen_provenance.json``: what the last run read, wrote, used and spent.

Seed 002 section 8.1's keys, in its order::

    {"stage": "imagegen", "episode_id": "ep001", "timestamp": "...Z",
     "prompt_name": "imagegen", "prompt_version": null, "prompt_hash": "sha256:...",
     "model": "gemini-2.5-flash", "image_gen_model": "gemini-3-pro-image",
     "input_files": ["chapters.json"], "input_content_hash": "sha256:...",
     "output_files": ["images/manifest.json", "images/ch01.png", ...],
     "input_tokens": 2500, "output_tokens": 800,
     "image_count": 8, "generated_count": 6, "template_count": 2,
     "cost_usd": 0.52, "duration_seconds": 45.3,
     "skipped_count": 0, "failed_count": 0, "rejected_count": 0, "stopped_count": 0,
     "status": "complete", "force": false, "chapter_id": null, "session_id": "2026-..."}

Choices where the seed is silent or does not fit:

- paths are relative to the episode folder (the seed's ``data/outputs/abc123/...`` depended
  on the working directory);
- ``prompt_version`` is null: there is no prompt registry, ``prompt_hash`` (the template
  file's digest) identifies the template;
- ``output_files`` lists the manifest and every image it claims, including images an earlier
  run made and this one kept, so the file describes the episode's outputs as they stand;
  ``image_count`` is their number, while the other counts, tokens, ``cost_usd`` and
  ``duration_seconds`` are the last session's that made or attempted something (a session
  that left every chapter alone does not rewrite the file); ``cost_usd`` includes the text
  model's, ``duration_seconds`` runs from the session's first start to its last end;
- the last six keys are ours: counts the seed has no room for, the manifest's status, the
  ``--force`` / ``--chapter`` of the run (seed 002 section 5.3, "partial regeneration"), and
  the session whose journal has the details.

It is rewritten after every image, right after the manifest, so it never lags behind it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .config import EpisodeConfig
from .episode import CHAPTERS_FILE
from .jsonfile import JSON, iso_utc, write_json
from .manifest import MANIFEST_FILE, Manifest, ManifestStatus
from .tally import RunTally

PROVENANCE_FILE = Path("provenance") / "imagegen_provenance.json"
STAGE = "imagegen"


@dataclass(frozen=True, slots=True)
class Provenance:
    """The provenance record; see the module docstring for each field's meaning."""

    episode_id: str
    timestamp: str
    prompt_name: str
    prompt_hash: str
    model: str
    image_gen_model: str
    input_files: tuple[str, ...]
    input_content_hash: str
    output_files: tuple[str, ...]
    input_tokens: int
    output_tokens: int
    image_count: int
    generated_count: int
    template_count: int
    cost_usd: float
    duration_seconds: float
    skipped_count: int
    failed_count: int
    rejected_count: int
    stopped_count: int
    status: ManifestStatus
    force: bool
    chapter_id: str | None
    session_id: str | None = None
    stage: str = STAGE
    prompt_version: int | None = None


@dataclass(frozen=True, slots=True)
class RunFacts:
    """What the session knew of its run, besides the tally: the text model's template name and
    model, the image model, the ``--force`` / ``--chapter`` given, the session's id."""

    template_name: str
    text_model: str
    image_gen_model: str
    force: bool = False
    chapter_id: str | None = None
    session_id: str | None = None


def build_provenance(
    episode: EpisodeConfig,
    manifest: Manifest,
    tally: RunTally,
    facts: RunFacts,
    *,
    now: datetime,
    duration_seconds: float,
) -> Provenance:
    """The record for the session so far. Pure."""
    images = tuple(e.file_path for e in manifest.images if e.claims_file and e.file_path)
    return Provenance(
        episode_id=episode.episode_id,
        timestamp=iso_utc(now),
        prompt_name=facts.template_name,
        prompt_hash=episode.prompt_hash,
        model=facts.text_model,
        image_gen_model=facts.image_gen_model,
        input_files=(CHAPTERS_FILE,),
        input_content_hash=episode.input_content_hash,
        output_files=(MANIFEST_FILE.as_posix(), *images),
        input_tokens=tally.input_tokens,
        output_tokens=tally.output_tokens,
        image_count=len(images),
        generated_count=tally.generated,
        template_count=tally.template,
        cost_usd=round(tally.cost_usd, 6),
        duration_seconds=round(duration_seconds, 3),
        skipped_count=tally.skipped,
        failed_count=tally.failed,
        rejected_count=tally.rejected,
        stopped_count=tally.stopped,
        status=manifest.status,
        force=facts.force,
        chapter_id=facts.chapter_id,
        session_id=facts.session_id,
    )


def provenance_to_json(p: Provenance) -> dict[str, JSON]:
    return {
        "stage": p.stage,
        "episode_id": p.episode_id,
        "timestamp": p.timestamp,
        "prompt_name": p.prompt_name,
        "prompt_version": p.prompt_version,
        "prompt_hash": p.prompt_hash,
        "model": p.model,
        "image_gen_model": p.image_gen_model,
        "input_files": list(p.input_files),
        "input_content_hash": p.input_content_hash,
        "output_files": list(p.output_files),
        "input_tokens": p.input_tokens,
        "output_tokens": p.output_tokens,
        "image_count": p.image_count,
        "generated_count": p.generated_count,
        "template_count": p.template_count,
        "cost_usd": p.cost_usd,
        "duration_seconds": p.duration_seconds,
        "skipped_count": p.skipped_count,
        "failed_count": p.failed_count,
        "rejected_count": p.rejected_count,
        "stopped_count": p.stopped_count,
        "status": str(p.status),
        "force": p.force,
        "chapter_id": p.chapter_id,
        "session_id": p.session_id,
    }


def write_provenance(episode_dir: Path, provenance: Provenance) -> Path:
    """Replace the episode's provenance file atomically."""
    path = episode_dir / PROVENANCE_FILE
    write_json(path, provenance_to_json(provenance))
    return path

"""The Python API's answer for one episode: :class:`ImageGenResult` (seed 002 section 2.1).

:func:`imagegen.sources.chapters.api.generate_images` returns it; the counts are the session's
(see :class:`~.tally.RunTally`), the status and image count the manifest's after the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .manifest import MANIFEST_FILE, Manifest, ManifestStatus
from .provenance import PROVENANCE_FILE
from .tally import RunTally


@dataclass(frozen=True, slots=True)
class ImageGenResult:
    """One episode's run (seed 002 section 2.1's fields, and seed 001 step 5's counts).

    ``image_count`` is how many chapter images the manifest holds after the run;
    ``generated_count`` / ``template_count`` were made by this run; ``skipped_count`` were left
    alone (unchanged, not selected, refused before, no visual); ``failed_count`` and
    ``rejected_count`` got no image (seed 001 step 5's ``images_failed`` is their sum);
    ``stopped_count`` were not finished, mostly because a cost cap stopped the episode
    (``status`` COST_LIMIT). Tokens are the text model's; ``cost_usd`` is the session's, text
    and images (USD). ``session_id`` names the journal (None for a dry run).
    """

    episode_id: str
    status: ManifestStatus
    images_path: Path
    manifest_path: Path
    provenance_path: Path
    image_count: int
    generated_count: int
    template_count: int
    skipped_count: int
    failed_count: int
    rejected_count: int
    stopped_count: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    duration_seconds: float
    session_id: str | None = None
    dry_run: bool = False

    @property
    def skipped(self) -> bool:
        """Nothing was made or attempted: the episode was up to date (seed 002's flag)."""
        return not (
            self.generated_count
            + self.template_count
            + self.failed_count
            + self.rejected_count
            + self.stopped_count
        )


def build_result(
    episode_dir: Path,
    episode_id: str,
    manifest: Manifest | None,
    tally: RunTally,
    *,
    duration_seconds: float,
    session_id: str | None,
    dry_run: bool = False,
) -> ImageGenResult:
    """The result of a session that left ``manifest`` and did ``tally``. Pure.

    For a dry run, pass the manifest as read and a tally of what the plan would do: the
    generated and template counts are then the chapters that would be made, ``cost_usd`` the
    estimate, and nothing was written.
    """
    images = manifest.images if manifest else ()
    return ImageGenResult(
        episode_id=episode_id,
        status=manifest.status if manifest else ManifestStatus.IN_PROGRESS,
        images_path=episode_dir / MANIFEST_FILE.parent,
        manifest_path=episode_dir / MANIFEST_FILE,
        provenance_path=episode_dir / PROVENANCE_FILE,
        image_count=sum(1 for e in images if e.claims_file),
        generated_count=tally.generated,
        template_count=tally.template,
        skipped_count=tally.skipped,
        failed_count=tally.failed,
        rejected_count=tally.rejected,
        stopped_count=tally.stopped,
        input_tokens=tally.input_tokens,
        output_tokens=tally.output_tokens,
        cost_usd=tally.cost_usd,
        duration_seconds=duration_seconds,
        session_id=session_id,
        dry_run=dry_run,
    )

"""The Python API's answer: :class:`ImageGenResult`, and the function that will return it.

The function the integrator writes on the runner (seed 002 section 5.1, adapted)::

    async def generate_images(
        episode_dir: Path,                 # data/outputs/{episode_id}, holding chapters.json
        *,
        settings: ImageSettings,           # style prefix, frame size, tier, model, cost cap
        force: bool = False,               # --force: remake every chapter
        chapter_id: str | None = None,     # --chapter ID: remake this chapter only
        dry_run: bool = False,             # --dry-run: plan and report, write nothing
    ) -> ImageGenResult: ...

Seed 002 passes ``(session, episode_id, settings, force=False, chapter_id=None)`` and seed 001
adds ``--dry-run`` through ``settings.dry_run``. There is no database here, so the session
goes, and the episode folder replaces ``episode_id`` (the id is read from ``chapters.json``);
the image provider and the :class:`~.prompts.PromptWriter` come from the runner that calls it.
Raises :class:`~.episode.EpisodeError` for a bad ``chapters.json`` and InputError for an
unknown ``--chapter``; a failed or refused image does not raise (seed 001 step 8), it is an
entry and a count.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .manifest import MANIFEST_FILE, Manifest, ManifestStatus
from .plan import Action, EpisodePlan
from .provenance import PROVENANCE_FILE
from .tally import RunTally


@dataclass(frozen=True, slots=True)
class ImageGenResult:
    """One episode's run (seed 002 section 2.1's fields, and seed 001 step 5's counts).

    ``image_count`` is how many chapter images the manifest holds after the run;
    ``generated_count`` / ``template_count`` were made by this run; ``skipped_count`` were left
    alone (unchanged, not selected, refused before, no visual); ``failed_count`` and
    ``rejected_count`` got no image (seed 001 step 5's ``images_failed`` is their sum);
    ``stopped_count`` were not started because the cost cap stopped the episode (``status``
    COST_LIMIT). Tokens are the text model's; ``cost_usd`` is this run's, text and images.
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
    plan: EpisodePlan,
    manifest: Manifest,
    tally: RunTally,
    *,
    duration_seconds: float,
    dry_run: bool = False,
) -> ImageGenResult:
    """The result of a run that planned ``plan``, left ``manifest`` and did ``tally``. Pure.

    For a dry run, pass the manifest as read and an empty tally: the counts then say what was
    found, and ``skipped_count`` what the plan would leave alone.
    """
    return ImageGenResult(
        episode_id=plan.episode.episode_id,
        status=manifest.status,
        images_path=episode_dir / MANIFEST_FILE.parent,
        manifest_path=episode_dir / MANIFEST_FILE,
        provenance_path=episode_dir / PROVENANCE_FILE,
        image_count=sum(1 for e in manifest.images if e.claims_file),
        generated_count=tally.generated,
        template_count=tally.template,
        skipped_count=sum(1 for d in plan.decisions if d.action is Action.SKIP),
        failed_count=tally.failed,
        rejected_count=tally.rejected,
        stopped_count=tally.stopped,
        input_tokens=tally.input_tokens,
        output_tokens=tally.output_tokens,
        cost_usd=tally.cost_usd,
        duration_seconds=duration_seconds,
        dry_run=dry_run,
    )

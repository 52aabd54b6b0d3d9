"""Chapter images for an education video (seeds 001 and 002): the pure building blocks.

An episode folder holds ``chapters.json``; each chapter gets ``images/{chapter_id}.png``,
generated from its prompt or drawn as a placeholder, with ``images/manifest.json`` and
``provenance/imagegen_provenance.json`` beside them. The runner drives one episode like this::

    episode  = load_episode(episode_dir)                    # EpisodeError if malformed
    template = load_template(settings.prompt_template)
    read     = read_manifest(episode_dir, now)              # damaged: kept aside, reported
    disk     = scan_images(episode_dir)
    fixed    = reconcile(begin_manifest(read.manifest, episode, now), disk,
                         episode.chapter_ids, now)          # adopt / drop after a crash
    plan     = plan_episode(episode, settings, template, fixed.manifest, disk.keys(),
                            force=force, chapter_id=chapter_id)
    if plan.is_empty: write the manifest only if fixed.changed; return build_result(...)
    cap, cache, tally = EpisodeCostCap(settings.max_episode_cost_usd),
                        read_prompt_cache(episode_dir), RunTally()
    for decision in plan.todo:
        PLACEHOLDER: draw_placeholder -> placeholder_entry -> record_image
        GENERATE:    if not cap.fits(estimate): tally.add_stopped(rest); COST_LIMIT; break
                     if decision.instructions: write_image_prompt -> cap.charge,
                         tally.add_text, cache.record, write_prompt_cache; compose_prompt
                     cap.reserve -> provider -> cap.settle
                     ok: generated_entry -> record_image
                     ProviderError: unmade_entry -> record_entry   (rejected / failed)
        then:        tally.add_entry(entry); write_provenance(build_provenance(...))
    finish_manifest(manifest, plan.expected, now, cost_limited=...) -> write_manifest,
    write_provenance; return build_result(...)

tests/chapters_driver.py is this sequence, run serially against fake models.
Nothing here calls a model or the network; the text model is a :class:`PromptWriter`.
"""

from ...providers.placeholder import Placeholder, draw_placeholder
from .cost_cap import EpisodeCostCap
from .episode import (
    CHAPTERS_FILE,
    VISUAL_TYPES,
    Chapter,
    Episode,
    EpisodeError,
    Visual,
    load_episode,
    parse_episode,
)
from .imagefile import DiskImage, embed_entry, read_embedded_entry, save_image, scan_images
from .manifest import (
    MANIFEST_FILE,
    EntryStatus,
    ImageEntry,
    Manifest,
    ManifestRead,
    ManifestStatus,
    begin_manifest,
    finish_manifest,
    merge_entry,
    read_manifest,
    write_manifest,
)
from .outcome import (
    entry_status,
    generated_entry,
    placeholder_entry,
    record_entry,
    record_image,
    unmade_entry,
)
from .plan import (
    GENERATED_TYPES,
    PLACEHOLDER_TYPES,
    Action,
    ChapterDecision,
    EpisodePlan,
    Reason,
    image_path,
    plan_episode,
    plan_lines,
)
from .prompt_cache import CachedPrompt, PromptCache, read_prompt_cache, write_prompt_cache
from .prompts import (
    EmptyPrompt,
    PromptTemplate,
    PromptWriter,
    TextUsage,
    WrittenPrompt,
    compose_prompt,
    load_template,
    write_image_prompt,
)
from .provenance import PROVENANCE_FILE, Provenance, build_provenance, write_provenance
from .reconcile import Reconciliation, reconcile
from .result import ImageGenResult, build_result
from .settings import ImageSettings, settings_from_env
from .tally import RunTally

__all__ = [
    "CHAPTERS_FILE",
    "GENERATED_TYPES",
    "MANIFEST_FILE",
    "PLACEHOLDER_TYPES",
    "PROVENANCE_FILE",
    "VISUAL_TYPES",
    "Action",
    "CachedPrompt",
    "Chapter",
    "ChapterDecision",
    "DiskImage",
    "EmptyPrompt",
    "EntryStatus",
    "Episode",
    "EpisodeCostCap",
    "EpisodeError",
    "EpisodePlan",
    "ImageEntry",
    "ImageGenResult",
    "ImageSettings",
    "Manifest",
    "ManifestRead",
    "ManifestStatus",
    "Placeholder",
    "PromptCache",
    "PromptTemplate",
    "PromptWriter",
    "Provenance",
    "Reason",
    "Reconciliation",
    "RunTally",
    "TextUsage",
    "Visual",
    "WrittenPrompt",
    "begin_manifest",
    "build_provenance",
    "build_result",
    "compose_prompt",
    "draw_placeholder",
    "embed_entry",
    "entry_status",
    "finish_manifest",
    "generated_entry",
    "image_path",
    "load_episode",
    "load_template",
    "merge_entry",
    "parse_episode",
    "placeholder_entry",
    "plan_episode",
    "plan_lines",
    "read_embedded_entry",
    "read_manifest",
    "read_prompt_cache",
    "reconcile",
    "record_entry",
    "record_image",
    "save_image",
    "scan_images",
    "settings_from_env",
    "unmade_entry",
    "write_image_prompt",
    "write_manifest",
    "write_prompt_cache",
    "write_provenance",
]

"""Chapter images for an education video (issue 12; seeds 001 and 002), on the shared runner.

An episode folder holds ``chapters.json``; each chapter with a visual gets
``images/{chapter_id}.png``, generated from its prompt (``diagram``, ``b_roll``,
``screen_share``) or drawn as a placeholder (``title_card``, ``talking_head``), with
``images/manifest.json`` and ``provenance/imagegen_provenance.json`` beside them. Only what
changed is made again. From the command line::

    image-gen.sh chapters EPISODE_DIR [EPISODE_DIR ...] [--chapter ID] [--force] [--dry-run]

and from Python, :func:`generate_images` (async) or :func:`generate_images_sync`.

How a run goes (the source is :mod:`.source`; runner, journal and views are the shared ones):

1. :mod:`.batch` plans: every ``chapters.json`` read and checked (:mod:`.episode`; malformed:
   one line, exit 2), each manifest reconciled with the images on disk (:mod:`.reconcile`),
   each chapter decided by its content hash (:mod:`.plan`), null prompts looked up in the
   episode's cache (:mod:`.prompt_cache`);
2. once every check has passed, the plan is completed: reconciled manifests written, missing
   prompts written by a Gemini text model from the template (:mod:`.prompts`, :mod:`.writer`),
   their cost recorded as the session's planning cost;
3. each chapter is a job (:mod:`.jobs`): generated ones go to the run's provider, placeholders
   to the ``placeholder`` provider; each episode is a cost group capped at
   ``max_episode_cost_usd``;
4. after each image, :func:`.steps.after_save` merges its manifest entry and rewrites the
   provenance; when the run ends, :func:`.steps.after_run` records failed and refused
   chapters and the manifest's final status (COST_LIMIT when the cap stopped the episode).

Nothing here calls the network but the text model's step; everything else is pure or file I/O.
"""

from ...providers.placeholder.draw import Placeholder, draw_placeholder
from .api import generate_images, generate_images_sync
from .config import EpisodeConfig, TextSpend
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
    progress_manifest,
    read_manifest,
    write_manifest,
)
from .outcome import failure_entry, image_entry
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
from .provenance import PROVENANCE_FILE, Provenance, RunFacts, build_provenance, write_provenance
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
    "EpisodeConfig",
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
    "RunFacts",
    "RunTally",
    "TextSpend",
    "TextUsage",
    "Visual",
    "WrittenPrompt",
    "begin_manifest",
    "build_provenance",
    "build_result",
    "compose_prompt",
    "draw_placeholder",
    "embed_entry",
    "failure_entry",
    "finish_manifest",
    "generate_images",
    "generate_images_sync",
    "image_entry",
    "image_path",
    "load_episode",
    "load_template",
    "merge_entry",
    "parse_episode",
    "plan_episode",
    "plan_lines",
    "progress_manifest",
    "read_embedded_entry",
    "read_manifest",
    "read_prompt_cache",
    "reconcile",
    "save_image",
    "scan_images",
    "settings_from_env",
    "write_image_prompt",
    "write_manifest",
    "write_prompt_cache",
    "write_provenance",
]

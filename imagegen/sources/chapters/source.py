"""``image-gen.sh chapters EPISODE_DIR [EPISODE_DIR ...] [--chapter ID] [--force]`` (issue 12).

The chapter image stage as a job source on the shared runner: planning is :mod:`.batch`, the
jobs :mod:`.jobs`, the manifest and provenance the after-save and after-run steps
(:mod:`.steps`). Every run option applies (``--dry-run``, ``--max-cost``, ``--offline``, ...);
``--resume``, ``--retry``, ``--status`` and ``--report`` work on its sessions as on any other.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ...cli.options import number
from ...errors import InputError
from .. import AfterRun, AfterSave, Plan, RunDefaults
from . import steps
from .batch import plan_batch


class ChaptersSource:
    """Chapter images of education-video episodes (seeds 001 and 002)."""

    name = "chapters"
    help = (
        "an image per chapter of each episode's chapters.json (seeds 001/002): imagegen "
        "chapters EPISODE_DIR [EPISODE_DIR ...] [--chapter ID] [--force]; images/{chapter_id}"
        ".png, images/manifest.json and provenance/imagegen_provenance.json in each episode"
    )

    def __init__(self) -> None:
        self.after_save: AfterSave | None = steps.after_save
        self.after_run: AfterRun | None = steps.after_run

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        # Video frames: 16:9 at 2K, the smallest Gemini tier at least 1920 wide (2752x1536),
        # priced as 1K (settings.py). --quality and --aspect still choose.
        parser.set_defaults(default_quality="2K", default_aspect="16:9")
        sel = parser.add_argument_group("what to generate (chapter images)")
        sel.add_argument(
            "episodes",
            nargs="+",
            type=Path,
            metavar="EPISODE_DIR",
            help="episode folders, each holding chapters.json",
        )
        sel.add_argument(
            "--chapter",
            metavar="ID",
            help="make this chapter's image again even if unchanged; the others are left alone",
        )
        sel.add_argument(
            "--force",
            action="store_true",
            help="make every chapter's image again (old images are kept aside, never overwritten)",
        )
        stage = parser.add_argument_group("chapter stage settings (default: the environment)")
        stage.add_argument(
            "--style-prefix",
            metavar="TEXT",
            help="put before every image prompt (IMAGE_GEN_STYLE_PREFIX; empty)",
        )
        stage.add_argument(
            "--image-size",
            metavar="WxH",
            help="the episode's frame, for placeholders (IMAGE_GEN_SIZE; 1920x1080)",
        )
        stage.add_argument(
            "--max-episode-cost",
            type=number("--max-episode-cost", allow_zero=True, unit="USD"),
            metavar="USD",
            help="stop an episode before an image would pass this (MAX_EPISODE_COST_USD; 10)",
        )
        stage.add_argument(
            "--prompt-template",
            type=Path,
            metavar="FILE",
            help="the text model's template for null image_prompts "
            "(IMAGE_GEN_PROMPT_TEMPLATE; the bundled one)",
        )

    def plan(self, args: argparse.Namespace, defaults: RunDefaults) -> Plan:
        if args.chapter is not None and not args.chapter.strip():
            raise InputError("--chapter needs a chapter id, such as ch03")
        if args.variants > 1:  # the manifest names one image per chapter: images/{id}.png
            raise InputError(
                "chapters make one image per chapter (images/ID.png): --variants is not "
                "supported here; remake one with --chapter ID"
            )
        return plan_batch(args, defaults, os.environ)


SOURCE = ChaptersSource()

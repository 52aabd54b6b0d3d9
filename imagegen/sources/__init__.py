"""Job sources: each turns its own inputs into typed jobs for the one runner and journal.

A source (a module with a ``SOURCE`` object satisfying :class:`JobSource`) adds its options to
its subcommand, plans :class:`~imagegen.model.JobState` values (a job carries its prompt, its
ordered references, its own output path and labels for the views), and may name two steps that
write into the user's own tree:

- ``after_save(job_state, view)``: after each job's image (its last variant) is saved and
  journaled, in a worker thread, one step at a time per session; also for an image a crashed
  run left and resume adopted, and for a job planned as ``skipped`` with ``delivery``
  "pending" (an earlier image not yet recorded). The journal says ``delivery: "pending"``
  before it runs and "done" or "not written: REASON" after; a crash in between makes resume
  run it again, so it must be idempotent.
- ``after_run(view)``: once a run (new, resume or retry) has ended, stopped or not, in a worker
  thread, before the summary: for what no single image says (jobs that failed, jobs a cost
  cap held back, a record of the whole run). Also idempotent: every run of the session calls
  it. It returns lines for the run's summary (what it recorded, or what it could not write).

Both see a :class:`SessionView`, a snapshot of the session taken when the step starts. The
runner, journal, display and contact sheet never learn a source's name.

Adding a source: write ``imagegen/sources/NAME.py`` (or a package) with ``SOURCE = ...`` and
add one line to ``_MODULES`` below; ``image-gen.sh NAME ...`` then exists with every run option.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from ..errors import InputError
from ..model import JSON, JobState
from ..providers import ProviderInfo

#: Source name (its subcommand) -> module. ``combos`` is also the default, flag-only form.
_MODULES: dict[str, str] = {
    "combos": "imagegen.sources.combos",
    "shots": "imagegen.sources.shots",
    "chapters": "imagegen.sources.chapters.source",
    "specs": "imagegen.sources.specs.source",
}
NAMES: tuple[str, ...] = tuple(_MODULES)


@dataclass(frozen=True, slots=True)
class RunDefaults:
    """What planning takes from the run options: the provider and the image settings asked
    for (a source may override aspect or quality per job where its inputs say so).

    ``chosen`` names the options the user typed (of "provider", "model", "quality",
    "aspect"): a source whose inputs carry their own defaults (an input file's provider) lets
    a typed option win and its own default win over an untyped one.
    """

    provider: ProviderInfo
    model: str
    quality: str
    aspect: str
    chosen: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Plan:
    """A source's plan for a new session.

    ``config`` is the source's part of the session config (its selection; compared to find an
    unfinished twin session, except keys starting with ``planning_``, which record what planning
    spent). ``header`` are the progress display's lines under the session id, ``facts`` the
    contact sheet's (label, value) pairs, ``describe`` a one-line summary. ``notes`` are
    paragraphs to read before anything is paid (a default that could not be honoured, an
    earlier image to be recorded without a call, what happens to each chapter): shown by
    ``--dry-run`` and when the run starts. ``planning_usd`` is what planning spent (USD), or
    in a dry run would spend; it counts against ``--max-cost``. A plan may have no jobs:
    nothing is started then.

    ``complete``, when set, is paid work that finishes the plan (a text model writing prompts,
    say): it runs after every check has passed and before the session is created, never on
    ``--dry-run``, and returns the finished plan (whose config records the spending as
    ``planning_cost_usd``, see :class:`imagegen.model.Summary`). It raises InputError (an
    input found wanting only now, such as a chapter the text model will not write a prompt
    for) or, when the service fails, an ImagegenError whose ``exit_code`` is EXIT_STOPPED
    (exit 3; the chapters source raises ``PromptsNotWritten``), not a bare ProviderError,
    which has no exit code of its own.
    """

    jobs: tuple[JobState, ...]
    config: dict[str, JSON]
    header: tuple[str, ...]
    facts: tuple[tuple[str, str], ...]
    describe: str
    notes: tuple[str, ...] = ()
    planning_usd: float = 0.0
    complete: Callable[[], Plan] | None = None


@dataclass(frozen=True, slots=True)
class SessionView:
    """What a source's steps see of a session: a snapshot (the session goes on changing).

    ``stop_reason`` is why the run stopped early (None if it did not, or while it runs).
    """

    session_id: str
    config: Mapping[str, JSON]
    jobs: Mapping[str, JobState]
    stop_reason: str | None = None


#: A step run (in a worker thread) after a job's image is saved and journaled; returns None
#: when done, or a reason the result could not be written (the image is kept either way).
AfterSave = Callable[[JobState, SessionView], str | None]
#: A step run (in a worker thread) when a run of the session ends; returns lines for the run's
#: summary (what it recorded; what it could not write, which is reported, never fatal).
AfterRun = Callable[[SessionView], Sequence[str]]


class JobSource(Protocol):
    """Plans jobs from one kind of input (seed 003 combos, seed 000 shot folders, ...)."""

    name: str
    help: str
    after_save: AfterSave | None
    after_run: AfterRun | None

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Add this source's own options to its subcommand's parser."""
        ...

    def plan(self, args: argparse.Namespace, defaults: RunDefaults) -> Plan:
        """The jobs for ``args``; raises InputError naming the bad file or value."""
        ...


def get(name: str) -> JobSource:
    """The source registered as ``name``; raises InputError listing the known ones."""
    module = _MODULES.get(name)
    if module is None:
        raise InputError(f"unknown job source {name!r}: use one of {', '.join(NAMES)}")
    source: JobSource = importlib.import_module(module).SOURCE
    return source

"""Job sources: each turns its own inputs into typed jobs for the one runner and journal.

A source (a module with a ``SOURCE`` object satisfying :class:`JobSource`) adds its options to
its subcommand, plans :class:`~imagegen.model.JobState` values (a job carries its prompt, its
ordered references, its own output path and labels for the views), and may name a step to run
after each image is saved and journaled (writing into the user's own tree). The runner,
journal, display and contact sheet never learn a source's name.

Adding a source: write ``imagegen/sources/NAME.py`` with ``SOURCE = ...`` and add one line to
``_MODULES`` below; ``image-gen.sh NAME ...`` then exists with every run option.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from ..errors import InputError
from ..model import JSON, JobState
from ..providers import ProviderInfo

#: Source name (its subcommand) -> module. ``combos`` is also the default, flag-only form.
_MODULES: dict[str, str] = {
    "combos": "imagegen.sources.combos",
    "shots": "imagegen.sources.shots",
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
    unfinished twin session). ``header`` are the progress display's lines under the session id,
    ``facts`` the contact sheet's (label, value) pairs, ``describe`` a one-line summary.
    ``notes`` are lines to read before anything is paid (a default that could not be
    honoured, an earlier image to be recorded without a call): shown by ``--dry-run`` and
    when the run starts. A plan may have no jobs: nothing is started then.
    """

    jobs: tuple[JobState, ...]
    config: dict[str, JSON]
    header: tuple[str, ...]
    facts: tuple[tuple[str, str], ...]
    describe: str
    notes: tuple[str, ...] = ()


#: A step run (in a worker thread) after a job's image is saved and journaled; returns None
#: when done, or a reason the result could not be written (the image is kept either way).
AfterSave = Callable[[JobState, Mapping[str, JSON]], str | None]


class JobSource(Protocol):
    """Plans jobs from one kind of input (seed 003 combos, seed 000 shot folders, ...)."""

    name: str
    help: str
    after_save: AfterSave | None

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

"""Which provider and model a spec file's tasks go to (issue 13, "Defaults per file").

A file's ``defaults.provider`` names a service the way the seed does ("openai", "google",
"vertex"); it maps to a provider of the registry (:data:`PROVIDER_NAMES`, every one of them
registered). The rules, in order:

- ``--provider`` typed on the command line: every task goes there;
- else the file's provider when :data:`PROVIDER_NAMES` knows it;
- else the run's provider (``--provider``'s default, gemini), with a note saying so: a file
  naming a provider this tool does not know (``midjourney``) is still generated, and the dry
  run says where.

The model: ``--model`` when typed and the chosen provider lists it (or ``--provider`` was typed
too: the user named both); else the file's ``defaults.model`` when the chosen provider lists it
(:attr:`~imagegen.providers.ProviderInfo.models`); else the provider's default model, with a
note when the file named another one (``dall-e-3`` is retired: its tasks use ``gpt-image-2``).

Pure: values in, a :class:`Route` out.
"""

from __future__ import annotations

from dataclasses import dataclass

from ... import providers
from ...providers import ProviderInfo
from .. import RunDefaults
from .plan import Capabilities
from .schema import Defaults

#: A spec's ``defaults.provider`` (lower case) -> the provider registry's name.
PROVIDER_NAMES = {
    "google": "gemini",
    "gemini": "gemini",
    "google-gemini": "gemini",
    "nano-banana": "gemini",
    "openai": "openai",
    "vertex": "vertex",
    "vertexai": "vertex",
    "google-vertex": "vertex",
    "fal": "fal",
}


@dataclass(frozen=True, slots=True)
class Route:
    """Where one file's tasks go: the provider, the model, and why, when it is not what the
    file asked for (``notes``, one line each, naming the file)."""

    provider: ProviderInfo
    model: str
    notes: tuple[str, ...] = ()

    @property
    def capabilities(self) -> Capabilities:
        """What the planner may send this provider. No provider here has a negative-prompt
        field (Gemini's API has none; GPT Image and fal's Nano Banana neither), so the negative
        prompt always travels in the text as ``Avoid: ...``."""
        limit = self.provider.max_references
        return Capabilities(supports_references=limit > 0, max_references=limit)


def route(defaults: Defaults, run: RunDefaults, where: str) -> Route:
    """The provider and model for the tasks of the file at ``where`` (module docstring)."""
    notes: list[str] = []
    info = run.provider
    asked = (defaults.provider or "").strip()
    if asked and "provider" not in run.chosen:
        name = PROVIDER_NAMES.get(asked.lower())
        if name is not None:
            info = providers.get(name)
        else:
            known = ", ".join(sorted(PROVIDER_NAMES))
            notes.append(
                f"{where}: defaults.provider {asked!r} is not a provider this tool knows "
                f"({known}); its tasks use {info.name} (--provider chooses another)"
            )
    model = info.default_model
    if "model" in run.chosen and (run.model in info.models or "provider" in run.chosen):
        model = run.model
    elif "model" in run.chosen:
        notes.append(
            f"{where}: --model {run.model} is not a model of {info.name}; its tasks use "
            f"{_model_choice(defaults, info)}"
        )
        model = _model_choice(defaults, info)
    elif defaults.model and defaults.model.strip() in info.models:
        model = defaults.model.strip()
    elif defaults.model and defaults.model.strip():
        notes.append(
            f"{where}: defaults.model {defaults.model.strip()!r} is not a model {info.name} "
            f"offers here (retired, or another provider's); its tasks use {model}"
        )
    return Route(info, model, tuple(notes))


def _model_choice(defaults: Defaults, info: ProviderInfo) -> str:
    wanted = (defaults.model or "").strip()
    return wanted if wanted in info.models else info.default_model

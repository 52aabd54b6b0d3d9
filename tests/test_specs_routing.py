"""Which provider and model a spec file's tasks go to, and what a provider without reference
images is sent instead (pure: no files but the small ROOT, no network)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from imagegen import providers
from imagegen.sources import RunDefaults
from imagegen.sources.specs import Defaults, load_root, plan_tasks
from imagegen.sources.specs.routing import Route, route

from .specs_helpers import make_root

GEMINI = providers.get("gemini")


def run(*chosen: str, provider: str = "gemini", model: str | None = None) -> RunDefaults:
    info = providers.get(provider)
    return RunDefaults(info, model or info.default_model, "1K", "1:1", frozenset(chosen))


@pytest.mark.parametrize(
    ("asked", "name"),
    [("google", "gemini"), ("Gemini", "gemini"), (" openai ", "openai"), ("fal", "fal")],
)
def test_a_files_provider_is_honoured_by_its_registry_name(asked: str, name: str) -> None:
    chosen = route(Defaults(provider=asked), run(), "f.yaml")
    assert (chosen.provider.name, chosen.notes) == (name, ())
    assert chosen.model == chosen.provider.default_model


def test_a_typed_provider_overrides_every_file() -> None:
    chosen = route(Defaults(provider="openai"), run("provider"), "f.yaml")
    assert chosen.provider.name == "gemini" and chosen.notes == ()


def test_a_provider_this_tool_does_not_know_falls_back_to_the_runs_with_a_note() -> None:
    unknown = route(Defaults(provider="midjourney"), run(provider="openai"), "g.yaml")
    assert unknown.provider.name == "openai"
    assert "'midjourney' is not a provider this tool knows" in unknown.notes[0]


def test_a_files_model_is_used_only_when_its_provider_offers_it() -> None:
    kept = route(Defaults(provider="google", model="gemini-3-pro-image-preview"), run(), "f")
    assert (kept.model, kept.notes) == ("gemini-3-pro-image-preview", ())
    retired = route(Defaults(provider="openai", model="dall-e-3"), run(), "f")
    assert retired.model == "gpt-image-2"
    assert "defaults.model 'dall-e-3' is not a model openai offers here" in retired.notes[0]


def test_a_typed_model_wins_where_its_provider_offers_it() -> None:
    typed = run("model", model="gemini-2.5-flash-image")
    assert route(Defaults(provider="google"), typed, "f").model == "gemini-2.5-flash-image"
    other = route(Defaults(provider="openai", model="gpt-image-2.5-flare"), typed, "f")
    assert other.model == "gpt-image-2.5-flare"
    assert "--model gemini-2.5-flash-image is not a model of openai" in other.notes[0]
    both = run("provider", "model", provider="gemini", model="some-new-model")
    assert route(Defaults(provider="openai"), both, "f").model == "some-new-model"


def test_a_provider_without_reference_images_gets_the_appearance_in_words(
    tmp_path: Path,
) -> None:
    blind = Route(replace(GEMINI, max_references=0), GEMINI.default_model)
    assert not blind.capabilities.supports_references
    seeing = Route(GEMINI, GEMINI.default_model)
    assert seeing.capabilities.max_references == GEMINI.max_references
    specs = load_root(make_root(tmp_path))
    with_refs = plan_tasks(specs, capabilities=lambda _f: seeing.capabilities).tasks[0]
    without = plan_tasks(specs, capabilities=lambda _f: blind.capabilities).tasks[0]
    assert with_refs.references and "Character appearance" not in with_refs.prompt
    assert without.references == ()
    assert "Character appearance (keep it consistent):\n- Mara Vell: Dark hair" in without.prompt

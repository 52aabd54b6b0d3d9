"""A spec ROOT written the way hand-kept files are, for the end-to-end tests of the specs source
(test_specs_source.py, test_specs_crash.py), and the checks those tests (and
test_specs_update.py) share.

Two chapters (one on Google with characters and references, one on OpenAI with the seed's
retired ``dall-e-3``, four-space indents and flow mappings), one location with an overview and
parts, an inventory with an approved and a candidate image. Comments on every level, single,
double and no quotes, ``~`` / ``null`` / empty values, unicode in text, keys and file names.
Pending: 3 chapter images (one recorded but its file missing) and 3 location items.
"""

from __future__ import annotations

import difflib
import textwrap
from collections import Counter
from pathlib import Path

from ruamel.yaml import YAML

from imagegen.emulator import Emulator
from imagegen.emulator.openai_routes import openai_state
from imagegen.sources.specs import load_root
from imagegen.sources.specs.schema import OUTPUT_FIELDS

from .conftest import write_image

CHAPTER_1 = textwrap.dedent(
    """\
    # Kapitel 1 — Morgendämmerung ☀   (hand-kept; the tool fills the output fields)
    chapter: "dawn"        # slug
    title: 'Dämmerung am Kai'
    visual_thesis: >
      Licht über dem Wasser. Lange Schatten
      überall. Ein dritter Satz, der nicht gesendet wird.
    palette: [ "bernstein", 'schiefer', moos ]
    defaults: {provider: google, quality: 1K}   # google = the Gemini API

    characters:
      # Mara: the candidate sketch is listed first; the approved portrait is sent first.
      - id: mara
        reference_images: [mara-sketch, mara-portrait]
      - id: "osk"            # no images: his appearance goes into the prompt
        reference_images: []

    images:
      # ── the first one ──
      - custom_id: "dawn-quay"
        prompt_used: >-
          Mara am Kai, „die Laterne“ erhoben,
          Nebel hinter den Häusern.
        negative_prompt: 'text, watermark'
        size: '3:2'
        depicts_characters: [ mara ]
        character_states: {mara: "durchnässt, entschlossen"}
        composition_notes: "keep the road leading away"   # a key the tool does not know
        generated_at: ~          # out
        file_name:
        file_path: null   # written by the tool
        provider: null
        model: ~
        provider_metadata: null

      - custom_id: dawn-road
        prompt_used: |
          Die Straße in den Nebel — niemand wartet.
        negative_prompt: ~
        depicts_characters: []
        generated_at: null
        file_name: null
        file_path: null
        provider: null
        model: null
        provider_metadata: null

      # recorded once, but its file is gone: pending again
      - custom_id: dawn-osk
        prompt_used: "Osk lehnt am Karren und grinst; Mara senkt die Laterne."
        negative_prompt: "extra fingers"
        size: 1024x1024
        depicts_characters:
          - mara
          - osk
        character_states:
          osk: {expression: 'breites Grinsen'}
        generated_at: '2026-01-15T09:31:00Z'
        file_name: dawn-osk.png
        file_path: generated/chapters/dawn/dawn-osk.png
        provider: gemini
        model: gemini-3-pro-image
        provider_metadata: {request_id: old-0002, cost_usd: 0.134}
    # end of chapter 1
    """
)

CHAPTER_2 = textwrap.dedent(
    """\
    # Chapter 2: the workshop (four-space indentation, the seed's OpenAI defaults)
    chapter: workshop
    visual_thesis: "Heat and glass: every surface glows. Cold blue only at the windows."
    palette:
        - molten amber
        - "cobalt"
    defaults: {provider: openai, model: dall-e-3, quality: hd, size: "4:5"}
    images:
        # already generated: its file exists, so it is not pending
        -   custom_id: workshop-done
            prompt_used: The glass workshop at night.
            generated_at: '2026-01-15T09:30:00Z'
            file_name: workshop-done.png
            file_path: generated/chapters/workshop/workshop-done.png
            provider: openai
            model: gpt-image-2
            provider_metadata:
                request_id: old-0001
                cost_usd: 0.2
        -   custom_id: workshop-furnace   # pending
            prompt_used: >
                The furnace door open, sparks
                rising into the dark.
            negative_prompt: "photograph"
            generated_at:
            file_name:
            file_path:
            provider:
            model:
            provider_metadata:
    """
)

LOCATION = textwrap.dedent(
    """\
    # Ort: der Hafenmarkt
    location: harbour
    name: 'Der Hafenmarkt'
    signature_elements:
      - gestreifte Markisen, salzgebleicht
      - "eine Bronzeglocke am schiefen Mast"
      - fish crates stacked three high
    characteristic_light: Low winter sun through sea haze.
    defaults:
      provider: google
      model: gemini-3-pro-image-preview   # a model Gemini offers: kept
      quality: "high"
      size: "16:9"

    overview:
      slug: overview
      prompt_used: >
        The harbour market from the sea wall, awnings and the bell mast.
      negative_prompt: people in the foreground, text
      generated_images: []   # filled by the tool

    parts:
      # the bell mast, close up
      - slug: bell-mast
        prompt_used: "The leaning bell mast, gulls, rope and verdigris."
        negative_prompt:
        size: "9:16"
        generated_images: []

      - slug: crates   # no generated_images key at all

        prompt_used: 'Fish crates under the awnings, ice and scales.'

      - slug: stalls   # already generated once
        prompt_used: Fish stalls.
        generated_images:
          - generated_at: '2026-01-15T10:00:00Z'
            file_name: stalls.png
            file_path: generated/locations/harbour/stalls.png
            provider: gemini
            model: gemini-3-pro-image
            provider_metadata: {request_id: old-0003, cost_usd: 0.134}
    # end
    """
)

INVENTORY = textwrap.dedent(
    """\
    # Figuren
    characters:
      - id: mara
        name: Mara Vell
        appearance: >-
          Woman in her thirties, dark hair cut at the jaw,
          grey wool coat.
        image_inventory:
          - id: mara-portrait
            path: characters/images/mara-portrait.png
            status: approved
          - {id: mara-sketch, path: "characters/images/mara-sketch.png", status: candidate}
      - id: osk
        name: "Osk"
        appearance:
          hair: 'copper, tied back'
          build: broad
        image_inventory: []
    """
)

FILES = {
    "chapters/01-dämmerung.yaml": CHAPTER_1,
    "chapters/02-workshop.yaml": CHAPTER_2,
    "locations/harbour.yaml": LOCATION,
    "characters/character_imagery.yaml": INVENTORY,
}
CHAPTER_1_FILE, CHAPTER_2_FILE, LOCATION_FILE, _ = FILES

#: The pending tasks, in plan order, and the provider each goes to by its file's defaults.
PENDING = {
    "dawn-quay": "gemini",
    "dawn-road": "gemini",
    "dawn-osk": "gemini",
    "workshop-furnace": "openai",
    "harbour/overview": "gemini",
    "harbour/bell-mast": "gemini",
    "harbour/crates": "gemini",
}

#: Lines the tool may add or remove: the output fields and what a result holds.
OUTPUT_KEYS = (
    "generated_at:",
    "file_name:",
    "file_path:",
    "provider:",
    "model:",
    "provider_metadata:",
    "request_id:",
    "model_version:",
    "prompt_sha256:",
    "image_sha256:",
    "cost_usd:",
    "generated_images:",
    "- generated_at:",
)


def make_tree(root: Path) -> Path:
    """Write the tree (and the images it refers to, and the two already generated)."""
    for name, text in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    for image in ("mara-portrait", "mara-sketch"):
        write_image(root / "characters" / "images" / f"{image}.png")
    write_image(root / "generated/chapters/workshop/workshop-done.png")
    write_image(root / "generated/locations/harbour/stalls.png")
    return root


def calls(emu: Emulator) -> Counter[str]:
    """Images generated by prompt text, both families together."""
    return emu.generated + openai_state(emu).generated


def texts(root: Path) -> dict[str, str]:
    """The tree's spec files (:data:`FILES`) by name, as text."""
    return {name: (root / name).read_text(encoding="utf-8") for name in FILES}


def changed_lines(before: str, after: str) -> tuple[list[str], list[str]]:
    """The lines removed and added between two versions of a file (difflib's view)."""
    removed, added = [], []
    for line in difflib.ndiff(before.splitlines(), after.splitlines()):
        if line.startswith("- "):
            removed.append(line[2:])
        elif line.startswith("+ "):
            added.append(line[2:])
    return removed, added


def assert_only_output_fields(before: str, after: str) -> None:
    """Every line that changed is an output field's (a diff shows nothing else), and the
    file still means the same once the output fields are set aside."""
    removed, added = changed_lines(before, after)
    for line in removed + added:
        assert line.strip().startswith(OUTPUT_KEYS), line
    assert _without_outputs(before) == _without_outputs(after)


def _without_outputs(text: str) -> object:
    data = YAML(typ="safe").load(text)

    outputs = (*OUTPUT_FIELDS, "generated_images")

    def strip(node: object) -> object:
        if isinstance(node, dict):
            item = "custom_id" in node or "slug" in node
            return {k: strip(v) for k, v in node.items() if not (item and k in outputs)}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    return strip(data)


def recorded(root: Path) -> dict[str, list[str]]:
    """Task id -> the file paths its item records (a chapter image: one or none; a location
    item: one per generated_images entry), read through the tool's own loader."""
    specs = load_root(root)
    out: dict[str, list[str]] = {}
    for chapter in specs.chapters:
        for image in chapter.images:
            path = image.output.file_path
            out[image.custom_id] = [path] if path else []
    for location in specs.locations:
        for item in location.items:
            out[f"{location.slug}/{item.slug}"] = [
                g.file_path for g in item.generated_images if g.file_path
            ]
    return out

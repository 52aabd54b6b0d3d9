"""Write the sample YAML imagery specs ROOT: two chapters, one location, three characters.

Layout (documented in ``samples/specs/README.md``, which this script does not touch)::

    chapters/01-the-lantern-road.yaml     three pending images, characters with references;
                                          the seed's defaults (openai, dall-e-3: retired)
    chapters/02-the-glass-workshop.yaml   one image done, one recorded but its file missing;
                                          on gemini
    locations/harbour-market.yaml         an overview and two parts, one part done; on google
    characters/character_imagery.yaml     Mara (one approved, one candidate image), Osk, Tamsin
    characters/images/*.png               the inventory images
    generated/...                         the two images the specs record as done

The YAML is written as text, on purpose untidy the way hand-kept files are: comments on every
level, single, double and no quotes, unicode, flow and block collections, ``null``, ``~`` and
empty values, folded and literal prompts. The images are original drawings made here with
Pillow primitives, released under CC0-1.0. The output is deterministic (no clock, no
randomness, no network): running the script twice gives the same bytes.

Usage: python tools/make_sample_specs.py [--root samples/specs]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, ImageDraw

RGB = tuple[int, int, int]

CHAPTER_01 = """\
# Chapter 1 — The Lantern Road
# Imagery spec: the tool fills the output fields (generated_at … provider_metadata).

chapter: the-lantern-road   # slug: names generated/chapters/the-lantern-road/
title: "The Lantern Road"
visual_thesis: >
  Small warm lights held against a vast, cold dusk. Every frame keeps the
  road leading away from the viewer. Nothing is ever fully lit.
palette: [ "ember orange", 'slate blue', moss green, "bone white" ]

# The seed's chapter defaults. dall-e-3 is retired: the tool says so and uses OpenAI's
# current default model; --provider gemini sends the chapter to Gemini instead.
defaults:
  provider: openai
  model: dall-e-3
  quality: hd        # mapped to the 2K tier

characters:
  # Mara carries the story; her candidate sketch is listed first on purpose:
  # approved images are sent first anyway.
  - id: mara
    reference_images: [mara-sketch, mara-portrait]
  - id: "osk"
    reference_images:
      - osk-portrait

images:
  - custom_id: ch01-ferry-arrival
    prompt_used: >-
      Classical oil painting, visible brushwork, matte finish. Mara steps off a
      small ferry onto a wet stone quay at dusk, lantern raised, the road
      climbing into fog behind the harbour houses.
    negative_prompt: 'photograph, 3d render, text, watermark'
    size: 1536x1024
    depicts_characters: [mara]
    character_states:
      mara: soaked to the knees, lantern in her left hand, jaw set
    generated_at: null
    file_name: ~
    file_path:
    provider: null
    model: null
    provider_metadata: null

  # An empty road: no characters, so no reference images.
  - custom_id: "ch01-road-into-fog"
    prompt_used: |
      Classical oil painting. The coast road at the edge of town, one lantern
      glowing far ahead in the fog, stone walls, bare hawthorn — “no one waits”.
    negative_prompt: ~
    size: "16:9"
    depicts_characters: []
    character_states: {}
    generated_at: null
    file_name: null
    file_path: null   # the tool writes generated/chapters/the-lantern-road/…
    provider: null
    model: null
    provider_metadata: null

  - custom_id: ch01-osk-meets-mara
    prompt_used: "Classical oil painting. Osk's cart blocks the road; he leans on the wheel,
      grinning, while Mara lowers her lantern to see his face."
    negative_prompt: "photograph, text, extra fingers"
    size: 1024x1024
    depicts_characters:
      - mara
      - osk
    character_states:
      mara: wary, one hand on her satchel
      osk:
        expression: broad grin
        clothing: 'ash-grey apron, sleeves rolled'
    generated_at: null
    file_name: null
    file_path: null
    provider: null
    model: null
    provider_metadata: null
# end of chapter 1
"""

CHAPTER_02 = """\
---
# Chapter 2: the glass workshop (four-space indentation, on purpose)
chapter: the-glass-workshop
visual_thesis: "Heat and glass: every surface glows from within. Cold blue only at the windows."
palette:
    - molten amber
    - "cobalt"
defaults: {provider: gemini, model: gemini-3-pro-image, quality: 1K, size: "4:5"}
characters:
    -   id: osk
        reference_images: [osk-portrait]
    -   id: tamsin
        reference_images: ['tamsin-portrait']
images:
    # Already generated: file_path names a file that exists, so it is not pending.
    -   custom_id: ch02-workshop-interior
        prompt_used: Classical oil painting. The glass workshop at night, furnace open.
        negative_prompt: text
        size: "3:2"
        depicts_characters: []
        generated_at: '2026-01-15T09:30:00Z'
        file_name: ch02-workshop-interior.png
        file_path: generated/chapters/the-glass-workshop/ch02-workshop-interior.png
        provider: gemini
        model: gemini-3-pro-image
        provider_metadata:
            request_id: sample-0001
            model_version: gemini-3-pro-image
            prompt_sha256: null
            image_sha256: null
            cost_usd: 0.134
    # Recorded once, but its file was deleted: pending again.
    -   custom_id: ch02-tamsin-portrait
        prompt_used: >
            Classical oil painting. Tamsin at the workbench, turning a cobalt
            bottle against the window light.
        negative_prompt: "photograph"
        depicts_characters: [tamsin, osk]
        character_states: {tamsin: "focused, goggles pushed up", osk: 'in the background'}
        generated_at: '2026-01-15T09:31:00Z'
        file_name: ch02-tamsin-portrait.png
        file_path: generated/chapters/the-glass-workshop/ch02-tamsin-portrait.png
        provider: gemini
        model: gemini-3-pro-image
        provider_metadata: {request_id: sample-0002, cost_usd: 0.134}
"""

HARBOUR = """\
# Location: the harbour market (Porth Ysgol)
location: harbour-market
name: 'The Harbour Market'
signature_elements:
  - striped canvas awnings, salt-bleached
  - "a bronze bell on a leaning mast"
  - fish crates stacked three high
characteristic_light: Low winter sun through sea haze, long blue shadows.
defaults:
  provider: google   # the seed's name for the Gemini API
  model: gemini-3-pro-image-preview
  quality: "high"
  size: "16:9"

overview:
  slug: overview
  prompt_used: >
    Classical oil painting. The harbour market seen from the sea wall at
    mid-morning, awnings and the bell mast, boats beyond.
  negative_prompt: people in the foreground, text
  generated_images: []   # filled by the tool

parts:
  # The bell mast, close up.
  - slug: bell-mast
    prompt_used: "Classical oil painting. The leaning bell mast, gulls, rope and verdigris."
    negative_prompt:
    size: "9:16"
    generated_images: []

  - slug: fish-stalls   # already generated once
    prompt_used: 'Classical oil painting. Fish stalls under striped awnings, ice and scales.'
    negative_prompt: ~
    generated_images:
      - generated_at: '2026-01-15T10:00:00Z'
        file_name: fish-stalls.png
        file_path: generated/locations/harbour-market/fish-stalls.png
        provider: gemini
        model: gemini-3-pro-image
        provider_metadata: {request_id: sample-0003, cost_usd: 0.134}
# end
"""

CHARACTERS = """\
# The character inventory: canonical appearance, and the images that may be sent as
# references (paths relative to ROOT). Only "approved" ones are sent first.
characters:
  - id: mara
    name: Mara Vell
    appearance: >-
      Woman in her thirties, weathered olive skin, dark hair cut at the jaw,
      grey wool coat with a brass lantern clasp.
    image_inventory:
      - id: mara-portrait
        path: characters/images/mara-portrait.png
        status: approved
      - id: mara-sketch
        path: "characters/images/mara-sketch.png"
        status: candidate      # not yet approved

  - id: osk
    name: "Osk"
    appearance:              # a mapping is accepted and joined into one line
      build: broad, heavy-shouldered
      hair: 'copper, tied back'
      face: freckled, a scar through the left eyebrow
    image_inventory:
      - {id: osk-portrait, path: characters/images/osk-portrait.png, status: approved}

  - id: tamsin
    name: Tamsin Rhys
    appearance: Slight, sharp-eyed glassblower; soot on her cheek; blue goggles.
    image_inventory:
      - id: tamsin-portrait
        path: characters/images/tamsin-portrait.png
        status: approved
"""

FILES = {
    "chapters/01-the-lantern-road.yaml": CHAPTER_01,
    "chapters/02-the-glass-workshop.yaml": CHAPTER_02,
    "locations/harbour-market.yaml": HARBOUR,
    "characters/character_imagery.yaml": CHARACTERS,
}

# Who the inventory images show: coat, skin, hair colours; "sketch" is drawn in pencil tones.
PORTRAITS: dict[str, tuple[RGB, RGB, RGB]] = {
    "mara-portrait": ((92, 96, 104), (196, 160, 120), (44, 34, 30)),
    "mara-sketch": ((150, 150, 150), (215, 215, 215), (90, 90, 90)),
    "osk-portrait": ((120, 118, 112), (226, 180, 150), (184, 92, 40)),
    "tamsin-portrait": ((58, 88, 140), (222, 196, 170), (30, 30, 36)),
}


def draw_portrait(coat: RGB, skin: RGB, hair: RGB, *, sketch: bool) -> Image.Image:
    """A head-and-shoulders figure on a plain ground, 96x120."""
    img = Image.new("RGB", (96, 120), (236, 230, 218) if not sketch else (250, 250, 246))
    d = ImageDraw.Draw(img)
    d.ellipse((14, 78, 82, 150), fill=coat, outline=(40, 40, 40) if sketch else None)
    d.rectangle((40, 62, 56, 82), fill=skin)
    d.ellipse((28, 22, 68, 68), fill=skin, outline=(40, 40, 40) if sketch else None)
    d.chord((26, 16, 70, 52), 180, 360, fill=hair)
    d.ellipse((38, 40, 43, 45), fill=(30, 30, 30))
    d.ellipse((53, 40, 58, 45), fill=(30, 30, 30))
    d.arc((40, 48, 56, 60), 20, 160, fill=(90, 50, 40), width=2)
    return img


def draw_scene(sky: RGB, ground: RGB, light: RGB) -> Image.Image:
    """A small landscape stand-in for a generated image, 120x80."""
    img = Image.new("RGB", (120, 80), sky)
    d = ImageDraw.Draw(img)
    d.rectangle((0, 50, 120, 80), fill=ground)
    d.polygon([(20, 50), (40, 30), (60, 50)], fill=tuple(c // 2 for c in ground))
    d.ellipse((84, 14, 100, 30), fill=light)
    return img


def write(root: Path) -> list[Path]:
    """Write the sample under ``root``; returns the files written."""
    written = []
    for name, text in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))
        written.append(path)
    for name, (coat, skin, hair) in PORTRAITS.items():
        image = draw_portrait(coat, skin, hair, sketch="sketch" in name)
        written.append(_save(image, root / "characters" / "images" / f"{name}.png"))
    done = {
        "generated/chapters/the-glass-workshop/ch02-workshop-interior.png": draw_scene(
            (40, 30, 60), (120, 70, 30), (255, 190, 90)
        ),
        "generated/locations/harbour-market/fish-stalls.png": draw_scene(
            (170, 190, 210), (90, 110, 120), (250, 240, 210)
        ),
    }
    for name, image in done.items():
        written.append(_save(image, root / name))
    return written


def _save(image: Image.Image, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG", optimize=True)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("samples/specs"))
    args = parser.parse_args()
    files = write(args.root)
    total = sum(f.stat().st_size for f in files)
    print(f"wrote {len(files)} files, {total} bytes, under {args.root}")


if __name__ == "__main__":
    main()

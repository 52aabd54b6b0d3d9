"""A small, valid specs ROOT on disk for the tests of :mod:`imagegen.sources.specs`."""

from __future__ import annotations

import textwrap
from pathlib import Path

from .conftest import write_image

CHAPTER = textwrap.dedent(
    """\
    # Chapter one
    chapter: dawn   # slug
    visual_thesis: First light on the water. Long shadows everywhere. A third sentence.
    palette: [amber, 'slate', "moss"]
    defaults:
      provider: gemini
      quality: 1K
    characters:
      - id: mara
        reference_images: [mara-c, mara-b, mara-a]   # c is a candidate
      - id: osk
        reference_images: []

    images:
      - custom_id: one
        prompt_used: >
          Mara at the quay,
          lantern raised.
        negative_prompt: 'text, watermark'
        size: 1536x1024
        depicts_characters: [mara]
        character_states:
          mara: soaked
        generated_at: null
        file_name: ~
        file_path:
        provider: null
        model: null
        provider_metadata: null

      # the second image
      - custom_id: two
        prompt_used: "Osk and Mara on the road."
        depicts_characters: [mara, osk]
        character_states: {osk: {expression: grin, clothing: apron}}
        generated_at: null
        file_name: null
        file_path: null   # written by the tool
        provider: null
        model: null
        provider_metadata: null
    # end
    """
)

LOCATION = textwrap.dedent(
    """\
    location: quay
    name: The Quay
    signature_elements: [bell mast, striped awnings, fish crates]
    characteristic_light: Winter haze.
    defaults: {size: "16:9"}
    overview:
      slug: overview
      prompt_used: The quay from the sea wall.
      generated_images: []   # the tool appends here
    parts:
      # the bell
      - slug: bell
        prompt_used: The bell mast.
        negative_prompt: gulls
        size: "9:16"
        generated_images: []

      - slug: crates
        prompt_used: 'Fish crates.'
        generated_images: []
    """
)

INVENTORY = textwrap.dedent(
    """\
    characters:
      - id: mara
        name: Mara Vell
        appearance: Dark hair cut at the jaw, grey wool coat.
        image_inventory:
          - {id: mara-a, path: characters/images/mara-a.png, status: approved}
          - {id: mara-b, path: characters/images/mara-b.png, status: approved}
          - {id: mara-c, path: characters/images/mara-c.png, status: candidate}
          - {id: mara-x, path: characters/images/gone.png, status: rejected}
      - id: osk
        appearance:
          hair: copper
          build: broad
        image_inventory: []
    """
)

CHAPTER_FILE = "chapters/01-dawn.yaml"
LOCATION_FILE = "locations/quay.yaml"
INVENTORY_FILE = "characters/character_imagery.yaml"


def make_root(
    root: Path,
    *,
    chapter: str | None = CHAPTER,
    location: str | None = LOCATION,
    inventory: str | None = INVENTORY,
    images: tuple[str, ...] = ("mara-a", "mara-b", "mara-c"),
) -> Path:
    """Write a ROOT (pass None to leave a file out) and return it."""
    for name, text in (
        (CHAPTER_FILE, chapter),
        (LOCATION_FILE, location),
        (INVENTORY_FILE, inventory),
    ):
        if text is not None:
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    for image in images:
        write_image(root / "characters" / "images" / f"{image}.png")
    return root
